//! Messages of the ingest stage, and the batch context every stage passes on.

/// Where a batch came from: its write-ahead sequence, so the last stage can
/// commit the pipeline cursor exactly once per batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchCtx {
    pub seq: u64,
    pub received_ms: i64,
}

#[derive(Debug)]
pub enum IngestMsg {
    /// New durable data or a new committed cursor: forward what is due.
    Pump,
}
