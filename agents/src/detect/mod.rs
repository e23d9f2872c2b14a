//! # detect
//!
//! Input: batches of events from ingest. Output: anomalies (score,
//! evidence) to triage, one message per batch.
//! Owned state: per-stream detector state (`streams`) and per-source
//! vector detectors (`hosts`), snapshotted to the
//! `detector_state` tree and restored at start; recent anomalies in the
//! `anomalies` tree. Reports its sizes and counts, and a live view of the
//! per-source vectors, through `gauges` (read by `/metrics` and
//! `/observability/detectors`).
//! Crash policy: permanent; batches in flight are replayed by ingest.

pub mod actor;
pub mod gauges;
pub mod hosts;
pub mod messages;
pub mod scan;
pub mod signatures;
pub mod stats;
pub mod streams;
pub mod templates;
#[cfg(test)]
mod tests;
