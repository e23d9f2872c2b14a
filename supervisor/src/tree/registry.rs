//! The shared status board of the tree: one row per child (and per
//! supervisor), keyed by path ("root/pipeline/detect").
//!
//! Input: updates from the supervisors as children start, fail, restart and
//! stop. Output: [`Registry::snapshot`] for `/observability/agents`, and
//! [`Registry::restart`] to restart one child through its supervisor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use agents::health::StageHealth;
use ractor::rpc::CallResult;
use ractor::{ActorId, ActorRef};
use serde::Serialize;

use super::supervisor::{KILL_WAIT, SupervisorMsg};

/// Lifecycle of one child as its supervisor sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChildState {
    Starting,
    Running,
    /// Terminated and about to be (or waiting to be) started again.
    Restarting,
    /// Stopped normally, or stopped by its supervisor.
    Stopped,
    /// Terminated abnormally and not restarted.
    Failed,
}

/// One row of [`Registry::snapshot`].
#[derive(Clone, Debug, Serialize)]
pub struct ChildStatus {
    pub path: String,
    pub status: ChildState,
    /// Times a new instance was started after the first.
    pub restarts: u64,
    pub last_failure: Option<String>,
    /// Wall-clock ms of `last_failure`.
    pub last_failure_ms: Option<i64>,
    pub events_processed: u64,
    pub pending: u64,
    pub is_supervisor: bool,
}

/// Time budget for starting a child during [`Registry::restart`].
const RESTART_START_BUDGET: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Entry {
    path: String,
    status: ChildState,
    restarts: u64,
    last_failure: Option<String>,
    last_failure_ms: Option<i64>,
    health: Option<Arc<StageHealth>>,
    is_supervisor: bool,
    shutdown: Duration,
}

#[derive(Debug, Default)]
struct Inner {
    /// In registration order (start order), so snapshots read like the tree.
    entries: Vec<Entry>,
    /// Running supervisors by path.
    supervisors: HashMap<String, ActorRef<SupervisorMsg>>,
}

