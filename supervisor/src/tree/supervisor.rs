//! The supervisor actor: starts its children in order, restarts them per
//! [`Restart`] type and [`Strategy`], kills stuck ones, escalates when its
//! [`Intensity`](super::Intensity) is exceeded, stops children in reverse.
//!
//! Input: ractor supervision events from its linked children, a periodic
//! stuck check, restart requests from the [`Registry`]. Output: status rows in
//! the registry; on escalation, the actor fails (no panic) with a reason
//! naming the child and its last failure, which its own parent receives as
//! `ActorFailed`.

use std::sync::Arc;
use std::time::Duration;

use agents::health::StageHealth;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RactorErr, RpcReplyPort,
    SupervisionEvent,
};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::intensity::RestartWindow;
use super::registry::{ChildState, Registry};
use super::spec::{ChildSpec, Restart, Strategy, SupervisorSpec};

/// Time given to a killed child to finish dying before we stop waiting.
pub(crate) const KILL_WAIT: Duration = Duration::from_secs(1);

/// Messages a supervisor handles besides supervision events.
pub enum SupervisorMsg {
    /// Periodic stuck check.
    Tick,
    /// Retry starting children whose restart failed.
    Retry,
    /// Stop and start one child (see [`Registry::restart`]).
    Restart {
        id: String,
        reply: RpcReplyPort<Result<(), String>>,
    },
}

pub(crate) struct Supervisor;

pub(crate) struct SupervisorArgs {
    pub spec: SupervisorSpec,
    pub registry: Registry,
    pub path: String,
}

struct Child {
    spec: ChildSpec,
    path: String,
    /// The running instance; `None` while stopped, failed or awaiting restart.
    cell: Option<ActorCell>,
}

pub(crate) struct SupervisorState {
    path: String,
    /// This supervisor's own actor id (to unregister the right instance).
    id: ActorId,
    strategy: Strategy,
    registry: Registry,
    children: Vec<Child>,
    window: RestartWindow,
    stuck_after: Option<Duration>,
    /// Children to (re)start, in order, after a failed start.
    pending: Vec<usize>,
    ticker: Option<JoinHandle<()>>,
}

/// How a child ended, from its supervision event.
#[derive(Debug)]
enum Exit {
    Normal(Option<String>),
    Killed,
    Failed(String),
}

impl Exit {
    fn abnormal(&self) -> bool {
        !matches!(self, Exit::Normal(_))
    }

    fn describe(&self) -> String {
        match self {
            Exit::Normal(None) => "exited normally".to_string(),
            Exit::Normal(Some(r)) => format!("exited normally: {r}"),
            Exit::Killed => "killed".to_string(),
            Exit::Failed(e) => e.clone(),
        }
    }
}

fn should_restart(restart: Restart, exit: &Exit) -> bool {
    match restart {
        Restart::Permanent => true,
        Restart::Transient => exit.abnormal(),
        Restart::Temporary => false,
    }
}

/// "stuck: N pending, no progress for Xs" when `health` shows pending work
/// without progress for `stuck_after`.
fn stuck_reason(health: &StageHealth, stuck_after: Duration, now_ms: i64) -> Option<String> {
    let pending = health.pending();
    if pending == 0 {
        return None;
    }
    let idle_ms = now_ms.saturating_sub(health.last_progress_ms()).max(0) as u64;
    (idle_ms >= stuck_after.as_millis() as u64).then(|| {
        format!(
            "stuck: {pending} pending, no progress for {:.1}s",
            idle_ms as f64 / 1000.0
        )
    })
}

/// Stops one instance: graceful stop within `shutdown`, then kill.
async fn stop_cell(cell: &ActorCell, shutdown: Duration, path: &str) {
    match cell
        .stop_and_wait(Some("supervisor stop".to_string()), Some(shutdown))
        .await
    {
        Ok(()) => {}
        Err(RactorErr::Timeout) => {
            tracing::warn!(
                child = path,
                ?shutdown,
                "child did not stop in time, killing"
            );
            if cell.kill_and_wait(Some(KILL_WAIT)).await.is_err() {
                tracing::error!(child = path, "killed child did not terminate");
            }
        }
        // Already gone: nothing to stop.
        Err(_) => {}
    }
}

impl SupervisorState {
    fn find(&self, id: ActorId) -> Option<usize> {
        self.children
            .iter()
            .position(|c| c.cell.as_ref().is_some_and(|cell| cell.get_id() == id))
    }

