//! `notify_deliveries` (channel + message key → delivery record): the
//! delivery log of the notify stage, its single writer. A message is
//! *claimed* (inserted as pending, only if absent) before it is sent, so
//! the same incident update is never sent twice to a channel, even when
//! the same update is seen again or two senders race.

use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::codec::{decode_json, encode_json};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub channel: String,
    /// Identifies one incident update (`<incident>/<update>/<ts>`).
    pub key: String,
    pub incident_id: String,
    pub update: String,
    /// `pending`, `delivered`, `failed`.
    pub status: String,
    pub attempts: u32,
    /// Never contains a token or a webhook URL.
    pub last_error: String,
    pub ts_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "version")]
enum DeliveryRecord {
    #[serde(rename = "1")]
    V1(Delivery),
}

fn decode(b: &[u8]) -> Result<Delivery, StoreError> {
    match decode_json::<DeliveryRecord>("notify_deliveries", b)? {
        DeliveryRecord::V1(d) => Ok(d),
    }
}

fn key(channel: &str, key: &str) -> Vec<u8> {
    let mut k = channel.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

#[derive(Clone)]
pub struct Deliveries {
    pub(crate) tree: sled::Tree,
}

impl Deliveries {
    pub fn open(tree: sled::Tree) -> Self {
        Self { tree }
    }

    /// Insert `d` as pending if nothing is recorded for its channel and
    /// key; `true` when this caller claimed it (and must send it).
    pub fn claim(&self, d: &Delivery) -> Result<bool, StoreError> {
        let bytes = encode_json(&DeliveryRecord::V1(d.clone()))?;
        Ok(self
            .tree
            .compare_and_swap(key(&d.channel, &d.key), None as Option<&[u8]>, Some(bytes))?
            .is_ok())
    }

    /// Record the result of a claimed delivery (flushed).
    pub fn record(&self, d: &Delivery) -> Result<(), StoreError> {
        self.tree.insert(
            key(&d.channel, &d.key),
            encode_json(&DeliveryRecord::V1(d.clone()))?,
        )?;
        self.tree.flush()?;
        Ok(())
    }

    pub fn get(&self, channel: &str, k: &str) -> Result<Option<Delivery>, StoreError> {
        self.tree
            .get(key(channel, k))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Every record (tests, the API), at most `limit`.
    pub fn list(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.tree
            .iter()
            .take(limit)
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    /// Records still pending (claimed, result not recorded).
    pub fn pending(&self) -> Result<Vec<Delivery>, StoreError> {
        Ok(self
            .list(usize::MAX)?
            .into_iter()
            .filter(|d| d.status == "pending")
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_claimed_once_per_channel() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let t = Deliveries::open(db.open_tree("notify_deliveries").unwrap());
        let mut d = Delivery {
            channel: "slack".into(),
            key: "i1/opened/5".into(),
            incident_id: "i1".into(),
            update: "opened".into(),
            status: "pending".into(),
            attempts: 0,
            last_error: String::new(),
            ts_ms: 1,
        };
        assert!(t.claim(&d).unwrap());
        assert!(!t.claim(&d).unwrap());
        d.channel = "telegram".into();
        assert!(t.claim(&d).unwrap());
        d.status = "delivered".into();
        t.record(&d).unwrap();
        assert_eq!(t.pending().unwrap().len(), 1);
        assert_eq!(
            t.get("telegram", "i1/opened/5").unwrap().unwrap().status,
            "delivered"
        );
    }
}
