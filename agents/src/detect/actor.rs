//! `Detector`: scans each batch and hands the anomalies (possibly none:
//! triage commits the cursor for every batch) to triage.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::messages::DetectMsg;
use super::scan::scan;
use super::signatures::Catalogue;
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
}

impl Actor for Detector {
    type Msg = DetectMsg;
    type State = DetectorArgs;
    type Arguments = DetectorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<DetectMsg>,
        args: DetectorArgs,
    ) -> Result<DetectorArgs, ActorProcessingErr> {
        args.health.touch();
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<DetectMsg>,
        msg: DetectMsg,
        state: &mut DetectorArgs,
    ) -> Result<(), ActorProcessingErr> {
        state.faults.fire("detect").await;
        match msg {
            DetectMsg::Batch { ctx, events } => {
                let n = events.len() as u64;
                let anomalies = scan(&state.catalogue, &events);
                state.triage_health.note_enqueued();
                state.triage.cast(TriageMsg::Detected {
                    ctx,
                    anomalies,
                    events: n,
                })?;
                state.health.note_handled(n);
            }
        }
        Ok(())
    }
}
