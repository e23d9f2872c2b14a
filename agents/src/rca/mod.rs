//! # rca
//!
//! Input: opened or updated incidents with the signals of every service
//! involved. Output: ranked root-cause hypotheses (cause, service,
//! confidence, evidence for and against), stored with the incident.
//! Owned state: the knowledge base of causes (built-in catalogue, the
//! user's file, causes and weights learned from feedback) and the learned
//! part of the dependency graph.
//! Crash policy: permanent; analysis is a pure function of the incident's
//! evidence, so a restarted analyser just analyses again.
//!
//! - [`kb`]: the cause model and the catalogue (`kb/causes.toml`).
//! - [`topology`]: the dependency graph (configured and learned edges).
//! - [`score`]: the weighted, explainable scorer.
//! - [`observe`]: raw series and lines → signals (robust shifts, novelty).
//! - [`scenario`]: the recorded-incident format of the evaluation and its replay.
//! - [`metric_rank`]: root-cause ranking of nodes from metrics alone.

pub mod actor;
pub mod infer;
pub mod kb;
pub mod messages;
pub mod metric_rank;
pub mod observe;
pub mod scenario;
pub mod score;
pub mod shared;
pub mod topology;
