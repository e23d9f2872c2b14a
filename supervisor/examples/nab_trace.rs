//! Per-point trace of the univariate detector on one NAB data file, for
//! looking at why a window was missed or a point raised:
//!
//! ```sh
//! cargo run --release -p supervisor --example nab_trace -- <file.csv> ['<config json>']
//! ```
//!
//! Prints `i,value,expected,score,alert,parts` (parts as `name=score`),
//! with the same settings `eval nab` uses (daily season from the
//! timestamps, `--config`-style overrides).

use agents::detect::stats::ensemble::UnivariateDetector;
use anyhow::Context;
use supervisor::eval::nab::{daily_season, read_series, univariate_config};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .context("usage: nab_trace <file.csv> ['<config json>']")?;
    let (ts, vals) = read_series(std::path::Path::new(path))?;
    let mut cfg = univariate_config(args.get(2).map(String::as_str))?;
    cfg.robust.season = daily_season(&ts);
    let mut det = UnivariateDetector::new(cfg);
    println!("i,value,expected,score,alert,parts");
    for (i, &v) in vals.iter().enumerate() {
        let expected = det.baseline();
        let r = det.update(v);
        if let Some(job) = det.fit_job() {
            det.install(job.run());
        }
        let parts: Vec<String> = r.parts.iter().map(|(n, s)| format!("{n}={s:.3}")).collect();
        println!(
            "{i},{v},{expected:.4},{:.4},{:.4},{}",
            r.score,
            r.alert_score,
            parts.join(" ")
        );
    }
    Ok(())
}
