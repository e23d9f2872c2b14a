//! # recovery: fix plans → executed, verified actions
//!
//! - Input: [`state::model::FixPlan`]s (from fix selection, or the API).
//! - Output: [`state::model::FixOutcome`]s (only verified ones count),
//!   escalations and pages, as [`messages::RecoveryEvent`]s to a sink.
//! - Owned state: the `recovery_intents` tree (written and flushed before
//!   each action) and the hash-chained `audit` tree.
//! - Crash policy: permanent. A restarted actor resumes unfinished intents:
//!   a step that may have run is verified, never run again.
//!
//! Files: [`config`] (actions as data), [`template`] (argument templates),
//! [`exec`] (command / http / data / restart executors), [`verify`]
//! (checks that must pass and hold), [`guard`] (guardrails, pure).

pub mod actor;
pub mod config;
pub mod exec;
pub mod guard;
pub mod messages;
pub mod template;
pub mod verify;

#[cfg(test)]
mod exec_tests;
#[cfg(test)]
mod tests;
