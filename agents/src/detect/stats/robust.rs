//! Robust per-stream baseline for one univariate series.
//!
//! The forecast is Holt's linear smoothing (level + trend), optionally with
//! additive seasonality (Holt–Winters, one offset per phase, learned from
//! the second season on, once the trend has settled). A linear drift
//! is therefore forecast exactly and never alarms; a constant series has a
//! zero residual. The residual is scaled by an exponentially weighted mean
//! absolute deviation (a robust spread, about 0.8σ for Gaussian noise) with
//! a floor relative to the level and to the trend, so float round-off on a
//! constant series, or the smoothing settling on a steep drift, cannot look
//! like an anomaly.
//!
//! Robustness: the state is updated with the residual clipped to
//! `clip × scale` (a Huber-style update), so one spike barely moves the
//! baseline while a lasting level shift is absorbed within tens of points.
//!
//! Two signals come out per point:
//! - `z`: |residual| / long-run scale (spikes, level shifts: flagged on the
//!   first shifted point);
//! - `vol`: short-run / long-run spread ratio (variance changes).
//!
//! Warm-up: no score above 0 for the first `warmup` points.
//!
//! Memory per stream: 10 `f64` + 1 `u64` + `season` `f64` (the phase
//! offsets, `season ≤ MAX_SEASON`), plus the `Vec` header: ≤ 112 B +
//! 8·season B.

use serde::{Deserialize, Serialize};

/// Longest supported season (one day of one-minute points).
pub const MAX_SEASON: usize = 1440;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RobustConfig {
    /// Level smoothing.
    pub alpha: f64,
    /// Trend smoothing.
    pub beta: f64,
    /// Seasonal smoothing (used when `season > 1`).
    pub gamma: f64,
    /// Season length in points; 0 or 1 = no seasonality.
    pub season: usize,
    /// Smoothing of the long-run spread.
    pub spread_long: f64,
    /// Smoothing of the short-run spread (variance changes).
    pub spread_short: f64,
    /// Points before any score is given.
    pub warmup: u64,
    /// Residuals are clipped at `clip × scale` before updating the state.
    pub clip: f64,
    /// `z` at which the point score is 0.5.
    pub z_mid: f64,
    /// Spread ratio at which the variance score is 0.5.
    pub vol_mid: f64,
    /// Heavy-tail adaptation: the point score's midpoint is at least
    /// `tail_mult ×` a running estimate of the stream's 99th percentile of
    /// `z`, so a spiky stream needs a bigger excursion than a smooth one.
    /// 0 = off.
    #[serde(default)]
    pub tail_mult: f64,
}

impl Default for RobustConfig {
    fn default() -> Self {
        RobustConfig {
            alpha: 0.6,
            beta: 0.02,
            gamma: 0.1,
            season: 0,
            spread_long: 0.005,
            spread_short: 0.2,
            warmup: 30,
            clip: 4.0,
            z_mid: 10.0,
            vol_mid: 4.0,
            tail_mult: 1.5,
        }
    }
}

impl RobustConfig {
    pub fn validate(&self) -> Result<(), String> {
        let unit = |v: f64| v > 0.0 && v <= 1.0;
        let mut errs = Vec::new();
        for (name, v) in [
            ("alpha", self.alpha),
            ("beta", self.beta),
            ("gamma", self.gamma),
            ("spread_long", self.spread_long),
            ("spread_short", self.spread_short),
        ] {
            if !unit(v) {
                errs.push(format!("{name} must be in (0,1], got {v}"));
            }
        }
        if self.season > MAX_SEASON {
            errs.push(format!("season must be at most {MAX_SEASON}"));
        }
        if !(self.clip > 0.0 && self.z_mid > 0.0 && self.vol_mid > 1.0) {
            errs.push("clip and z_mid must be > 0, vol_mid > 1".into());
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }
}

/// What one point looked like against the baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RobustScore {
    /// Forecast for this point.
    pub expected: f64,
    /// |residual| in units of the long-run spread.
    pub z: f64,
    /// Short-run / long-run spread ratio.
    pub vol: f64,
    /// Calibrated score in [0,1] (0 during warm-up).
    pub score: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RobustDetector {
    cfg: RobustConfig,
    n: u64,
    level: f64,
    trend: f64,
    spread: f64,
    spread_s: f64,
    /// Running 99th percentile of `z` (stochastic quantile estimate).
    #[serde(default)]
    zq: f64,
    seasonal: Vec<f64>,
}

/// Smooth monotone map of a non-negative statistic to [0,1]: 0.5 at `mid`,
/// steep around it (x⁴ / (x⁴ + mid⁴)).
pub fn squash(x: f64, mid: f64) -> f64 {
    if !x.is_finite() {
        return if x.is_nan() { 0.0 } else { 1.0 };
    }
    let r = (x.max(0.0) / mid).powi(4);
    (r / (1.0 + r)).clamp(0.0, 1.0)
}

impl RobustDetector {
    pub fn new(cfg: RobustConfig) -> Self {
        let season = if cfg.season > 1 { cfg.season } else { 0 };
        RobustDetector {
            cfg,
            n: 0,
            level: 0.0,
            trend: 0.0,
            spread: 0.0,
            spread_s: 0.0,
            zq: 1.0,
            seasonal: vec![0.0; season],
        }
    }

