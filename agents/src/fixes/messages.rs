//! Messages of the fixes stage.

use state::model::Incident;
use state::model::diagnosis::Hypothesis;

#[derive(Debug)]
pub enum FixesMsg {
    /// rca finished (re)analysing an incident.
    Diagnosed {
        incident: Incident,
        top: Option<Hypothesis>,
    },
}
