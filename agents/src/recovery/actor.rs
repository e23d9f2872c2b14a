//! `Recoverer`: carries out fix plans behind the guardrails.
//!
//! For each plan: an intent is written and flushed; each step is decided by
//! the [`Guard`]; an executed step is recorded as `executing` (flushed)
//! *before* its executor starts, runs in a spawned task that messages its
//! report back, then is verified in another task. A verified success ends
//! the plan (and resolves the incident); a failure moves to the next step;
//! an exhausted plan escalates. Every decision goes to the audit log.
//!
//! On start, unfinished intents are resumed: a step recorded as
//! `executing` may have run, so it is verified and never run again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use state::keys::{Id, IdGen};
use state::model::{FixOutcome, FixPlan, PlannedFix};
use state::trees::{Audit, AuditDraft, IntentPhase, Intents, RecoveryIntent, StepResult};
use state::{Store, now_ms};

use super::config::{ActionConfig, RecoveryConfig};
use super::exec::{ExecReport, Executors};
use super::guard::{Decision, Guard, Page};
use super::messages::{EventSink, RecoveryEvent, RecoveryMsg};
use super::template::Fields;
use super::verify::{Verdict, verify};
use crate::health::StageHealth;

pub struct Recoverer;

pub struct RecovererArgs {
    pub store: Store,
    /// Shared with the API (one chain head per process).
    pub audit: Audit,
    pub config: Arc<RecoveryConfig>,
    pub executors: Executors,
    pub events: EventSink,
    pub health: Arc<StageHealth>,
    /// How often approvals are checked for expiry.
    pub tick: Duration,
}

pub struct RecovererState {
    args: RecovererArgs,
    intents: Intents,
    guard: Guard,
    ids: IdGen,
    /// Unfinished intents by id.
    active: HashMap<Id, RecoveryIntent>,
}