    pub fn config(&self) -> &RobustConfig {
        &self.cfg
    }

    /// Points seen so far.
    pub fn count(&self) -> u64 {
        self.n
    }

    pub fn is_warm(&self) -> bool {
        self.n >= self.cfg.warmup
    }

    /// Current long-run spread (after its floor).
    pub fn scale(&self) -> f64 {
        self.spread.max(self.floor())
    }

    /// A spread this small is numerical, not noise: a millionth of the
    /// level, and a thousandth of the per-point trend (a forecast off by
    /// that on a steep drift is the smoothing settling, not news).
    fn floor(&self) -> f64 {
        1e-6 * self.level.abs() + 1e-3 * self.trend.abs() + 1e-9
    }

    fn phase(&self) -> usize {
        if self.seasonal.is_empty() {
            0
        } else {
            (self.n % self.seasonal.len() as u64) as usize
        }
    }

    /// Forecast for the next point.
    pub fn expected(&self) -> f64 {
        let s = self.seasonal.get(self.phase()).copied().unwrap_or(0.0);
        self.level + self.trend + s
    }

    /// Score `x` against the baseline, then learn from it. Non-finite
    /// values are scored 0 and not learned.
    pub fn update(&mut self, x: f64) -> RobustScore {
        if !x.is_finite() {
            return RobustScore {
                expected: self.expected(),
                z: 0.0,
                vol: 1.0,
                score: 0.0,
            };
        }
        let c = &self.cfg;
        if self.n == 0 {
            self.level = x;
            self.n = 1;
            return RobustScore {
                expected: x,
                z: 0.0,
                vol: 1.0,
                score: 0.0,
            };
        }
        if self.n == 1 {
            self.trend = if self.seasonal.is_empty() {
                x - self.level
            } else {
                0.0
            };
            let r = (x - self.level).abs();
            self.spread = r;
            self.spread_s = r;
            self.level = x;
            self.n = 2;
            return RobustScore {
                expected: x,
                z: 0.0,
                vol: 1.0,
                score: 0.0,
            };
        }
        let phase = self.phase();
        let seas = self.seasonal.get(phase).copied().unwrap_or(0.0);
        let expected = self.level + self.trend + seas;
        let resid = x - expected;
        let scale = self.scale();
        let z = resid.abs() / scale;
        let vol = self.spread_s.max(self.floor()) / scale;
        let warm = self.n >= c.warmup;
        let mid = c.z_mid.max(c.tail_mult * self.zq);
        let score = if warm {
            squash(z, mid).max(squash(vol - 1.0, c.vol_mid - 1.0))
        } else {
            0.0
        };

        // Learn with the clipped residual so a spike cannot drag the baseline.
        let lim = c.clip * scale;
        let r = resid.clamp(-lim, lim);
        let xc = expected + r;
        let prev_level = self.level;
        self.level = c.alpha * (xc - seas) + (1.0 - c.alpha) * (self.level + self.trend);
        // During warm-up the trend is a running mean of level steps, so a
        // noisy first difference cannot leave a lasting false trend.
        let beta = if warm {
            c.beta
        } else {
            (1.0 / self.n as f64).max(c.beta)
        };
        self.trend = beta * (self.level - prev_level) + (1.0 - beta) * self.trend;
        // Offsets are learned from the second season on: in the first the
        // trend is still being learned, and its error, absorbed into the
        // offsets, would come back once a season long after the spread has
        // shrunk to fit (a bump that grows in z on a pure drift).
        let second_season = self.n >= self.seasonal.len() as u64;
        if let Some(s) = self.seasonal.get_mut(phase)
            && second_season
        {
            *s = c.gamma * (xc - self.level) + (1.0 - c.gamma) * *s;
        }
        // Spreads learn from the unclipped magnitude, capped higher, so a
        // variance change shows in the short spread at once.
        let a = resid.abs().min(4.0 * lim);
        self.spread_s += c.spread_short * (a - self.spread_s);
        let al = resid.abs().min(lim);
        let sl = if warm {
            c.spread_long
        } else {
            // Faster during warm-up so the scale is meaningful when scoring starts.
            (1.0 / self.n as f64).max(0.1).max(c.spread_long)
        };
        self.spread += sl * (al - self.spread);
        // Stochastic 99th-percentile tracking, step proportional to the estimate.
        let step = 0.05 * (self.zq + 0.1);
        self.zq += if z.min(100.0) > self.zq {
            0.99 * step
        } else {
            -0.01 * step
        };
        self.zq = self.zq.max(0.0);
        self.n += 1;
        RobustScore {
            expected,
            z,
            vol,
            score,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn noise(seed: u64, n: usize, sd: f64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                // Sum of uniforms: near-Gaussian, bounded.
                let u: f64 = (0..6).map(|_| rng.random::<f64>() - 0.5).sum();
                u * sd * (2.0f64).sqrt()
            })
            .collect()
    }

