//! How triage classified an incident, and why: the matched signatures, the
//! anomaly score and the blast radius. Stored with the incident.

use serde::{Deserialize, Serialize};

use super::incident::Severity;

/// One signature that matched lines of the incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignatureHit {
    pub id: String,
    pub category: String,
    pub kind: String,
    pub severity: Severity,
    pub auto_fixable: bool,
    /// Lines it matched.
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub category: String,
    pub kind: String,
    /// Highest severity of the signals, before the blast radius.
    pub base_severity: Severity,
    /// The incident's severity: base, adjusted by blast radius and score.
    pub severity: Severity,
    /// Highest anomaly score seen, in [0, 1].
    pub score: f64,
    /// Blast radius: services affected and events folded in.
    pub services: usize,
    pub events: u64,
    /// Every matched signature, in order of first appearance.
    pub signatures: Vec<SignatureHit>,
    /// True only if every signal can be fixed automatically.
    pub auto_fixable: bool,
    /// The reasons, one per decision, in plain words.
    pub reasons: Vec<String>,
}
