//! `Detector`: mines each batch's log templates (saved to the store when a
//! store is given), scans the batch against the signature catalogue, runs
//! the statistical detectors of every metric and log-derived stream, and
//! hands the anomalies (possibly none: triage commits the cursor for every
//! batch) to triage.
//!
//! Never blocks on slow work: model refits run on the blocking pool and
//! come back as [`DetectMsg::Fitted`]; detector snapshots and anomaly
//! records are written to the store on the blocking pool too. State is
//! restored from the `detector_state` tree in `pre_start`, so a restarted
//! stage (or process) keeps its baselines; the last snapshot is written in
//! `post_stop`. A batch replayed after a crash may be learned twice: a few
//! points counted twice do not move a baseline.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use state::model::Event;
use state::trees::anomalies::Anomalies;
use state::trees::detector_state::DetectorStates;
use state::trees::templates::Templates;
use state::{Store, now_ms};

use super::gauges::{BankCounts, DetectGauges, LiveHosts};
use super::messages::DetectMsg;
use super::scan::scan_with;
use super::signatures::Catalogue;
use super::streams::{StreamBank, StreamsConfig};
use super::templates::MinerConfig;
use super::templates::live::LiveTemplates;
use crate::chaos::Faults;
use crate::health::StageHealth;
use crate::triage::messages::TriageMsg;

pub struct Detector;

/// The statistical side: where its state lives and how it is tuned.
#[derive(Clone)]
pub struct StatsArgs {
    pub store: Store,
    pub cfg: StreamsConfig,
    /// Where the stage reports its sizes and counts (shared with the API).
    pub gauges: Arc<DetectGauges>,
}

pub struct DetectorArgs {
    pub catalogue: Arc<Catalogue>,
    pub triage: ActorRef<TriageMsg>,
    pub triage_health: Arc<StageHealth>,
    pub health: Arc<StageHealth>,
    pub faults: Arc<Faults>,
    /// `None`: signatures only.
    pub stats: Option<StatsArgs>,
    /// Where mined templates are kept; `None` mines in memory only.
    pub templates: Option<Templates>,
}

pub struct Stats {
    bank: StreamBank,
    states: DetectorStates,
    anomalies: Anomalies,
    every_ms: i64,
    last_snapshot_ms: i64,
    gauges: Arc<DetectGauges>,
    /// The bank's counts as last published.
    seen: BankCounts,
    /// Wall-clock ms of the last publish (counts and per-source view).
    published_ms: i64,
    /// A [`DetectMsg::Publish`] is on its way.
    publish_due: bool,
}

/// How often, at most, the live per-source view is rebuilt.
const PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub struct DetectorState {
    args: DetectorArgs,
    stats: Option<Stats>,
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
        let stats = match &args.stats {
            Some(s) => Some(restore(s.clone()).await?),
            None => None,
        };
        let live = match &args.templates {
            Some(t) => LiveTemplates::restore(MinerConfig::default(), t.all()?),
            None => LiveTemplates::new(MinerConfig::default()),
        };
        args.health.touch();
        Ok(DetectorState { args, stats, live })
    }

    async fn handle(
        &self,
        myself: ActorRef<DetectMsg>,
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
                let mut anomalies = scan_with(&state.args.catalogue, &events, |i| {
                    let id = ids.get(i).copied().flatten()?;
                    let t = live.miner().get(id)?;
                    Some((t.id, t.text()))
                });
                if let Some(store) = &state.args.templates {
                    let (upserts, removed) = state.live.take_changes();
                    store.apply(&upserts, &removed)?;
                }
                if let Some(stats) = &mut state.stats {
                    let mut found = stats.bank.observe(&events);
                    found.extend(stats.bank.observe_signatures(&anomalies));
                    record_anomalies(stats, &anomalies, &found);
                    stats.gauges.raised(found.len());
                    anomalies.extend(found);
                    spawn_fits(stats, &myself);
                    maybe_snapshot(stats, false);
                    if !publish(stats, false) && !stats.publish_due {
                        // Counts and view out of date until the next batch,
                        // which may never come: publish in a second anyway.
                        stats.publish_due = true;
                        myself.send_after(PUBLISH_EVERY, || DetectMsg::Publish);
                    }
                }
                state.args.triage_health.note_enqueued();
                state.args.triage.cast(TriageMsg::Detected {
                    ctx,
                    anomalies,
                    events: n,
                })?;
                state.args.health.note_handled(n);
            }
            DetectMsg::Fitted { key, models } => {
                if let Some(stats) = &mut state.stats {
                    if models.is_some() {
                        stats.gauges.fitted();
                    }
                    stats.bank.install(&key, *models);
                    // A new model set reaches the store without waiting
                    // for the next batch (still at most once per interval).
                    maybe_snapshot(stats, false);
                    publish(stats, true);
                }
            }
            DetectMsg::Publish => {
                if let Some(stats) = &mut state.stats {
                    stats.publish_due = false;
                    publish(stats, true);
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<DetectMsg>,
        state: &mut DetectorState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(stats) = &mut state.stats {
            let recs = stats.bank.take_final();
            let states = stats.states.clone();
            tokio::task::spawn_blocking(move || {
                states.put_all(&recs)?;
                states.flush()
            })
            .await??;
        }
        Ok(())
    }
}

