//! Messages of the detect stage.

use std::sync::Arc;

use state::model::Event;

use crate::ingest::messages::BatchCtx;

#[derive(Debug)]
pub enum DetectMsg {
    /// One write-ahead batch to scan.
    Batch {
        ctx: BatchCtx,
        events: Arc<Vec<Event>>,
    },
}
