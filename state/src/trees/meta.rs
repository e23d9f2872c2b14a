//! `meta`: schema version. Writer: the store itself, at open.

use crate::StoreError;

pub const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";

#[derive(Clone)]
pub struct Meta {
    pub(crate) tree: sled::Tree,
}

impl Meta {
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(match self.tree.get(SCHEMA_VERSION_KEY)? {
            Some(v) => {
                u32::from_be_bytes(v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    tree: "meta",
                    reason: "schema_version is not 4 bytes".into(),
                })?)
            }
            None => 0,
        })
    }

    pub(crate) fn set_schema_version(&self, v: u32) -> Result<(), StoreError> {
        self.tree.insert(SCHEMA_VERSION_KEY, &v.to_be_bytes())?;
        Ok(())
    }
}