async fn restore(s: StatsArgs) -> Result<Stats, ActorProcessingErr> {
    let (keep, gauges) = (s.cfg.keep_anomalies, s.gauges.clone());
    let every_ms = s.cfg.snapshot_every_ms;
    let store = s.store.clone();
    let (states, anomalies, records) = tokio::task::spawn_blocking(move || {
        let states = DetectorStates::open(&store)?;
        let anomalies = Anomalies::open(&store, keep)?;
        let records = states.load_all()?;
        Ok::<_, state::StoreError>((states, anomalies, records))
    })
    .await??;
    let (records, bad) = records;
    for e in bad {
        tracing::warn!(error = %e, "detector state record skipped; that stream relearns");
    }
    let mut bank = StreamBank::new(s.cfg);
    let n = bank.restore(records);
    tracing::info!(streams = n, "detector state restored");
    let mut stats = Stats {
        bank,
        states,
        anomalies,
        every_ms,
        last_snapshot_ms: now_ms(),
        gauges,
        seen: BankCounts::default(),
        published_ms: 0,
        publish_due: false,
    };
    publish(&mut stats, true);
    Ok(stats)
}

/// Report the bank's sizes and counts and the per-source view (a summary
/// of every source), at most once a second unless `force`d (a batch does
/// not pay for a pass over the sources). Returns whether they are now up
/// to date.
fn publish(stats: &mut Stats, force: bool) -> bool {
    let now = now_ms();
    if !force && now - stats.published_ms < PUBLISH_EVERY.as_millis() as i64 {
        return false;
    }
    let bank = &stats.bank;
    let counts = bank.counts();
    stats
        .gauges
        .publish(bank.len(), bank.host_sizes(), &mut stats.seen, counts);
    stats.published_ms = now;
    stats.gauges.set_hosts(LiveHosts {
        as_of_ms: now,
        hosts: bank.host_summaries(),
    });
    true
}

fn record_anomalies(
    stats: &Stats,
    signatures: &[state::model::Anomaly],
    found: &[state::model::Anomaly],
) {
    if signatures.is_empty() && found.is_empty() {
        return;
    }
    let all: Vec<_> = signatures.iter().chain(found).cloned().collect();
    let t = stats.anomalies.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = t.insert_all(&all, now_ms()) {
            tracing::warn!(error = %e, "recording anomalies");
        }
    });
}

/// Refits run on the blocking pool and report back as messages.
fn spawn_fits(stats: &mut Stats, myself: &ActorRef<DetectMsg>) {
    for (key, job) in stats.bank.fit_jobs() {
        let me = myself.clone();
        tokio::task::spawn_blocking(move || {
            let span = tracing::debug_span!("detect.refit", stream = %key);
            let models = span.in_scope(|| job.run());
            let _ = me.cast(DetectMsg::Fitted {
                key,
                models: Box::new(models),
            });
        });
    }
}

fn maybe_snapshot(stats: &mut Stats, force: bool) {
    let now = now_ms();
    if !force && now - stats.last_snapshot_ms < stats.every_ms {
        return;
    }
    stats.last_snapshot_ms = now;
    let recs = stats.bank.take_dirty();
    if recs.is_empty() {
        return;
    }
    let states = stats.states.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = states.put_all(&recs) {
            tracing::warn!(error = %e, "writing detector snapshots");
        }
    });
}
