//! # agents: the pipeline stages
//!
//! One folder per stage, in flow order. Each stage has a `mod.rs` that says
//! its input, output, owned state and crash policy, a thin `actor.rs` that
//! only moves messages, and pure-logic files with their own tests.
//!
//! ```text
//! HTTP ─► ingest ─► detect ─► triage ─► rca ─► fixes ─► recovery
//! ```
//!
//! - [`ingest`]: validated events, the durable write-ahead log and the
//!   cursor-driven reader that feeds the pipeline.
//! - [`detect`]: failure signatures and statistical detectors → anomalies.
//! - [`triage`]: anomalies → classified, deduplicated, persisted incidents.
//! - [`rca`], [`fixes`], [`recovery`], [`notify`], [`chaos`]: later stages.
//! - [`health`]: progress counters every stage keeps, read by the
//!   supervision tree (stuck detection) and `/observability/agents`.

pub mod chaos;
pub mod detect;
pub mod fixes;
pub mod health;
pub mod ingest;
pub mod notify;
pub mod rca;
pub mod recovery;
pub mod trace;
pub mod triage;
