//! Child and supervisor specifications: what to start, how to restart it,
//! how long to wait for it to stop.
//!
//! Input: the caller's start closures and policies. Output: plain values the
//! supervisor actor reads; nothing here spawns anything by itself.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use agents::health::StageHealth;
use ractor::ActorCell;

/// When a terminated child is restarted (OTP restart types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Always restarted, whatever the exit.
    Permanent,
    /// Restarted only after an abnormal exit (failure, panic, kill).
    Transient,
    /// Never restarted.
    Temporary,
}

/// Which children are restarted when one of them must be (OTP strategies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Only the child that terminated.
    OneForOne,
    /// The child that terminated and every child started after it (those are
    /// stopped in reverse order first, then all are started in order).
    RestForOne,
}

/// Restart intensity: more than `max_restarts` restarts within `period`
/// makes the supervisor stop its children and fail (escalation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intensity {
    pub max_restarts: u32,
    pub period: Duration,
}

impl Default for Intensity {
    /// OTP's default: 1 restart in 5 seconds.
    fn default() -> Self {
        Self {
            max_restarts: 1,
            period: Duration::from_secs(5),
        }
    }
}

/// The future a [`StartFn`] returns: the cell of the started child.
pub type StartFuture = Pin<Box<dyn Future<Output = anyhow::Result<ActorCell>> + Send>>;

/// Spawns one child linked to the given supervisor cell (use
/// `Actor::spawn_linked(None, ..., supervisor)`: children must be unnamed,
/// names are process-global and would collide on restart).
pub type StartFn = Arc<dyn Fn(ActorCell) -> StartFuture + Send + Sync>;

/// Default time a worker gets to stop before it is killed (OTP: 5000 ms).
pub const DEFAULT_SHUTDOWN: Duration = Duration::from_secs(5);

/// One child of a supervisor.
#[derive(Clone)]
pub struct ChildSpec {
    /// Unique among its siblings; the last segment of its registry path.
    pub id: String,
    pub restart: Restart,
    /// Time to stop gracefully before the child is killed.
    pub shutdown: Duration,
    pub start: StartFn,
    /// Progress counters: stuck detection and `events_processed`.
    pub health: Option<Arc<StageHealth>>,
}

impl ChildSpec {
    pub fn new<F, Fut>(id: impl Into<String>, restart: Restart, start: F) -> Self
    where
        F: Fn(ActorCell) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<ActorCell>> + Send + 'static,
    {
        Self {
            id: id.into(),
            restart,
            shutdown: DEFAULT_SHUTDOWN,
            start: Arc::new(move |sup| Box::pin(start(sup)) as StartFuture),
            health: None,
        }
    }

    pub fn with_health(mut self, health: Arc<StageHealth>) -> Self {
        self.health = Some(health);
        self
    }

    pub fn with_shutdown(mut self, shutdown: Duration) -> Self {
        self.shutdown = shutdown;
        self
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("health", &self.health.is_some())
            .finish_non_exhaustive()
    }
}

/// One supervisor: its children are started in order, stopped in reverse.
#[derive(Clone, Debug)]
pub struct SupervisorSpec {
    /// The supervisor's segment of registry paths ("root", "pipeline").
    pub name: String,
    pub strategy: Strategy,
    pub intensity: Intensity,
    /// A child with pending work and no progress for this long is killed
    /// and restarted as a failure; `None` disables stuck detection.
    pub stuck_after: Option<Duration>,
    pub children: Vec<ChildSpec>,
}

impl SupervisorSpec {
    /// Checks what would otherwise fail late: empty or duplicate ids, ids
    /// containing the path separator, a zero intensity period.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut errors = Vec::new();
        if self.name.is_empty() || self.name.contains('/') {
            errors.push(format!(
                "supervisor name `{}` must be non-empty and contain no `/`",
                self.name
            ));
        }
        if self.intensity.period.is_zero() {
            errors.push(format!(
                "supervisor `{}`: intensity period must be positive",
                self.name
            ));
        }
        if self.stuck_after.is_some_and(|d| d.is_zero()) {
            errors.push(format!(
                "supervisor `{}`: stuck_after must be positive",
                self.name
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for child in &self.children {
            if child.id.is_empty() || child.id.contains('/') {
                errors.push(format!(
                    "supervisor `{}`: child id `{}` must be non-empty and contain no `/`",
                    self.name, child.id
                ));
            }
            if !seen.insert(child.id.as_str()) {
                errors.push(format!(
                    "supervisor `{}`: duplicate child id `{}`",
                    self.name, child.id
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!(errors.join("; ")))
        }
    }

    /// Time the whole subtree needs to stop: every child's shutdown in turn,
    /// plus a margin for the kills.
    pub fn total_shutdown(&self) -> Duration {
        self.children
            .iter()
            .map(|c| c.shutdown + super::supervisor::KILL_WAIT)
            .sum::<Duration>()
            + Duration::from_secs(1)
    }
}
