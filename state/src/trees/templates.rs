//! `templates`: mined log templates (id → versioned record) with their
//! aliases and per-service counts. Writer: detect (the template miner);
//! read by the API (`GET /templates`) and by detect itself at start, to
//! continue with the same ids.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codec::{decode_json, encode_json};
use crate::keys::u64_key;
use crate::model::Level;
use crate::{Store, StoreError};

/// Occurrences of a template in one service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceCount {
    pub count: u64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Lines per minute as `(minute start in epoch ms, count)`, ascending,
    /// for the most recent [`RECENT_MINUTES`] minutes that had lines: the
    /// template's rate over time, for detectors and people. (A list, not a
    /// map: integer map keys do not survive the version-tagged record.)
    #[serde(default)]
    pub per_minute: Vec<(i64, u64)>,
}

/// Minutes of per-minute counts kept per template and service.
pub const RECENT_MINUTES: usize = 60;

impl ServiceCount {
    pub fn new(ts_ms: i64) -> ServiceCount {
        ServiceCount {
            count: 0,
            first_seen_ms: ts_ms,
            last_seen_ms: ts_ms,
            per_minute: Vec::new(),
        }
    }

    fn bump(&mut self, minute: i64, n: u64) {
        match self.per_minute.binary_search_by_key(&minute, |x| x.0) {
            Ok(i) => self.per_minute[i].1 += n,
            Err(i) => self.per_minute.insert(i, (minute, n)),
        }
        if self.per_minute.len() > RECENT_MINUTES {
            let extra = self.per_minute.len() - RECENT_MINUTES;
            self.per_minute.drain(..extra);
        }
    }

    /// Count `n` lines at `ts_ms`.
    pub fn add(&mut self, ts_ms: i64, n: u64) {
        self.count += n;
        self.first_seen_ms = self.first_seen_ms.min(ts_ms);
        self.last_seen_ms = self.last_seen_ms.max(ts_ms);
        self.bump(ts_ms - ts_ms.rem_euclid(60_000), n);
    }

    /// Fold another count of the same template and service into this one.
    pub fn absorb(&mut self, other: &ServiceCount) {
        self.count += other.count;
        self.first_seen_ms = self.first_seen_ms.min(other.first_seen_ms);
        self.last_seen_ms = self.last_seen_ms.max(other.last_seen_ms);
        for &(m, n) in &other.per_minute {
            self.bump(m, n);
        }
    }
}

/// A mined template as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredTemplate {
    pub id: u64,
    /// The template as text, `<*>` for each variable part.
    pub text: String,
    /// Masked token per position; `None` is a wildcard.
    pub slots: Vec<Option<String>>,
    /// Original token per position while every line agreed on it.
    pub shown: Vec<Option<String>>,
    pub count: u64,
    /// Ids merged into this one (they resolve to it).
    pub aliases: Vec<u64>,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Level of the line that created it.
    pub first_level: Level,
    /// Highest level seen on its lines.
    pub max_level: Level,
    pub services: BTreeMap<String, ServiceCount>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "version")]
pub enum TemplateRecord {
    #[serde(rename = "1")]
    V1(StoredTemplate),
}

pub fn encode_template(t: &StoredTemplate) -> Result<Vec<u8>, StoreError> {
    encode_json(&TemplateRecord::V1(t.clone()))
}

pub fn decode_template(b: &[u8]) -> Result<StoredTemplate, StoreError> {
    match decode_json::<TemplateRecord>("templates", b)? {
        TemplateRecord::V1(t) => Ok(t),
    }
}

#[derive(Clone)]
pub struct Templates {
    tree: sled::Tree,
}

impl Templates {
    pub const TREE: &'static str = "templates";

    pub fn open(store: &Store) -> Result<Templates, StoreError> {
        Ok(Templates {
            tree: store.open_tree(Self::TREE)?,
        })
    }

