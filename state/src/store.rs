//! The [`Store`]: sled opened once, exposing only typed trees.

use std::path::{Path, PathBuf};

use sled::Transactional;

use crate::StoreError;
use crate::keys::u64_key;
use crate::model::Incident;
use crate::trees::incidents::encode_incident;
use crate::trees::{Cursors, Incidents, Meta, Wal, cursors};

/// Schema version this binary writes. Migrations bring older stores here.
pub const SCHEMA_VERSION: u32 = 1;

/// How to open the store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub path: PathBuf,
    /// sled page cache in bytes (sled may use several times this).
    pub cache_bytes: u64,
}

impl StoreConfig {
    pub fn at(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            cache_bytes: 64 * 1024 * 1024,
        }
    }
}

/// A migration from `version - 1` to `version`.
struct Migration {
    version: u32,
    apply: fn(&sled::Db) -> Result<(), StoreError>,
}

/// Ordered migrations; each runs once, at open, in a store older than it.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    // Version 1 is the first layout: trees are created on open.
    apply: |_db| Ok(()),
}];

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    meta: Meta,
    wal: Wal,
    cursors: Cursors,
    incidents: Incidents,
}

/// sled's log segment size. sled writes any page larger than a quarter of
/// a segment as a separate blob file, which its `flush` does not fsync; with
/// 8 MiB segments a write-ahead leaf (at most 17 records of at most
/// [`crate::trees::wal::MAX_RECORD_BYTES`]) stays inside the fsynced log.
pub const SEGMENT_BYTES: usize = 8 << 20;

fn open_db(cfg: &StoreConfig) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new()
        .path(&cfg.path)
        .cache_capacity(cfg.cache_bytes)
        .segment_size(SEGMENT_BYTES)
        .mode(sled::Mode::HighThroughput);
    // A store just closed in this process may still hold its file lock for
    // a moment while sled's background threads finish: wait for it, briefly.
    let mut tries = 0;
    loop {
        match config.open() {
            Err(sled::Error::Io(e)) if e.to_string().contains("lock") && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

impl Store {
    pub fn open(cfg: &StoreConfig) -> Result<Self, StoreError> {
        let db = open_db(cfg)?;
        let meta = Meta {
            tree: db.open_tree("meta")?,
        };
        let found = meta.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > found) {
            (m.apply)(&db)?;
            meta.set_schema_version(m.version)?;
        }
        db.flush()?;
        Ok(Self {
            wal: Wal::open(db.open_tree("wal")?)?,
            cursors: Cursors {
                tree: db.open_tree("cursors")?,
            },
            incidents: Incidents {
                tree: db.open_tree("incidents")?,
                by_fp: db.open_tree("incident_fp")?,
            },
            meta,
            db,
        })
    }

    /// Open a throw-away store in a temporary directory (tests).
    pub fn temporary() -> Result<Self, StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        let meta = Meta {
            tree: db.open_tree("meta")?,
        };
        meta.set_schema_version(SCHEMA_VERSION)?;
        Ok(Self {
            wal: Wal::open(db.open_tree("wal")?)?,
            cursors: Cursors {
                tree: db.open_tree("cursors")?,
            },
            incidents: Incidents {
                tree: db.open_tree("incidents")?,
                by_fp: db.open_tree("incident_fp")?,
            },
            meta,
            db,
        })
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }
    pub fn wal(&self) -> &Wal {
        &self.wal
    }
    pub fn cursors(&self) -> &Cursors {
        &self.cursors
    }
    pub fn incidents(&self) -> &Incidents {
        &self.incidents
    }

    /// Open (or create) a further named tree for a stage that owns it.
    /// Stages wrap it in their own typed tree; never hand it out raw.
    pub fn open_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    /// Make everything written so far durable (survives `kill -9`).
    pub fn flush(&self) -> Result<usize, StoreError> {
        Ok(self.db.flush()?)
    }

    /// Commit the incidents produced from write-ahead batch `seq` together
    /// with the pipeline cursor, atomically: after a crash either both are
    /// there or neither, so the batch is replayed exactly once.
    pub fn commit_pipeline(&self, seq: u64, incidents: &[Incident]) -> Result<(), StoreError> {
        let encoded: Vec<(Incident, Vec<u8>)> = incidents
            .iter()
            .map(|i| Ok((i.clone(), encode_incident(i)?)))
            .collect::<Result<_, StoreError>>()?;
        (
            &self.incidents.tree,
            &self.incidents.by_fp,
            &self.cursors.tree,
        )
            .transaction(|(inc, fp, cur)| {
                for (i, bytes) in &encoded {
                    inc.insert(&i.id.key(), bytes.as_slice())?;
                    fp.insert(i.fingerprint.as_bytes(), &i.id.key())?;
                }
                cur.insert(cursors::PIPELINE.as_bytes(), &u64_key(seq))?;
                Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
            })?;
        Ok(())
    }

    /// The database, for crate-internal whole-store operations (snapshots).
    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Whether the store answers reads (for `/ready`).
    pub fn is_healthy(&self) -> bool {
        self.meta.schema_version().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Level, LogEvent, WalBatch};

    fn batch(n: usize, at: i64) -> WalBatch {
        WalBatch {
            received_ms: at,
            events: (0..n)
                .map(|i| {
                    Event::Log(LogEvent {
                        ts_ms: at,
                        service: "api".into(),
                        level: Level::Info,
                        message: format!("line {i}"),
                        fields: Default::default(),
                    })
                })
                .collect(),
        }
    }

    #[test]
    fn wal_survives_reopen_and_keeps_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig::at(dir.path());
        {
            let s = Store::open(&cfg).unwrap();
            assert_eq!(s.wal().append(&batch(3, 1)).unwrap(), 1);
            assert_eq!(s.wal().append(&batch(2, 2)).unwrap(), 2);
            s.flush().unwrap();
        }
        let s = Store::open(&cfg).unwrap();
        assert_eq!(s.meta().schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(s.wal().head(), 2);
        assert_eq!(s.wal().append(&batch(1, 3)).unwrap(), 3);
        let read = s.wal().read_after(1, 10).unwrap();
        assert_eq!(read.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(read[0].1.events.len(), 2);
    }

    #[test]
    fn trim_removes_only_processed_old_records() {
        let s = Store::temporary().unwrap();
        for t in 0..5 {
            s.wal().append(&batch(1, t * 1000)).unwrap();
        }
        // Everything is old, but only 3 are processed.
        assert_eq!(s.wal().trim(3, 100_000, 10, u64::MAX).unwrap(), 3);
        assert_eq!(s.wal().read_after(0, 10).unwrap().len(), 2);
        // Nothing old and under the size cap: nothing goes.
        assert_eq!(s.wal().trim(5, 4_000, 100_000, u64::MAX).unwrap(), 0);
        // Over the size cap: processed records go even if young.
        assert_eq!(s.wal().trim(5, 4_000, 100_000, 0).unwrap(), 2);
        assert_eq!(s.wal().bytes(), 0);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig::at(dir.path());
        {
            let s = Store::open(&cfg).unwrap();
            s.meta().set_schema_version(SCHEMA_VERSION + 1).unwrap();
            s.flush().unwrap();
        }
        match Store::open(&cfg) {
            Err(StoreError::SchemaTooNew { found, .. }) => assert_eq!(found, SCHEMA_VERSION + 1),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("opened a store from the future"),
        }
    }
}
