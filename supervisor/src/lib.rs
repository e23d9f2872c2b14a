//! # supervisor: the selfheal binary's library
//!
//! Layout:
//! - [`config`]: defaults → TOML file → environment, validated at once.
//! - [`telemetry`]: tracing to the terminal or JSON, spans over OTLP.
//! - [`tree`]: OTP-style supervision (child specs, strategies, intensity).
//! - [`startup`]: opens the store, builds the tree and the API, serves,
//!   shuts down in order.
//! - [`api`]: the HTTP API (`router(state)`).
//! - [`eval`]: `supervisor eval ...` quality figures on public data.
//! - [`recovery`]: wires the recovery stage into the tree (restart callback,
//!   executors, event sink).

pub mod api;
pub mod config;
pub mod eval;
pub mod recovery;
pub mod startup;
pub mod telemetry;
pub mod tree;