impl Actor for Recoverer {
    type Msg = RecoveryMsg;
    type State = RecovererState;
    type Arguments = RecovererArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RecoveryMsg>,
        args: RecovererArgs,
    ) -> Result<RecovererState, ActorProcessingErr> {
        let intents = Intents::open(args.store.open_tree("recovery_intents")?);
        let ids = IdGen::starting_after(intents.max_id()?);
        let mut active = HashMap::new();
        for i in intents.unfinished()? {
            let _ = myself.cast(RecoveryMsg::Resume(i.id));
            active.insert(i.id, i);
        }
        myself.send_interval(args.tick, || RecoveryMsg::Tick);
        args.health.touch();
        Ok(RecovererState {
            guard: Guard::new((*args.config).clone()),
            args,
            intents,
            ids,
            active,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RecoveryMsg>,
        msg: RecoveryMsg,
        state: &mut RecovererState,
    ) -> Result<(), ActorProcessingErr> {
        state.args.health.touch();
        match msg {
            RecoveryMsg::Plan(plan) => state.accept(&myself, plan)?,
            RecoveryMsg::Approve { id, reply } => {
                let r = state.approve(&myself, id);
                let _ = reply.send(r);
            }
            RecoveryMsg::ResetBreaker { reply } => {
                state.guard.reset_storm();
                state.audit(
                    "",
                    "",
                    "",
                    "",
                    "breaker_reset",
                    "operator reset the breakers",
                )?;
                let _ = reply.send(());
            }
            RecoveryMsg::GuardState { reply } => {
                let _ = reply.send(serde_json::to_value(&state.guard).unwrap_or_default());
            }
            RecoveryMsg::ChaosAbort(on) => state.guard.set_chaos_abort(on),
            RecoveryMsg::Executed { id, step, report } => {
                state.executed(&myself, id, step, report)?
            }
            RecoveryMsg::Verified { id, step, verdict } => {
                state.verified(&myself, id, step, verdict)?
            }
            RecoveryMsg::Resume(id) => state.resume(&myself, id)?,
            RecoveryMsg::Tick => state.expire(&myself)?,
        }
        Ok(())
    }
}

type Res = Result<(), ActorProcessingErr>;

impl RecovererState {
    fn action(&self, fix: &str) -> Option<&ActionConfig> {
        self.args.config.actions.get(fix)
    }

    fn audit(
        &self,
        action_id: &str,
        incident_id: &str,
        target: &str,
        fix: &str,
        decision: &str,
        detail: &str,
    ) -> Res {
        self.args.audit.append(AuditDraft {
            ts_ms: now_ms(),
            action_id: action_id.into(),
            incident_id: incident_id.into(),
            target: target.into(),
            fix: fix.into(),
            decision: decision.into(),
            detail: detail.into(),
        })?;
        Ok(())
    }

    fn audit_step(&self, i: &RecoveryIntent, decision: &str, detail: &str) -> Res {
        let (fix, target) = i
            .plan
            .steps
            .get(i.step)
            .map(|s| (s.fix.as_str(), s.target.as_str()))
            .unwrap_or(("", ""));
        self.audit(
            &i.id.to_string(),
            &i.plan.incident_id,
            target,
            fix,
            decision,
            detail,
        )
    }

    fn emit(&self, e: RecoveryEvent) {
        (self.args.events)(e);
    }

    fn page(&self, i: &RecoveryIntent, p: Page) -> Res {
        self.audit_step(i, "paged", &serde_json::to_string(&p).unwrap_or_default())?;
        tracing::warn!(incident.id = %i.plan.incident_id, page = ?p, "recovery.page");
        self.emit(RecoveryEvent::Paged(p));
        Ok(())
    }

    /// Persist (flushed) and keep in memory, or drop from memory when done.
    fn save(&mut self, mut i: RecoveryIntent) -> Res {
        i.updated_ms = now_ms();
        self.intents.put_durable(&i)?;
        if i.is_done() {
            self.active.remove(&i.id);
        } else {
            self.active.insert(i.id, i);
        }
        Ok(())
    }

    fn accept(&mut self, myself: &ActorRef<RecoveryMsg>, plan: FixPlan) -> Res {
        if let Some(existing) = self
            .active
            .values()
            .find(|i| i.plan.incident_id == plan.incident_id)
        {
            return self.audit_step(
                existing,
                "duplicate_plan",
                "a plan for this incident is already under way; new plan ignored",
            );
        }
        let now = now_ms();
        let i = RecoveryIntent {
            id: self.ids.next(now),
            plan,
            step: 0,
            phase: IntentPhase::Pending,
            created_ms: now,
            updated_ms: now,
            results: vec![],
        };
        let steps: Vec<String> = i.plan.steps.iter().map(|s| s.fix.clone()).collect();
        self.audit_step(&i, "proposed", &format!("plan: {}", steps.join(" → ")))?;
        let id = i.id;
        self.save(i)?;
        self.advance(myself, id, false)
    }

    /// Decide and start the current step of intent `id`.
    fn advance(&mut self, myself: &ActorRef<RecoveryMsg>, id: Id, approved: bool) -> Res {
        let Some(mut i) = self.active.get(&id).cloned() else {
            return Ok(());
        };
        loop {
            let Some(step) = i.plan.steps.get(i.step).cloned() else {
                return self.escalate(i, "every fix of the plan was tried or skipped");
            };
            let Some(action) = self.action(&step.fix).cloned() else {
                self.audit_step(
                    &i,
                    "skipped",
                    &format!("no action named {:?} is configured", step.fix),
                )?;
                push_result(&mut i, &step, "skipped", "no such action");
                i.step += 1;
                continue;
            };
            let risk = action.risk.max(step.risk);
            let now = now_ms();
            let (decision, page) =
                self.guard
                    .decide(&step.target, risk, step.needs_approval, approved, now);
            if let Some(p) = page {
                self.page(&i, p)?;
            }
            match decision {
                Decision::DryRun => {
                    self.audit_step(&i, "dry_run", &describe(&action, &i.plan, &step))?;
                    push_result(&mut i, &step, "dry_run", "dry-run: nothing executed");
                    i.step += 1;
                    if i.step >= i.plan.steps.len() {
                        i.phase = IntentPhase::Done {
                            result: "dry_run".into(),
                        };
                        return self.save(i);
                    }
                }
                Decision::AwaitApproval { expires_ms, why } => {
                    self.audit_step(&i, "awaiting_approval", &why)?;
                    i.phase = IntentPhase::AwaitingApproval { expires_ms };
                    self.emit(RecoveryEvent::AwaitingApproval {
                        action_id: i.id,
                        incident_id: i.plan.incident_id.clone(),
                        fix: step.fix.clone(),
                        target: step.target.clone(),
                        expires_ms,
                    });
                    return self.save(i);
                }
                Decision::Skip(why) => {
                    let halted = matches!(why, super::guard::Skip::StormHalted);
                    self.audit_step(&i, "skipped", &why.to_string())?;
                    push_result(&mut i, &step, "skipped", &why.to_string());
                    if halted {
                        return self.escalate(i, "automation halted by the storm breaker");
                    }
                    i.step += 1;
                }
                Decision::Execute => return self.execute(myself, i, step, action, now),
            }
        }
    }

    fn execute(
        &mut self,
        myself: &ActorRef<RecoveryMsg>,
        mut i: RecoveryIntent,
        step: PlannedFix,
        action: ActionConfig,
        now: i64,
    ) -> Res {
        // Durable before acting: after a crash from here on, the step is
        // never run again.
        i.phase = IntentPhase::Executing { started_ms: now };
        self.guard.started(&step.target, now);
        self.audit_step(&i, "executing", &describe(&action, &i.plan, &step))?;
        let (id, n) = (i.id, i.step);
        let fields = Fields::of(&i.plan, &step);
        self.save(i)?;
        let ex = self.args.executors.clone();
        let me = myself.clone();
        tokio::spawn(async move {
            let report = ex.run(&action, &fields).await;
            let _ = me.cast(RecoveryMsg::Executed {
                id,
                step: n,
                report,
            });
        });
        Ok(())
    }

    fn executed(
        &mut self,
        myself: &ActorRef<RecoveryMsg>,
        id: Id,
        n: usize,
        report: ExecReport,
    ) -> Res {
        let Some(i) = self.active.get(&id).cloned() else {
            return Ok(());
        };
        if i.step != n || !matches!(i.phase, IntentPhase::Executing { .. }) {
            return Ok(());
        }
        let Some(step) = i.plan.steps.get(n).cloned() else {
            return Ok(());
        };
        let mut detail = report.detail.clone();
        if !report.stderr.is_empty() {
            detail.push_str(&format!("; stderr: {}", report.stderr.trim()));
        }
        if !report.ok {
            self.audit_step(&i, "failed", &detail)?;
            return self.step_failed(myself, i, &step, false, &detail);
        }
        self.audit_step(&i, "executed", &detail)?;
        self.emit(RecoveryEvent::Applied {
            action_id: i.id,
            incident_id: i.plan.incident_id.clone(),
            fix: step.fix.clone(),
            target: step.target.clone(),
            detail: detail.clone(),
        });
        self.start_verify(myself, i, &step, &detail)
    }

    fn start_verify(
        &mut self,
        myself: &ActorRef<RecoveryMsg>,
        mut i: RecoveryIntent,
        step: &PlannedFix,
        detail: &str,
    ) -> Res {
        let Some(v) = self.action(&step.fix).and_then(|a| a.verify.clone()) else {
            // Nothing proves it worked: not a success for statistics.
            let ok_detail = format!("{detail}; no verification configured");
            self.outcome(&i, step, true, false, &ok_detail);
            push_result(&mut i, step, "applied_unverified", &ok_detail);
            self.guard.finished(&step.target, true, now_ms());
            i.phase = IntentPhase::Done {
                result: "applied_unverified".into(),
            };
            return self.save(i);
        };
        i.phase = IntentPhase::Verifying { since_ms: now_ms() };
        let (id, n) = (i.id, i.step);
        self.save(i)?;
        let ex = self.args.executors.clone();
        let me = myself.clone();
        tokio::spawn(async move {
            let verdict = verify(&ex, &v).await;
            let _ = me.cast(RecoveryMsg::Verified {
                id,
                step: n,
                verdict,
            });
        });
        Ok(())
    }

    fn verified(
        &mut self,
        myself: &ActorRef<RecoveryMsg>,
        id: Id,
        n: usize,
        verdict: Verdict,
    ) -> Res {
        let Some(mut i) = self.active.get(&id).cloned() else {
            return Ok(());
        };
        if i.step != n || !matches!(i.phase, IntentPhase::Verifying { .. }) {
            return Ok(());
        }
        let Some(step) = i.plan.steps.get(n).cloned() else {
            return Ok(());
        };
        if !verdict.passed {
            self.audit_step(&i, "verification_failed", &verdict.detail)?;
            return self.step_failed(myself, i, &step, true, &verdict.detail);
        }
        self.audit_step(&i, "verified", &verdict.detail)?;
        if let Some(p) = self.guard.finished(&step.target, true, now_ms()) {
            self.page(&i, p)?;
        }
        self.outcome(&i, &step, true, true, &verdict.detail);
        push_result(&mut i, &step, "verified", &verdict.detail);
        self.resolve_incident(&i, &step);
        i.phase = IntentPhase::Done {
            result: "verified".into(),
        };
        self.save(i)
    }

    fn step_failed(
        &mut self,
        myself: &ActorRef<RecoveryMsg>,
        mut i: RecoveryIntent,
        step: &PlannedFix,
        verified: bool,
        detail: &str,
    ) -> Res {
        if let Some(p) = self.guard.finished(&step.target, false, now_ms()) {
            self.page(&i, p)?;
        }
        self.outcome(&i, step, false, verified, detail);
        push_result(&mut i, step, "failed", detail);
        i.step += 1;
        i.phase = IntentPhase::Pending;
        let id = i.id;
        self.save(i)?;
        self.advance(myself, id, false)
    }

    fn outcome(
        &self,
        i: &RecoveryIntent,
        step: &PlannedFix,
        success: bool,
        verified: bool,
        d: &str,
    ) {
        self.emit(RecoveryEvent::Outcome(FixOutcome {
            incident_id: i.plan.incident_id.clone(),
            cause_id: i.plan.cause_id.clone(),
            fix: step.fix.clone(),
            target: step.target.clone(),
            success,
            verified,
            ts_ms: now_ms(),
            detail: d.to_string(),
        }));
    }

    fn escalate(&mut self, mut i: RecoveryIntent, reason: &str) -> Res {
        self.audit_step(&i, "escalated", reason)?;
        tracing::warn!(incident.id = %i.plan.incident_id, reason, "recovery.escalate");
        self.emit(RecoveryEvent::Escalated {
            action_id: i.id,
            incident_id: i.plan.incident_id.clone(),
            reason: reason.to_string(),
        });
        i.phase = IntentPhase::Done {
            result: "escalated".into(),
        };
        self.save(i)
    }

    /// A verified fix resolves the incident (if it is still open).
    fn resolve_incident(&self, i: &RecoveryIntent, step: &PlannedFix) {
        let Ok(id) = i.plan.incident_id.parse::<Id>() else {
            return;
        };
        let now = now_ms();
        let detail = format!("fix {} on {} verified", step.fix, step.target);
        let _ = self.args.store.incidents().update(id, |inc| {
            inc.push_timeline(now, "fix_verified", detail.clone());
            if inc.status.is_active() {
                let _ = inc.transition("resolve", now);
            }
            Ok::<(), ()>(())
        });
    }

    fn approve(
        &mut self,
        myself: &ActorRef<RecoveryMsg>,
        id: Id,
    ) -> Result<RecoveryIntent, String> {
        let Some(i) = self.active.get(&id).cloned() else {
            return Err(match self.intents.get(id) {
                Ok(Some(i)) => format!("action {id} is not awaiting approval ({:?})", i.phase),
                _ => format!("no action with id {id}"),
            });
        };
        match i.phase {
            IntentPhase::AwaitingApproval { expires_ms } if expires_ms > now_ms() => {}
            IntentPhase::AwaitingApproval { .. } => {
                return Err(format!("approval of action {id} expired"));
            }
            ref p => return Err(format!("action {id} is not awaiting approval ({p:?})")),
        }
        self.audit_step(&i, "approved", "approved by an operator")
            .map_err(|e| e.to_string())?;
        self.advance(myself, id, true).map_err(|e| e.to_string())?;
        self.active
            .get(&id)
            .cloned()
            .or_else(|| self.intents.get(id).ok().flatten())
            .ok_or_else(|| format!("no action with id {id}"))
    }

    fn resume(&mut self, myself: &ActorRef<RecoveryMsg>, id: Id) -> Res {
        let Some(i) = self.active.get(&id).cloned() else {
            return Ok(());
        };
        let Some(step) = i.plan.steps.get(i.step).cloned() else {
            return self.escalate(i, "plan exhausted");
        };
        match i.phase {
            IntentPhase::Pending => self.advance(myself, id, false),
            IntentPhase::AwaitingApproval { .. } | IntentPhase::Done { .. } => Ok(()),
            IntentPhase::Executing { .. } => {
                let why = "executor restarted mid-action: the action may have run, so it is not run again; verifying";
                self.audit_step(&i, "interrupted", why)?;
                self.start_verify(myself, i, &step, why)
            }
            IntentPhase::Verifying { .. } => {
                self.start_verify(myself, i, &step, "verification resumed")
            }
        }
    }

    fn expire(&mut self, myself: &ActorRef<RecoveryMsg>) -> Res {
        let now = now_ms();
        let expired: Vec<Id> = self
            .active
            .values()
            .filter(|i| matches!(i.phase, IntentPhase::AwaitingApproval { expires_ms } if expires_ms <= now))
            .map(|i| i.id)
            .collect();
        for id in expired {
            if let Some(mut i) = self.active.get(&id).cloned() {
                self.audit_step(&i, "expired", "nobody approved in time")?;
                if let Some(step) = i.plan.steps.get(i.step).cloned() {
                    push_result(&mut i, &step, "expired", "nobody approved in time");
                }
                i.step += 1;
                i.phase = IntentPhase::Pending;
                self.save(i)?;
                self.advance(myself, id, false)?;
            }
        }
        Ok(())
    }
}

fn push_result(i: &mut RecoveryIntent, step: &PlannedFix, result: &str, detail: &str) {
    i.results.push(StepResult {
        step: i.step,
        fix: step.fix.clone(),
        target: step.target.clone(),
        result: result.into(),
        detail: detail.into(),
        ts_ms: now_ms(),
    });
}

fn describe(a: &ActionConfig, plan: &FixPlan, step: &PlannedFix) -> String {
    let fields = Fields::of(plan, step);
    match &a.kind {
        super::config::ActionKind::Command { program, args, .. } => {
            match super::template::fill_args(args, &fields) {
                Ok(argv) => format!("command {program} {argv:?}"),
                Err(e) => format!("command {program}: {e}"),
            }
        }
        super::config::ActionKind::Http { method, url, .. } => format!("http {method} {url}"),
        super::config::ActionKind::Data { op } => format!("data {op:?}"),
        super::config::ActionKind::RestartAgent { path } => format!("restart_agent {path}"),
    }
}
