//! # triage
//!
//! Input: the anomalies of each write-ahead batch. Output: classified,
//! deduplicated incidents, persisted with their timeline, and the pipeline
//! cursor committed in the same transaction.
//! Owned state: the incidents trees.
//! Crash policy: permanent; a replayed batch (sequence at or below the
//! committed cursor) is skipped, so nothing is counted twice.

pub mod actor;
pub mod classify;
pub mod correlate;
pub mod dedup;
pub mod link;
pub mod messages;
