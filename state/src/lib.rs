//! # state: what an incident is, and how it is stored
//!
//! No tokio, no ractor: plain data and a synchronous store, so every stage
//! (and every test) can use it directly.
//!
//! Layout:
//! - [`model`]: events, anomalies, incidents, the W3C trace carrier.
//! - [`keys`]: big-endian, fixed-width, time-ordered keys and ids.
//! - [`codec`]: version-tagged records (JSON with a `version` tag for records
//!   that are read by people and evolve; postcard with a version byte for the
//!   write-ahead log, which is hot).
//! - [`trees`]: one typed tree per file; each tree has ONE writer stage.
//! - [`store`]: the [`Store`], opened once, exposing only typed trees;
//!   schema version and ordered migrations run at open.

pub mod codec;
pub mod error;
pub mod keys;
pub mod model;
pub mod snapshot;
pub mod store;
pub mod trees;

pub use error::StoreError;
pub use store::{Store, StoreConfig};

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
