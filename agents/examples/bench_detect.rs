//! Detector benchmarks (figures, not assertions). Run in release:
//!
//! ```text
//! cargo run --release -p agents --example bench_detect
//! cargo run --release -p agents --example bench_detect -- --csv data.csv [--json]
//! ```
//!
//! Without arguments: per-point update cost of each detector, the detection
//! cost of a million univariate series at one point per second, and the
//! isolation forest's fit and score throughput on planted 8- and
//! 38-dimension data. With `--csv`: fit the isolation forest
//! (100 trees, 256 samples, one thread) on every row of the file (last
//! column = 0/1 label, not used for fitting), score every row, and print fit
//! seconds, score seconds and ROC AUC (used by `scripts/bench_iforest.sh`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use agents::detect::hosts::{HostBank, HostsConfig};
use agents::detect::stats::ensemble::{
    UnivariateConfig, UnivariateDetector, VectorConfig, VectorDetector,
};
use agents::detect::stats::iforest::{ForestConfig, IsolationForest, roc_auc};
use agents::detect::stats::robust::{RobustConfig, RobustDetector};
use ndarray::Array2;
use rand::{Rng, SeedableRng, rngs::StdRng};
use state::model::MetricSample;

/// Counts the bytes held on the heap, to print the state size per stream.
struct Counting;

static HEAP: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged and only
// keeps a running total of the bytes it holds.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn gauss(rng: &mut StdRng) -> f64 {
    (0..6).map(|_| rng.random::<f64>() - 0.5).sum::<f64>() * 2f64.sqrt()
}

fn series(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| 100.0 + 10.0 * ((i as f64) / 50.0).sin() + gauss(&mut rng))
        .collect()
}

/// `n` rows of `d` dims, 1 % outliers shifted by 4σ in a random half of the
/// dimensions.
fn planted(n: usize, d: usize, seed: u64) -> (Array2<f32>, Vec<bool>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let out = rng.random::<f64>() < 0.01;
        for _ in 0..d {
            let shift = if out && rng.random::<bool>() {
                4.0
            } else {
                0.0
            };
            v.push((gauss(&mut rng) + shift) as f32);
        }
        y.push(out);
    }
    (Array2::from_shape_vec((n, d), v).expect("shape"), y)
}

fn per_point<F: FnMut(usize)>(n: usize, mut f: F) -> f64 {
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    t.elapsed().as_secs_f64() / n as f64
}