/// Shared status of every child; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    inner: Arc<Mutex<Inner>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every child and supervisor, in start order.
    pub fn snapshot(&self) -> Vec<ChildStatus> {
        self.lock()
            .entries
            .iter()
            .map(|e| ChildStatus {
                path: e.path.clone(),
                status: e.status,
                restarts: e.restarts,
                last_failure: e.last_failure.clone(),
                last_failure_ms: e.last_failure_ms,
                events_processed: e.health.as_ref().map_or(0, |h| h.events()),
                pending: e.health.as_ref().map_or(0, |h| h.pending()),
                is_supervisor: e.is_supervisor,
            })
            .collect()
    }

    /// The row of one path, if known.
    pub fn get(&self, path: &str) -> Option<ChildStatus> {
        self.snapshot().into_iter().find(|c| c.path == path)
    }

    /// Restarts one child through its supervisor: stops it (its shutdown
    /// timeout, then kill) and starts it again. Only that child, whatever
    /// the strategy; not counted toward the supervisor's intensity.
    pub async fn restart(&self, path: &str) -> anyhow::Result<()> {
        let (parent, id) = path
            .rsplit_once('/')
            .ok_or_else(|| anyhow::anyhow!("`{path}` is a root supervisor, not a child"))?;
        let (sup, shutdown) = {
            let inner = self.lock();
            let entry = inner
                .entries
                .iter()
                .find(|e| e.path == path)
                .ok_or_else(|| anyhow::anyhow!("unknown child `{path}`"))?;
            let sup = inner
                .supervisors
                .get(parent)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("supervisor `{parent}` is not running"))?;
            (sup, entry.shutdown)
        };
        let timeout = shutdown + KILL_WAIT + RESTART_START_BUDGET;
        let id = id.to_string();
        match sup
            .call(|reply| SupervisorMsg::Restart { id, reply }, Some(timeout))
            .await
        {
            Ok(CallResult::Success(Ok(()))) => Ok(()),
            Ok(CallResult::Success(Err(e))) => Err(anyhow::anyhow!("restart of `{path}`: {e}")),
            Ok(CallResult::Timeout) => Err(anyhow::anyhow!(
                "restart of `{path}` timed out after {timeout:?}"
            )),
            Ok(CallResult::SenderError) | Err(_) => Err(anyhow::anyhow!(
                "supervisor `{parent}` stopped before restarting `{path}`"
            )),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain counters behind;
        // they stay readable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_entry(&self, path: &str, f: impl FnOnce(&mut Entry)) {
        let mut inner = self.lock();
        if let Some(e) = inner.entries.iter_mut().find(|e| e.path == path) {
            f(e);
        }
    }

    /// Adds a child row (or resets the status of an existing one, keeping
    /// its counters: a restarted subtree keeps its history).
    pub(crate) fn register_child(
        &self,
        path: &str,
        health: Option<Arc<StageHealth>>,
        shutdown: Duration,
    ) {
        let mut inner = self.lock();
        if let Some(e) = inner.entries.iter_mut().find(|e| e.path == path) {
            e.status = ChildState::Starting;
            e.health = health;
            e.shutdown = shutdown;
        } else {
            inner.entries.push(Entry {
                path: path.to_string(),
                status: ChildState::Starting,
                restarts: 0,
                last_failure: None,
                last_failure_ms: None,
                health,
                is_supervisor: false,
                shutdown,
            });
        }
    }

    /// A supervisor announces itself: its row is marked as a supervisor and
    /// restarts of its children are routed to `sup`.
    pub(crate) fn register_supervisor(&self, path: &str, sup: ActorRef<SupervisorMsg>) {
        let mut inner = self.lock();
        if let Some(e) = inner.entries.iter_mut().find(|e| e.path == path) {
            e.is_supervisor = true;
            e.status = ChildState::Starting;
        } else {
            inner.entries.push(Entry {
                path: path.to_string(),
                status: ChildState::Starting,
                restarts: 0,
                last_failure: None,
                last_failure_ms: None,
                health: None,
                is_supervisor: true,
                shutdown: Duration::ZERO,
            });
        }
        inner.supervisors.insert(path.to_string(), sup);
    }

    /// Forgets the route to a supervisor that stopped (only if it is still
    /// the registered instance).
    pub(crate) fn unregister_supervisor(&self, path: &str, id: ActorId) {
        let mut inner = self.lock();
        if inner
            .supervisors
            .get(path)
            .is_some_and(|s| s.get_id() == id)
        {
            inner.supervisors.remove(path);
        }
    }

    /// Path of the running supervisor whose actor id is `id`.
    pub(crate) fn supervisor_path(&self, id: ActorId) -> Option<String> {
        self.lock()
            .supervisors
            .iter()
            .find(|(_, s)| s.get_id() == id)
            .map(|(p, _)| p.clone())
    }

    pub(crate) fn set_status(&self, path: &str, status: ChildState) {
        self.with_entry(path, |e| e.status = status);
    }

    pub(crate) fn note_failure(&self, path: &str, status: ChildState, reason: &str) {
        self.with_entry(path, |e| {
            e.status = status;
            e.last_failure = Some(reason.to_string());
            e.last_failure_ms = Some(state::now_ms());
        });
    }

    /// Rows strictly below `path` that still look alive become `Stopped`.
    pub(crate) fn mark_subtree_stopped(&self, path: &str) {
        let prefix = format!("{path}/");
        let mut inner = self.lock();
        for e in inner.entries.iter_mut() {
            if e.path.starts_with(&prefix)
                && matches!(
                    e.status,
                    ChildState::Starting | ChildState::Running | ChildState::Restarting
                )
            {
                e.status = ChildState::Stopped;
            }
        }
    }

    pub(crate) fn note_restarted(&self, path: &str) {
        self.with_entry(path, |e| {
            e.status = ChildState::Running;
            e.restarts += 1;
        });
    }
}
