//! The detect actor alone, with a probe in place of triage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use state::Store;
use state::model::{Event, MetricSample};
use state::trees::detector_state::{DetectorRecord, DetectorStates};
use tokio::sync::mpsc;

use super::actor::{Detector, DetectorArgs, StatsArgs};
use super::gauges::DetectGauges;
use super::messages::DetectMsg;
use super::signatures::{BUILTIN, Catalogue};
use super::stats::iforest::ForestConfig;
use super::streams::StreamsConfig;
use crate::chaos::Faults;
use crate::health::StageHealth;
use crate::ingest::messages::BatchCtx;
use crate::triage::messages::TriageMsg;

struct Probe;

impl Actor for Probe {
    type Msg = TriageMsg;
    type State = mpsc::UnboundedSender<usize>;
    type Arguments = mpsc::UnboundedSender<usize>;

    async fn pre_start(
        &self,
        _me: ActorRef<TriageMsg>,
        tx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle(
        &self,
        _me: ActorRef<TriageMsg>,
        msg: TriageMsg,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let TriageMsg::Detected { anomalies, .. } = msg;
        let _ = tx.send(anomalies.len());
        Ok(())
    }
}

fn batch(seq: u64, from: usize, n: usize) -> DetectMsg {
    let events = (from..from + n)
        .map(|i| {
            Event::Metric(MetricSample {
                ts_ms: i as i64 * 1000,
                source: "db".into(),
                name: "qps".into(),
                value: 100.0 + [0.0, 2.0, -1.0, 1.5, -2.5][i % 5],
                labels: Default::default(),
            })
        })
        .collect();
    DetectMsg::Batch {
        ctx: BatchCtx {
            seq,
            received_ms: 0,
        },
        events: Arc::new(events),
    }
}

fn has_models(states: &DetectorStates) -> bool {
    let Ok((recs, _)) = states.load_all() else {
        return false;
    };
    recs.iter().any(|(_, r)| {
        let DetectorRecord::V1 { state, .. } = r;
        !state["slot"]["models"].is_null()
    })
}

#[tokio::test]
async fn refits_run_off_the_handler_and_their_models_are_snapshotted() {
    let store = Store::temporary().expect("store");
    let mut cfg = StreamsConfig {
        snapshot_every_ms: 0,
        ..StreamsConfig::default()
    };
    cfg.detector.models.forest = Some(ForestConfig {
        n_trees: 10,
        ..ForestConfig::default()
    });
    cfg.detector.models.min_fit = 50;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (probe, _) = Actor::spawn(None, Probe, tx).await.expect("probe");
    let gauges = Arc::new(DetectGauges::default());
    let args = DetectorArgs {
        catalogue: Arc::new(Catalogue::from_toml(BUILTIN, None).expect("catalogue")),
        triage: probe.clone(),
        triage_health: Arc::new(StageHealth::default()),
        health: Arc::new(StageHealth::default()),
        faults: Arc::new(Faults::default()),
        stats: Some(StatsArgs {
            store: store.clone(),
            cfg,
            gauges: gauges.clone(),
        }),
        templates: None,
    };
    let (det, handle) = Actor::spawn(None, Detector, args).await.expect("detector");
    let states = DetectorStates::open(&store).expect("tree");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seq = 0;
    // Each batch is answered at once (the fit happens elsewhere); keep the
    // stream going until a snapshot carries the fitted models.
    while !has_models(&states) {
        assert!(Instant::now() < deadline, "no fitted model was snapshotted");
        seq += 1;
        det.cast(batch(seq, (seq as usize - 1) * 20, 20))
            .expect("cast");
        assert_eq!(rx.recv().await, Some(0));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seq >= 3, "50 points needed before the first fit");
    // The gauges saw the fit (counted before its models are snapshotted)
    // and the one stream.
    let f = gauges.figures();
    assert!(f.fits_total >= 1, "{f:?}");
    assert_eq!(f.streams, 1, "{f:?}");
    assert_eq!(f.anomalies_total, 0, "{f:?}");
    det.stop(None);
    handle.await.expect("stopped");
    probe.stop(None);
}
