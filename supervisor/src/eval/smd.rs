//! `supervisor eval smd`: the Server Machine Dataset (Su et al., KDD 2019).
//!
//! Per machine, the 38 metrics of each minute are one vector fed to the live
//! pipeline's [`VectorDetector`]: the train half is learned in order (no
//! labels used), then the test half is scored in order, one row at a time,
//! with the same periodic refits from the sliding reservoir (no look-ahead).
//!
//! Figures, per machine and overall (all machines' rows pooled):
//! - precision / recall / F1 point-wise: a row is detected when its score
//!   ≥ threshold;
//! - the same with point adjustment (PA): when any row of a labelled segment
//!   (a run of 1s in `test_label`) is detected, the whole segment counts as
//!   detected;
//! - at the detector's default threshold and at the best threshold (the one
//!   maximising that F1 over the candidate thresholds: every distinct score
//!   for point-wise F1, 400 score quantiles for PA F1);
//! - HitRate@100% / @150%: for every labelled row of an
//!   `interpretation_label` segment (0-based rows `start..end`, 1-based
//!   dimensions), the fraction of its ground-truth dimensions found among
//!   the top ⌊P·|truth|⌋ dimensions of the detector's ranked evidence,
//!   averaged over rows. The evidence of a row ranks every dimension by
//!   max(robust z / z_mid, |x − training median| / (robust spread ·
//!   deviation_mid)), averaged over the last `evidence_span` rows (see
//!   `VectorConfig`); it is causal, like the score.

use std::fs;
use std::path::{Path, PathBuf};

use agents::detect::stats::ensemble::{VectorConfig, VectorDetector};
use anyhow::Context;
use serde_json::json;

use super::nab::merge_json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory holding the data set (`train/`, `test/`, `test_label/`,
    /// `interpretation_label/`).
    #[arg(long)]
    pub data: PathBuf,
    /// Print the figures as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Detector settings overriding the defaults, as a JSON object merged
    /// into `VectorConfig`. One setting for every machine.
    #[arg(long)]
    pub config: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Prf {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

fn prf(tp: usize, fp: usize, fn_: usize, threshold: f64) -> Prf {
    let p = if tp + fp == 0 {
        0.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    let r = if tp + fn_ == 0 {
        0.0
    } else {
        tp as f64 / (tp + fn_) as f64
    };
    let f1 = if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    };
    Prf {
        threshold,
        precision: p,
        recall: r,
        f1,
    }
}

/// Runs of `true` in `labels` as half-open ranges.
pub fn segments(labels: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < labels.len() {
        if labels[i] {
            let s = i;
            while i < labels.len() && labels[i] {
                i += 1;
            }
            out.push((s, i));
        } else {
            i += 1;
        }
    }
    out
}

/// Point-wise P/R/F1 at `t`, optionally with point adjustment.
pub fn evaluate(scores: &[f64], labels: &[bool], t: f64, adjust: bool) -> Prf {
    let mut pred: Vec<bool> = scores.iter().map(|&s| s >= t).collect();
    if adjust {
        for (s, e) in segments(labels) {
            if pred[s..e].iter().any(|&p| p) {
                pred[s..e].iter_mut().for_each(|p| *p = true);
            }
        }
    }
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (&p, &l) in pred.iter().zip(labels) {
        match (p, l) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            _ => {}
        }
    }
    prf(tp, fp, fn_, t)
}

/// Best point-wise F1 over every distinct score (exact, one sort).
pub fn best_pointwise(scores: &[f64], labels: &[bool]) -> Prf {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let pos = labels.iter().filter(|&&l| l).count();
    let (mut tp, mut fp) = (0, 0);
    let mut best = Prf::default();
    let mut k = 0;
    while k < order.len() {
        let t = scores[order[k]];
        while k < order.len() && scores[order[k]] == t {
            if labels[order[k]] {
                tp += 1;
            } else {
                fp += 1;
            }
            k += 1;
        }
        let m = prf(tp, fp, pos - tp, t);
        if m.f1 > best.f1 {
            best = m;
        }
    }
    best
}

/// Best PA F1 over 400 quantiles of the scores.
pub fn best_adjusted(scores: &[f64], labels: &[bool]) -> Prf {
    let mut sorted: Vec<f64> = scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    let mut best = Prf::default();
    let n = sorted.len();
    if n == 0 {
        return best;
    }
    for q in 0..400 {
        let t = sorted[((q as f64 / 400.0) * (n - 1) as f64) as usize];
        let m = evaluate(scores, labels, t, true);
        if m.f1 > best.f1 {
            best = m;
        }
    }
    best
}

fn read_rows(path: &Path) -> anyhow::Result<Vec<Vec<f64>>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            l.split(',')
                .map(|v| v.trim().parse::<f64>())
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{}:{}: bad number", path.display(), i + 1))
        })
        .collect()
}

/// Rows `(first, last)` of a labelled segment and its 0-based dimensions.
type Segment = ((usize, usize), Vec<usize>);

