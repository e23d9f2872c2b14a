//! `Detector`: mines each batch's log templates (saved to the store when
//! a store is given), scans the batch against the signature catalogue and
//! hands the anomalies (possibly none: triage commits the cursor for every
//! batch) to triage.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use state::model::Event;
use state::trees::templates::Templates;

use super::messages::DetectMsg;
use super::scan::scan_with;
use super::signatures::Catalogue;
use super::templates::MinerConfig;
use super::templates::live::LiveTemplates;
use crate::chaos::Faults;
use crate::health::StageHealth;
use crate::triage::messages::TriageMsg;

pub struct Detector;

pub struct DetectorArgs {
    pub catalogue: Arc<Catalogue>,
    pub triage: ActorRef<TriageMsg>,
    pub triage_health: Arc<StageHealth>,
    pub health: Arc<StageHealth>,
    pub faults: Arc<Faults>,
    /// Where mined templates are kept; `None` mines in memory only.
    pub templates: Option<Templates>,
}

pub struct DetectorState {
    args: DetectorArgs,
    live: LiveTemplates,
}

impl Actor for Detector {
    type Msg = DetectMsg;
    type State = DetectorState;
    type Arguments = DetectorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<DetectMsg>,
        args: DetectorArgs,
    ) -> Result<DetectorState, ActorProcessingErr> {
        let live = match &args.templates {
            Some(t) => LiveTemplates::restore(MinerConfig::default(), t.all()?),
            None => LiveTemplates::new(MinerConfig::default()),
        };
        args.health.touch();
        Ok(DetectorState { args, live })
    }

    async fn handle(
        &self,
        _myself: ActorRef<DetectMsg>,
        msg: DetectMsg,
        state: &mut DetectorState,
    ) -> Result<(), ActorProcessingErr> {
        state.args.faults.fire("detect").await;
        match msg {
            DetectMsg::Batch { ctx, events } => {
                let n = events.len() as u64;
                let ids: Vec<Option<u64>> = events
                    .iter()
                    .map(|e| match e {
                        Event::Log(l) => Some(state.live.observe(l).id),
                        Event::Metric(_) => None,
                    })
                    .collect();
                let live = &state.live;
                let anomalies = scan_with(&state.args.catalogue, &events, |i| {
                    let id = ids.get(i).copied().flatten()?;
                    let t = live.miner().get(id)?;
                    Some((t.id, t.text()))
                });
                if let Some(store) = &state.args.templates {
                    let (upserts, removed) = state.live.take_changes();
                    store.apply(&upserts, &removed)?;
                }
                state.args.triage_health.note_enqueued();
                state.args.triage.cast(TriageMsg::Detected {
                    ctx,
                    anomalies,
                    events: n,
                })?;
                state.args.health.note_handled(n);
            }
        }
        Ok(())
    }
}
