//! Root-cause ranking of graph nodes from metrics alone (no logs, no
//! knowledge base): for data sets that give per-node metric series, a call
//! graph and the time an anomaly was noticed.
//!
//! ```text
//! score(n) = 0.55·a(n) + 0.25·explained(n) + 0.10·onset(n) + 0.10·frontier(n)
//!            − 0.35·max{ a(m) : m a dependency of n, m anomalous }
//! ```
//!
//! - `a(n)` = `1 − exp(−z/8)`, `z` the largest robust z-score among n's
//!   metrics after the anomaly time (each point smoothed as the median of
//!   three consecutive |z| so single blips do not count), baseline = the
//!   points before it.
//! - anomalous: `a ≥ 0.45`.
//! - `explained(n)`: share of the other anomalous nodes that depend on n.
//! - `onset(n)`: 1/(1+rank) of the time n first exceeded z = 5.
//! - `frontier(n)`: 1 when no dependency of n is anomalous.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::observe::robust_center;
use super::topology::Topology;

#[derive(Clone, Debug, Serialize)]
pub struct RankedNode {
    pub node: String,
    pub score: f64,
    pub anomaly: f64,
    /// The metric with the largest shift and its z-score.
    pub top_metric: String,
    pub z: f64,
    pub onset: Option<i64>,
}

/// Series of one node: metric name → points (time, value).
pub type NodeSeries = BTreeMap<String, Vec<(i64, f64)>>;

fn node_anomaly(series: &NodeSeries, at: i64) -> (f64, String, Option<i64>) {
    let mut best = (0.0f64, String::new(), None);
    for (name, pts) in series {
        let base: Vec<f64> = pts.iter().filter(|(t, _)| *t < at).map(|p| p.1).collect();
        let Some((med, scale)) = robust_center(&base) else {
            continue;
        };
        if base.len() < 5 {
            continue;
        }
        let zs: Vec<(i64, f64)> = pts
            .iter()
            .filter(|(t, _)| *t >= at)
            .map(|(t, v)| (*t, ((v - med) / scale).abs()))
            .collect();
        let mut onset = None;
        let mut top = 0.0f64;
        for w in zs.windows(3) {
            let mut v = [w[0].1, w[1].1, w[2].1];
            v.sort_by(f64::total_cmp);
            let z = v[1];
            if z >= 5.0 && onset.is_none() {
                onset = Some(w[0].0);
            }
            top = top.max(z);
        }
        if top > best.0 {
            best = (top, name.clone(), onset);
        }
    }
    best
}

/// Rank every node of `nodes` (node → its series) for an anomaly at `at`.
pub fn rank(nodes: &BTreeMap<String, NodeSeries>, topo: &Topology, at: i64) -> Vec<RankedNode> {
    let stats: HashMap<&str, (f64, String, Option<i64>)> = nodes
        .iter()
        .map(|(n, s)| (n.as_str(), node_anomaly(s, at)))
        .collect();
    let a = |n: &str| {
        stats
            .get(n)
            .map(|s| 1.0 - (-s.0 / 8.0).exp())
            .unwrap_or(0.0)
    };
    let anomalous: Vec<&str> = stats.keys().copied().filter(|n| a(n) >= 0.45).collect();
    let mut onsets: Vec<i64> = anomalous
        .iter()
        .filter_map(|n| stats.get(n).and_then(|s| s.2))
        .collect();
    onsets.sort();
    let mut out: Vec<RankedNode> = stats
        .iter()
        .map(|(n, (z, metric, onset))| {
            let dependents = topo.dependents(n);
            let deps = topo.dependencies(n);
            let others = anomalous.iter().filter(|m| *m != n).count();
            let explained = if others == 0 {
                0.0
            } else {
                anomalous
                    .iter()
                    .filter(|m| *m != n && dependents.contains_key(**m))
                    .count() as f64
                    / others as f64
            };
            let onset_s = onset
                .map(|t| 1.0 / (1.0 + onsets.iter().filter(|o| **o < t).count() as f64))
                .unwrap_or(0.0);
            let upstream = anomalous
                .iter()
                .filter(|m| *m != n && deps.contains_key(**m))
                .map(|m| a(m))
                .fold(0.0, f64::max);
            let frontier = if upstream > 0.0 { 0.0 } else { 1.0 };
            let an = a(n);
            let score = 0.55 * an + 0.25 * explained + 0.10 * onset_s + 0.10 * frontier * an
                - 0.35 * upstream;
            RankedNode {
                node: n.to_string(),
                score,
                anomaly: an,
                top_metric: metric.clone(),
                z: *z,
                onset: *onset,
            }
        })
        .collect();
    out.sort_by(|x, y| y.score.total_cmp(&x.score).then(x.node.cmp(&y.node)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rca::topology::{Edge, EdgeSource};

    fn s(f: impl Fn(usize) -> f64) -> Vec<(i64, f64)> {
        (0..120).map(|i| (i as i64, f(i))).collect()
    }

    #[test]
    fn the_callee_that_broke_first_outranks_its_louder_callers() {
        let noise = |i: usize| ((i * 31) % 7) as f64 * 0.2;
        let mut nodes = BTreeMap::new();
        let mut put = |n: &str, m: &str, v: Vec<(i64, f64)>| {
            nodes
                .entry(n.to_string())
                .or_insert_with(NodeSeries::new)
                .insert(m.to_string(), v);
        };
        put(
            "db",
            "latency",
            s(|i| 10.0 + noise(i) + if i >= 80 { 20.0 } else { 0.0 }),
        );
        put(
            "api",
            "latency",
            s(|i| 50.0 + noise(i) + if i >= 82 { 400.0 } else { 0.0 }),
        );
        put(
            "web",
            "latency",
            s(|i| 80.0 + noise(i) + if i >= 83 { 500.0 } else { 0.0 }),
        );
        put("mail", "cpu", s(|i| 20.0 + noise(i)));
        let mut t = Topology::default();
        for (a, b) in [("web", "api"), ("api", "db"), ("web", "mail")] {
            t.add(Edge {
                caller: a.into(),
                callee: b.into(),
                source: EdgeSource::Config,
                confidence: 1.0,
                support: 0,
            });
        }
        let r = rank(&nodes, &t, 78);
        assert_eq!(r[0].node, "db", "{r:#?}");
        assert_eq!(r.last().unwrap().node, "mail");
    }
}
