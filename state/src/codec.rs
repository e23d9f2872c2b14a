//! Version-tagged records.
//!
//! Records people read and that evolve (incidents, ...) are JSON objects
//! with a `version` tag (`#[serde(tag = "version")]` on an enum with one
//! variant per version); old versions are never edited and have golden files
//! in `state/test-data/`. The write-ahead log is hot, so it is postcard with
//! a leading version byte.

use serde::{Serialize, de::DeserializeOwned};

use crate::StoreError;
use crate::model::WalBatch;

pub fn encode_json<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Encode(e.to_string()))
}

pub fn decode_json<T: DeserializeOwned>(tree: &'static str, b: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(b).map_err(|e| StoreError::Corrupt {
        tree,
        reason: e.to_string(),
    })
}

/// Version byte of the first write-ahead record layout: postcard of the
/// whole batch. Still read; no longer written.
pub const WAL_V1: u8 = 1;
/// Version byte of the current layout: the arrival time (postcard varint),
/// then the postcard-encoded events compressed with LZ4 (size-prefixed).
/// Logs compress several-fold, and every byte saved is a byte the store
/// does not write, rewrite on page consolidation, and fsync.
pub const WAL_V2: u8 = 2;

pub fn encode_wal(batch: &WalBatch) -> Result<Vec<u8>, StoreError> {
    let enc = |e: postcard::Error| StoreError::Encode(e.to_string());
    let raw = postcard::to_stdvec(&batch.events).map_err(enc)?;
    let mut out = Vec::with_capacity(16 + raw.len() / 2);
    out.push(WAL_V2);
    postcard::to_io(&batch.received_ms, &mut out).map_err(enc)?;
    out.extend_from_slice(&lz4_flex::compress_prepend_size(&raw));
    Ok(out)
}

fn corrupt(reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        tree: "wal",
        reason: reason.to_string(),
    }
}

pub fn decode_wal(b: &[u8]) -> Result<WalBatch, StoreError> {
    match b.split_first() {
        Some((&WAL_V1, rest)) => postcard::from_bytes(rest).map_err(corrupt),
        Some((&WAL_V2, rest)) => {
            let (received_ms, packed) = postcard::take_from_bytes::<i64>(rest).map_err(corrupt)?;
            let raw = lz4_flex::decompress_size_prepended(packed).map_err(corrupt)?;
            let events = postcard::from_bytes(&raw).map_err(corrupt)?;
            Ok(WalBatch {
                received_ms,
                events,
            })
        }
        Some((v, _)) => Err(corrupt(format!("unknown record version {v}"))),
        None => Err(corrupt("empty record")),
    }
}

/// Read only the arrival time of a write-ahead record (for retention),
/// without decoding its events.
pub fn wal_received_ms(b: &[u8]) -> Option<i64> {
    match b.split_first() {
        Some((&(WAL_V1 | WAL_V2), rest)) => {
            postcard::take_from_bytes::<i64>(rest).ok().map(|(t, _)| t)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Level, LogEvent};

    #[test]
    fn wal_records_roundtrip_and_expose_arrival_time() {
        let batch = WalBatch {
            received_ms: 1_700_000_000_123,
            events: vec![Event::Log(LogEvent {
                ts_ms: 5,
                service: "api".into(),
                level: Level::Error,
                message: "boom".into(),
                fields: Default::default(),
            })],
        };
        let b = encode_wal(&batch).unwrap();
        assert_eq!(decode_wal(&b).unwrap(), batch);
        assert_eq!(wal_received_ms(&b), Some(1_700_000_000_123));
        assert!(decode_wal(&[9, 1, 2]).is_err());
        // A truncated compressed record is an error, not a panic.
        assert!(decode_wal(&b[..b.len() - 3]).is_err());
        // Records written in the first layout are still read.
        let mut v1 = vec![WAL_V1];
        v1.extend(postcard::to_stdvec(&batch).unwrap());
        assert_eq!(decode_wal(&v1).unwrap(), batch);
        assert_eq!(wal_received_ms(&v1), Some(1_700_000_000_123));
    }
}
