//! Trees of the rca and fixes stages:
//!
//! - `rca_results`: incident id → the diagnosis and fix plan (writer: rca,
//!   then fixes adds the plan).
//! - `kb_causes`: cause id → a cause added or adjusted at run time (user
//!   entries, learned causes and weights; writer: the API's feedback and
//!   knowledge-base endpoints). Stored as version-tagged JSON documents; the
//!   rca stage validates them when it loads the knowledge base.
//! - `rca_state`: the learned co-occurrence counts of the dependency graph
//!   (writer: rca).
//! - `feedback`: incident id → operator feedback, in order (writer: API).
//! - `silences`: id → silence (writer: API).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{decode_json, encode_json};
use crate::keys::Id;
use crate::model::diagnosis::{Feedback, RcaResult, Silence};
use crate::{Store, StoreError};

#[derive(Serialize, Deserialize)]
#[serde(tag = "version")]
enum Doc<T> {
    #[serde(rename = "1")]
    V1 { body: T },
}

fn enc<T: Serialize + Clone>(v: &T) -> Result<Vec<u8>, StoreError> {
    encode_json(&Doc::V1 { body: v.clone() })
}

fn dec<T: DeserializeOwned>(tree: &'static str, b: &[u8]) -> Result<T, StoreError> {
    match decode_json::<Doc<T>>(tree, b)? {
        Doc::V1 { body } => Ok(body),
    }
}

#[derive(Clone)]
pub struct RcaTrees {
    results: sled::Tree,
    kb: sled::Tree,
    state: sled::Tree,
    feedback: sled::Tree,
    silences: sled::Tree,
}

impl RcaTrees {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            results: store.open_tree("rca_results")?,
            kb: store.open_tree("kb_causes")?,
            state: store.open_tree("rca_state")?,
            feedback: store.open_tree("feedback")?,
            silences: store.open_tree("silences")?,
        })
    }

    pub fn result(&self, id: Id) -> Result<Option<RcaResult>, StoreError> {
        self.results
            .get(id.key())?
            .map(|v| dec("rca_results", &v))
            .transpose()
    }

    pub fn put_result(&self, id: Id, r: &RcaResult) -> Result<(), StoreError> {
        self.results.insert(id.key(), enc(r)?)?;
        Ok(())
    }

    /// Newest first, at most `limit`.
    pub fn recent_results(&self, limit: usize) -> Result<Vec<(Id, RcaResult)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.results.iter().rev().take(limit) {
            let (k, v) = kv?;
            if let Some(id) = crate::keys::key_u64(&k) {
                out.push((Id(id), dec("rca_results", &v)?));
            }
        }
        Ok(out)
    }

    /// Causes stored at run time, as JSON documents.
    pub fn kb_entries(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        self.kb
            .iter()
            .map(|kv| {
                let (_, v) = kv?;
                dec("kb_causes", &v)
            })
            .collect()
    }

    pub fn put_kb_entry(&self, id: &str, cause: &serde_json::Value) -> Result<(), StoreError> {
        self.kb.insert(id.as_bytes(), enc(cause)?)?;
        self.kb.flush()?;
        Ok(())
    }

    pub fn state_doc(&self, name: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.state
            .get(name.as_bytes())?
            .map(|v| dec("rca_state", &v))
            .transpose()
    }

    pub fn put_state_doc(&self, name: &str, v: &serde_json::Value) -> Result<(), StoreError> {
        self.state.insert(name.as_bytes(), enc(v)?)?;
        Ok(())
    }

    pub fn feedback(&self, id: Id) -> Result<Vec<Feedback>, StoreError> {
        Ok(self
            .feedback
            .get(id.key())?
            .map(|v| dec("feedback", &v))
            .transpose()?
            .unwrap_or_default())
    }

    pub fn add_feedback(&self, id: Id, f: &Feedback) -> Result<(), StoreError> {
        let mut all = self.feedback(id)?;
        all.push(f.clone());
        self.feedback.insert(id.key(), enc(&all)?)?;
        self.feedback.flush()?;
        Ok(())
    }

    pub fn silences(&self) -> Result<Vec<Silence>, StoreError> {
        self.silences
            .iter()
            .map(|kv| {
                let (_, v) = kv?;
                dec("silences", &v)
            })
            .collect()
    }

    pub fn add_silence(&self, s: &Silence) -> Result<(), StoreError> {
        self.silences.insert(s.id.as_bytes(), enc(s)?)?;
        self.silences.flush()?;
        Ok(())
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.results.flush()?;
        self.state.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_roundtrip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::StoreConfig::at(dir.path());
        {
            let s = Store::open(&cfg).unwrap();
            let t = RcaTrees::open(&s).unwrap();
            let r = RcaResult {
                incident_id: "x".into(),
                flapping: true,
                ..Default::default()
            };
            t.put_result(Id(5), &r).unwrap();
            t.put_kb_entry("a", &serde_json::json!({"id": "a"}))
                .unwrap();
            t.add_feedback(
                Id(5),
                &Feedback {
                    false_positive: true,
                    ..Default::default()
                },
            )
            .unwrap();
            t.add_silence(&Silence {
                id: "s1".into(),
                service: Some("db".into()),
                category: None,
                from_ms: 0,
                to_ms: 10,
                reason: String::new(),
            })
            .unwrap();
            t.flush().unwrap();
        }
        let s = Store::open(&cfg).unwrap();
        let t = RcaTrees::open(&s).unwrap();
        assert!(t.result(Id(5)).unwrap().unwrap().flapping);
        assert_eq!(t.kb_entries().unwrap().len(), 1);
        assert!(t.feedback(Id(5)).unwrap()[0].false_positive);
        let sil = &t.silences().unwrap()[0];
        assert!(
            sil.covers("db", "any", 5)
                && !sil.covers("api", "any", 5)
                && !sil.covers("db", "x", 11)
        );
    }
}
