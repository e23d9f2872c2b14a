//! Root-cause diagnoses: what the rca stage read (per-service signals) and
//! what it concluded (ranked hypotheses with evidence for and against).

use serde::{Deserialize, Serialize};

use super::plan::FixPlan;

const MAX_LINES: usize = 40;

/// One signal seen on a service: `sig:<id>`, `tpl:<id>`,
/// `metric:<name>:<up|down|max>`, `cat:<category>`, `kind:<event kind>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub key: String,
    /// Strength in [0, 1] (a calibrated anomaly score, 1 for a signature).
    pub strength: f64,
}

/// What one service showed during the incident.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceObs {
    pub service: String,
    /// When it first looked wrong (ms).
    pub onset_ms: Option<i64>,
    pub signals: Vec<Signal>,
    /// Sample of its warning and error lines (distinct, bounded).
    pub lines: Vec<String>,
}

impl ServiceObs {
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            ..Default::default()
        }
    }
    /// Add a signal, keeping the strongest of duplicates.
    pub fn signal(&mut self, key: impl Into<String>, strength: f64, ts_ms: i64) {
        let key = key.into();
        let strength = strength.clamp(0.0, 1.0);
        match self.signals.iter_mut().find(|s| s.key == key) {
            Some(s) => s.strength = s.strength.max(strength),
            None => self.signals.push(Signal { key, strength }),
        }
        self.onset_ms = Some(self.onset_ms.map_or(ts_ms, |o| o.min(ts_ms)));
    }
    /// Keep a log line as evidence (distinct, bounded).
    pub fn line(&mut self, line: &str) {
        if self.lines.len() < MAX_LINES && !self.lines.iter().any(|l| l == line) {
            self.lines.push(line.chars().take(300).collect());
        }
    }
}

/// A ranked explanation of the incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    pub cause_id: String,
    pub cause_name: String,
    pub category: String,
    pub service: String,
    pub score: f64,
    pub confidence: f64,
    /// The service depends on another failing service: ranked after causes.
    pub symptom: bool,
    pub evidence_for: Vec<String>,
    pub evidence_against: Vec<String>,
    /// Evidence patterns that matched (for learning from false positives).
    #[serde(default)]
    pub matched: Vec<String>,
}

/// The result of one analysis.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub hypotheses: Vec<Hypothesis>,
    /// Every service with signals of its own, plus the diagnosed root.
    pub affected: Vec<String>,
    /// Services that are failing in their own right.
    pub failing: Vec<String>,
}

impl Diagnosis {
    pub fn top(&self) -> Option<&Hypothesis> {
        self.hypotheses.first()
    }
}

/// What the rca and fixes stages stored for one incident.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RcaResult {
    pub incident_id: String,
    pub analyzed_ms: i64,
    /// Version of the knowledge base used.
    pub kb_version: u32,
    pub diagnosis: Diagnosis,
    /// What each service showed, accumulated over the incident's life.
    pub observations: Vec<ServiceObs>,
    #[serde(default)]
    pub plan: Option<FixPlan>,
    /// Fixes left out of the plan, and why.
    #[serde(default)]
    pub skipped: Vec<String>,
    /// Silences that matched: alerts and actions are suppressed.
    #[serde(default)]
    pub silenced_by: Vec<String>,
    /// The incident re-opened within the flap window.
    #[serde(default)]
    pub flapping: bool,
    /// Analysis time (µs) of the last run.
    #[serde(default)]
    pub latency_us: u64,
}

/// An operator's verdict on an incident (`POST /incidents/{id}/feedback`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feedback {
    /// The cause the operator confirmed (a knowledge-base id, or a new id to
    /// learn a new cause from this incident's signals).
    #[serde(default)]
    pub confirmed_cause: Option<String>,
    /// Name of a new cause (when `confirmed_cause` is not in the base).
    #[serde(default)]
    pub cause_name: Option<String>,
    /// The service the cause was on (default: the diagnosed one).
    #[serde(default)]
    pub service: Option<String>,
    /// A fix that was applied, and whether it worked.
    #[serde(default)]
    pub fix: Option<String>,
    #[serde(default)]
    pub fix_worked: Option<bool>,
    /// The incident was not a real problem.
    #[serde(default)]
    pub false_positive: bool,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub ts_ms: i64,
}

/// Suppresses alerts and actions (incidents are still recorded).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    #[serde(default)]
    pub reason: String,
}

impl Silence {
    /// Whether it covers `service`/`category` at `ts_ms`.
    pub fn covers(&self, service: &str, category: &str, ts_ms: i64) -> bool {
        (self.from_ms..=self.to_ms).contains(&ts_ms)
            && self.service.as_deref().is_none_or(|s| s == service)
            && self.category.as_deref().is_none_or(|c| c == category)
    }
}
