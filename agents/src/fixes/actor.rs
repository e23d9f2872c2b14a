//! `Planner`: turns the top hypothesis of a diagnosed incident into a fix
//! plan ranked by verified outcome statistics and stores it with the
//! diagnosis. Silences are checked here: a silenced incident still gets its
//! plan recorded, marked silenced, so nothing acts on it.

use std::collections::HashMap;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use rand::SeedableRng;
use rand::rngs::StdRng;
use state::model::diagnosis::Hypothesis;
use state::model::{FixPlan, Incident};
use state::now_ms;
use state::trees::fix_stats::{FixStat, FixStats};

use super::messages::FixesMsg;
use super::rank::{History, RankConfig, plan};
use crate::health::StageHealth;
use crate::rca::shared::RcaShared;

pub struct Planner;

/// Where plans go to be carried out (the recovery stage).
pub type PlanSink = Arc<dyn Fn(FixPlan) + Send + Sync>;

pub struct PlannerArgs {
    pub shared: Arc<RcaShared>,
    pub health: Arc<StageHealth>,
    /// `None`: plans are only stored with the diagnosis.
    pub on_plan: Option<PlanSink>,
}

pub struct PlannerState {
    args: PlannerArgs,
    rng: StdRng,
    /// Per incident, the plan last handed over and when: an incident is
    /// re-diagnosed on every update, and only a changed plan (or the same
    /// one after the cooldown) is handed over again.
    sent: HashMap<String, (String, i64)>,
}

/// Statistics as the ranker sees them; a read error counts as "no record"
/// (logged), so a damaged row never blocks planning.
struct Stored<'a>(&'a FixStats);

impl History for Stored<'_> {
    fn stat(&self, cause: &str, fix: &str) -> FixStat {
        self.0.get(cause, fix).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading fix statistics");
            FixStat::default()
        })
    }
    fn stat_for(&self, cause: &str, fix: &str, service: &str) -> FixStat {
        self.0.get_for(cause, fix, service).unwrap_or_default()
    }
    fn failed_for_incident(&self, incident: &str, fix: &str, target: &str) -> bool {
        self.0
            .failed_for_incident(incident, fix, target)
            .unwrap_or(false)
    }
    fn last_attempt(&self, fix: &str, target: &str) -> Option<i64> {
        self.0.last_attempt(fix, target).ok().flatten()
    }
}

impl Actor for Planner {
    type Msg = FixesMsg;
    type State = PlannerState;
    type Arguments = PlannerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<FixesMsg>,
        args: PlannerArgs,
    ) -> Result<PlannerState, ActorProcessingErr> {
        args.health.touch();
        Ok(PlannerState {
            args,
            rng: StdRng::from_os_rng(),
            sent: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<FixesMsg>,
        msg: FixesMsg,
        state: &mut PlannerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            FixesMsg::Diagnosed { incident, top } => {
                plan_for(state, &incident, top.as_ref())?;
                state.args.health.note_handled(1);
            }
        }
        Ok(())
    }
}

fn plan_for(
    state: &mut PlannerState,
    inc: &Incident,
    top: Option<&Hypothesis>,
) -> Result<(), ActorProcessingErr> {
    let span = tracing::info_span!("fixes.plan", incident.id = %inc.id);
    crate::trace::attach(&span, &inc.trace);
    let _g = span.enter();
    let shared = &state.args.shared;
    let now = now_ms();
    let service = top.map_or(inc.service.as_str(), |t| t.service.as_str());
    let silenced_by: Vec<String> = shared
        .trees
        .silences()?
        .into_iter()
        .filter(|s| {
            inc.services
                .iter()
                .chain(std::iter::once(&service.to_string()))
                .any(|svc| s.covers(svc, &inc.category, now))
        })
        .map(|s| s.id)
        .collect();
    let cfg = RankConfig {
        cooldown_ms: shared.settings.fix_cooldown_ms,
        thompson: shared.settings.thompson,
    };
    let planned = top.and_then(|t| {
        let kb = shared.kb();
        kb.get(&t.cause_id).map(|cause| {
            plan(
                &inc.id.to_string(),
                cause,
                &t.service,
                &Stored(&shared.fix_stats),
                now,
                &cfg,
                &mut state.rng,
            )
        })
    });
    let (mut fix_plan, skipped) = match planned {
        Some((p, s)) => (Some(p), s),
        None => (None, Vec::new()),
    };
    if let Some(p) = &mut fix_plan {
        p.trace = inc.trace.clone();
        tracing::info!(
            steps = p.steps.len(),
            first = p.steps.first().map(|s| s.fix.as_str()).unwrap_or(""),
            silenced = !silenced_by.is_empty(),
            "fix plan"
        );
    }
    shared.trees.update_result(inc.id, |r| {
        r.incident_id = inc.id.to_string();
        r.plan = fix_plan.clone();
        r.skipped = skipped.clone();
        r.silenced_by = silenced_by.clone();
    })?;
    if let (Some(p), Some(sink)) = (fix_plan, &state.args.on_plan)
        && silenced_by.is_empty()
        && inc.status.is_active()
        && !p.steps.is_empty()
    {
        let key = plan_key(&p);
        let cooldown = shared.settings.fix_cooldown_ms;
        let fresh = match state.sent.get(&p.incident_id) {
            Some((k, at)) => *k != key || now - at >= cooldown,
            None => true,
        };
        if fresh {
            state.sent.insert(p.incident_id.clone(), (key, now));
            if state.sent.len() > MAX_REMEMBERED {
                // Forget the oldest half; at worst a plan is handed over
                // twice, and recovery ignores a second plan for an incident
                // it is already working on.
                let mut ats: Vec<i64> = state.sent.values().map(|(_, at)| *at).collect();
                ats.sort_unstable();
                let cut = ats[ats.len() / 2];
                state.sent.retain(|_, (_, at)| *at > cut);
            }
            sink(p);
        }
    }
    Ok(())
}

/// Incidents whose last handed-over plan is remembered, at most.
const MAX_REMEMBERED: usize = 10_000;

fn plan_key(p: &FixPlan) -> String {
    let steps: Vec<&str> = p.steps.iter().map(|s| s.fix.as_str()).collect();
    format!(
        "{}|{}|{}",
        p.cause_id.as_deref().unwrap_or(""),
        p.service,
        steps.join(",")
    )
}
