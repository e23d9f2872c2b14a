//! `supervisor eval nab`: the Numenta Anomaly Benchmark, scored by this
//! module from the NAB paper's rules (Lavin & Ahmad 2015; Ahmad et al.
//! 2017) and NAB's `sweeper.py`:
//!
//! - every file is streamed point by point through the live pipeline's
//!   [`UnivariateDetector`] (no look-ahead); the reported `anomaly_score` is
//!   the detector's alert score (the calibrated score, 0 while an episode
//!   already raised is still open);
//! - the first `min(floor(0.15·n), 750)` rows of a file are probationary
//!   and not scored;
//! - a row inside a label window at position `y = -(right - i + 1) / width`
//!   is worth `tp · A(y) / A(-1)` with `A(y) = 2·sigmoid(-5y) - 1` (1 at the
//!   window's left edge, as NAB's sweeper scales it); only the best (earliest)
//!   detection of a window counts; a window without detection costs `-fn`;
//! - a detection outside windows costs `fp · (2·sigmoid(-5y) - 1)` with
//!   `y = (i - prev_right) / (prev_width - 1)` (−fp when `y > 3` or no window
//!   precedes it);
//! - the threshold is swept over every distinct score of the whole corpus
//!   and the best total kept, per profile;
//! - normalised score = `100 · (S - S_null) / (S_perfect - S_null)` with
//!   `S_null = -fn · windows` and `S_perfect = tp · windows`.
//!
//! Results are written in NAB's layout:
//! `<out>/<detector>/<category>/<detector>_<file>.csv` with
//! `timestamp,value,anomaly_score`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use agents::detect::stats::ensemble::{UnivariateConfig, UnivariateDetector};
use anyhow::Context;
use serde_json::json;

pub const DETECTOR: &str = "selfheal";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory holding the data set (with `data/` and `labels/`).
    #[arg(long)]
    pub data: PathBuf,
    /// Where to write the results, in NAB's layout.
    #[arg(long)]
    pub out: PathBuf,
    /// Print the figures as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Seasonality: `auto` uses one day of points when the sampling
    /// interval allows it, `none` turns it off.
    #[arg(long, default_value = "auto")]
    pub season: String,
    /// Detector settings overriding the defaults, as a JSON object merged
    /// into `UnivariateConfig` (e.g. `{"hysteresis":{"clear_after":50}}`).
    /// One setting for the whole corpus: never per file.
    #[arg(long)]
    pub config: Option<String>,
}

/// `base` with every key of `over` replaced recursively.
pub fn merge_json(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                merge_json(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

pub fn univariate_config(over: Option<&str>) -> anyhow::Result<UnivariateConfig> {
    let mut v = serde_json::to_value(UnivariateConfig::default())?;
    if let Some(o) = over {
        let o: serde_json::Value = serde_json::from_str(o).context("--config is not JSON")?;
        merge_json(&mut v, &o);
    }
    let cfg: UnivariateConfig = serde_json::from_value(v).context("--config")?;
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("--config: {e}"))?;
    Ok(cfg)
}

/// A NAB cost profile.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    pub name: &'static str,
    pub tp: f64,
    pub fp: f64,
    pub fn_: f64,
}

pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        tp: 1.0,
        fp: 0.11,
        fn_: 1.0,
    },
    Profile {
        name: "reward_low_FP_rate",
        tp: 1.0,
        fp: 0.22,
        fn_: 1.0,
    },
    Profile {
        name: "reward_low_FN_rate",
        tp: 1.0,
        fp: 0.11,
        fn_: 2.0,
    },
];

/// NAB's scaled sigmoid of a relative position.
pub fn scaled_sigmoid(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

pub fn probation(n: usize) -> usize {
    ((0.15 * n as f64).floor() as usize).min(750)
}

/// One scored row: its detector score, and where it lies.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub score: f64,
    /// Global window id when inside one.
    pub window: Option<usize>,
    /// Unweighted sigmoid value (position in or past a window).
    pub weight: f64,
}

