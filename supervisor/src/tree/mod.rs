//! # tree: OTP-style supervision on top of ractor
//!
//! ractor gives links and supervision events but no restart strategies;
//! this module adds them. INTERFACE CONTRACT (used by startup.rs; keep the
//! public names and signatures):
//!
//! - [`ChildSpec`]: id, [`Restart`] type (permanent / transient / temporary),
//!   shutdown timeout (then kill), a `start` closure that spawns the child
//!   linked to the given supervisor cell and returns its cell, and optional
//!   [`agents::health::StageHealth`] used for stuck detection and counters.
//! - [`SupervisorSpec`]: name, [`Strategy`] (one-for-one / rest-for-one),
//!   [`Intensity`] (max restarts per period), children started in order and
//!   stopped in reverse, optional `stuck_after` (a child with pending work
//!   and no progress for that long is killed and restarted).
//! - [`Registry`]: shared status of every child (path, status, restarts,
//!   last failure, events processed), read by `/observability/agents`.
//! - [`start_root`] → [`RootHandle`]: `exited()` resolves when the root
//!   gives up (intensity exceeded) with the reason; `shutdown()` stops
//!   children in reverse order within their timeouts.
//! - [`supervisor_child`]: a nested supervisor as a child spec; when its
//!   intensity is exceeded it stops its children and fails, which its
//!   parent sees as a child failure (escalation).
//!
//! ## Decisions
//!
//! - Children are spawned unnamed (names are process-global in ractor).
//! - A supervisor tells its own stops from real exits by instance: a
//!   supervision event from an instance that is no longer the child's
//!   current one (stopped or replaced by the supervisor) is ignored.
//! - A transient child is restarted after `ActorFailed` or a kill
//!   (`ActorTerminated` with reason "killed"), not after a normal stop.
//! - A child failing its *initial* start fails the supervisor's start (OTP);
//!   a failed *restart* counts toward the intensity and is retried through a
//!   message, so the handler never loops.
//! - Escalation is an `Err` returned from the supervisor's handler (no
//!   panic): its parent receives `ActorFailed` with the reason.
//! - Stopping (restart, escalation, shutdown) runs inside the supervisor's
//!   handler, bounded by each child's shutdown timeout plus a kill.
//!
//! ## Layout
//!
//! - `spec`: [`ChildSpec`], [`SupervisorSpec`], [`Restart`], [`Strategy`],
//!   [`Intensity`].
//! - `intensity`: the restart window (pure).
//! - `registry`: [`Registry`], [`ChildStatus`], [`ChildState`].
//! - `supervisor`: the supervisor actor and [`supervisor_child`].
//! - `root`: [`start_root`], [`RootHandle`], [`RootExit`].

mod intensity;
mod registry;
mod root;
mod spec;
mod supervisor;

pub use registry::{ChildState, ChildStatus, Registry};
pub use root::{RootExit, RootHandle, start_root};
pub use spec::{
    ChildSpec, DEFAULT_SHUTDOWN, Intensity, Restart, StartFn, StartFuture, Strategy, SupervisorSpec,
};
pub use supervisor::{SupervisorMsg, supervisor_child};

#[cfg(test)]
mod tests;