    /// Starts child `idx`; `restart` marks a new instance after the first.
    async fn start_child(
        &mut self,
        idx: usize,
        myself: &ActorCell,
        restart: bool,
    ) -> Result<(), String> {
        let child = &self.children[idx];
        self.registry.set_status(
            &child.path,
            if restart {
                ChildState::Restarting
            } else {
                ChildState::Starting
            },
        );
        if let Some(h) = &child.spec.health {
            if restart {
                // The mailbox died with the old instance.
                h.reset_pending();
            }
            h.touch();
        }
        let cell = (child.spec.start)(myself.clone())
            .await
            .map_err(|e| format!("start failed: {e:#}"))?;
        if cell
            .try_get_supervisor()
            .is_none_or(|s| s.get_id() != myself.get_id())
        {
            // A start closure that forgot to link: link it here, otherwise
            // its failures would go unseen.
            cell.link(myself.clone());
        }
        let child = &mut self.children[idx];
        child.cell = Some(cell);
        if restart {
            self.registry.note_restarted(&child.path);
            if let Some(h) = &child.spec.health {
                h.touch();
            }
        } else {
            self.registry.set_status(&child.path, ChildState::Running);
        }
        Ok(())
    }

    async fn stop_child(&mut self, idx: usize) {
        let child = &mut self.children[idx];
        if let Some(cell) = child.cell.take() {
            stop_cell(&cell, child.spec.shutdown, &child.path).await;
            // A killed nested supervisor could not update its own rows.
            self.registry.mark_subtree_stopped(&child.path);
        }
    }

    /// Stops every child in reverse order, marking them `status`.
    async fn stop_all(&mut self, status: ChildState) {
        for idx in (0..self.children.len()).rev() {
            let running = self.children[idx].cell.is_some();
            self.stop_child(idx).await;
            if running {
                self.registry.set_status(&self.children[idx].path, status);
            }
        }
    }

    /// Counts one restart of child `idx` toward the intensity. `Err` (the
    /// escalation reason) after stopping every child when exceeded.
    async fn add_restart(&mut self, idx: usize, reason: &str) -> Result<(), ActorProcessingErr> {
        if !self.window.add(Instant::now()) {
            return Ok(());
        }
        let msg = format!(
            "supervisor `{}` gave up: more than {} restarts in {:?}; last failure of `{}`: {}",
            self.path,
            self.window.max_restarts(),
            self.window.period(),
            self.children[idx].spec.id,
            reason
        );
        tracing::error!(supervisor = %self.path, reason = %msg, "restart intensity exceeded");
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        self.pending.clear();
        self.stop_all(ChildState::Stopped).await;
        // Children awaiting a restart will not get one either.
        self.registry.mark_subtree_stopped(&self.path);
        self.registry
            .note_failure(&self.children[idx].path, ChildState::Failed, reason);
        self.registry
            .note_failure(&self.path, ChildState::Failed, &msg);
        self.registry.unregister_supervisor(&self.path, self.id);
        Err(msg.into())
    }

    /// A child instance terminated (not by our own stop).
    async fn on_exit(
        &mut self,
        idx: usize,
        exit: Exit,
        myself: &ActorCell,
    ) -> Result<(), ActorProcessingErr> {
        let child = &mut self.children[idx];
        child.cell = None;
        let reason = exit.describe();
        if !should_restart(child.spec.restart, &exit) {
            if exit.abnormal() {
                self.registry
                    .note_failure(&child.path, ChildState::Failed, &reason);
            } else {
                self.registry.set_status(&child.path, ChildState::Stopped);
            }
            tracing::info!(child = %child.path, %reason, "child terminated, not restarted");
            return Ok(());
        }
        tracing::warn!(child = %child.path, %reason, "child terminated, restarting");
        if exit.abnormal() {
            self.registry
                .note_failure(&child.path, ChildState::Restarting, &reason);
        } else {
            self.registry
                .set_status(&child.path, ChildState::Restarting);
        }
        self.restart_from(idx, &reason, myself).await
    }

    /// Restarts child `idx` (which is no longer running) per the strategy.
    async fn restart_from(
        &mut self,
        idx: usize,
        reason: &str,
        myself: &ActorCell,
    ) -> Result<(), ActorProcessingErr> {
        self.add_restart(idx, reason).await?;
        let mut set = vec![idx];
        if self.strategy == Strategy::RestForOne {
            let later: Vec<usize> = ((idx + 1)..self.children.len())
                .filter(|&j| self.children[j].cell.is_some() || self.pending.contains(&j))
                .collect();
            for &j in later.iter().rev() {
                self.stop_child(j).await;
                self.registry
                    .set_status(&self.children[j].path, ChildState::Restarting);
            }
            set.extend(later);
        }
        for j in set {
            if !self.pending.contains(&j) {
                self.pending.push(j);
            }
        }
        self.pending.sort_unstable();
        self.start_pending(myself).await
    }

