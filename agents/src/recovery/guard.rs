//! Guardrails, pure: given what is about to be done and what has been
//! done, decide whether to execute, only log (dry-run), wait for approval,
//! or skip and why. Time is passed in (ms), so every rule is testable
//! without clocks.
//!
//! In order: silenced targets and a chaos abort skip; the global storm
//! breaker (too many actions across targets in a period) halts automation
//! and pages a human once until [`Guard::reset_storm`]; a target's circuit
//! breaker (consecutive failures) opens for a cooldown, then lets one trial
//! through, and pages once per opening; exponential backoff after each
//! failure; a budget of attempts per target per period; then the mode
//! (dry-run, approve, auto) and the risk threshold.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;
use state::model::Risk;

use super::config::{Mode, RecoveryConfig};

/// Why an action was not run.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Skip {
    Silenced,
    ChaosAbort,
    StormHalted,
    BreakerOpen { until_ms: i64 },
    Backoff { until_ms: i64 },
    BudgetExhausted { until_ms: i64 },
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::Silenced => write!(f, "target is silenced"),
            Skip::ChaosAbort => write!(f, "a chaos experiment's abort condition is hit"),
            Skip::StormHalted => write!(f, "storm breaker open: automation halted until reset"),
            Skip::BreakerOpen { until_ms } => write!(f, "circuit breaker open until {until_ms}"),
            Skip::Backoff { until_ms } => write!(f, "backing off until {until_ms}"),
            Skip::BudgetExhausted { until_ms } => {
                write!(f, "attempt budget spent until {until_ms}")
            }
        }
    }
}

/// What to do with one action.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Execute,
    /// Dry-run: log what would run, run nothing.
    DryRun,
    AwaitApproval {
        expires_ms: i64,
        why: String,
    },
    Skip(Skip),
}

