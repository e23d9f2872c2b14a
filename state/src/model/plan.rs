//! Fix plans and their outcomes: the contract between fix selection (which
//! ranks fixes for a diagnosed incident) and recovery (which carries them
//! out, verifies them and reports what happened).

use serde::{Deserialize, Serialize};

use super::trace::TraceCarrier;

/// The layer a fix acts on, from the cheapest and most local to the widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Application,
    Service,
    Infrastructure,
    Data,
}

/// How much harm a fix can do if it is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    Medium,
    High,
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedFix {
    /// Name of the fix; the recovery stage looks up the action of this name.
    pub fix: String,
    pub layer: Layer,
    /// What the fix acts on (usually a service name).
    pub target: String,
    /// Smoothed success estimate in [0, 1].
    pub expected_success: f64,
    pub risk: Risk,
    pub needs_approval: bool,
    /// Why this fix was chosen and ranked here.
    #[serde(default)]
    pub reason: String,
}

/// Ordered fixes for one incident, best first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FixPlan {
    /// Incident id (`state::keys::Id` as text).
    pub incident_id: String,
    /// The root cause the plan addresses, if one was diagnosed.
    pub cause_id: Option<String>,
    pub service: String,
    pub steps: Vec<PlannedFix>,
    #[serde(default)]
    pub trace: TraceCarrier,
}

/// What happened when a fix was tried. Only `verified` outcomes count for
/// fix-selection statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FixOutcome {
    pub incident_id: String,
    pub cause_id: Option<String>,
    pub fix: String,
    pub target: String,
    /// The fix ran and its verification passed and held.
    pub success: bool,
    /// The result was checked by a verification (not assumed).
    pub verified: bool,
    pub ts_ms: i64,
    #[serde(default)]
    pub detail: String,
}
