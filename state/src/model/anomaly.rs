//! Anomalies: what detect hands to triage.

use serde::{Deserialize, Serialize};

use super::incident::Severity;

/// One piece of evidence behind an anomaly, ranked by weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// What fired: a signature id, a metric name, a template id.
    pub signal: String,
    /// How much it contributed, in [0,1].
    pub weight: f64,
    /// Human-readable detail (the matched line, the observed value).
    pub detail: String,
}

/// Something abnormal seen in one service's stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    pub ts_ms: i64,
    pub service: String,
    /// Top-level category family, e.g. `database`.
    pub category: String,
    /// Second-level kind, e.g. `DATABASE_CONNECTION`.
    pub kind: String,
    pub severity: Severity,
    /// Calibrated score in [0,1].
    pub score: f64,
    /// The signature that matched, when the anomaly comes from a log line.
    pub signature: Option<String>,
    pub auto_fixable: bool,
    /// A short description (the first matching line or the metric reading).
    pub summary: String,
    /// How many raw events this anomaly stands for.
    pub count: u64,
    pub evidence: Vec<Evidence>,
}
