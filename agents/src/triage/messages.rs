//! Messages of the triage stage.

use state::model::Anomaly;

use crate::ingest::messages::BatchCtx;

#[derive(Debug)]
pub enum TriageMsg {
    /// The anomalies found in one write-ahead batch of `events` events.
    Detected {
        ctx: BatchCtx,
        anomalies: Vec<Anomaly>,
        events: u64,
    },
}