/// `(rows, 0-based dimensions)` of each interpretation segment.
fn read_interpretation(path: &Path) -> anyhow::Result<Vec<Segment>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = || anyhow::anyhow!("{}:{}: expected start-end:d1,d2", path.display(), i + 1);
        let (range, dims) = line.split_once(':').ok_or_else(bad)?;
        let (s, e) = range.split_once('-').ok_or_else(bad)?;
        let dims = dims
            .split(',')
            .map(|d| d.trim().parse::<usize>().map(|d| d.saturating_sub(1)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad())?;
        out.push((
            (s.parse().map_err(|_| bad())?, e.parse().map_err(|_| bad())?),
            dims,
        ));
    }
    Ok(out)
}

/// HitRate@P over the rows of the interpretation segments.
pub fn hit_rate(
    ranking: &[Vec<usize>],
    truth: &[((usize, usize), Vec<usize>)],
    p: f64,
) -> (f64, usize) {
    let (mut sum, mut n) = (0.0, 0usize);
    for ((s, e), dims) in truth {
        if dims.is_empty() {
            continue;
        }
        let k = (p * dims.len() as f64).floor() as usize;
        for rank in ranking.iter().take(*e).skip(*s) {
            let top = &rank[..k.min(rank.len())];
            let hits = dims.iter().filter(|d| top.contains(d)).count();
            sum += hits as f64 / dims.len() as f64;
            n += 1;
        }
    }
    (if n == 0 { 0.0 } else { sum / n as f64 }, n)
}

pub fn vector_config(over: Option<&str>) -> anyhow::Result<VectorConfig> {
    let mut v = serde_json::to_value(VectorConfig::default())?;
    if let Some(o) = over {
        let o: serde_json::Value = serde_json::from_str(o).context("--config is not JSON")?;
        merge_json(&mut v, &o);
    }
    serde_json::from_value(v).context("--config")
}

struct Machine {
    name: String,
    scores: Vec<f64>,
    labels: Vec<bool>,
    ranking: Vec<Vec<usize>>,
    truth: Vec<((usize, usize), Vec<usize>)>,
    seconds: f64,
}

fn run_machine(args: &Args, cfg: &VectorConfig, name: &str) -> anyhow::Result<Option<Machine>> {
    let train_p = args.data.join("train").join(format!("{name}.txt"));
    let test_p = args.data.join("test").join(format!("{name}.txt"));
    if !train_p.exists() || !test_p.exists() {
        return Ok(None);
    }
    let train = read_rows(&train_p)?;
    let test = read_rows(&test_p)?;
    let labels: Vec<bool> =
        fs::read_to_string(args.data.join("test_label").join(format!("{name}.txt")))
            .with_context(|| format!("reading labels of {name}"))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.trim() == "1")
            .collect();
    if labels.len() != test.len() {
        anyhow::bail!(
            "{name}: {} labels for {} test rows",
            labels.len(),
            test.len()
        );
    }
    let interp = args
        .data
        .join("interpretation_label")
        .join(format!("{name}.txt"));
    let truth = if interp.exists() {
        read_interpretation(&interp)?
    } else {
        Vec::new()
    };
    let dims = test.first().map_or(0, Vec::len);
    let mut cfg = cfg.clone();
    cfg.top = dims;
    let started = std::time::Instant::now();
    let mut det = VectorDetector::new(dims, cfg);
    for row in &train {
        det.learn(row);
        if let Some(job) = det.fit_job() {
            det.install(job.run());
        }
    }
    let mut scores = Vec::with_capacity(test.len());
    let mut ranking = Vec::with_capacity(test.len());
    for row in &test {
        let v = det.update(row);
        if let Some(job) = det.fit_job() {
            det.install(job.run());
        }
        scores.push(v.score);
        ranking.push(v.evidence.iter().map(|e| e.0).collect());
    }
    Ok(Some(Machine {
        name: name.to_string(),
        scores,
        labels,
        ranking,
        truth,
        seconds: started.elapsed().as_secs_f64(),
    }))
}