    /// Write changed templates and drop merged ones, atomically.
    pub fn apply(&self, upserts: &[StoredTemplate], removed: &[u64]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for t in upserts {
            batch.insert(&u64_key(t.id)[..], encode_template(t)?);
        }
        for id in removed {
            batch.remove(&u64_key(*id)[..]);
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    pub fn get(&self, id: u64) -> Result<Option<StoredTemplate>, StoreError> {
        self.tree
            .get(u64_key(id))?
            .map(|v| decode_template(&v))
            .transpose()
    }

    /// Every stored template, by id.
    pub fn all(&self) -> Result<Vec<StoredTemplate>, StoreError> {
        self.tree.iter().map(|kv| decode_template(&kv?.1)).collect()
    }

    /// Templates seen in `service` (all if `None`), most frequent first.
    pub fn list(
        &self,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredTemplate>, StoreError> {
        let mut out: Vec<StoredTemplate> = self
            .all()?
            .into_iter()
            .filter(|t| service.is_none_or(|s| t.services.contains_key(s)))
            .collect();
        let count_in = |t: &StoredTemplate| match service {
            Some(s) => t.services.get(s).map_or(0, |c| c.count),
            None => t.count,
        };
        out.sort_by(|a, b| count_in(b).cmp(&count_in(a)).then(a.id.cmp(&b.id)));
        out.truncate(limit);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredTemplate {
        StoredTemplate {
            id: 7,
            text: "connection to <*> refused".into(),
            slots: vec![
                Some("connection".into()),
                Some("to".into()),
                None,
                Some("refused".into()),
            ],
            shown: vec![None, None, None, None],
            count: 3,
            aliases: vec![9],
            first_seen_ms: 1_700_000_000_000,
            last_seen_ms: 1_700_000_060_000,
            first_level: Level::Error,
            max_level: Level::Error,
            services: BTreeMap::from([(
                "api".into(),
                ServiceCount {
                    count: 3,
                    first_seen_ms: 1_700_000_000_000,
                    last_seen_ms: 1_700_000_060_000,
                    per_minute: Vec::new(),
                },
            )]),
        }
    }

    #[test]
    fn per_minute_counts_survive_encoding() {
        let mut t = sample();
        if let Some(c) = t.services.get_mut("api") {
            c.add(1_700_000_000_000, 1);
        }
        assert_eq!(decode_template(&encode_template(&t).unwrap()).unwrap(), t);
    }

    #[test]
    fn golden_v1_record_still_decodes() {
        let golden = include_str!("../../test-data/template_v1.json");
        assert_eq!(decode_template(golden.trim().as_bytes()).unwrap(), sample());
    }

    #[test]
    fn per_minute_counts_are_bounded_to_the_recent_minutes() {
        let mut c = ServiceCount::new(0);
        for m in 0..100i64 {
            c.add(m * 60_000 + 5, 2);
        }
        c.add(99 * 60_000 + 59_999, 1);
        assert_eq!(c.count, 201);
        assert_eq!(c.per_minute.len(), RECENT_MINUTES);
        assert_eq!(c.per_minute.last(), Some(&(99 * 60_000, 3)));
        assert_eq!(c.per_minute.first(), Some(&(40 * 60_000, 2)));
        let mut d = ServiceCount::new(10);
        d.absorb(&c);
        assert_eq!(
            (d.count, d.first_seen_ms, d.per_minute.len()),
            (201, 0, RECENT_MINUTES)
        );
    }

    #[test]
    fn apply_upserts_removes_and_lists_by_service() {
        let store = Store::temporary().unwrap();
        let t = Templates::open(&store).unwrap();
        let mut b = sample();
        b.id = 9;
        b.count = 10;
        b.services.clear();
        t.apply(&[sample(), b.clone()], &[]).unwrap();
        assert_eq!(
            t.list(None, 10)
                .unwrap()
                .iter()
                .map(|x| x.id)
                .collect::<Vec<_>>(),
            [9, 7]
        );
        assert_eq!(t.list(Some("api"), 10).unwrap().len(), 1);
        t.apply(&[], &[9]).unwrap();
        assert_eq!(t.all().unwrap(), vec![sample()]);
        assert_eq!(t.get(7).unwrap(), Some(sample()));
    }
}
