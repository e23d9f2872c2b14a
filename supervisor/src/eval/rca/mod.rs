//! `supervisor eval rca`: root-cause analysis quality on fault scenarios.
//!
//! - `--generate <dir> --seed N --count M`: write M generated scenarios
//!   (JSON, format in [`agents::rca::scenario`]) to `<dir>`.
//! - `--data <dir>` with `*.json` scenarios: replay each timeline (signature
//!   matching, metric shifts against the baseline, change events), rank the
//!   causes with the built-in knowledge base and score against the ground
//!   truth. Printed: top-1 and top-3 accuracy (a hit = the right cause on the
//!   right service), top-1 accuracy of the service alone, the share of
//!   incidents whose top hypothesis names a service that only showed
//!   symptoms (a caller of the true root), and the analysis latency per
//!   incident (p50, p99, max; the scorer only, then replay + scorer), with
//!   per-family top-1.
//! - `--data <dir>` holding `metrics.csv` (a timestamp column, then one
//!   column per `<node>::<metric>`), `graph.json` (edges caller → callee:
//!   `[["a","b"], ...]`, `{"edges": [...]}` or `[{"source":"a","target":"b"}]`)
//!   and the anomaly time (`--anomaly-time`, or a file `anomaly_time` / the
//!   field `anomaly_time` of `anomaly.json`, in the unit of the timestamp
//!   column): metric-only mode, prints the ranked nodes (and, when
//!   `root_cause` is given in `anomaly.json`, its rank).

