//! `audit`: the append-only, hash-chained log of every recovery decision
//! (proposed, approved, executed, skipped and why, verified, failed,
//! escalated). Writer: the recovery stage (and the API for operator
//! decisions, through the same [`Audit`] handle, serialized by its lock).
//!
//! Each entry stores the hash of the previous entry and its own hash, a
//! SHA-256 over the length-prefixed fields and the previous hash, so editing,
//! removing or reordering any entry breaks the chain at that point and
//! [`Audit::verify`] names the first broken sequence number. There is no
//! update or delete method.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::codec::{decode_json, encode_json};
use crate::keys::{key_u64, u64_key};

/// Hash of the entry before the first one.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What the caller records; the log adds sequence number and hashes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditDraft {
    pub ts_ms: i64,
    /// Recovery action (intent) id, empty for global decisions.
    pub action_id: String,
    pub incident_id: String,
    pub target: String,
    pub fix: String,
    /// `proposed`, `approved`, `executed`, `skipped`, `verified`, `failed`,
    /// `escalated`, `paged`, `breaker_reset`, `dry_run`, ...
    pub decision: String,
    /// Why, or what happened.
    pub detail: String,
}

/// One stored entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    #[serde(flatten)]
    pub draft: AuditDraft,
    /// Hash of entry `seq - 1` ([`GENESIS`] for the first).
    pub prev: String,
    pub hash: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "version")]
enum AuditRecord {
    #[serde(rename = "1")]
    V1(AuditEntry),
}

/// Where the chain breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit log tampered at entry {seq}: {reason}")]
pub struct Tampered {
    pub seq: u64,
    pub reason: String,
}

fn field(h: &mut Sha256, s: &[u8]) {
    h.update((s.len() as u64).to_be_bytes());
    h.update(s);
}

/// The hash of an entry from its content and the previous hash.
pub fn entry_hash(seq: u64, d: &AuditDraft, prev: &str) -> String {
    let mut h = Sha256::new();
    h.update(seq.to_be_bytes());
    h.update(d.ts_ms.to_be_bytes());
    for f in [
        &d.action_id,
        &d.incident_id,
        &d.target,
        &d.fix,
        &d.decision,
        &d.detail,
        &prev.to_string(),
    ] {
        field(&mut h, f.as_bytes());
    }
    hex::encode(h.finalize())
}

#[derive(Debug)]
struct Head {
    next_seq: u64,
    last_hash: String,
}

#[derive(Clone)]
pub struct Audit {
    pub(crate) tree: sled::Tree,
    head: Arc<Mutex<Head>>,
}

fn decode(b: &[u8]) -> Result<AuditEntry, StoreError> {
    match decode_json::<AuditRecord>("audit", b)? {
        AuditRecord::V1(e) => Ok(e),
    }
}

impl Audit {
    /// Wrap the `audit` tree, reading the chain head.
    pub fn open(tree: sled::Tree) -> Result<Self, StoreError> {
        let head = match tree.last()? {
            Some((k, v)) => {
                let e = decode(&v)?;
                Head {
                    next_seq: key_u64(&k).unwrap_or(e.seq) + 1,
                    last_hash: e.hash,
                }
            }
            None => Head {
                next_seq: 1,
                last_hash: GENESIS.to_string(),
            },
        };
        Ok(Self {
            tree,
            head: Arc::new(Mutex::new(head)),
        })
    }

    /// Append one entry (not flushed: callers that act on it flush the store).
    pub fn append(&self, draft: AuditDraft) -> Result<AuditEntry, StoreError> {
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let seq = head.next_seq;
        let hash = entry_hash(seq, &draft, &head.last_hash);
        let entry = AuditEntry {
            seq,
            draft,
            prev: head.last_hash.clone(),
            hash: hash.clone(),
        };
        let bytes = encode_json(&AuditRecord::V1(entry.clone()))?;
        // Never overwrite: a sequence number is written once.
        match self
            .tree
            .compare_and_swap(u64_key(seq), None as Option<&[u8]>, Some(bytes))?
        {
            Ok(()) => {}
            Err(_) => {
                return Err(StoreError::Corrupt {
                    tree: "audit",
                    reason: format!("entry {seq} already exists"),
                });
            }
        }
        head.next_seq = seq + 1;
        head.last_hash = hash;
        Ok(entry)
    }

