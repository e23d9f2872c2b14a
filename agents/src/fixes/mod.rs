//! # fixes
//!
//! Input: diagnosed incidents (the top root-cause hypothesis). Output: a
//! [`state::model::FixPlan`]: the cause's candidate fixes ordered by a
//! smoothed success estimate (Beta posterior over verified outcomes, prior
//! from the catalogue), without fixes that already failed for the incident
//! or are cooling down for the target.
//! Owned state: the `fix_stats` tree (outcome statistics).
//! Crash policy: permanent; a plan is a pure function of the diagnosis and
//! the stored statistics, so a restarted planner plans again.
//!
//! - [`rank`]: the pure ranking.

pub mod rank;
