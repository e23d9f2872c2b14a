//! `fix_stats`: outcome statistics of fixes, per (cause, fix) and per
//! (cause, fix, service), the last attempt of each (fix, target) for
//! cooldowns, and the fixes tried for each incident. Writer: the fixes
//! stage (outcomes from recovery's verification, or from operator feedback).
//!
//! Only verified outcomes move the success statistics; every attempt, verified
//! or not, counts for cooldowns and for "already failed for this incident".

use serde::{Deserialize, Serialize};

use crate::codec::{decode_json, encode_json};
use crate::model::FixOutcome;
use crate::{Store, StoreError};

/// Successes and failures of one fix, verified outcomes only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FixStat {
    pub successes: u64,
    pub failures: u64,
    pub last_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "version")]
enum StatRecord {
    #[serde(rename = "1")]
    V1(FixStat),
}

/// One row of [`FixStats::all`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatRow {
    pub cause: String,
    pub fix: String,
    /// `None` for the (cause, fix) row, the service for per-service rows.
    pub service: Option<String>,
    #[serde(flatten)]
    pub stat: FixStat,
}

const SEP: char = '\u{1f}';

fn key(parts: &[&str]) -> Vec<u8> {
    parts.join(&SEP.to_string()).into_bytes()
}

#[derive(Clone)]
pub struct FixStats {
    tree: sled::Tree,
}

impl FixStats {
    pub const TREE: &'static str = "fix_stats";

    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            tree: store.open_tree(Self::TREE)?,
        })
    }

    fn stat_at(&self, k: &[u8]) -> Result<FixStat, StoreError> {
        Ok(match self.tree.get(k)? {
            Some(v) => match decode_json::<StatRecord>("fix_stats", &v)? {
                StatRecord::V1(s) => s,
            },
            None => FixStat::default(),
        })
    }

    /// Statistics of `fix` for `cause` (all services).
    pub fn get(&self, cause: &str, fix: &str) -> Result<FixStat, StoreError> {
        self.stat_at(&key(&["c", cause, fix]))
    }

    /// Statistics of `fix` for `cause` on one service.
    pub fn get_for(&self, cause: &str, fix: &str, service: &str) -> Result<FixStat, StoreError> {
        self.stat_at(&key(&["s", cause, fix, service]))
    }

    /// When `fix` was last tried on `target` (ms), if ever.
    pub fn last_attempt(&self, fix: &str, target: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .tree
            .get(key(&["t", fix, target]))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(i64::from_be_bytes))
    }

    /// Whether `fix` on `target` failed for this incident.
    pub fn failed_for_incident(
        &self,
        incident: &str,
        fix: &str,
        target: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .tree
            .get(key(&["i", incident, fix, target]))?
            .is_some_and(|v| v.as_ref() == b"failed"))
    }

    /// Record an outcome: every attempt for cooldown and per-incident
    /// memory; verified ones for the statistics. Flushed before returning.
    pub fn record(&self, o: &FixOutcome) -> Result<(), StoreError> {
        self.tree
            .insert(key(&["t", &o.fix, &o.target]), &o.ts_ms.to_be_bytes())?;
        let mark: &[u8] = if o.success { b"worked" } else { b"failed" };
        self.tree
            .insert(key(&["i", &o.incident_id, &o.fix, &o.target]), mark)?;
        if o.verified
            && let Some(cause) = &o.cause_id
        {
            for k in [
                key(&["c", cause, &o.fix]),
                key(&["s", cause, &o.fix, &o.target]),
            ] {
                // Compare-and-swap so concurrent writers never lose a count.
                loop {
                    let old = self.tree.get(&k)?;
                    let mut s = match &old {
                        Some(v) => match decode_json::<StatRecord>("fix_stats", v)? {
                            StatRecord::V1(s) => s,
                        },
                        None => FixStat::default(),
                    };
                    if o.success {
                        s.successes += 1;
                    } else {
                        s.failures += 1;
                    }
                    s.last_ms = s.last_ms.max(o.ts_ms);
                    let new = encode_json(&StatRecord::V1(s))?;
                    if self.tree.compare_and_swap(&k, old, Some(new))?.is_ok() {
                        break;
                    }
                }
            }
        }
        self.tree.flush()?;
        Ok(())
    }

    /// Every statistics row, (cause, fix) rows and per-service rows.
    pub fn all(&self) -> Result<Vec<StatRow>, StoreError> {
        let mut out = Vec::new();
        for prefix in ["c", "s"] {
            for kv in self.tree.scan_prefix(format!("{prefix}{SEP}")) {
                let (k, v) = kv?;
                let k = String::from_utf8_lossy(&k).to_string();
                let parts: Vec<&str> = k.split(SEP).collect();
                let StatRecord::V1(stat) = decode_json::<StatRecord>("fix_stats", &v)?;
                match parts.as_slice() {
                    ["c", cause, fix] => out.push(StatRow {
                        cause: cause.to_string(),
                        fix: fix.to_string(),
                        service: None,
                        stat,
                    }),
                    ["s", cause, fix, svc] => out.push(StatRow {
                        cause: cause.to_string(),
                        fix: fix.to_string(),
                        service: Some(svc.to_string()),
                        stat,
                    }),
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;

    fn outcome(fix: &str, success: bool, verified: bool, ts: i64) -> FixOutcome {
        FixOutcome {
            incident_id: "0000000000000001".into(),
            cause_id: Some("db.down".into()),
            fix: fix.into(),
            target: "db".into(),
            success,
            verified,
            ts_ms: ts,
            detail: String::new(),
        }
    }

    #[test]
    fn stats_count_verified_outcomes_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig::at(dir.path());
        {
            let s = Store::open(&cfg).unwrap();
            let f = FixStats::open(&s).unwrap();
            f.record(&outcome("restart", true, true, 10)).unwrap();
            f.record(&outcome("restart", false, true, 20)).unwrap();
            f.record(&outcome("restart", true, false, 30)).unwrap();
            f.record(&outcome("failover", false, false, 40)).unwrap();
        }
        let s = Store::open(&cfg).unwrap();
        let f = FixStats::open(&s).unwrap();
        let st = f.get("db.down", "restart").unwrap();
        assert_eq!((st.successes, st.failures), (1, 1));
        assert_eq!(f.get_for("db.down", "restart", "db").unwrap().successes, 1);
        assert_eq!(f.get("db.down", "failover").unwrap(), FixStat::default());
        assert_eq!(f.last_attempt("failover", "db").unwrap(), Some(40));
        assert!(
            f.failed_for_incident("0000000000000001", "failover", "db")
                .unwrap()
        );
        assert!(
            !f.failed_for_incident("0000000000000002", "failover", "db")
                .unwrap()
        );
        assert_eq!(f.all().unwrap().len(), 2);
    }
}