    /// Starts the pending children in order; a failed start counts as a
    /// failure and is retried through a message (never a loop in here).
    async fn start_pending(&mut self, myself: &ActorCell) -> Result<(), ActorProcessingErr> {
        while let Some(&idx) = self.pending.first() {
            match self.start_child(idx, myself, true).await {
                Ok(()) => {
                    self.pending.remove(0);
                }
                Err(reason) => {
                    tracing::warn!(child = %self.children[idx].path, %reason, "restart failed");
                    self.registry.note_failure(
                        &self.children[idx].path,
                        ChildState::Restarting,
                        &reason,
                    );
                    self.add_restart(idx, &reason).await?;
                    let _ = myself.send_message(SupervisorMsg::Retry);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    async fn check_stuck(
        &mut self,
        stuck_after: Duration,
        myself: &ActorCell,
    ) -> Result<(), ActorProcessingErr> {
        for idx in 0..self.children.len() {
            // Evaluated child by child: a restart earlier in this loop
            // (rest-for-one) resets the health of the children it restarted.
            let child = &self.children[idx];
            let Some(reason) = child
                .spec
                .health
                .as_ref()
                .filter(|_| child.cell.is_some())
                .and_then(|h| stuck_reason(h, stuck_after, state::now_ms()))
            else {
                continue;
            };
            let Some(cell) = child.cell.clone() else {
                continue;
            };
            tracing::warn!(child = %child.path, %reason, "killing stuck child");
            if cell.kill_and_wait(Some(KILL_WAIT)).await.is_err() {
                tracing::error!(child = %self.children[idx].path, "killed child did not terminate");
            }
            self.on_exit(idx, Exit::Failed(reason), myself).await?;
        }
        Ok(())
    }

    async fn manual_restart(&mut self, id: &str, myself: &ActorCell) -> Result<(), String> {
        let idx = self
            .children
            .iter()
            .position(|c| c.spec.id == id)
            .ok_or_else(|| format!("supervisor `{}` has no child `{id}`", self.path))?;
        self.stop_child(idx).await;
        self.pending.retain(|&j| j != idx);
        match self.start_child(idx, myself, true).await {
            Ok(()) => Ok(()),
            Err(reason) => {
                let path = self.children[idx].path.clone();
                self.registry
                    .note_failure(&path, ChildState::Restarting, &reason);
                self.pending.push(idx);
                self.pending.sort_unstable();
                let _ = myself.send_message(SupervisorMsg::Retry);
                Err(reason)
            }
        }
    }
}

fn spawn_ticker(myself: ActorRef<SupervisorMsg>, stuck_after: Duration) -> JoinHandle<()> {
    let every = (stuck_after / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            interval.tick().await;
            if myself.send_message(SupervisorMsg::Tick).is_err() {
                break;
            }
        }
    })
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let SupervisorArgs {
            spec,
            registry,
            path,
        } = args;
        spec.validate().map_err(|e| format!("{e:#}"))?;
        registry.register_supervisor(&path, myself.clone());
        let children: Vec<Child> = spec
            .children
            .into_iter()
            .map(|c| Child {
                path: format!("{path}/{}", c.id),
                spec: c,
                cell: None,
            })
            .collect();
        for c in &children {
            registry.register_child(&c.path, c.spec.health.clone(), c.spec.shutdown);
        }
        let mut state = SupervisorState {
            path,
            id: myself.get_id(),
            strategy: spec.strategy,
            registry,
            children,
            window: RestartWindow::new(spec.intensity),
            stuck_after: spec.stuck_after,
            pending: Vec::new(),
            ticker: None,
        };
        let cell = myself.get_cell();
        for idx in 0..state.children.len() {
            if let Err(reason) = state.start_child(idx, &cell, false).await {
                // OTP: a child that fails at initial start fails the
                // supervisor's own start, after stopping the started ones.
                let path = state.children[idx].path.clone();
                state
                    .registry
                    .note_failure(&path, ChildState::Failed, &reason);
                state.stop_all(ChildState::Stopped).await;
                state
                    .registry
                    .note_failure(&state.path, ChildState::Failed, &reason);
                state
                    .registry
                    .unregister_supervisor(&state.path, myself.get_id());
                return Err(format!("child `{path}` failed to start: {reason}").into());
            }
        }
        if let Some(d) = spec.stuck_after {
            state.ticker = Some(spawn_ticker(myself.clone(), d));
        }
        state.registry.set_status(&state.path, ChildState::Running);
        Ok(state)
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.ticker.take() {
            t.abort();
        }
        state.pending.clear();
        state.stop_all(ChildState::Stopped).await;
        state
            .registry
            .unregister_supervisor(&state.path, myself.get_id());
        state.registry.set_status(&state.path, ChildState::Stopped);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let cell = myself.get_cell();
        match msg {
            SupervisorMsg::Tick => match state.stuck_after {
                Some(d) => state.check_stuck(d, &cell).await,
                None => Ok(()),
            },
            SupervisorMsg::Retry => state.start_pending(&cell).await,
            SupervisorMsg::Restart { id, reply } => {
                let result = state.manual_restart(&id, &cell).await;
                // The caller may have timed out and gone.
                let _ = reply.send(result);
                Ok(())
            }
        }
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (who, exit) = match evt {
            SupervisionEvent::ActorFailed(who, err) => (who, Exit::Failed(err.to_string())),
            SupervisionEvent::ActorTerminated(who, _, reason) => {
                let exit = if reason.as_deref() == Some("killed") {
                    Exit::Killed
                } else {
                    Exit::Normal(reason)
                };
                (who, exit)
            }
            _ => return Ok(()),
        };
        // Events of instances we stopped or replaced ourselves match no
        // running child and are ignored.
        match state.find(who.get_id()) {
            Some(idx) => state.on_exit(idx, exit, &myself.get_cell()).await,
            None => Ok(()),
        }
    }
}

/// Spawns a supervisor linked to `parent` (or unlinked), at `path`.
pub(crate) async fn spawn_supervisor(
    spec: SupervisorSpec,
    registry: Registry,
    path: String,
    parent: Option<ActorCell>,
) -> anyhow::Result<ActorRef<SupervisorMsg>> {
    let args = SupervisorArgs {
        spec,
        registry,
        path: path.clone(),
    };
    let spawned = match parent {
        Some(p) => Actor::spawn_linked(None, Supervisor, args, p).await,
        None => Actor::spawn(None, Supervisor, args).await,
    };
    let (actor, _join) =
        spawned.map_err(|e| anyhow::anyhow!("supervisor `{path}` failed to start: {e}"))?;
    Ok(actor)
}

/// A nested supervisor as a child of another supervisor. Its id is the
/// spec's name; its shutdown leaves time for all its children to stop.
pub fn supervisor_child(spec: SupervisorSpec, registry: Registry) -> ChildSpec {
    let id = spec.name.clone();
    let shutdown = spec.total_shutdown();
    let spec = Arc::new(spec);
    ChildSpec::new(id, Restart::Permanent, move |parent: ActorCell| {
        let spec = SupervisorSpec::clone(&spec);
        let registry = registry.clone();
        async move {
            let parent_path = registry.supervisor_path(parent.get_id()).ok_or_else(|| {
                anyhow::anyhow!(
                    "nested supervisor `{}` started by an unknown parent",
                    spec.name
                )
            })?;
            let path = format!("{parent_path}/{}", spec.name);
            let sup = spawn_supervisor(spec, registry, path, Some(parent)).await?;
            Ok(sup.get_cell())
        }
    })
    .with_shutdown(shutdown)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn restart_types_follow_otp() {
        let normal = Exit::Normal(None);
        let failed = Exit::Failed("boom".into());
        assert!(should_restart(Restart::Permanent, &normal));
        assert!(should_restart(Restart::Permanent, &failed));
        assert!(!should_restart(Restart::Transient, &normal));
        assert!(should_restart(Restart::Transient, &failed));
        assert!(should_restart(Restart::Transient, &Exit::Killed));
        assert!(!should_restart(Restart::Temporary, &failed));
        assert!(!should_restart(Restart::Temporary, &Exit::Killed));
    }

    #[test]
    fn stuck_needs_pending_work_and_no_progress() {
        let h = StageHealth::default();
        h.touch();
        let now = h.last_progress_ms();
        let after = Duration::from_secs(2);
        assert_eq!(stuck_reason(&h, after, now + 5_000), None, "idle, no work");
        h.note_enqueued();
        h.note_enqueued();
        assert_eq!(
            stuck_reason(&h, after, now + 1_000),
            None,
            "not long enough"
        );
        assert_eq!(
            stuck_reason(&h, after, now + 3_000).as_deref(),
            Some("stuck: 2 pending, no progress for 3.0s")
        );
    }
}