/// Rows of one file after the probationary period, with window ids offset
/// by `first_window`. `windows` are inclusive row-index ranges.
pub fn label_rows(scores: &[f64], windows: &[(usize, usize)], first_window: usize) -> Vec<Row> {
    let prob = probation(scores.len());
    let mut out = Vec::with_capacity(scores.len());
    let mut prev: Option<(usize, f64)> = None; // (right index, width)
    let mut w = 0;
    for (i, &score) in scores.iter().enumerate() {
        while w < windows.len() && windows[w].1 < i {
            let (l, r) = windows[w];
            prev = Some((r, (r - l + 1) as f64));
            w += 1;
        }
        let (window, weight) = match windows.get(w) {
            Some(&(l, r)) if l <= i && i <= r => {
                let width = (r - l + 1) as f64;
                let y = -((r - i + 1) as f64) / width;
                // NAB's sweeper divides by the left-edge value, so the
                // earliest possible detection is worth exactly tp.
                (
                    Some(first_window + w),
                    scaled_sigmoid(y) / scaled_sigmoid(-1.0),
                )
            }
            _ => match prev {
                None => (None, -1.0),
                Some((r, width)) => {
                    let y = (i - r) as f64 / (width - 1.0).max(1.0);
                    (None, scaled_sigmoid(y))
                }
            },
        };
        if i >= prob {
            out.push(Row {
                score,
                window,
                weight,
            });
        }
    }
    out
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ProfileScore {
    pub threshold: f64,
    pub raw: f64,
    pub normalized: f64,
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
}

/// Total score of `rows` at `threshold` (detections: score ≥ threshold).
pub fn score_at(rows: &[Row], n_windows: usize, p: &Profile, threshold: f64) -> ProfileScore {
    let mut best: Vec<Option<f64>> = vec![None; n_windows];
    let mut fp_sum = 0.0;
    let mut fp = 0;
    for r in rows.iter().filter(|r| r.score >= threshold) {
        match r.window {
            Some(w) => {
                let v = p.tp * r.weight;
                best[w] = Some(best[w].map_or(v, |b: f64| b.max(v)));
            }
            None => {
                fp += 1;
                fp_sum += p.fp * r.weight;
            }
        }
    }
    let tp = best.iter().filter(|b| b.is_some()).count();
    let raw = best.iter().map(|b| b.unwrap_or(-p.fn_)).sum::<f64>() + fp_sum;
    ProfileScore {
        threshold,
        raw,
        normalized: normalize(raw, n_windows, p),
        tp,
        fp,
        fn_: n_windows - tp,
    }
}

pub fn normalize(raw: f64, n_windows: usize, p: &Profile) -> f64 {
    let null = -p.fn_ * n_windows as f64;
    let perfect = p.tp * n_windows as f64;
    if perfect == null {
        return 0.0;
    }
    100.0 * (raw - null) / (perfect - null)
}

/// The best threshold over every distinct score (NAB's sweep).
pub fn sweep(rows: &[Row], n_windows: usize, p: &Profile) -> ProfileScore {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| rows[b].score.total_cmp(&rows[a].score));
    let mut best_w: Vec<Option<f64>> = vec![None; n_windows];
    let mut raw = -p.fn_ * n_windows as f64;
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut top = ProfileScore {
        threshold: f64::INFINITY,
        raw,
        normalized: normalize(raw, n_windows, p),
        tp: 0,
        fp: 0,
        fn_: n_windows,
    };
    let mut k = 0;
    while k < order.len() {
        let t = rows[order[k]].score;
        while k < order.len() && rows[order[k]].score == t {
            let r = rows[order[k]];
            match r.window {
                Some(w) => {
                    let v = p.tp * r.weight;
                    match best_w[w] {
                        None => {
                            raw += v + p.fn_;
                            tp += 1;
                            best_w[w] = Some(v);
                        }
                        Some(b) if v > b => {
                            raw += v - b;
                            best_w[w] = Some(v);
                        }
                        Some(_) => {}
                    }
                }
                None => {
                    fp += 1;
                    raw += p.fp * r.weight;
                }
            }
            k += 1;
        }
        if raw > top.raw {
            top = ProfileScore {
                threshold: t,
                raw,
                normalized: normalize(raw, n_windows, p),
                tp,
                fp,
                fn_: n_windows - tp,
            };
        }
    }
    top
}

fn parse_ts(s: &str) -> &str {
    s.trim().trim_end_matches(".000000")
}

/// A NAB data file (`timestamp,value` with a header): timestamps and values.
pub fn read_series(path: &Path) -> anyhow::Result<(Vec<String>, Vec<f64>)> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut ts = Vec::new();
    let mut vals = Vec::new();
    for (ln, line) in text.lines().enumerate().skip(1) {
        let Some((t, v)) = line.split_once(',') else {
            continue;
        };
        let v: f64 = v
            .trim()
            .parse()
            .with_context(|| format!("{}:{}: bad value", path.display(), ln + 1))?;
        ts.push(t.trim().to_string());
        vals.push(v);
    }
    Ok((ts, vals))
}

