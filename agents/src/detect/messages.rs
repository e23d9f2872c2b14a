//! Messages of the detect stage.

use std::sync::Arc;

use state::model::Event;

use super::stats::ensemble::Models;
use crate::ingest::messages::BatchCtx;

#[derive(Debug)]
pub enum DetectMsg {
    /// One write-ahead batch to scan.
    Batch {
        ctx: BatchCtx,
        events: Arc<Vec<Event>>,
    },
    /// A background refit of stream `key` finished (`None`: nothing fitted).
    Fitted {
        key: String,
        models: Box<Option<Models>>,
    },
    /// Publish the counts and the live per-source view (sent to itself a
    /// second after a batch that left them out of date).
    Publish,
}
