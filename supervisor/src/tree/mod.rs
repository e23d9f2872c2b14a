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
