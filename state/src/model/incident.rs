//! Incidents and their lifecycle.

use serde::{Deserialize, Serialize};

use super::trace::TraceCarrier;
use crate::keys::Id;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.to_ascii_lowercase().as_str() {
            "low" | "info" => Severity::Low,
            "medium" | "warning" => Severity::Medium,
            "high" | "error" => Severity::High,
            "critical" | "fatal" => Severity::Critical,
            _ => return None,
        })
    }
}

/// Lifecycle: `open → acknowledged → resolved → closed`, with `resolved →
/// open` when the same failure comes back within the dedup window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Open,
    Acknowledged,
    Resolved,
    Closed,
}

impl IncidentStatus {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Self::Open,
            "acknowledged" | "ack" => Self::Acknowledged,
            "resolved" => Self::Resolved,
            "closed" => Self::Closed,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
        }
    }
    /// Still needs attention: new matching signals are folded into it.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Open | Self::Acknowledged)
    }
}

/// A transition the lifecycle does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} an incident that is {current}")]
pub struct TransitionError {
    pub action: &'static str,
    pub current: &'static str,
}

/// One line of an incident's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub ts_ms: i64,
    /// `opened`, `signal`, `acknowledged`, `resolved`, `closed`, `reopened`...
    pub kind: String,
    pub detail: String,
}

/// Most timeline entries kept per incident; the count keeps growing.
pub const TIMELINE_CAP: usize = 200;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: Id,
    /// Dedup key: same fingerprint within the window = same incident.
    pub fingerprint: String,
    /// The service the incident is about.
    pub service: String,
    /// Every service whose signals were folded in.
    pub services: Vec<String>,
    pub category: String,
    pub kind: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub title: String,
    /// Raw events folded into this incident.
    pub count: u64,
    pub auto_fixable: bool,
    /// Signature ids seen, in order of first appearance.
    pub signatures: Vec<String>,
    /// Why it was classified as it was.
    pub reasons: Vec<String>,
    pub max_score: f64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub updated_ms: i64,
    pub trace: TraceCarrier,
    pub timeline: Vec<TimelineEntry>,
    /// Triage's classification and its reasons (absent on records written
    /// before classification existed).
    #[serde(default)]
    pub classification: Option<super::classification::Classification>,
}

impl Incident {
    pub fn push_timeline(&mut self, ts_ms: i64, kind: &str, detail: impl Into<String>) {
        if self.timeline.len() >= TIMELINE_CAP {
            // Keep the opening entries and the most recent history.
            self.timeline.remove(10);
        }
        self.timeline.push(TimelineEntry {
            ts_ms,
            kind: kind.to_string(),
            detail: detail.into(),
        });
        self.updated_ms = self.updated_ms.max(ts_ms);
    }

    /// Apply an operator action (`ack`, `resolve`, `close`).
    pub fn transition(&mut self, action: &str, now_ms: i64) -> Result<(), TransitionError> {
        use IncidentStatus::*;
        let (next, label): (IncidentStatus, &'static str) = match (action, self.status) {
            ("ack", Open) => (Acknowledged, "ack"),
            ("resolve", Open | Acknowledged) => (Resolved, "resolve"),
            ("close", Resolved) => (Closed, "close"),
            (a, cur) => {
                let action = match a {
                    "ack" => "ack",
                    "resolve" => "resolve",
                    "close" => "close",
                    _ => "change",
                };
                return Err(TransitionError {
                    action,
                    current: cur.as_str(),
                });
            }
        };
        self.status = next;
        self.push_timeline(now_ms, next.as_str(), format!("operator {label}"));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Incident {
        Incident {
            id: Id(1),
            fingerprint: "f".into(),
            service: "api".into(),
            services: vec!["api".into()],
            category: "database".into(),
            kind: "DATABASE_CONNECTION".into(),
            severity: Severity::High,
            status: IncidentStatus::Open,
            title: "t".into(),
            count: 1,
            auto_fixable: true,
            signatures: vec![],
            reasons: vec![],
            max_score: 1.0,
            first_seen_ms: 0,
            last_seen_ms: 0,
            updated_ms: 0,
            trace: TraceCarrier::default(),
            timeline: vec![],
            classification: None,
        }
    }

    #[test]
    fn lifecycle_allows_only_forward_moves() {
        let mut i = sample();
        i.transition("ack", 1).unwrap();
        assert_eq!(
            i.transition("ack", 2).unwrap_err().to_string(),
            "cannot ack an incident that is acknowledged"
        );
        assert!(i.transition("close", 2).is_err());
        i.transition("resolve", 3).unwrap();
        i.transition("close", 4).unwrap();
        assert_eq!(i.status, IncidentStatus::Closed);
        assert!(i.transition("resolve", 5).is_err());
        assert_eq!(i.timeline.len(), 3);
    }

    #[test]
    fn timeline_is_bounded() {
        let mut i = sample();
        for t in 0..1000 {
            i.push_timeline(t, "signal", "x");
        }
        assert_eq!(i.timeline.len(), TIMELINE_CAP);
        assert_eq!(i.timeline.last().unwrap().ts_ms, 999);
    }
}