    /// Entries after `after`, oldest first, at most `limit`.
    pub fn list(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.tree
            .range(u64_key(after.saturating_add(1))..)
            .take(limit)
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    /// The newest `limit` entries, oldest first, matching `pred`.
    pub fn recent_matching(
        &self,
        limit: usize,
        pred: impl Fn(&AuditEntry) -> bool,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tree.iter().rev() {
            let e = decode(&kv?.1)?;
            if pred(&e) {
                out.push(e);
                if out.len() >= limit {
                    break;
                }
            }
        }
        out.reverse();
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Walk the whole chain; `Ok(n)` = n entries, all linked and unmodified.
    pub fn verify(&self) -> Result<u64, Tampered> {
        let mut prev = GENESIS.to_string();
        let mut expect = 1u64;
        for kv in self.tree.iter() {
            let (k, v) = kv.map_err(|e| Tampered {
                seq: expect,
                reason: format!("unreadable: {e}"),
            })?;
            let key_seq = key_u64(&k).unwrap_or(0);
            let e = decode(&v).map_err(|e| Tampered {
                seq: key_seq,
                reason: e.to_string(),
            })?;
            if key_seq != expect || e.seq != expect {
                return Err(Tampered {
                    seq: expect,
                    reason: format!("expected entry {expect}, found key {key_seq} seq {}", e.seq),
                });
            }
            if e.prev != prev {
                return Err(Tampered {
                    seq: e.seq,
                    reason: "previous hash does not match".into(),
                });
            }
            if entry_hash(e.seq, &e.draft, &e.prev) != e.hash {
                return Err(Tampered {
                    seq: e.seq,
                    reason: "content does not match its hash".into(),
                });
            }
            prev = e.hash;
            expect += 1;
        }
        Ok(expect - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(i: usize) -> AuditDraft {
        AuditDraft {
            ts_ms: i as i64,
            action_id: format!("a{i}"),
            incident_id: "inc".into(),
            target: "api".into(),
            fix: "restart".into(),
            decision: "executed".into(),
            detail: format!("step {i}"),
        }
    }

    fn filled(n: usize) -> Audit {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let a = Audit::open(db.open_tree("audit").unwrap()).unwrap();
        for i in 0..n {
            a.append(draft(i)).unwrap();
        }
        a
    }

    #[test]
    fn chain_verifies_and_continues_after_reopen() {
        let a = filled(5);
        assert_eq!(a.verify(), Ok(5));
        let b = Audit::open(a.tree.clone()).unwrap();
        let e = b.append(draft(9)).unwrap();
        assert_eq!(e.seq, 6);
        assert_eq!(b.verify(), Ok(6));
        assert_eq!(b.list(4, 10).unwrap().len(), 2);
    }

    #[test]
    fn edited_entry_is_detected() {
        let a = filled(5);
        let raw = a.tree.get(u64_key(3)).unwrap().unwrap();
        let edited = String::from_utf8(raw.to_vec())
            .unwrap()
            .replace("executed", "skipped");
        a.tree.insert(u64_key(3), edited.as_bytes()).unwrap();
        assert_eq!(a.verify().unwrap_err().seq, 3);
    }

    #[test]
    fn edited_entry_with_recomputed_hash_breaks_the_next_link() {
        let a = filled(5);
        let mut e = decode(&a.tree.get(u64_key(2)).unwrap().unwrap()).unwrap();
        e.draft.detail = "rewritten".into();
        e.hash = entry_hash(e.seq, &e.draft, &e.prev);
        a.tree
            .insert(u64_key(2), encode_json(&AuditRecord::V1(e)).unwrap())
            .unwrap();
        assert_eq!(a.verify().unwrap_err().seq, 3);
    }

    #[test]
    fn removed_entry_is_detected() {
        let a = filled(5);
        a.tree.remove(u64_key(4)).unwrap();
        assert_eq!(a.verify().unwrap_err().seq, 4);
    }
}
