//! Ranking the candidate fixes of a diagnosed cause by a smoothed success
//! estimate.
//!
//! For a fix of cause `c` on service `s`:
//!
//! ```text
//! global  ~ Beta(p·k + S_c, (1−p)·k + F_c)         p, k: catalogue prior and its strength
//! m       = mean(global)
//! local   ~ Beta(m·k_s + S_cs, (1−m)·k_s + F_cs)   k_s = min(successes+failures of global, 10) + k
//! expected_success = mean(local)   (or one draw from it with Thompson sampling)
//! ```
//!
//! so one success in one try is not 100%, a fix's record on this service
//! counts most, and a service with no record inherits the global estimate.
//! Fixes that failed for this incident or are in cooldown for the target
//! are skipped (and said so in the plan's reasons).

use rand::Rng;
use rand::distr::Distribution;
use state::model::{FixPlan, PlannedFix, TraceCarrier};
use state::trees::fix_stats::FixStat;

use crate::rca::kb::Cause;

/// What the ranker needs to know about the past, behind a trait so the pure
/// ranking is testable without a store.
pub trait History {
    fn stat(&self, cause: &str, fix: &str) -> FixStat;
    fn stat_for(&self, cause: &str, fix: &str, service: &str) -> FixStat;
    fn failed_for_incident(&self, incident: &str, fix: &str, target: &str) -> bool;
    fn last_attempt(&self, fix: &str, target: &str) -> Option<i64>;
}

#[derive(Clone, Debug)]
pub struct RankConfig {
    /// A fix tried on a target this recently (ms) is not proposed again for it.
    pub cooldown_ms: i64,
    /// Draw from the posterior instead of using its mean (exploration).
    pub thompson: bool,
}

impl Default for RankConfig {
    fn default() -> Self {
        Self {
            cooldown_ms: 10 * 60 * 1000,
            thompson: false,
        }
    }
}

/// Beta(α, β) parameters of a fix's success probability on `service`.
pub fn posterior(prior: f64, strength: f64, global: FixStat, local: FixStat) -> (f64, f64) {
    let a = prior * strength + global.successes as f64;
    let b = (1.0 - prior) * strength + global.failures as f64;
    let m = a / (a + b);
    let ks = ((global.successes + global.failures) as f64).min(10.0) + strength;
    (
        m * ks + local.successes as f64,
        (1.0 - m) * ks + local.failures as f64,
    )
}

fn uniform(rng: &mut impl Rng) -> f64 {
    let u: f64 = rand::distr::StandardUniform.sample(rng);
    u.max(f64::MIN_POSITIVE)
}

