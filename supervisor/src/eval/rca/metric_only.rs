//! Metric-only mode of `supervisor eval rca` (see the parent module).

use std::collections::BTreeMap;
use std::path::Path;

use agents::rca::metric_rank::{NodeSeries, rank};
use agents::rca::topology::{Edge, EdgeSource, Topology};
use anyhow::Context;
use serde_json::{Value, json};

fn parse_graph(v: &Value) -> anyhow::Result<Vec<(String, String)>> {
    let list = match v {
        Value::Object(o) => o
            .get("edges")
            .context("graph.json: object without \"edges\"")?,
        other => other,
    };
    let arr = list
        .as_array()
        .context("graph.json: edges must be an array")?;
    arr.iter()
        .enumerate()
        .map(|(i, e)| {
            let pair = match e {
                Value::Array(p) if p.len() == 2 => (p[0].as_str(), p[1].as_str()),
                Value::Object(o) => (
                    o.get("source").or(o.get("caller")).and_then(Value::as_str),
                    o.get("target").or(o.get("callee")).and_then(Value::as_str),
                ),
                _ => (None, None),
            };
            match pair {
                (Some(a), Some(b)) => Ok((a.to_string(), b.to_string())),
                _ => anyhow::bail!(
                    "graph.json: edge {i} is not [caller, callee] or {{source, target}}"
                ),
            }
        })
        .collect()
}

fn anomaly_time(dir: &Path, given: Option<f64>) -> anyhow::Result<(f64, Option<String>)> {
    let meta: Option<Value> = match std::fs::read(dir.join("anomaly.json")) {
        Ok(b) => Some(serde_json::from_slice(&b).context("parsing anomaly.json")?),
        Err(_) => None,
    };
    let root = meta
        .as_ref()
        .and_then(|m| m.get("root_cause"))
        .and_then(Value::as_str)
        .map(String::from);
    if let Some(t) = given {
        return Ok((t, root));
    }
    if let Some(t) = meta
        .as_ref()
        .and_then(|m| m.get("anomaly_time"))
        .and_then(Value::as_f64)
    {
        return Ok((t, root));
    }
    let raw = std::fs::read_to_string(dir.join("anomaly_time"))
        .context("no anomaly time: pass --anomaly-time, or write anomaly_time or anomaly.json")?;
    Ok((
        raw.trim().parse().context("anomaly_time is not a number")?,
        root,
    ))
}

pub fn run(dir: &Path, given: Option<f64>, as_json: bool) -> anyhow::Result<()> {
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).context("reading metrics.csv")?;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .context("metrics.csv is empty")?
        .split(',')
        .collect();
    // Timestamps are scaled by 1000 and rounded so fractional seconds keep their order.
    let scale = 1000.0;
    let mut cols: Vec<Option<(String, String)>> = Vec::new();
    for h in header.iter().skip(1) {
        cols.push(
            h.trim()
                .split_once("::")
                .map(|(n, m)| (n.to_string(), m.to_string())),
        );
    }
    let mut nodes: BTreeMap<String, NodeSeries> = BTreeMap::new();
    for (ln, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut f = line.split(',');
        let ts: f64 = f
            .next()
            .and_then(|t| t.trim().parse().ok())
            .with_context(|| format!("metrics.csv line {}: bad timestamp", ln + 2))?;
        for (i, v) in f.enumerate() {
            let (Some(Some((n, m))), Ok(v)) = (cols.get(i), v.trim().parse::<f64>()) else {
                continue;
            };
            if v.is_finite() {
                nodes
                    .entry(n.clone())
                    .or_default()
                    .entry(m.clone())
                    .or_default()
                    .push(((ts * scale).round() as i64, v));
            }
        }
    }
    if nodes.is_empty() {
        anyhow::bail!("metrics.csv has no <node>::<metric> columns with numbers");
    }
    let graph: Value = serde_json::from_slice(
        &std::fs::read(dir.join("graph.json")).context("reading graph.json")?,
    )
    .context("parsing graph.json")?;
    let mut topo = Topology::default();
    for (a, b) in parse_graph(&graph)? {
        topo.add(Edge {
            caller: a,
            callee: b,
            source: EdgeSource::Config,
            confidence: 1.0,
            support: 0,
        });
    }
    let (at, truth) = anomaly_time(dir, given)?;
    let ranked = rank(&nodes, &topo, (at * scale).round() as i64);
    let truth_rank = truth
        .as_ref()
        .and_then(|t| ranked.iter().position(|r| &r.node == t).map(|p| p + 1));
    if as_json {
        println!(
            "{}",
            json!({ "anomaly_time": at, "ranked": ranked, "root_cause": truth, "root_cause_rank": truth_rank })
        );
        return Ok(());
    }
    println!(
        "metric-only root-cause ranking at t = {at} ({} nodes)",
        ranked.len()
    );
    for (i, r) in ranked.iter().enumerate() {
        println!(
            "  {:>3}. {:<28} score {:.3}  anomaly {:.2}  top metric {} (z {:.1})",
            i + 1,
            r.node,
            r.score,
            r.anomaly,
            r.top_metric,
            r.z
        );
    }
    if let (Some(t), r) = (&truth, truth_rank) {
        println!(
            "  ground truth {t}: rank {}",
            r.map_or("not found".into(), |r| r.to_string())
        );
    }
    Ok(())
}
