//! # detect
//!
//! Input: batches of events. Output: anomalies (score, evidence).

pub mod signatures;
pub mod stats;
