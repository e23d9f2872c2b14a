//! Progress counters a stage keeps so that its supervisor can tell a busy
//! stage from a stuck one, and operators can see what it has done.

use std::sync::atomic::{AtomicU64, Ordering};

/// Shared between a stage's senders, the stage itself and its supervisor.
/// Survives restarts of the stage (it belongs to the child spec).
#[derive(Debug, Default)]
pub struct StageHealth {
    /// Messages sent to the stage.
    enqueued: AtomicU64,
    /// Messages the stage finished handling.
    handled: AtomicU64,
    /// Events (log lines, samples) the stage processed.
    events: AtomicU64,
    /// Wall-clock ms of the last finished message.
    last_progress_ms: AtomicU64,
}

impl StageHealth {
    pub fn note_enqueued(&self) {
        self.enqueued.fetch_add(1, Ordering::Relaxed);
    }

    /// Call at the end of handling one message that covered `events` events.
    pub fn note_handled(&self, events: u64) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
        self.last_progress_ms
            .store(state::now_ms().max(0) as u64, Ordering::Relaxed);
    }

    /// Messages sent but not yet handled.
    pub fn pending(&self) -> u64 {
        self.enqueued
            .load(Ordering::Relaxed)
            .saturating_sub(self.handled.load(Ordering::Relaxed))
    }

    /// Forget queued work (the mailbox died with the old actor).
    pub fn reset_pending(&self) {
        self.handled
            .store(self.enqueued.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    pub fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    pub fn last_progress_ms(&self) -> i64 {
        self.last_progress_ms.load(Ordering::Relaxed) as i64
    }

    /// Mark "now" as progress (a freshly started stage has not stalled yet).
    pub fn touch(&self) {
        self.last_progress_ms
            .store(state::now_ms().max(0) as u64, Ordering::Relaxed);
    }
}
