//! Restart intensity as a pure sliding window (no actor, no clock of its own).
//!
//! Input: the instant of each restart. Output: whether more than
//! `max_restarts` fell within the last `period` (the supervisor must give up).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::spec::Intensity;

#[derive(Debug)]
pub(crate) struct RestartWindow {
    limit: Intensity,
    recent: VecDeque<Instant>,
}

impl RestartWindow {
    pub(crate) fn new(limit: Intensity) -> Self {
        Self {
            limit,
            recent: VecDeque::new(),
        }
    }

    /// Records one restart at `now`; `true` when the intensity is exceeded.
    pub(crate) fn add(&mut self, now: Instant) -> bool {
        self.recent.push_back(now);
        while let Some(&oldest) = self.recent.front() {
            if now.saturating_duration_since(oldest) >= self.limit.period {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        self.recent.len() > self.limit.max_restarts as usize
    }

    pub(crate) fn period(&self) -> Duration {
        self.limit.period
    }

    pub(crate) fn max_restarts(&self) -> u32 {
        self.limit.max_restarts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(max_restarts: u32, secs: u64) -> RestartWindow {
        RestartWindow::new(Intensity {
            max_restarts,
            period: Duration::from_secs(secs),
        })
    }

    #[test]
    fn exceeded_only_after_more_than_max_within_period() {
        let t0 = Instant::now();
        let mut w = window(2, 10);
        assert!(!w.add(t0));
        assert!(!w.add(t0 + Duration::from_secs(1)));
        assert!(w.add(t0 + Duration::from_secs(2)));
    }

    #[test]
    fn old_restarts_leave_the_window() {
        let t0 = Instant::now();
        let mut w = window(1, 10);
        assert!(!w.add(t0));
        assert!(!w.add(t0 + Duration::from_secs(10)));
        assert!(!w.add(t0 + Duration::from_secs(20)));
        assert!(w.add(t0 + Duration::from_secs(21)));
    }

    #[test]
    fn zero_max_restarts_gives_up_at_the_first() {
        let mut w = window(0, 10);
        assert!(w.add(Instant::now()));
    }
}