fn bench_updates() {
    let n = 2_000_000;
    let xs = series(n, 1);
    println!("per-point update cost (release, one thread, {n} points of a noisy sine):");
    let mut d = RobustDetector::new(RobustConfig::default());
    let robust = per_point(n, |i| {
        black_box(d.update(xs[i]));
    });
    println!(
        "  robust (Holt + MAD)                  {:8.1} ns/point",
        robust * 1e9
    );
    let mut d = UnivariateDetector::new(UnivariateConfig::default());
    let uni = per_point(n, |i| {
        black_box(d.update(xs[i]));
    });
    println!(
        "  univariate ensemble (live default)   {:8.1} ns/point",
        uni * 1e9
    );

    // The same detector over many streams, round-robin as in the live
    // pipeline: the state no longer fits in cache, so this is the figure
    // for a large fleet (the pattern reservoirs are read from memory).
    let streams = 20_000;
    let heap_before = HEAP.load(Ordering::Relaxed);
    let mut fleet: Vec<UnivariateDetector> = (0..streams)
        .map(|_| UnivariateDetector::new(UnivariateConfig::default()))
        .collect();
    let warm = 1_200; // fills every pattern reservoir (256 shapes + window)
    for &x in &xs[..warm] {
        for d in &mut fleet {
            black_box(d.update(x));
        }
    }
    let heap = (HEAP.load(Ordering::Relaxed) - heap_before) / streams;
    let inline = std::mem::size_of::<UnivariateDetector>();
    println!(
        "  state per stream (default config, warmed up): {} B = {inline} B inline + {} B heap → 100,000 streams ≈ {:.0} MB",
        heap,
        heap - inline,
        heap as f64 * 1e5 / 1e6
    );
    let rounds = 50;
    let fleet_cost = per_point(rounds * streams, |k| {
        black_box(fleet[k % streams].update(xs[warm + k / streams]));
    });
    drop(fleet);
    println!(
        "  univariate ensemble, {streams} streams round-robin {:8.1} ns/point (state out of cache)",
        fleet_cost * 1e9
    );

    let mut cfg = UnivariateConfig::default();
    cfg.models.forest = Some(ForestConfig::default());
    let mut d = UnivariateDetector::new(cfg);
    let mut fit_s = 0.0;
    let m = 500_000;
    let with_forest = per_point(m, |i| {
        black_box(d.update(xs[i]));
        if let Some(job) = d.fit_job() {
            let t = Instant::now();
            d.install(job.run());
            fit_s += t.elapsed().as_secs_f64();
        }
    });
    println!(
        "  univariate + windowed iforest        {:8.1} ns/point (retraining included: {:.1} ns/point of it)",
        with_forest * 1e9,
        fit_s / m as f64 * 1e9
    );
    println!(
        "  → a million univariate series at 1 point/s: {:.3} cores (live default; {:.3} with the state out of cache), {:.3} cores (with windowed iforest, retraining included)",
        uni * 1e6,
        fleet_cost * 1e6,
        with_forest * 1e6
    );

    let (x, _) = planted(60_000, 38, 2);
    let rows: Vec<Vec<f64>> = x
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|&v| f64::from(v)).collect())
        .collect();
    let mut d = VectorDetector::new(38, VectorConfig::default());
    for r in &rows[..20_000] {
        d.learn(r);
    }
    if let Some(job) = d.fit_job() {
        d.install(job.run());
    }
    let mut fit_s = 0.0;
    let k = 40_000;
    let vec_cost = per_point(k, |i| {
        black_box(d.update(&rows[20_000 + i]));
        if let Some(job) = d.fit_job() {
            let t = Instant::now();
            d.install(job.run());
            fit_s += t.elapsed().as_secs_f64();
        }
    });
    println!(
        "  38-dim vector (38 robust + iforest + k-means, refits included) {:8.2} µs/vector ({:.2} µs of it refitting)",
        vec_cost * 1e6,
        fit_s / k as f64 * 1e6
    );
    drop(d);

    // One live source of 38 metrics (the `detect.hosts` defaults), fitted.
    let heap_before = HEAP.load(Ordering::Relaxed);
    let mut host = VectorDetector::new(38, HostsConfig::default().detector);
    for r in &rows[..4_096] {
        host.learn(r);
        if let Some(job) = host.fit_job() {
            host.install(job.run());
        }
    }
    let bytes = HEAP.load(Ordering::Relaxed) - heap_before + std::mem::size_of::<VectorDetector>();
    println!(
        "  state of one live 38-metric source (detect.hosts defaults, fitted): {:.0} KB → 200 sources ≈ {:.0} MB",
        bytes as f64 / 1e3,
        bytes as f64 * 200.0 / 1e6
    );
    drop(host);

    // The live path: samples of 100 sources × 38 metrics through the host
    // bank (row assembly + vector scoring; refits run inline here).
    let mut bank = HostBank::new(HostsConfig::default());
    let names: Vec<String> = (0..38).map(|j| format!("m{j:02}")).collect();
    let sources: Vec<String> = (0..100).map(|s| format!("host-{s}")).collect();
    let n_rows = 600;
    let sample = |i: usize, s: usize, j: usize| MetricSample {
        ts_ms: i as i64 * 10_000,
        source: sources[s].clone(),
        name: names[j].clone(),
        value: rows[(i * 100 + s) % rows.len()][j],
        labels: Default::default(),
    };
    let mut samples = Vec::with_capacity(n_rows * 100 * 38);
    for i in 0..n_rows {
        for s in 0..100 {
            for j in 0..38 {
                samples.push(sample(i, s, j));
            }
        }
    }
    let t = Instant::now();
    for (k, m) in samples.iter().enumerate() {
        black_box(bank.observe(m));
        if k % 3800 == 0 {
            for (key, job) in bank.fit_jobs() {
                bank.install(&key, job.run());
            }
        }
    }
    let per = t.elapsed().as_secs_f64() / samples.len() as f64;
    println!(
        "  host vectors, 100 sources × 38 metrics, {n_rows} rows each (fits included): {:.0} ns/sample",
        per * 1e9
    );
}