/// Points per day for the file's sampling interval, when it fits the
/// robust detector's season bound.
pub fn daily_season(timestamps: &[String]) -> usize {
    let secs = |s: &str| -> Option<i64> {
        let fmt =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        time::PrimitiveDateTime::parse(s, fmt)
            .ok()
            .map(|t| t.assume_utc().unix_timestamp())
    };
    let (Some(a), Some(b)) = (
        timestamps.first().and_then(|s| secs(s)),
        timestamps.get(1).and_then(|s| secs(s)),
    ) else {
        return 0;
    };
    let step = b - a;
    if step <= 0 || 86_400 % step != 0 {
        return 0;
    }
    let p = (86_400 / step) as usize;
    if p <= agents::detect::stats::robust::MAX_SEASON {
        p
    } else {
        0
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let windows_path = args.data.join("labels/combined_windows.json");
    let windows: BTreeMap<String, Vec<Vec<String>>> = serde_json::from_str(
        &fs::read_to_string(&windows_path)
            .with_context(|| format!("reading {}", windows_path.display()))?,
    )
    .with_context(|| format!("parsing {}", windows_path.display()))?;
    let auto_season = match args.season.as_str() {
        "auto" => true,
        "none" => false,
        other => anyhow::bail!("--season must be auto or none, got {other}"),
    };

    let base_cfg = univariate_config(args.config.as_deref())?;
    let mut rows: Vec<Row> = Vec::new();
    let mut n_windows = 0;
    let mut per_file = Vec::new();
    let started = std::time::Instant::now();
    let mut points = 0usize;
    for (file, wins) in &windows {
        let (ts, vals) = read_series(&args.data.join("data").join(file))?;
        let mut cfg = base_cfg.clone();
        if auto_season {
            cfg.robust.season = daily_season(&ts);
        }
        let mut det = UnivariateDetector::new(cfg);
        let mut scores = Vec::with_capacity(vals.len());
        for &v in &vals {
            let verdict = det.update(v);
            if let Some(job) = det.fit_job() {
                det.install(job.run());
            }
            scores.push(verdict.alert_score);
        }
        points += vals.len();
        // Window limits as row indices.
        let index: BTreeMap<&str, usize> = ts
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i))
            .collect();
        let mut limits = Vec::new();
        for w in wins {
            let (Some(a), Some(b)) = (
                w.first().and_then(|s| index.get(parse_ts(s))),
                w.get(1).and_then(|s| index.get(parse_ts(s))),
            ) else {
                anyhow::bail!("{file}: window {w:?} does not match a row timestamp");
            };
            limits.push((*a, *b));
        }
        rows.extend(label_rows(&scores, &limits, n_windows));
        n_windows += limits.len();

        // NAB result layout.
        let (category, name) = file.split_once('/').unwrap_or(("", file.as_str()));
        let dir = args.out.join(DETECTOR).join(category);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut csv = String::from("timestamp,value,anomaly_score\n");
        for ((t, v), s) in ts.iter().zip(&vals).zip(&scores) {
            csv.push_str(&format!("{t},{v},{s}\n"));
        }
        let out = dir.join(format!("{DETECTOR}_{name}"));
        fs::write(&out, csv).with_context(|| format!("writing {}", out.display()))?;
        per_file.push((file.clone(), limits.len()));
    }
    let elapsed = started.elapsed().as_secs_f64();

    let default_threshold = base_cfg.hysteresis.on;
    let mut results = serde_json::Map::new();
    for p in &PROFILES {
        let best = sweep(&rows, n_windows, p);
        let at_default = score_at(&rows, n_windows, p, default_threshold);
        results.insert(
            p.name.to_string(),
            json!({ "best": best, "default_threshold": at_default }),
        );
    }
    let summary = json!({
        "detector": DETECTOR,
        "files": per_file.len(),
        "points": points,
        "windows": n_windows,
        "scored_rows": rows.len(),
        "seconds": elapsed,
        "default_threshold": default_threshold,
        "config": base_cfg,
        "season": args.season,
        "profiles": results,
    });
    if args.json {
        println!("{summary}");
        return Ok(());
    }
    println!(
        "NAB: {} files, {} points ({} scored after probation), {} label windows, {:.2}s ({:.0} points/s)",
        per_file.len(),
        points,
        rows.len(),
        n_windows,
        elapsed,
        points as f64 / elapsed.max(1e-9)
    );
    println!(
        "season: {} (auto = one day of points per file when the interval divides a day and fits {} points)",
        args.season,
        agents::detect::stats::robust::MAX_SEASON
    );
    println!(
        "results written to {}/{DETECTOR}/<category>/{DETECTOR}_<file>.csv",
        args.out.display()
    );
    println!(
        "how: streamed per file through UnivariateDetector; probation min(15%,750) rows unscored; \
         window rows worth tp*A(y)/A(-1), A(y)=2*sigmoid(-5y)-1, earliest detection per window; FPs cost fp*sigmoid \
         of distance past the previous window; missed windows -fn; threshold swept over every \
         distinct score of the corpus; normalised 100*(S-S_null)/(S_perfect-S_null), \
         S_null=-fn*windows, S_perfect=tp*windows"
    );
    for p in &PROFILES {
        let b = &results[p.name]["best"];
        let d = &results[p.name]["default_threshold"];
        println!(
            "{:<20} best threshold {:.4}: score {:6.2} (raw {:.2}, TP {} FP {} FN {}) | default threshold {}: score {:6.2} (TP {} FP {} FN {})",
            p.name,
            b["threshold"].as_f64().unwrap_or(f64::NAN),
            b["normalized"].as_f64().unwrap_or(f64::NAN),
            b["raw"].as_f64().unwrap_or(f64::NAN),
            b["tp"],
            b["fp"],
            b["fn_"],
            default_threshold,
            d["normalized"].as_f64().unwrap_or(f64::NAN),
            d["tp"],
            d["fp"],
            d["fn_"],
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STD: Profile = PROFILES[0];

    #[test]
    fn sigmoid_matches_nab() {
        assert!((scaled_sigmoid(-1.0) - 0.986_614_298).abs() < 1e-6);
        assert!(scaled_sigmoid(0.0).abs() < 1e-12);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
    }

    #[test]
    fn probation_is_15_percent_capped_at_750() {
        assert_eq!(probation(1000), 150);
        assert_eq!(probation(10_000), 750);
    }

    fn file(n: usize, hits: &[usize]) -> Vec<f64> {
        let mut s = vec![0.0; n];
        for &h in hits {
            s[h] = 1.0;
        }
        s
    }

    #[test]
    fn null_detector_scores_zero_and_early_detection_near_100() {
        let win = [(500, 599)];
        let rows = label_rows(&file(1000, &[]), &win, 0);
        assert_eq!(score_at(&rows, 1, &STD, 0.5).normalized, 0.0);
        let rows = label_rows(&file(1000, &[500]), &win, 0);
        let s = score_at(&rows, 1, &STD, 0.5);
        assert!((s.normalized - 100.0).abs() < 1e-9, "{}", s.normalized);
        assert_eq!((s.tp, s.fp, s.fn_), (1, 0, 0));
    }

    #[test]
    fn only_the_earliest_detection_counts_and_late_costs_more() {
        let win = [(500, 599)];
        let early = score_at(&label_rows(&file(1000, &[510, 520]), &win, 0), 1, &STD, 0.5);
        let late = score_at(&label_rows(&file(1000, &[590]), &win, 0), 1, &STD, 0.5);
        assert!(early.raw > late.raw && late.raw > -1.0);
        assert_eq!(early.fp, 0);
    }

    #[test]
    fn false_positives_cost_fp_weight() {
        let win = [(500, 599)];
        // Before any window: a full -fp.
        let s = score_at(&label_rows(&file(1000, &[300, 500]), &win, 0), 1, &STD, 0.5);
        let alone = score_at(&label_rows(&file(1000, &[500]), &win, 0), 1, &STD, 0.5);
        assert!((alone.raw - s.raw - 0.11).abs() < 1e-9);
        // Just past the window it costs less than far past it.
        let near = score_at(&label_rows(&file(1000, &[500, 605]), &win, 0), 1, &STD, 0.5);
        let far = score_at(&label_rows(&file(1000, &[500, 950]), &win, 0), 1, &STD, 0.5);
        assert!(near.raw > far.raw);
    }

    #[test]
    fn probationary_rows_are_not_scored() {
        let rows = label_rows(&file(1000, &[10]), &[(500, 599)], 0);
        assert_eq!(score_at(&rows, 1, &STD, 0.5).fp, 0);
    }

    #[test]
    fn sweep_finds_the_threshold_that_score_at_confirms() {
        let mut s = vec![0.1; 1000];
        s[300] = 0.6; // FP
        s[510] = 0.4; // early TP at a lower score
        s[590] = 0.9; // late TP
        let rows = label_rows(&s, &[(500, 599)], 0);
        let best = sweep(&rows, 1, &STD);
        let again = score_at(&rows, 1, &STD, best.threshold);
        assert!((best.raw - again.raw).abs() < 1e-9);
        assert_eq!(best.threshold, 0.4);
        for t in [0.05, 0.2, 0.5, 0.7, 0.95] {
            assert!(score_at(&rows, 1, &STD, t).raw <= best.raw + 1e-12);
        }
    }
}
