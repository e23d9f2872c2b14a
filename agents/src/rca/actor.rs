//! `Analyst`: keeps each incident's per-service observations, ranks root
//! causes on every change, stores the diagnosis with the incident, learns
//! the dependency graph from co-occurrence and hands the top hypothesis to
//! the fix planner. Also resolves incidents that stayed quiet.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use state::keys::Id;
use state::model::diagnosis::ServiceObs;
use state::model::{Anomaly, Incident, IncidentStatus};
use state::now_ms;
use state::trees::IncidentFilter;

use super::messages::RcaMsg;
use super::score::analyze;
use super::shared::{RcaShared, observe_anomaly};
use crate::fixes::messages::FixesMsg;
use crate::health::StageHealth;
use crate::triage::correlate::{auto_resolve, is_flapping};

pub struct Analyst;

pub struct AnalystArgs {
    pub shared: Arc<RcaShared>,
    pub fixes: Option<ActorRef<FixesMsg>>,
    pub health: Arc<StageHealth>,
    /// How often to look for quiet incidents.
    pub tick: Duration,
}

pub struct AnalystState {
    args: AnalystArgs,
    /// Per incident, the observations last analysed and when: a batch that
    /// only repeats what an incident already showed is not re-analysed (a
    /// storm of one error would otherwise re-read, re-rank and re-store
    /// the diagnosis on every batch).
    seen: HashMap<Id, Seen>,
}

/// Observations last analysed, when, and at which learning epoch.
type Seen = (Vec<ServiceObs>, i64, u64);

/// Incidents whose last observations are remembered, at most.
const SEEN_CAP: usize = 4096;

impl Actor for Analyst {
    type Msg = RcaMsg;
    type State = AnalystState;
    type Arguments = AnalystArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RcaMsg>,
        args: AnalystArgs,
    ) -> Result<AnalystState, ActorProcessingErr> {
        args.health.touch();
        if args.shared.settings.correlate.quiet_ms > 0 {
            myself.send_interval(args.tick, || RcaMsg::Tick);
        }
        Ok(AnalystState {
            args,
            seen: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<RcaMsg>,
        msg: RcaMsg,
        state: &mut AnalystState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RcaMsg::Triaged { incidents, signals } => {
                let n = incidents.len() as u64;
                analyse_all(&state.args, &mut state.seen, incidents, signals)?;
                state.args.health.note_handled(n);
            }
            RcaMsg::Tick => resolve_quiet(&state.args)?,
        }
        Ok(())
    }
}

fn analyse_all(
    state: &AnalystArgs,
    seen: &mut HashMap<Id, Seen>,
    incidents: Vec<Incident>,
    signals: Vec<(Id, Anomaly)>,
) -> Result<(), ActorProcessingErr> {
    let mut by: HashMap<Id, Vec<Anomaly>> = HashMap::new();
    for (id, a) in signals {
        by.entry(id).or_default().push(a);
    }
    let shared = &state.shared;
    for inc in incidents {
        let span = tracing::info_span!("rca.analyze", incident.id = %inc.id);
        crate::trace::attach(&span, &inc.trace);
        let _g = span.enter();
        let fresh = by.remove(&inc.id).unwrap_or_default();
        // More of the same (a storm of one error) changes no signal, onset
        // or evidence line: if nothing was learned and the incident did not
        // (re)open since, the diagnosis would be the same, so it is not
        // read, computed and stored again on every batch.
        let reopened_ms = inc
            .timeline
            .iter()
            .rev()
            .find(|e| e.kind == "reopened" || e.kind == "opened")
            .map_or(0, |e| e.ts_ms);
        let epoch = shared.epoch();
        if let Some((known, at, e)) = seen.get(&inc.id)
            && *at >= reopened_ms
            && *e == epoch
        {
            let mut obs = known.clone();
            for a in &fresh {
                observe_anomaly(&mut obs, a);
            }
            if obs == *known {
                continue;
            }
        }
        let prev = shared.trees.result(inc.id)?;
        if fresh.is_empty() && prev.is_some() {
            continue;
        }
        let mut obs = prev.map(|p| p.observations).unwrap_or_default();
        let before: Vec<(String, i64)> = obs
            .iter()
            .filter_map(|o| o.onset_ms.map(|t| (o.service.clone(), t)))
            .collect();
        for a in &fresh {
            observe_anomaly(&mut obs, a);
        }
        let after: Vec<(String, i64)> = obs
            .iter()
            .filter_map(|o| o.onset_ms.map(|t| (o.service.clone(), t)))
            .collect();
        if before.is_empty() && after.len() >= 2 {
            shared.learn(&after, None)?;
        } else {
            for (s, t) in after
                .iter()
                .filter(|(s, _)| !before.iter().any(|(b, _)| b == s))
            {
                if !before.is_empty() {
                    shared.learn(&before, Some((s, *t)))?;
                }
            }
        }
        let started = Instant::now();
        let (diagnosis, kb_version) = {
            let kb = shared.kb();
            let topo = shared.topology();
            (analyze(&kb, &topo, &obs, 10), kb.version)
        };
        let latency_us = started.elapsed().as_micros() as u64;
        if seen.len() >= SEEN_CAP {
            seen.clear();
        }
        seen.insert(inc.id, (obs.clone(), now_ms(), epoch));
        let flapping = is_flapping(&inc);
        let top = diagnosis.top().cloned();
        shared.trees.update_result(inc.id, |r| {
            r.incident_id = inc.id.to_string();
            r.analyzed_ms = now_ms();
            r.kb_version = kb_version;
            r.diagnosis = diagnosis.clone();
            r.observations = obs.clone();
            r.flapping |= flapping;
            r.latency_us = latency_us;
        })?;
        if let Some(t) = &top {
            tracing::info!(
                cause = %t.cause_id,
                service = %t.service,
                confidence = t.confidence,
                latency_us,
                "diagnosed"
            );
        }
        if let Some(f) = &state.fixes {
            let _ = f.cast(FixesMsg::Diagnosed { incident: inc, top });
        }
    }
    Ok(())
}

fn resolve_quiet(state: &AnalystArgs) -> Result<(), ActorProcessingErr> {
    let cfg = &state.shared.settings.correlate;
    let now = now_ms();
    let store = &state.shared.store;
    for status in [IncidentStatus::Open, IncidentStatus::Acknowledged] {
        let quiet = store.incidents().list(&IncidentFilter {
            status: Some(status),
            limit: 500,
            ..Default::default()
        })?;
        for inc in quiet
            .iter()
            .filter(|i| now - i.last_seen_ms >= cfg.quiet_ms)
        {
            store.incidents().update(inc.id, |i| {
                if auto_resolve(i, cfg, now) {
                    Ok(())
                } else {
                    Err(())
                }
            })?;
        }
    }
    Ok(())
}
