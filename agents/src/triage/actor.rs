//! `Triager`: folds each batch's anomalies into incidents and commits them
//! together with the pipeline cursor, in one transaction.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use state::keys::IdGen;
use state::trees::cursors::PIPELINE;
use state::{Store, now_ms};
use tokio::sync::watch;

use super::dedup::{DedupConfig, fold};
use super::messages::TriageMsg;
use crate::chaos::Faults;
use crate::health::StageHealth;
use crate::ingest::messages::BatchCtx;

pub struct Triager;

pub struct TriagerArgs {
    pub store: Store,
    pub dedup: DedupConfig,
    pub health: Arc<StageHealth>,
    pub faults: Arc<Faults>,
    /// Published after every commit; ingest watches it for flow control.
    pub committed: Arc<watch::Sender<u64>>,
    /// Cross-service correlation and the hand-over to rca (optional).
    pub rca: Option<super::link::RcaLink>,
}

pub struct TriagerState {
    args: TriagerArgs,
    ids: IdGen,
    committed: u64,
    correlator: super::correlate::Correlator,
}

impl Actor for Triager {
    type Msg = TriageMsg;
    type State = TriagerState;
    type Arguments = TriagerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<TriageMsg>,
        args: TriagerArgs,
    ) -> Result<TriagerState, ActorProcessingErr> {
        let committed = args.store.cursors().get(PIPELINE)?;
        let ids = IdGen::starting_after(args.store.incidents().max_id()?);
        args.health.touch();
        let correlator = match &args.rca {
            Some(l) => l.correlator(&args.store),
            None => Default::default(),
        };
        Ok(TriagerState {
            args,
            ids,
            committed,
            correlator,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<TriageMsg>,
        msg: TriageMsg,
        state: &mut TriagerState,
    ) -> Result<(), ActorProcessingErr> {
        state.args.faults.fire("triage").await;
        match msg {
            TriageMsg::Detected {
                ctx,
                anomalies,
                events,
            } => {
                commit_batch(state, ctx, &anomalies)?;
                state.args.health.note_handled(events);
            }
        }
        Ok(())
    }
}

fn commit_batch(
    state: &mut TriagerState,
    ctx: BatchCtx,
    anomalies: &[state::model::Anomaly],
) -> Result<(), ActorProcessingErr> {
    if ctx.seq <= state.committed {
        // A replay of a batch this stage already committed.
        return Ok(());
    }
    let store = &state.args.store;
    let mut lookup_err = None;
    let mut link = state.args.rca.as_ref().map(|l| l.batch(anomalies));
    let correlator = &state.correlator;
    let incidents = fold(
        anomalies,
        |fp| match store.incidents().by_fingerprint(fp) {
            Ok(i) => match &mut link {
                Some(l) => l.lookup(store, correlator, i, fp),
                None => i,
            },
            Err(e) => {
                lookup_err = Some(e);
                None
            }
        },
        &state.ids,
        now_ms(),
        &state.args.dedup,
        || {
            let span = tracing::info_span!("triage.open_incident");
            crate::trace::carrier_of(&span)
        },
    );
    if let Some(e) = lookup_err {
        return Err(e.into());
    }
    let mut incidents = incidents;
    let now = now_ms();
    for inc in &mut incidents {
        let signals: Vec<&state::model::Anomaly> = anomalies
            .iter()
            .filter(|a| super::dedup::fingerprint(a) == inc.fingerprint)
            .collect();
        super::classify::classify(inc, &signals, now);
    }
    let (incidents, moved) = match &mut link {
        Some(l) => l.finish(incidents, now),
        None => (incidents, Vec::new()),
    };
    store.commit_pipeline(ctx.seq, &incidents)?;
    if let Some(l) = link {
        l.hand_over(&mut state.correlator, &incidents, &moved, anomalies);
    }
    for inc in &incidents {
        if inc.timeline.len() == 1 {
            let span = tracing::info_span!(
                "triage.opened",
                incident.id = %inc.id,
                incident.category = %inc.category,
                service = %inc.service
            );
            crate::trace::attach(&span, &inc.trace);
            span.in_scope(|| tracing::info!(title = %inc.title, "incident opened"));
        }
    }
    state.committed = ctx.seq;
    state.args.committed.send_replace(ctx.seq);
    Ok(())
}
