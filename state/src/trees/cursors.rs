//! `cursors`: how far each consumer has durably processed the write-ahead
//! log. Writer: the stage that owns the cursor (triage commits the pipeline
//! cursor in the same transaction as the incidents it produced).

use crate::StoreError;
use crate::keys::{key_u64, u64_key};

/// Name of the cursor committed by the last stage of the pipeline.
pub const PIPELINE: &str = "pipeline";

#[derive(Clone)]
pub struct Cursors {
    pub(crate) tree: sled::Tree,
}

impl Cursors {
    /// The last write-ahead sequence fully processed by `name` (0 = none).
    pub fn get(&self, name: &str) -> Result<u64, StoreError> {
        Ok(self
            .tree
            .get(name.as_bytes())?
            .and_then(|v| key_u64(&v))
            .unwrap_or(0))
    }

    pub fn set(&self, name: &str, seq: u64) -> Result<(), StoreError> {
        self.tree.insert(name.as_bytes(), &u64_key(seq))?;
        Ok(())
    }
}