    fn max_score(d: &mut RobustDetector, xs: &[f64]) -> f64 {
        xs.iter().map(|&x| d.update(x).score).fold(0.0, f64::max)
    }

    /// Index (relative to `from`) of the first point scoring ≥ 0.5.
    fn first_alarm(d: &mut RobustDetector, xs: &[f64], from: usize) -> Option<usize> {
        let mut hit = None;
        for (i, &x) in xs.iter().enumerate() {
            let s = d.update(x).score;
            if i >= from && s >= 0.5 && hit.is_none() {
                hit = Some(i - from);
            }
        }
        hit
    }

    #[test]
    fn warm_up_never_scores() {
        let mut d = RobustDetector::new(RobustConfig::default());
        let xs = [1.0, 100.0, -50.0, 1e6, 3.0];
        assert_eq!(max_score(&mut d, &xs), 0.0);
    }

    #[test]
    fn noisy_stationary_series_stays_quiet() {
        let mut d = RobustDetector::new(RobustConfig::default());
        let xs: Vec<f64> = noise(7, 5000, 1.0).iter().map(|e| 50.0 + e).collect();
        assert!(max_score(&mut d, &xs) < 0.5);
    }

    #[test]
    fn spike_is_flagged_on_the_spike_itself() {
        let mut d = RobustDetector::new(RobustConfig::default());
        let mut xs: Vec<f64> = noise(1, 600, 1.0).iter().map(|e| 10.0 + e).collect();
        xs[400] += 15.0;
        assert_eq!(first_alarm(&mut d, &xs, 400), Some(0));
    }

    #[test]
    fn level_shift_is_flagged_on_the_first_shifted_point() {
        let mut d = RobustDetector::new(RobustConfig::default());
        let mut xs: Vec<f64> = noise(2, 800, 1.0).iter().map(|e| 10.0 + e).collect();
        for x in &mut xs[500..] {
            *x += 12.0;
        }
        assert_eq!(first_alarm(&mut d, &xs, 500), Some(0));
        // ... and is absorbed into the baseline afterwards.
        let mut d = RobustDetector::new(RobustConfig::default());
        let scores: Vec<f64> = xs.iter().map(|&x| d.update(x).score).collect();
        assert!(scores[700..].iter().all(|&s| s < 0.5));
    }

    #[test]
    fn variance_change_is_flagged_within_10_points() {
        let mut d = RobustDetector::new(RobustConfig::default());
        let base = noise(3, 1000, 1.0);
        let xs: Vec<f64> = base
            .iter()
            .enumerate()
            .map(|(i, e)| 10.0 + if i >= 600 { 8.0 * e } else { *e })
            .collect();
        let hit = first_alarm(&mut d, &xs, 600).expect("variance change detected");
        assert!(hit <= 10, "detected after {hit} points");
    }

    #[test]
    fn seasonal_pattern_is_learned() {
        let cfg = RobustConfig {
            season: 24,
            ..RobustConfig::default()
        };
        let mut d = RobustDetector::new(cfg);
        let e = noise(4, 24 * 200, 0.2);
        let xs: Vec<f64> = (0..24 * 200)
            .map(|i| 10.0 + 5.0 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin() + e[i])
            .collect();
        let scores: Vec<f64> = xs.iter().map(|&x| d.update(x).score).collect();
        assert!(scores[24 * 100..].iter().all(|&s| s < 0.5));
    }

    #[test]
    fn non_finite_values_are_ignored() {
        let mut d = RobustDetector::new(RobustConfig::default());
        for _ in 0..100 {
            d.update(1.0);
        }
        let before = d.clone();
        assert_eq!(d.update(f64::NAN).score, 0.0);
        assert_eq!(d.update(f64::INFINITY).score, 0.0);
        assert_eq!(d, before);
    }

    proptest! {
        #[test]
        fn constant_series_never_alarms(c in -1e9f64..1e9, n in 1usize..2000) {
            let mut d = RobustDetector::new(RobustConfig::default());
            for _ in 0..n {
                let s = d.update(c).score;
                prop_assert!(s < 1e-9, "scored {}", s);
            }
        }

        #[test]
        fn linear_drift_never_alarms(a in -1e6f64..1e6, b in -1e3f64..1e3, n in 1usize..2000) {
            let mut d = RobustDetector::new(RobustConfig::default());
            for i in 0..n {
                let s = d.update(a + b * i as f64).score;
                prop_assert!(s < 0.5, "point {} scored {}", i, s);
            }
        }

        #[test]
        fn scores_stay_in_unit_interval(xs in proptest::collection::vec(-1e12f64..1e12, 1..500)) {
            let mut d = RobustDetector::new(RobustConfig { warmup: 3, ..RobustConfig::default() });
            for x in xs {
                let s = d.update(x).score;
                prop_assert!((0.0..=1.0).contains(&s));
            }
        }
    }
}
