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

/// Version byte of the current write-ahead record layout.
pub const WAL_V1: u8 = 1;

pub fn encode_wal(batch: &WalBatch) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(64 + batch.events.len() * 96);
    out.push(WAL_V1);
    postcard::to_io(batch, &mut out).map_err(|e| StoreError::Encode(e.to_string()))?;
    Ok(out)
}

pub fn decode_wal(b: &[u8]) -> Result<WalBatch, StoreError> {
    match b.split_first() {
        Some((&WAL_V1, rest)) => postcard::from_bytes(rest).map_err(|e| StoreError::Corrupt {
            tree: "wal",
            reason: e.to_string(),
        }),
        Some((v, _)) => Err(StoreError::Corrupt {
            tree: "wal",
            reason: format!("unknown record version {v}"),
        }),
        None => Err(StoreError::Corrupt {
            tree: "wal",
            reason: "empty record".into(),
        }),
    }
}

/// Read only the arrival time of a write-ahead record (for retention),
/// without decoding its events.
pub fn wal_received_ms(b: &[u8]) -> Option<i64> {
    match b.split_first() {
        Some((&WAL_V1, rest)) => postcard::take_from_bytes::<i64>(rest).ok().map(|(t, _)| t),
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
    }
}
