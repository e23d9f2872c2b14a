//! The root of the tree and the handle the binary holds.
//!
//! Input: the root [`SupervisorSpec`]. Output: a [`RootHandle`] whose
//! `exited()` resolves when the root stops (normally after `shutdown()`, or
//! because it gave up) and whose `shutdown()` stops the tree in reverse order.
//! A small watcher actor is the root's supervisor, so every way the root can
//! end (including a bug in the supervisor itself) reaches `exited()`.

use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RactorErr, SupervisionEvent};
use tokio::sync::watch;

use super::registry::Registry;
use super::spec::SupervisorSpec;
use super::supervisor::{KILL_WAIT, SupervisorMsg, spawn_supervisor};

/// How the root supervisor ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootExit {
    /// Stopped on request.
    Normal,
    /// Failed: restart intensity exceeded (the reason names the child and
    /// its last failure) or another failure of the supervisor itself.
    GaveUp(String),
}

/// Watches the root: receives its supervision event and publishes it.
struct RootWatch;

impl Actor for RootWatch {
    type Msg = ();
    type State = watch::Sender<Option<RootExit>>;
    type Arguments = watch::Sender<Option<RootExit>>;

    async fn pre_start(
        &self,
        _myself: ActorRef<()>,
        tx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<()>,
        evt: SupervisionEvent,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let exit = match evt {
            SupervisionEvent::ActorFailed(_, err) => RootExit::GaveUp(err.to_string()),
            SupervisionEvent::ActorTerminated(_, _, reason) => {
                if reason.as_deref() == Some("killed") {
                    RootExit::GaveUp("root supervisor killed".to_string())
                } else {
                    RootExit::Normal
                }
            }
            _ => return Ok(()),
        };
        tx.send_replace(Some(exit));
        myself.stop(None);
        Ok(())
    }
}

/// The running tree.
pub struct RootHandle {
    root: ActorRef<SupervisorMsg>,
    watcher: ActorCell,
    exit: watch::Receiver<Option<RootExit>>,
}

/// Starts the root supervisor and all its children in order. Fails (after
/// stopping what started) when a child fails its initial start.
pub async fn start_root(spec: SupervisorSpec, registry: Registry) -> anyhow::Result<RootHandle> {
    let (tx, exit) = watch::channel(None);
    let (watcher, _join) = Actor::spawn(None, RootWatch, tx)
        .await
        .map_err(|e| anyhow::anyhow!("root watcher failed to start: {e}"))?;
    let path = spec.name.clone();
    match spawn_supervisor(spec, registry, path, Some(watcher.get_cell())).await {
        Ok(root) => Ok(RootHandle {
            root,
            watcher: watcher.get_cell(),
            exit,
        }),
        Err(e) => {
            watcher.stop(None);
            Err(e)
        }
    }
}

impl RootHandle {
    /// The root supervisor's cell.
    pub fn cell(&self) -> ActorCell {
        self.root.get_cell()
    }

    /// Resolves when the root has stopped.
    pub async fn exited(&mut self) -> RootExit {
        match self.exit.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or(RootExit::Normal),
            Err(_) => RootExit::GaveUp("root watcher stopped without an exit".to_string()),
        }
    }

    /// The exit, if the root has already stopped.
    pub fn try_exit(&self) -> Option<RootExit> {
        self.exit.borrow().clone()
    }

    /// Stops the tree: each supervisor stops its children in reverse order,
    /// each within its shutdown timeout, then kill. Past `timeout` the whole
    /// tree is killed and an error returned.
    pub async fn shutdown(mut self, timeout: Duration) -> anyhow::Result<()> {
        let result = match self
            .root
            .stop_and_wait(Some("shutdown".to_string()), Some(timeout))
            .await
        {
            Ok(()) => Ok(()),
            Err(RactorErr::Timeout) => {
                // Kill cascades to every descendant.
                let _ = self.root.kill_and_wait(Some(KILL_WAIT)).await;
                Err(anyhow::anyhow!(
                    "tree did not stop within {timeout:?}; killed"
                ))
            }
            // Already stopped (it gave up earlier): nothing left to stop.
            Err(_) => Ok(()),
        };
        // The watcher hears about the root's end, then stops itself.
        let _ = tokio::time::timeout(KILL_WAIT, self.exit.wait_for(Option::is_some)).await;
        self.watcher.stop(None);
        result
    }
}