fn normal(rng: &mut impl Rng) -> f64 {
    // Box–Muller.
    let (u, v) = (uniform(rng), uniform(rng));
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Gamma(k, 1) by Marsaglia and Tsang (k < 1 via Gamma(k+1)·U^(1/k)).
fn gamma(rng: &mut impl Rng, k: f64) -> f64 {
    if k < 1.0 {
        return gamma(rng, k + 1.0) * uniform(rng).powf(1.0 / k);
    }
    let d = k - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = uniform(rng);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// One draw from Beta(a, b).
fn sample_beta(rng: &mut impl Rng, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    let y = gamma(rng, b);
    x / (x + y)
}

/// The plan for `incident` whose diagnosed root is `cause` on `service`.
/// Returns the plan (the caller sets its trace) and the reasons fixes
/// were skipped.
pub fn plan(
    incident: &str,
    cause: &Cause,
    service: &str,
    history: &impl History,
    now_ms: i64,
    cfg: &RankConfig,
    rng: &mut impl Rng,
) -> (FixPlan, Vec<String>) {
    let mut steps = Vec::new();
    let mut skipped = Vec::new();
    for f in &cause.def.fixes {
        if history.failed_for_incident(incident, &f.id, service) {
            skipped.push(format!(
                "{} on {service}: already failed for this incident",
                f.id
            ));
            continue;
        }
        if let Some(t) = history.last_attempt(&f.id, service)
            && now_ms - t < cfg.cooldown_ms
        {
            skipped.push(format!(
                "{} on {service}: in cooldown ({}s left)",
                f.id,
                (cfg.cooldown_ms - (now_ms - t)) / 1000
            ));
            continue;
        }
        let g = history.stat(&cause.def.id, &f.id);
        let l = history.stat_for(&cause.def.id, &f.id, service);
        let (a, b) = posterior(f.prior, f.prior_strength, g, l);
        let mean = a / (a + b);
        let score = if cfg.thompson {
            sample_beta(rng, a, b)
        } else {
            mean
        };
        steps.push((
            score,
            PlannedFix {
                fix: f.id.clone(),
                layer: f.layer,
                target: service.to_string(),
                expected_success: mean,
                risk: f.risk,
                needs_approval: f.needs_approval(),
                reason: format!(
                    "{}: {} of {} verified successes overall, {} of {} on {service}, prior {:.2} → {:.2}",
                    cause.def.name,
                    g.successes,
                    g.successes + g.failures,
                    l.successes,
                    l.successes + l.failures,
                    f.prior,
                    mean
                ),
            },
        ));
    }
    steps.sort_by(|x, y| {
        y.0.total_cmp(&x.0)
            .then(x.1.risk.cmp(&y.1.risk))
            .then(x.1.layer.cmp(&y.1.layer))
    });
    (
        FixPlan {
            incident_id: incident.to_string(),
            cause_id: Some(cause.def.id.clone()),
            service: service.to_string(),
            steps: steps.into_iter().map(|s| s.1).collect(),
            trace: TraceCarrier::default(),
        },
        skipped,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rca::kb::{CauseDef, FixDef, KnowledgeBase};
    use rand::SeedableRng;
    use state::model::{Layer, Risk};
    use std::collections::HashMap;

    #[derive(Default)]
    struct Mem {
        stats: HashMap<String, FixStat>,
        local: HashMap<String, FixStat>,
        failed: Vec<(String, String)>,
        last: HashMap<String, i64>,
    }

    impl History for Mem {
        fn stat(&self, _c: &str, fix: &str) -> FixStat {
            self.stats.get(fix).copied().unwrap_or_default()
        }
        fn stat_for(&self, _c: &str, fix: &str, _s: &str) -> FixStat {
            self.local.get(fix).copied().unwrap_or_default()
        }
        fn failed_for_incident(&self, i: &str, fix: &str, _t: &str) -> bool {
            self.failed.iter().any(|(a, b)| a == i && b == fix)
        }
        fn last_attempt(&self, fix: &str, _t: &str) -> Option<i64> {
            self.last.get(fix).copied()
        }
    }

    fn cause() -> Cause {
        let fix = |id: &str| FixDef {
            id: id.into(),
            layer: Layer::Service,
            risk: Risk::Low,
            prior: 0.5,
            prior_strength: 2.0,
            needs_approval: None,
        };
        let def = CauseDef {
            id: "c".into(),
            name: "C".into(),
            category: "x".into(),
            description: String::new(),
            position: Default::default(),
            kinds: vec![],
            evidence: vec!["log:x".into()],
            symptoms: vec![],
            against: vec![],
            fixes: vec![fix("lucky"), fix("proven"), fix("flaky")],
            weight: 1.0,
            pattern_weights: Default::default(),
            source: "builtin".into(),
        };
        KnowledgeBase::from_defs(1, vec![def]).unwrap().causes()[0].clone()
    }

    fn st(s: u64, f: u64) -> FixStat {
        FixStat {
            successes: s,
            failures: f,
            last_ms: 0,
        }
    }

    #[test]
    fn one_success_in_one_try_ranks_below_forty_in_fifty() {
        let mut h = Mem::default();
        h.stats.insert("lucky".into(), st(1, 0));
        h.stats.insert("proven".into(), st(40, 10));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (p, _) = plan(
            "i1",
            &cause(),
            "db",
            &h,
            0,
            &RankConfig::default(),
            &mut rng,
        );
        let order: Vec<&str> = p.steps.iter().map(|s| s.fix.as_str()).collect();
        assert_eq!(order[0], "proven", "{order:?}");
        let lucky = p.steps.iter().find(|s| s.fix == "lucky").unwrap();
        assert!(lucky.expected_success < 0.7 && lucky.expected_success > 0.5);
        assert_eq!(p.cause_id.as_deref(), Some("c"));
    }

    #[test]
    fn a_fix_that_failed_for_the_incident_or_is_cooling_down_is_not_proposed() {
        let mut h = Mem::default();
        h.failed.push(("i1".into(), "proven".into()));
        h.last.insert("flaky".into(), 1_000);
        let cfg = RankConfig {
            cooldown_ms: 60_000,
            thompson: false,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (p, skipped) = plan("i1", &cause(), "db", &h, 30_000, &cfg, &mut rng);
        let order: Vec<&str> = p.steps.iter().map(|s| s.fix.as_str()).collect();
        assert_eq!(order, vec!["lucky"]);
        assert_eq!(skipped.len(), 2);
        // Another incident may still use it; the cooldown ends.
        let (p, _) = plan("i2", &cause(), "db", &h, 120_000, &cfg, &mut rng);
        assert_eq!(p.steps.len(), 3);
    }

    #[test]
    fn the_service_record_counts_most() {
        let mut h = Mem::default();
        h.stats.insert("lucky".into(), st(30, 10));
        h.stats.insert("proven".into(), st(30, 10));
        h.local.insert("lucky".into(), st(0, 6));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (p, _) = plan("i", &cause(), "db", &h, 0, &RankConfig::default(), &mut rng);
        assert_eq!(p.steps[0].fix, "proven");
        assert_eq!(p.steps.last().unwrap().fix, "lucky");
    }

    #[test]
    fn thompson_draws_stay_in_range_and_follow_the_evidence() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut hi = 0.0;
        let mut lo = 0.0;
        for _ in 0..2000 {
            hi += sample_beta(&mut rng, 41.0, 11.0);
            lo += sample_beta(&mut rng, 0.5, 2.5);
        }
        let (hi, lo) = (hi / 2000.0, lo / 2000.0);
        assert!((hi - 41.0 / 52.0).abs() < 0.03, "{hi}");
        assert!((lo - 0.5 / 3.0).abs() < 0.03, "{lo}");
    }
}