fn bench_forest(d: usize) {
    let (x, y) = planted(200_000, d, 3 + d as u64);
    let cfg = ForestConfig::default();
    let reps = 20;
    let t = Instant::now();
    let mut f = None;
    for r in 0..reps {
        f = Some(
            IsolationForest::fit(
                x.view(),
                &ForestConfig {
                    seed: r,
                    ..cfg.clone()
                },
            )
            .expect("fit"),
        );
    }
    let fit = t.elapsed().as_secs_f64() / reps as f64;
    let f = f.expect("fitted");
    // Best of 5: on a shared machine the slowest runs measure the
    // neighbours, not the walk.
    let mut score = f64::INFINITY;
    let mut s = None;
    for _ in 0..5 {
        let t = Instant::now();
        s = Some(f.score(x.view()));
        score = score.min(t.elapsed().as_secs_f64());
    }
    let s = s.expect("scored");
    let auc = roc_auc(s.as_slice().unwrap_or(&[]), &y);
    let mut out = vec![0.0; x.nrows()];
    let t = Instant::now();
    f.score_rows_any(x.as_slice().unwrap_or(&[]), &mut out);
    let general = t.elapsed().as_secs_f64();
    println!(
        "iforest {d:>2}-dim, general walk (bounds-checked, any depth): {:.2} M points/s",
        x.nrows() as f64 / general / 1e6
    );
    println!(
        "iforest {d:>2}-dim, 100 trees × 256 samples: fit {:.3} ms; score {} points in {:.3} s (best of 5) = {:.2} M points/s; ROC AUC {:.4}",
        fit * 1e3,
        x.nrows(),
        score,
        x.nrows() as f64 / score / 1e6,
        auc
    );
}

fn run_csv(path: &str, json: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    let mut v = Vec::new();
    let mut y = Vec::new();
    let mut d = 0;
    for (i, line) in text.lines().enumerate() {
        let vals: Vec<f32> = line
            .split(',')
            .map(|s| s.trim().parse::<f32>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{path}:{}: {e}", i + 1))?;
        if vals.len() < 2 {
            return Err(format!("{path}:{}: need features and a label", i + 1));
        }
        d = vals.len() - 1;
        y.push(vals[d] > 0.5);
        v.extend_from_slice(&vals[..d]);
    }
    let n = y.len();
    let x = Array2::from_shape_vec((n, d), v).map_err(|e| e.to_string())?;
    let cfg = ForestConfig::default();
    // Best of 5 for fit (it is short), one full pass for scoring.
    let mut fit = f64::INFINITY;
    let mut forest = None;
    for r in 0..5 {
        let t = Instant::now();
        let f = IsolationForest::fit(
            x.view(),
            &ForestConfig {
                seed: r,
                ..cfg.clone()
            },
        )
        .map_err(|e| e.to_string())?;
        fit = fit.min(t.elapsed().as_secs_f64());
        forest = Some(f);
    }
    let f = forest.ok_or("no fit")?;
    let t = Instant::now();
    let s = f.score(x.view());
    let score = t.elapsed().as_secs_f64();
    let auc = roc_auc(s.as_slice().unwrap_or(&[]), &y);
    if json {
        println!("{{\"rows\":{n},\"dims\":{d},\"fit_s\":{fit},\"score_s\":{score},\"auc\":{auc}}}");
    } else {
        println!("rows {n} dims {d}: fit {fit:.6} s, score {score:.6} s, ROC AUC {auc:.4}");
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--csv") {
        let Some(path) = args.get(i + 1) else {
            eprintln!("--csv needs a path");
            std::process::exit(2);
        };
        if let Err(e) = run_csv(path, args.iter().any(|a| a == "--json")) {
            eprintln!("{e}");
            std::process::exit(1);
        }
        return;
    }
    bench_updates();
    bench_forest(8);
    bench_forest(38);
}