fn figures(
    scores: &[f64],
    labels: &[bool],
    ranking: &[Vec<usize>],
    truth: &[((usize, usize), Vec<usize>)],
    default_t: f64,
) -> serde_json::Value {
    let (h100, rows) = hit_rate(ranking, truth, 1.0);
    let (h150, _) = hit_rate(ranking, truth, 1.5);
    json!({
        "rows": scores.len(),
        "anomalous_rows": labels.iter().filter(|&&l| l).count(),
        "pointwise_default": evaluate(scores, labels, default_t, false),
        "pointwise_best": best_pointwise(scores, labels),
        "pa_default": evaluate(scores, labels, default_t, true),
        "pa_best": best_adjusted(scores, labels),
        "hitrate_100": h100,
        "hitrate_150": h150,
        "hitrate_rows": rows,
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = vector_config(args.config.as_deref())?;
    let default_t = cfg.hysteresis.on;
    let label_dir = args.data.join("test_label");
    let mut names: Vec<String> = fs::read_dir(&label_dir)
        .with_context(|| format!("reading {}", label_dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".txt"))
                .map(str::to_string)
        })
        .collect();
    names.sort();
    let mut machines = Vec::new();
    let mut skipped = Vec::new();
    for name in &names {
        match run_machine(&args, &cfg, name)? {
            Some(m) => machines.push(m),
            None => {
                if !args.json {
                    eprintln!("{name}: skipped (no train/test values)");
                }
                skipped.push(name.clone());
            }
        }
    }
    let mut per_machine = serde_json::Map::new();
    let (mut all_s, mut all_l, mut all_r) = (Vec::new(), Vec::new(), Vec::new());
    let mut all_truth = Vec::new();
    for m in &machines {
        let mut f = figures(&m.scores, &m.labels, &m.ranking, &m.truth, default_t);
        f["seconds"] = json!(m.seconds);
        per_machine.insert(m.name.clone(), f);
        let off = all_s.len();
        all_truth.extend(
            m.truth
                .iter()
                .map(|((s, e), d)| ((s + off, e + off), d.clone())),
        );
        all_s.extend_from_slice(&m.scores);
        all_l.extend_from_slice(&m.labels);
        all_r.extend(m.ranking.iter().cloned());
    }
    let overall = figures(&all_s, &all_l, &all_r, &all_truth, default_t);
    let out = json!({
        "machines": per_machine,
        "overall": overall,
        "skipped": skipped,
        "default_threshold": default_t,
        "config": cfg,
    });
    if args.json {
        println!("{out}");
        return Ok(());
    }
    println!(
        "how: train half learned in order, test half scored row by row (refits from the sliding reservoir); \
         P/R/F1 point-wise (score >= threshold) and with point adjustment (a detected row marks its whole \
         labelled segment); best = threshold maximising that F1 (all distinct scores point-wise, 400 \
         quantiles PA); overall pools all machines' rows under one threshold; HitRate@P = mean over \
         interpretation-segment rows of |truth ∩ top floor(P*|truth|) evidence dims| / |truth|, evidence = \
         per-dim max(robust z / z_mid, |x - train median| / (1.4826 MAD * deviation_mid)) averaged over \
         the last evidence_span rows"
    );
    let line = |name: &str, f: &serde_json::Value| {
        let g = |k: &str, m: &str| f[k][m].as_f64().unwrap_or(f64::NAN);
        println!(
            "{name:<12} F1 point-wise default {:.3} (P {:.3} R {:.3}) best {:.3} (t {:.3}) | PA default {:.3} best {:.3} | HitRate@100% {:.3} @150% {:.3}",
            g("pointwise_default", "f1"),
            g("pointwise_default", "precision"),
            g("pointwise_default", "recall"),
            g("pointwise_best", "f1"),
            g("pointwise_best", "threshold"),
            g("pa_default", "f1"),
            g("pa_best", "f1"),
            f["hitrate_100"].as_f64().unwrap_or(f64::NAN),
            f["hitrate_150"].as_f64().unwrap_or(f64::NAN),
        );
    };
    for (name, f) in &per_machine {
        line(name, f);
    }
    line("overall", &out["overall"]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_adjustment_fills_detected_segments() {
        let labels = [false, true, true, true, false, true, true];
        let scores = [0.0, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0];
        let plain = evaluate(&scores, &labels, 0.5, false);
        assert_eq!((plain.precision, plain.recall), (1.0, 0.2));
        let pa = evaluate(&scores, &labels, 0.5, true);
        assert_eq!((pa.precision, pa.recall), (1.0, 0.6));
    }

    #[test]
    fn best_pointwise_matches_a_brute_force_search() {
        let scores = [0.1, 0.8, 0.4, 0.9, 0.3, 0.7, 0.2];
        let labels = [false, true, false, true, true, false, false];
        let best = best_pointwise(&scores, &labels);
        let brute = scores
            .iter()
            .map(|&t| evaluate(&scores, &labels, t, false).f1)
            .fold(0.0, f64::max);
        assert!((best.f1 - brute).abs() < 1e-12);
    }

    #[test]
    fn hit_rate_counts_truth_dims_in_the_top_ranked() {
        let ranking = vec![vec![3, 1, 0, 2], vec![0, 2, 3, 1]];
        let truth = vec![((0, 2), vec![1, 3])];
        // Row 0: top-2 {3,1} → 1.0; row 1: top-2 {0,2} → 0.0.
        assert_eq!(hit_rate(&ranking, &truth, 1.0), (0.5, 2));
        // @150%: top-3: row 0 → 1.0, row 1 {0,2,3} → 0.5.
        assert_eq!(hit_rate(&ranking, &truth, 1.5), (0.75, 2));
    }

    #[test]
    fn segments_are_runs_of_ones() {
        assert_eq!(
            segments(&[true, false, true, true, false]),
            vec![(0, 1), (2, 4)]
        );
    }
}
