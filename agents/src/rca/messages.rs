//! Messages of the rca stage.

use state::keys::Id;
use state::model::{Anomaly, Incident};

#[derive(Debug)]
pub enum RcaMsg {
    /// Incidents triage just committed, with the anomalies folded into each.
    Triaged {
        incidents: Vec<Incident>,
        signals: Vec<(Id, Anomaly)>,
    },
    /// Periodic housekeeping: auto-resolve quiet incidents.
    Tick,
}
