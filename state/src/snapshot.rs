//! Snapshot, restore and integrity check of the store (the `data` layer of
//! recovery).
//!
//! A snapshot is one file: a version byte, then postcard of every tree's
//! name and key/value pairs. It is written to a temporary name, synced and
//! renamed, so a crash never leaves half a snapshot under the final name.
//! The audit log and the recovery intents are never restored: the audit log
//! is append-only, and intents describe actions that really happened.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::codec::decode_wal;
use crate::trees::incidents::decode_incident;
use crate::trees::{Audit, intents};
use crate::{Store, StoreError};

const SNAPSHOT_V1: u8 = 1;

/// Trees a restore leaves alone.
pub const NEVER_RESTORED: &[&str] = &["audit", "recovery_intents"];

#[derive(Serialize, Deserialize)]
struct TreeDump {
    name: Vec<u8>,
    items: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What a snapshot or restore covered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub path: PathBuf,
    pub trees: usize,
    pub records: usize,
    pub bytes: u64,
}

/// Result of checking one tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreeCheck {
    pub tree: String,
    pub records: u64,
    pub errors: Vec<String>,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Encode(format!("snapshot file: {e}"))
}

impl Store {
    /// Write every tree to a new file `snapshot-<ms>.bin` in `dir`.
    pub fn snapshot_to(&self, dir: &Path) -> Result<SnapshotInfo, StoreError> {
        std::fs::create_dir_all(dir).map_err(io)?;
        let db = self.db();
        let mut dumps = Vec::new();
        let mut records = 0;
        for name in db.tree_names() {
            let tree = db.open_tree(&name)?;
            let mut items = Vec::with_capacity(tree.len());
            for kv in tree.iter() {
                let (k, v) = kv?;
                items.push((k.to_vec(), v.to_vec()));
            }
            records += items.len();
            dumps.push(TreeDump {
                name: name.to_vec(),
                items,
            });
        }
        let mut bytes = vec![SNAPSHOT_V1];
        postcard::to_io(&dumps, &mut bytes).map_err(|e| StoreError::Encode(e.to_string()))?;
        let path = dir.join(format!("snapshot-{}.bin", crate::now_ms()));
        let tmp = path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(SnapshotInfo {
            path,
            trees: dumps.len(),
            records,
            bytes: bytes.len() as u64,
        })
    }

    /// The newest snapshot file in `dir`, if any.
    pub fn latest_snapshot(dir: &Path) -> Option<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("snapshot-") && n.ends_with(".bin"))
            })
            .collect();
        files.sort();
        files.pop()
    }

    /// Replace the content of every snapshotted tree (except
    /// [`NEVER_RESTORED`]) with the snapshot's, and flush.
    pub fn restore_from(&self, path: &Path) -> Result<SnapshotInfo, StoreError> {
        let bytes = std::fs::read(path).map_err(io)?;
        let dumps: Vec<TreeDump> = match bytes.split_first() {
            Some((&SNAPSHOT_V1, rest)) => {
                postcard::from_bytes(rest).map_err(|e| StoreError::Corrupt {
                    tree: "snapshot",
                    reason: e.to_string(),
                })?
            }
            _ => {
                return Err(StoreError::Corrupt {
                    tree: "snapshot",
                    reason: "unknown snapshot version".into(),
                });
            }
        };
        let db = self.db();
        let mut records = 0;
        let mut trees = 0;
        for d in &dumps {
            if NEVER_RESTORED
                .iter()
                .any(|n| n.as_bytes() == d.name.as_slice())
            {
                continue;
            }
            let tree = db.open_tree(&d.name)?;
            tree.clear()?;
            let mut batch = sled::Batch::default();
            for (k, v) in &d.items {
                batch.insert(k.as_slice(), v.as_slice());
            }
            tree.apply_batch(batch)?;
            records += d.items.len();
            trees += 1;
        }
        db.flush()?;
        Ok(SnapshotInfo {
            path: path.to_path_buf(),
            trees,
            records,
            bytes: bytes.len() as u64,
        })
    }

    /// Decode every record of the typed trees and verify the audit chain.
    pub fn check_integrity(&self) -> Result<Vec<TreeCheck>, StoreError> {
        let db = self.db();
        let mut out = Vec::new();
        let mut check = |name: &str, f: &dyn Fn(&[u8]) -> Result<(), StoreError>| {
            let tree = db.open_tree(name)?;
            let mut c = TreeCheck {
                tree: name.to_string(),
                records: 0,
                errors: vec![],
            };
            for kv in tree.iter() {
                let (k, v) = kv?;
                c.records += 1;
                if let Err(e) = f(&v)
                    && c.errors.len() < 20
                {
                    c.errors.push(format!("key {}: {e}", hex::encode(&k)));
                }
            }
            out.push(c);
            Ok::<(), StoreError>(())
        };
        check("incidents", &|v| decode_incident(v).map(|_| ()))?;
        check("wal", &|v| decode_wal(v).map(|_| ()))?;
        check("recovery_intents", &|v| intents::decode(v).map(|_| ()))?;
        let audit = Audit::open(db.open_tree("audit")?)?;
        out.push(TreeCheck {
            tree: "audit".into(),
            records: audit.len() as u64,
            errors: audit
                .verify()
                .err()
                .map(|e| e.to_string())
                .into_iter()
                .collect(),
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Level, LogEvent, WalBatch};

    #[test]
    fn restore_brings_back_snapshotted_data_but_not_the_audit_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&crate::StoreConfig::at(dir.path().join("db"))).unwrap();
        let batch = WalBatch {
            received_ms: 1,
            events: vec![Event::Log(LogEvent {
                ts_ms: 1,
                service: "api".into(),
                level: Level::Error,
                message: "x".into(),
                fields: Default::default(),
            })],
        };
        store.wal().append(&batch).unwrap();
        let audit = Audit::open(store.open_tree("audit").unwrap()).unwrap();
        audit.append(Default::default()).unwrap();
        let info = store.snapshot_to(&dir.path().join("snaps")).unwrap();
        assert!(info.records >= 2);
        assert_eq!(
            Store::latest_snapshot(&dir.path().join("snaps")),
            Some(info.path.clone())
        );

        // Damage after the snapshot: a corrupt write-ahead record.
        store
            .open_tree("wal")
            .unwrap()
            .insert([0u8; 8], b"junk".as_slice())
            .unwrap();
        audit.append(Default::default()).unwrap();
        let bad = store.check_integrity().unwrap();
        assert!(bad.iter().any(|c| c.tree == "wal" && !c.errors.is_empty()));

        store.restore_from(&info.path).unwrap();
        let good = store.check_integrity().unwrap();
        assert!(good.iter().all(|c| c.errors.is_empty()), "{good:?}");
        // The audit log kept both entries.
        assert_eq!(audit.verify(), Ok(2));
    }
}
