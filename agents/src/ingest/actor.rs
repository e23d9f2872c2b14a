//! `Ingestor`: reads the write-ahead tree from the pipeline cursor and hands
//! batches to detect, keeping at most `max_inflight` batches in flight.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use state::Store;
use state::trees::cursors::PIPELINE;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::commit::HotBatches;
use super::messages::{BatchCtx, IngestMsg};
use crate::chaos::Faults;
use crate::detect::messages::DetectMsg;
use crate::health::StageHealth;

pub struct Ingestor;

pub struct IngestorArgs {
    pub store: Store,
    pub detect: ActorRef<DetectMsg>,
    pub detect_health: Arc<StageHealth>,
    pub health: Arc<StageHealth>,
    pub faults: Arc<Faults>,
    /// Newest durable write-ahead sequence.
    pub wal_head: watch::Receiver<u64>,
    /// Newest sequence committed by the last stage.
    pub committed: watch::Receiver<u64>,
    /// Batches sent downstream but not yet committed, at most.
    pub max_inflight: u64,
    /// Recently appended batches, already decoded.
    pub hot: Arc<HotBatches>,
}

pub struct IngestorState {
    args: IngestorArgs,
    /// Highest sequence handed to detect.
    sent_upto: u64,
    waker: JoinHandle<()>,
}

impl Actor for Ingestor {
    type Msg = IngestMsg;
    type State = IngestorState;
    type Arguments = IngestorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<IngestMsg>,
        args: IngestorArgs,
    ) -> Result<IngestorState, ActorProcessingErr> {
        // Replay from what the pipeline committed: batches in flight when
        // the previous incarnation died are sent again (triage skips any it
        // already committed).
        let sent_upto = args.store.cursors().get(PIPELINE)?;
        let mut head = args.wal_head.clone();
        let mut committed = args.committed.clone();
        let health = args.health.clone();
        let me = myself.clone();
        let waker = tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = head.changed() => if r.is_err() { break },
                    r = committed.changed() => if r.is_err() { break },
                }
                health.note_enqueued();
                if me.cast(IngestMsg::Pump).is_err() {
                    break;
                }
            }
        });
        args.health.touch();
        args.health.note_enqueued();
        myself.cast(IngestMsg::Pump)?;
        Ok(IngestorState {
            args,
            sent_upto,
            waker,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<IngestMsg>,
        state: &mut IngestorState,
    ) -> Result<(), ActorProcessingErr> {
        state.waker.abort();
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<IngestMsg>,
        msg: IngestMsg,
        state: &mut IngestorState,
    ) -> Result<(), ActorProcessingErr> {
        state.args.faults.fire("ingest").await;
        let IngestMsg::Pump = msg;
        let forwarded = pump(state)?;
        state.args.health.note_handled(forwarded);
        Ok(())
    }
}

/// Forward due batches; returns how many events were forwarded.
fn pump(state: &mut IngestorState) -> Result<u64, ActorProcessingErr> {
    let a = &state.args;
    let committed = a.store.cursors().get(PIPELINE)?;
    state.sent_upto = state.sent_upto.max(committed);
    a.hot.release_upto(committed);
    let mut events = 0;
    let head = a.store.wal().head();
    while state.sent_upto < head && (state.sent_upto - committed) < a.max_inflight {
        let seq = state.sent_upto + 1;
        let (received_ms, batch) = match a.hot.get(seq) {
            Some(b) => b,
            None => {
                // Not hot (restart, or the pipeline lags): read a run back.
                let want = (a.max_inflight - (state.sent_upto - committed)) as usize;
                let run = a.store.wal().read_after(state.sent_upto, want)?;
                if run.is_empty() {
                    break;
                }
                for (seq, b) in run {
                    events += forward(a, seq, b.received_ms, Arc::new(b.events))?;
                    state.sent_upto = seq;
                }
                continue;
            }
        };
        events += forward(a, seq, received_ms, batch)?;
        state.sent_upto = seq;
    }
    Ok(events)
}

fn forward(
    a: &IngestorArgs,
    seq: u64,
    received_ms: i64,
    events: Arc<Vec<state::model::Event>>,
) -> Result<u64, ActorProcessingErr> {
    let n = events.len() as u64;
    a.detect_health.note_enqueued();
    a.detect.cast(DetectMsg::Batch {
        ctx: BatchCtx { seq, received_ms },
        events,
    })?;
    Ok(n)
}
