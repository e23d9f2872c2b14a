//! # triage
//!
//! Input: anomalies. Output: classified, deduplicated, persisted incidents.