/// A human must be told.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "page", rename_all = "snake_case")]
pub enum Page {
    /// Too many actions across targets: automation halted.
    Storm { actions: usize, period_ms: i64 },
    /// A target kept failing: its breaker opened.
    Breaker { target: String, failures: u32 },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Breaker {
    #[default]
    Closed,
    Open {
        until_ms: i64,
    },
    /// Cooldown over: one trial action may run.
    HalfOpen,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct TargetState {
    /// Start times of recent attempts (within the budget period).
    pub attempts: VecDeque<i64>,
    pub consecutive_failures: u32,
    pub last_attempt_ms: Option<i64>,
    pub breaker: Breaker,
    /// A page was sent for the current breaker opening.
    pub paged: bool,
}

/// Guardrail state; owned by the recovery actor.
#[derive(Clone, Debug, Serialize)]
pub struct Guard {
    #[serde(skip)]
    cfg: RecoveryConfig,
    pub mode: Mode,
    pub targets: HashMap<String, TargetState>,
    /// Start times of recent actions across all targets.
    pub storm_window: VecDeque<i64>,
    /// Automation halted by the storm breaker since this time.
    pub halted_since_ms: Option<i64>,
    pub chaos_abort: bool,
}

impl Guard {
    pub fn new(cfg: RecoveryConfig) -> Self {
        Self {
            mode: cfg.mode,
            cfg,
            targets: HashMap::new(),
            storm_window: VecDeque::new(),
            halted_since_ms: None,
            chaos_abort: false,
        }
    }

    pub fn config(&self) -> &RecoveryConfig {
        &self.cfg
    }

    fn prune(&mut self, now: i64) {
        let storm = self.cfg.storm.period.ms();
        while self.storm_window.front().is_some_and(|t| *t <= now - storm) {
            self.storm_window.pop_front();
        }
        let period = self.cfg.budget.period.ms();
        for t in self.targets.values_mut() {
            while t.attempts.front().is_some_and(|a| *a <= now - period) {
                t.attempts.pop_front();
            }
        }
    }

    /// Decide about an action of `risk` on `target`. `approved` = an
    /// operator already approved this action. May trip the storm breaker,
    /// which returns a page (once per halt).
    pub fn decide(
        &mut self,
        target: &str,
        risk: Risk,
        needs_approval: bool,
        approved: bool,
        now: i64,
    ) -> (Decision, Option<Page>) {
        self.prune(now);
        if self.cfg.silenced.iter().any(|s| s == target) {
            return (Decision::Skip(Skip::Silenced), None);
        }
        if self.chaos_abort {
            return (Decision::Skip(Skip::ChaosAbort), None);
        }
        if self.halted_since_ms.is_some() {
            return (Decision::Skip(Skip::StormHalted), None);
        }
        if self.mode != Mode::DryRun
            && self.storm_window.len() >= self.cfg.storm.max_actions as usize
        {
            self.halted_since_ms = Some(now);
            let page = Page::Storm {
                actions: self.storm_window.len(),
                period_ms: self.cfg.storm.period.ms(),
            };
            return (Decision::Skip(Skip::StormHalted), Some(page));
        }
        let t = self.targets.entry(target.to_string()).or_default();
        if let Breaker::Open { until_ms } = t.breaker {
            if now < until_ms {
                return (Decision::Skip(Skip::BreakerOpen { until_ms }), None);
            }
            t.breaker = Breaker::HalfOpen;
        }
        if t.consecutive_failures > 0
            && let Some(last) = t.last_attempt_ms
        {
            let shift = (t.consecutive_failures - 1).min(30);
            let wait = self
                .cfg
                .budget
                .backoff_base
                .ms()
                .saturating_mul(1i64 << shift)
                .min(self.cfg.budget.backoff_max.ms());
            if now < last + wait {
                return (
                    Decision::Skip(Skip::Backoff {
                        until_ms: last + wait,
                    }),
                    None,
                );
            }
        }
        if t.attempts.len() >= self.cfg.budget.max_attempts as usize {
            let until_ms = t.attempts.front().copied().unwrap_or(now) + self.cfg.budget.period.ms();
            return (Decision::Skip(Skip::BudgetExhausted { until_ms }), None);
        }
        if self.mode == Mode::DryRun {
            return (Decision::DryRun, None);
        }
        let why = if self.mode == Mode::Approve {
            Some("mode is approve".to_string())
        } else if risk >= self.cfg.approval_risk {
            Some(format!(
                "risk {risk:?} is at or above the approval threshold"
            ))
        } else if needs_approval {
            Some("the plan asks for approval".to_string())
        } else {
            None
        };
        match why {
            Some(why) if !approved => (
                Decision::AwaitApproval {
                    expires_ms: now + self.cfg.approval_ttl.ms(),
                    why,
                },
                None,
            ),
            _ => (Decision::Execute, None),
        }
    }

    /// An action on `target` starts now (counts toward budget and storm).
    pub fn started(&mut self, target: &str, now: i64) {
        self.prune(now);
        let t = self.targets.entry(target.to_string()).or_default();
        t.attempts.push_back(now);
        t.last_attempt_ms = Some(now);
        self.storm_window.push_back(now);
    }

    /// The action on `target` ended (verified or not). Opening a breaker
    /// pages once per opening.
    pub fn finished(&mut self, target: &str, success: bool, now: i64) -> Option<Page> {
        let failures = self.cfg.breaker.failures;
        let cooldown = self.cfg.breaker.cooldown.ms();
        let t = self.targets.entry(target.to_string()).or_default();
        if success {
            t.consecutive_failures = 0;
            t.breaker = Breaker::Closed;
            t.paged = false;
            return None;
        }
        t.consecutive_failures += 1;
        let trial_failed = t.breaker == Breaker::HalfOpen;
        if trial_failed || t.consecutive_failures >= failures {
            t.breaker = Breaker::Open {
                until_ms: now + cooldown,
            };
            if !t.paged {
                t.paged = true;
                return Some(Page::Breaker {
                    target: target.to_string(),
                    failures: t.consecutive_failures,
                });
            }
        }
        None
    }

    /// Operator reset of the storm breaker (and of every target breaker).
    pub fn reset_storm(&mut self) {
        self.halted_since_ms = None;
        self.storm_window.clear();
        for t in self.targets.values_mut() {
            t.breaker = Breaker::Closed;
            t.consecutive_failures = 0;
            t.paged = false;
        }
    }

    pub fn set_chaos_abort(&mut self, on: bool) {
        self.chaos_abort = on;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::config::Span;

    fn cfg(mode: Mode) -> RecoveryConfig {
        RecoveryConfig {
            mode,
            ..RecoveryConfig::default()
        }
    }

    #[test]
    fn dry_run_is_the_default_and_executes_nothing() {
        let mut g = Guard::new(RecoveryConfig::default());
        assert_eq!(
            g.decide("api", Risk::Low, false, true, 0).0,
            Decision::DryRun
        );
    }

    #[test]
    fn approval_is_needed_in_approve_mode_and_for_risky_actions() {
        let mut g = Guard::new(cfg(Mode::Approve));
        assert!(matches!(
            g.decide("api", Risk::Low, false, false, 0).0,
            Decision::AwaitApproval {
                expires_ms: 900_000,
                ..
            }
        ));
        assert_eq!(
            g.decide("api", Risk::Low, false, true, 0).0,
            Decision::Execute
        );
        let mut g = Guard::new(cfg(Mode::Auto));
        assert_eq!(
            g.decide("api", Risk::Medium, false, false, 0).0,
            Decision::Execute
        );
        assert!(matches!(
            g.decide("api", Risk::High, false, false, 0).0,
            Decision::AwaitApproval { .. }
        ));
        assert!(matches!(
            g.decide("api", Risk::Low, true, false, 0).0,
            Decision::AwaitApproval { .. }
        ));
    }

    #[test]
    fn silenced_targets_and_chaos_abort_are_skipped() {
        let mut c = cfg(Mode::Auto);
        c.silenced = vec!["db".into()];
        let mut g = Guard::new(c);
        assert_eq!(
            g.decide("db", Risk::Low, false, true, 0).0,
            Decision::Skip(Skip::Silenced)
        );
        g.set_chaos_abort(true);
        assert_eq!(
            g.decide("api", Risk::Low, false, true, 0).0,
            Decision::Skip(Skip::ChaosAbort)
        );
    }

    #[test]
    fn failures_back_off_exponentially() {
        let mut c = cfg(Mode::Auto);
        c.breaker.failures = 100;
        c.budget.max_attempts = 100;
        let mut g = Guard::new(c);
        g.started("api", 0);
        g.finished("api", false, 10);
        assert_eq!(
            g.decide("api", Risk::Low, false, false, 4_000).0,
            Decision::Skip(Skip::Backoff { until_ms: 5_000 })
        );
        assert_eq!(
            g.decide("api", Risk::Low, false, false, 5_000).0,
            Decision::Execute
        );
        g.started("api", 5_000);
        g.finished("api", false, 5_010);
        assert_eq!(
            g.decide("api", Risk::Low, false, false, 14_000).0,
            Decision::Skip(Skip::Backoff { until_ms: 15_000 })
        );
    }

    /// A target failing every 3 s for 5 minutes gets at most the budgeted
    /// attempts; its breaker opens and a human is paged exactly once.
    #[test]
    fn flapping_target_gets_the_budget_then_the_breaker_and_one_page() {
        let mut g = Guard::new(cfg(Mode::Auto));
        let (mut executed, mut pages, mut breaker_skips) = (0, 0, 0);
        for i in 0..100 {
            let now = i * 3_000;
            let (d, p) = g.decide("api", Risk::Low, false, false, now);
            pages += p.is_some() as usize;
            match d {
                Decision::Execute => {
                    executed += 1;
                    g.started("api", now);
                    pages += g.finished("api", false, now + 500).is_some() as usize;
                }
                Decision::Skip(Skip::BreakerOpen { .. }) => breaker_skips += 1,
                _ => {}
            }
        }
        assert!(executed <= 3, "executed {executed}");
        assert_eq!(pages, 1);
        assert!(breaker_skips > 50);
    }

    #[test]
    fn breaker_lets_one_trial_through_after_cooldown_and_closes_on_success() {
        let mut c = cfg(Mode::Auto);
        c.breaker.failures = 1;
        c.breaker.cooldown = Span::secs(60);
        c.budget.backoff_base = Span::millis(1);
        let mut g = Guard::new(c);
        g.started("api", 0);
        assert!(g.finished("api", false, 0).is_some());
        assert!(matches!(
            g.decide("api", Risk::Low, false, false, 59_000).0,
            Decision::Skip(Skip::BreakerOpen { .. })
        ));
        assert_eq!(
            g.decide("api", Risk::Low, false, false, 60_000).0,
            Decision::Execute
        );
        g.started("api", 60_000);
        // The trial failed: open again, no second page.
        assert!(g.finished("api", false, 60_100).is_none());
        assert!(matches!(
            g.decide("api", Risk::Low, false, false, 61_000).0,
            Decision::Skip(Skip::BreakerOpen { .. })
        ));
        assert_eq!(
            g.decide("api", Risk::Low, false, false, 121_000).0,
            Decision::Execute
        );
        g.started("api", 121_000);
        assert!(g.finished("api", true, 121_100).is_none());
        assert_eq!(g.targets["api"].breaker, Breaker::Closed);
    }

    #[test]
    fn storm_breaker_halts_everything_pages_once_and_resets_by_operator() {
        let mut c = cfg(Mode::Auto);
        c.storm.max_actions = 5;
        let mut g = Guard::new(c);
        for i in 0..5 {
            let target = format!("svc{i}");
            assert_eq!(
                g.decide(&target, Risk::Low, false, false, i).0,
                Decision::Execute
            );
            g.started(&target, i);
            g.finished(&target, true, i);
        }
        let (d, page) = g.decide("svc9", Risk::Low, false, false, 10);
        assert_eq!(d, Decision::Skip(Skip::StormHalted));
        assert!(matches!(page, Some(Page::Storm { actions: 5, .. })));
        // Still halted later, without a second page, even after the window.
        let (d, page) = g.decide("svc9", Risk::Low, false, false, 3_600_000);
        assert_eq!((d, page), (Decision::Skip(Skip::StormHalted), None));
        g.reset_storm();
        assert_eq!(
            g.decide("svc9", Risk::Low, false, false, 3_600_001).0,
            Decision::Execute
        );
    }
}