mod generate;
mod metric_only;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use agents::detect::signatures::Catalogue;
use agents::rca::kb::KnowledgeBase;
use agents::rca::scenario::Scenario;
use agents::rca::score::analyze;
use anyhow::Context;
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory holding scenarios (`*.json`) or a metric-only data set.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Print the figures as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write generated scenarios into this directory instead of evaluating.
    #[arg(long)]
    pub generate: Option<PathBuf>,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How many scenarios to generate.
    #[arg(long, default_value_t = 200)]
    pub count: usize,
    /// Metric-only mode: the anomaly time, in the unit of the timestamp column.
    #[arg(long)]
    pub anomaly_time: Option<f64>,
    /// A TOML file of extra causes (same id overrides a built-in).
    #[arg(long)]
    pub causes: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(dir) = &args.generate {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let scenarios = generate::generate(args.seed, args.count);
        for s in &scenarios {
            let path = dir.join(format!("{}.json", s.id));
            std::fs::write(&path, serde_json::to_vec(s)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let fams = generate::families();
        println!(
            "wrote {} scenarios (seed {}, {} fault families) to {}",
            scenarios.len(),
            args.seed,
            fams.len(),
            dir.display()
        );
        return Ok(());
    }
    let Some(dir) = &args.data else {
        anyhow::bail!("give --data <dir> to evaluate or --generate <dir> to write scenarios");
    };
    if dir.join("metrics.csv").exists() {
        return metric_only::run(dir, args.anomaly_time, args.json);
    }
    let kb = match &args.causes {
        Some(p) => {
            let user = std::fs::read_to_string(p)
                .with_context(|| format!("reading causes file {}", p.display()))?;
            KnowledgeBase::from_toml(agents::rca::kb::BUILTIN, Some(&user))?
        }
        None => KnowledgeBase::builtin(),
    };
    evaluate(dir, &kb, args.json)
}

fn load(dir: &Path) -> anyhow::Result<Vec<Scenario>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing scenario {}", p.display()))
        })
        .collect()
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn evaluate(dir: &Path, kb: &KnowledgeBase, as_json: bool) -> anyhow::Result<()> {
    let scenarios = load(dir)?;
    if scenarios.is_empty() {
        anyhow::bail!("no scenario files (*.json) in {}", dir.display());
    }
    let catalogue = Catalogue::builtin();
    let (mut top1, mut top3, mut svc1, mut symptom_named) = (0usize, 0usize, 0usize, 0usize);
    let mut scorer_ms = Vec::new();
    let mut total_ms = Vec::new();
    let mut per_family: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut misses: Vec<String> = Vec::new();
    for s in &scenarios {
        let t0 = Instant::now();
        let topo = s.topology.to_topology();
        let obs = s.observations(&catalogue);
        let t1 = Instant::now();
        let d = analyze(kb, &topo, &obs, 10);
        let t2 = Instant::now();
        scorer_ms.push((t2 - t1).as_secs_f64() * 1e3);
        total_ms.push((t2 - t0).as_secs_f64() * 1e3);
        let hit = |h: &agents::rca::score::Hypothesis| {
            h.cause_id == s.truth.cause && h.service == s.truth.service
        };
        let first = d.hypotheses.first();
        let ok1 = first.is_some_and(hit);
        top1 += usize::from(ok1);
        top3 += usize::from(d.hypotheses.iter().take(3).any(hit));
        svc1 += usize::from(first.is_some_and(|h| h.service == s.truth.service));
        // A symptom named as the cause: the top service depends on the true root.
        if let Some(h) = first
            && h.service != s.truth.service
            && topo.dependencies(&h.service).contains_key(&s.truth.service)
        {
            symptom_named += 1;
        }
        if std::env::var("RCA_EVAL_EXPLAIN").is_ok_and(|v| v == s.id) {
            for o in &obs {
                eprintln!(
                    "obs {} onset {:?} {:?} {:?}",
                    o.service,
                    o.onset_ms,
                    o.signals.iter().map(|x| &x.key).collect::<Vec<_>>(),
                    o.lines
                );
            }
            for h in d.hypotheses.iter().take(4) {
                eprintln!("{:#?}", h);
            }
        }
        let fam = per_family.entry(s.truth.family.clone()).or_default();
        fam.0 += 1;
        fam.1 += usize::from(ok1);
        if !ok1 && misses.len() < 400 {
            let in3 = d.hypotheses.iter().take(3).any(hit);
            misses.push(format!(
                "{}{} truth {}@{} got {}",
                s.id,
                if in3 { "" } else { " (not in top 3)" },
                s.truth.cause,
                s.truth.service,
                first.map_or("nothing".to_string(), |h| format!(
                    "{}@{}",
                    h.cause_id, h.service
                ))
            ));
        }
    }
    scorer_ms.sort_by(f64::total_cmp);
    total_ms.sort_by(f64::total_cmp);
    let n = scenarios.len() as f64;
    let families: HashSet<&str> = scenarios.iter().map(|s| s.truth.family.as_str()).collect();
    let fam_json: HashMap<&String, f64> = per_family
        .iter()
        .map(|(f, (c, h))| (f, *h as f64 / *c as f64))
        .collect();
    if as_json {
        println!(
            "{}",
            json!({
                "scenarios": scenarios.len(), "families": families.len(), "causes": kb.causes().len(),
                "top1": top1 as f64 / n, "top3": top3 as f64 / n, "service_top1": svc1 as f64 / n,
                "symptom_named_as_cause": symptom_named as f64 / n,
                "scorer_ms": { "p50": pct(&scorer_ms, 0.5), "p99": pct(&scorer_ms, 0.99), "max": pct(&scorer_ms, 1.0) },
                "replay_and_scorer_ms": { "p50": pct(&total_ms, 0.5), "p99": pct(&total_ms, 0.99), "max": pct(&total_ms, 1.0) },
                "top1_by_family": fam_json,
            })
        );
        return Ok(());
    }
    println!(
        "rca evaluation: {} scenarios, {} fault families, knowledge base of {} causes",
        scenarios.len(),
        families.len(),
        kb.causes().len()
    );
    println!("  a hit = the true cause on the true service");
    println!(
        "  top-1 accuracy            {:.3}  ({top1}/{})",
        top1 as f64 / n,
        scenarios.len()
    );
    println!(
        "  top-3 accuracy            {:.3}  ({top3}/{})",
        top3 as f64 / n,
        scenarios.len()
    );
    println!("  top-1 service only        {:.3}", svc1 as f64 / n);
    println!(
        "  symptom named as cause    {:.3}  (top service is a caller of the true root)",
        symptom_named as f64 / n
    );
    println!(
        "  scorer latency ms/incident  p50 {:.3}  p99 {:.3}  max {:.3}",
        pct(&scorer_ms, 0.5),
        pct(&scorer_ms, 0.99),
        pct(&scorer_ms, 1.0)
    );
    println!(
        "  replay+scorer ms/incident   p50 {:.3}  p99 {:.3}  max {:.3}",
        pct(&total_ms, 0.5),
        pct(&total_ms, 0.99),
        pct(&total_ms, 1.0)
    );
    println!("  top-1 by family:");
    for (f, (c, h)) in &per_family {
        println!("    {f:<32} {:.2}  ({h}/{c})", *h as f64 / *c as f64);
    }
    if std::env::var_os("RCA_EVAL_MISSES").is_some() {
        for m in &misses {
            println!("  miss: {m}");
        }
    }
    Ok(())
}
