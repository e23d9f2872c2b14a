//! `wal`: the write-ahead log of accepted batches, keyed by a big-endian
//! sequence number (1, 2, ...). Writer: the ingest API (appends) and
//! retention (trims only what the pipeline has processed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::StoreError;
use crate::codec::{decode_wal, encode_wal, wal_received_ms};
use crate::keys::{key_u64, u64_key};
use crate::model::{Event, WalBatch};

/// Largest write-ahead record written on purpose: bigger batches are split
/// into several records (see [`encode_split`]), so that a leaf of the tree
/// stays within one sled log segment (see `store::SEGMENT_BYTES`).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// An encoded write-ahead record and the events it holds.
pub type EncodedRecord = (Vec<u8>, Vec<Event>);

/// Encode a batch as one or more records of at most [`MAX_RECORD_BYTES`]
/// each, every record with the events it holds, in order. A single event
/// bigger than the limit is a record of its own.
pub fn encode_split(
    received_ms: i64,
    events: Vec<Event>,
) -> Result<Vec<EncodedRecord>, StoreError> {
    let batch = WalBatch {
        received_ms,
        events,
    };
    let bytes = encode_wal(&batch)?;
    let n = batch.events.len();
    if bytes.len() <= MAX_RECORD_BYTES || n <= 1 {
        return Ok(vec![(bytes, batch.events)]);
    }
    // Aim a fifth under the limit so that one pass usually suffices.
    let parts = (bytes.len() * 5 / 4).div_ceil(MAX_RECORD_BYTES).clamp(2, n);
    let per = n.div_ceil(parts);
    let mut rest = batch.events;
    let mut out = Vec::with_capacity(parts);
    while !rest.is_empty() {
        let tail = rest.split_off(per.min(rest.len()));
        out.extend(encode_split(received_ms, rest)?);
        rest = tail;
    }
    Ok(out)
}

#[derive(Clone)]
pub struct Wal {
    pub(crate) tree: sled::Tree,
    pub(crate) inner: Arc<WalInner>,
}

pub(crate) struct WalInner {
    /// Serialises appends so sequence numbers are dense and in key order.
    pub(crate) append: Mutex<u64>,
    /// Bytes of all records currently in the tree.
    pub(crate) bytes: AtomicU64,
}

impl Wal {
    pub(crate) fn open(tree: sled::Tree) -> Result<Self, StoreError> {
        let last = match tree.last()? {
            Some((k, _)) => key_u64(&k).ok_or(StoreError::Corrupt {
                tree: "wal",
                reason: "key is not 8 bytes".into(),
            })?,
            None => 0,
        };
        let mut bytes = 0u64;
        for kv in tree.iter() {
            bytes += kv?.1.len() as u64;
        }
        Ok(Self {
            tree,
            inner: Arc::new(WalInner {
                append: Mutex::new(last),
                bytes: AtomicU64::new(bytes),
            }),
        })
    }

    /// Append one batch; returns its sequence number. Not durable until the
    /// store is flushed (see `Store::flush`).
    pub fn append(&self, batch: &WalBatch) -> Result<u64, StoreError> {
        let bytes = encode_wal(batch)?;
        self.append_encoded(bytes)
    }

    /// Append an already encoded record (see [`crate::codec::encode_wal`]).
    pub fn append_encoded(&self, bytes: Vec<u8>) -> Result<u64, StoreError> {
        self.append_encoded_then(bytes, |_| {})
    }

    /// Append, and call `then(seq)` before the next append can start (so
    /// whatever `then` publishes appears in sequence order).
    pub fn append_encoded_then(
        &self,
        bytes: Vec<u8>,
        then: impl FnOnce(u64),
    ) -> Result<u64, StoreError> {
        let len = bytes.len() as u64;
        let mut last = self.inner.append.lock().unwrap_or_else(|p| p.into_inner());
        let seq = *last + 1;
        self.tree.insert(u64_key(seq), bytes)?;
        *last = seq;
        then(seq);
        self.inner.bytes.fetch_add(len, Ordering::Relaxed);
        Ok(seq)
    }

    /// Sequence number of the newest record (0 when none was ever written).
    pub fn head(&self) -> u64 {
        *self.inner.append.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes currently held.
    pub fn bytes(&self) -> u64 {
        self.inner.bytes.load(Ordering::Relaxed)
    }

    /// Up to `limit` batches with sequence > `after`, in order.
    pub fn read_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, WalBatch)>, StoreError> {
        let mut out = Vec::new();
        for kv in self
            .tree
            .range(u64_key(after.saturating_add(1))..)
            .take(limit)
        {
            let (k, v) = kv?;
            let seq = key_u64(&k).ok_or(StoreError::Corrupt {
                tree: "wal",
                reason: "key is not 8 bytes".into(),
            })?;
            out.push((seq, decode_wal(&v)?));
        }
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Remove processed records (sequence <= `processed`) that are older
    /// than `max_age_ms` or beyond `max_bytes` in total, oldest first.
    /// Unprocessed records are never removed. Returns how many were removed.
    pub fn trim(
        &self,
        processed: u64,
        now_ms: i64,
        max_age_ms: i64,
        max_bytes: u64,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        for kv in self.tree.range(..=u64_key(processed)) {
            let (k, v) = kv?;
            let old = wal_received_ms(&v).is_none_or(|t| now_ms - t > max_age_ms);
            let over = self.bytes() > max_bytes;
            if !(old || over) {
                break;
            }
            if self.tree.remove(&k)?.is_some() {
                self.inner
                    .bytes
                    .fetch_sub(v.len() as u64, Ordering::Relaxed);
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Level, LogEvent};

    fn event(i: u64) -> Event {
        // Pseudo-random text, so that compression cannot hide the size.
        let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let message: String = (0..40)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{:x}", x & 0xff)
            })
            .collect();
        Event::Log(LogEvent {
            ts_ms: i as i64,
            service: "api".into(),
            level: Level::Info,
            message,
            fields: Default::default(),
        })
    }

    #[test]
    fn big_batches_split_into_bounded_records_in_order() {
        let events: Vec<Event> = (0..3000).map(event).collect();
        let parts = encode_split(42, events.clone()).unwrap();
        assert!(parts.len() > 1, "3000 random events fit in one record?");
        let mut seen = Vec::new();
        for (bytes, evs) in parts {
            assert!(bytes.len() <= MAX_RECORD_BYTES, "{} bytes", bytes.len());
            let decoded = decode_wal(&bytes).unwrap();
            assert_eq!(decoded.received_ms, 42);
            assert_eq!(decoded.events, evs);
            seen.extend(evs);
        }
        assert_eq!(seen, events);
        // Small batches stay whole.
        assert_eq!(encode_split(1, events[..10].to_vec()).unwrap().len(), 1);
    }
}
