//! Turning raw telemetry into the signals the scorer reads: robust
//! change detection on metric series and novelty of log lines against a
//! baseline. Used by the evaluation (which replays recorded timelines) and
//! by anything that has raw series rather than the pipeline's anomalies.

use std::collections::HashSet;

use super::kb::Dir;

/// A metric went anomalous.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricShift {
    pub dir: Dir,
    /// In [0, 1].
    pub strength: f64,
    pub onset_ms: i64,
    /// Largest robust z-score seen after the baseline.
    pub z: f64,
}

/// Robust z-score threshold and how many consecutive points must exceed it.
pub const Z_THRESHOLD: f64 = 5.0;
pub const RUN: usize = 3;

/// Median and scale (1.4826·MAD, floored at 1% of |median| and 1e-9).
pub fn robust_center(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let med = v[v.len() / 2];
    let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad = dev[dev.len() / 2];
    Some((med, (1.4826 * mad).max(0.01 * med.abs()).max(1e-9)))
}

/// Compare the points at or after `from_ms` with the points before it.
/// A shift needs [`RUN`] consecutive points beyond [`Z_THRESHOLD`] in the
/// same direction; `max` (a known ceiling) turns a run at ≥ 98% of it into
/// [`Dir::Max`].
pub fn metric_shift(points: &[(i64, f64)], from_ms: i64, max: Option<f64>) -> Option<MetricShift> {
    let base: Vec<f64> = points
        .iter()
        .filter(|(t, _)| *t < from_ms)
        .map(|p| p.1)
        .collect();
    if base.len() < 5 {
        return None;
    }
    let (med, scale) = robust_center(&base)?;
    let after: Vec<(i64, f64)> = points
        .iter()
        .copied()
        .filter(|(t, _)| *t >= from_ms)
        .collect();
    if let Some(m) = max {
        let mut run = 0;
        for (i, (_, v)) in after.iter().enumerate() {
            run = if *v >= 0.98 * m { run + 1 } else { 0 };
            if run >= RUN {
                return Some(MetricShift {
                    dir: Dir::Max,
                    strength: 1.0,
                    onset_ms: after[i + 1 - RUN].0,
                    z: (v - med) / scale,
                });
            }
        }
    }
    let mut run = 0;
    let mut sign = 0.0f64;
    let mut found: Option<(usize, f64)> = None;
    let mut best_z: f64 = 0.0;
    for (i, (_, v)) in after.iter().enumerate() {
        let z = (v - med) / scale;
        if z.abs() >= Z_THRESHOLD && (run == 0 || z.signum() == sign) {
            run += 1;
            sign = z.signum();
        } else if z.abs() >= Z_THRESHOLD {
            run = 1;
            sign = z.signum();
        } else {
            run = 0;
        }
        if run >= RUN && found.is_none() {
            found = Some((i + 1 - RUN, sign));
        }
        if found.is_some_and(|(_, s)| z.signum() == s) {
            best_z = best_z.max(z.abs());
        }
    }
    let (start, sign) = found?;
    Some(MetricShift {
        dir: if sign > 0.0 { Dir::Up } else { Dir::Down },
        strength: (0.5 + (best_z - Z_THRESHOLD) / 20.0).clamp(0.5, 1.0),
        onset_ms: after[start].0,
        z: best_z * sign,
    })
}

/// A log line reduced to its shape: digits, hex ids and quoted values
/// replaced, so "took 5012ms" and "took 311ms" are the same template.
pub fn shape(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_num = false;
    for ch in message.chars() {
        if ch.is_ascii_digit() {
            if !in_num {
                out.push('#');
                in_num = true;
            }
        } else {
            in_num = false;
            out.push(ch.to_ascii_lowercase());
        }
    }
    out
}

/// Lines seen during the baseline: a line of the same shape afterwards is
/// chronic, not news.
#[derive(Debug, Default)]
pub struct Novelty {
    known: HashSet<(String, String)>,
}

impl Novelty {
    pub fn learn(&mut self, service: &str, message: &str) {
        self.known.insert((service.to_string(), shape(message)));
    }
    pub fn is_new(&self, service: &str, message: &str) -> bool {
        !self.known.contains(&(service.to_string(), shape(message)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize, f: impl Fn(usize) -> f64) -> Vec<(i64, f64)> {
        (0..n).map(|i| (i as i64 * 1000, f(i))).collect()
    }

    #[test]
    fn a_sustained_step_is_a_shift_and_a_blip_is_not() {
        let noise = |i: usize| ((i * 7919) % 13) as f64 * 0.1;
        let step = series(100, |i| 50.0 + noise(i) + if i >= 60 { 30.0 } else { 0.0 });
        let s = metric_shift(&step, 40_000, None).unwrap();
        assert_eq!(s.dir, Dir::Up);
        assert_eq!(s.onset_ms, 60_000);
        let blip = series(100, |i| 50.0 + noise(i) + if i == 70 { 30.0 } else { 0.0 });
        assert!(metric_shift(&blip, 40_000, None).is_none());
        let drop = series(100, |i| 50.0 + noise(i) - if i >= 80 { 50.0 } else { 0.0 });
        assert_eq!(metric_shift(&drop, 40_000, None).unwrap().dir, Dir::Down);
        let full = series(100, |i| if i >= 70 { 100.0 } else { 40.0 + noise(i) });
        assert_eq!(
            metric_shift(&full, 40_000, Some(100.0)).unwrap().dir,
            Dir::Max
        );
    }

    #[test]
    fn chronic_lines_are_not_news() {
        let mut n = Novelty::default();
        n.learn("api", "request took 5012ms for user 17");
        assert!(!n.is_new("api", "request took 311ms for user 9"));
        assert!(n.is_new("api", "connection refused"));
        assert!(n.is_new("web", "request took 311ms for user 9"));
    }
}
