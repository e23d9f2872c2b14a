//! `detector_state`: the learned state of each statistical detector stream
//! (stream key → versioned record holding the detector's serialised state),
//! so a restarted detect stage keeps its baselines. Writer: detect.

use serde::{Deserialize, Serialize};

use crate::codec::{decode_json, encode_json};
use crate::{Store, StoreError};

const TREE: &str = "detector_state";

/// The stored form of one stream's detector: one variant per version.
/// `state` is the detector's own serde form (owned by the detect stage).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "version")]
pub enum DetectorRecord {
    #[serde(rename = "1")]
    V1 {
        /// Detector kind, e.g. `univariate`.
        kind: String,
        /// Milliseconds since the epoch of the last point learned.
        last_ts_ms: i64,
        state: serde_json::Value,
    },
}

#[derive(Clone)]
pub struct DetectorStates {
    tree: sled::Tree,
}

/// Stored streams (key, record) and the records that could not be read.
pub type Loaded = (Vec<(String, DetectorRecord)>, Vec<StoreError>);

impl DetectorStates {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(DetectorStates {
            tree: store.open_tree(TREE)?,
        })
    }

    /// Write several streams' records in one batch.
    pub fn put_all(&self, items: &[(String, DetectorRecord)]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, r) in items {
            batch.insert(k.as_bytes(), encode_json(r)?);
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    pub fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.tree.remove(key.as_bytes())?;
        Ok(())
    }

    /// Every stored stream, in key order. Undecodable records are skipped
    /// and reported (a detector relearns rather than the stage failing).
    pub fn load_all(&self) -> Result<Loaded, StoreError> {
        self.load_prefix("")
    }

    /// The stored streams whose key starts with `prefix`, in key order.
    pub fn load_prefix(&self, prefix: &str) -> Result<Loaded, StoreError> {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for kv in self.tree.scan_prefix(prefix.as_bytes()) {
            let (k, v) = kv?;
            let key = String::from_utf8_lossy(&k).into_owned();
            match decode_json::<DetectorRecord>(TREE, &v) {
                Ok(r) => ok.push((key, r)),
                Err(e) => bad.push(e),
            }
        }
        Ok((ok, bad))
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.tree.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::StoreConfig::at(dir.path());
        let rec = DetectorRecord::V1 {
            kind: "univariate".into(),
            last_ts_ms: 42,
            state: serde_json::json!({"level": 1.5}),
        };
        {
            let s = Store::open(&cfg).unwrap();
            let t = DetectorStates::open(&s).unwrap();
            t.put_all(&[("api|cpu".into(), rec.clone())]).unwrap();
            s.flush().unwrap();
        }
        let s = Store::open(&cfg).unwrap();
        let (all, bad) = DetectorStates::open(&s).unwrap().load_all().unwrap();
        assert!(bad.is_empty());
        assert_eq!(all, vec![("api|cpu".to_string(), rec)]);
    }

    #[test]
    fn version_1_golden_record_decodes() {
        let golden = r#"{"version":"1","kind":"univariate","last_ts_ms":7,"state":{"x":1}}"#;
        let r: DetectorRecord = serde_json::from_str(golden).unwrap();
        assert!(matches!(r, DetectorRecord::V1 { last_ts_ms: 7, .. }));
    }
}
