//! `anomalies`: recent anomalies found by the statistical detectors
//! (time-ordered id → versioned record), for `GET /observability/anomalies`.
//! Bounded: the oldest records beyond `keep` are trimmed on insert.
//! Writer: detect.

use serde::{Deserialize, Serialize};

use crate::codec::{decode_json, encode_json};
use crate::keys::{Id, IdGen};
use crate::model::Anomaly;
use crate::{Store, StoreError};

const TREE: &str = "anomalies";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "version")]
pub enum AnomalyRecord {
    #[serde(rename = "1")]
    V1(Anomaly),
}

/// Which anomalies to list (newest first).
#[derive(Clone, Debug, Default)]
pub struct AnomalyFilter {
    pub service: Option<String>,
    /// Only anomalies with `ts_ms >= since_ms`.
    pub since_ms: Option<i64>,
    pub limit: usize,
}

#[derive(Clone)]
pub struct Anomalies {
    tree: sled::Tree,
    ids: std::sync::Arc<IdGen>,
    keep: usize,
    /// Records held (sled's `len` walks the whole tree: counted here).
    held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Anomalies {
    pub fn open(store: &Store, keep: usize) -> Result<Self, StoreError> {
        let tree = store.open_tree(TREE)?;
        let last = tree
            .last()?
            .and_then(|(k, _)| crate::keys::key_u64(&k))
            .unwrap_or(0);
        let held = tree.len();
        Ok(Anomalies {
            tree,
            ids: std::sync::Arc::new(IdGen::starting_after(last)),
            keep: keep.max(1),
            held: std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(held)),
        })
    }

    pub fn insert_all(&self, items: &[Anomaly], now_ms: i64) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for a in items {
            let id: Id = self.ids.next(now_ms);
            batch.insert(&id.key(), encode_json(&AnomalyRecord::V1(a.clone()))?);
        }
        self.tree.apply_batch(batch)?;
        use std::sync::atomic::Ordering::Relaxed;
        self.held.fetch_add(items.len(), Relaxed);
        while self.held.load(Relaxed) > self.keep {
            if self.tree.pop_min()?.is_none() {
                self.held.store(0, Relaxed);
                break;
            }
            self.held.fetch_sub(1, Relaxed);
        }
        Ok(())
    }

    pub fn list(&self, f: &AnomalyFilter) -> Result<Vec<Anomaly>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tree.iter().rev() {
            let (_, v) = kv?;
            let AnomalyRecord::V1(a) = decode_json::<AnomalyRecord>(TREE, &v)?;
            if f.service.as_ref().is_some_and(|s| *s != a.service) {
                continue;
            }
            if f.since_ms.is_some_and(|t| a.ts_ms < t) {
                continue;
            }
            out.push(a);
            if out.len() >= f.limit {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    fn anomaly(service: &str, ts: i64) -> Anomaly {
        Anomaly {
            ts_ms: ts,
            service: service.into(),
            category: "metrics".into(),
            kind: "METRIC_ANOMALY".into(),
            severity: Severity::Medium,
            score: 0.9,
            signature: None,
            auto_fixable: false,
            summary: "cpu".into(),
            count: 1,
            evidence: vec![],
        }
    }

    #[test]
    fn lists_newest_first_with_filters_and_trims_to_keep() {
        let s = Store::temporary().unwrap();
        let t = Anomalies::open(&s, 3).unwrap();
        t.insert_all(&[anomaly("a", 1), anomaly("b", 2)], 1000)
            .unwrap();
        t.insert_all(&[anomaly("a", 3), anomaly("a", 4)], 1001)
            .unwrap();
        let all = t
            .list(&AnomalyFilter {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            all.iter().map(|a| a.ts_ms).collect::<Vec<_>>(),
            vec![4, 3, 2]
        );
        let a = t
            .list(&AnomalyFilter {
                service: Some("a".into()),
                since_ms: Some(4),
                limit: 10,
            })
            .unwrap();
        assert_eq!(a.len(), 1);
    }
}
