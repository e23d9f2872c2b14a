//! The recorded-incident scenario format read by `supervisor eval rca`, and
//! its replay into the scorer's observations.
//!
//! One JSON file per scenario:
//!
//! ```json
//! {
//!   "id": "s0007",
//!   "topology": { "services": { "api": { "kind": "app", "depends_on": ["orders-db"] },
//!                               "orders-db": { "kind": "database" } } },
//!   "window_ms": [1200000, 1800000],
//!   "logs": [ { "ts_ms": 1300000, "service": "api", "level": "error",
//!               "message": "query timed out after 5000ms calling orders-db" } ],
//!   "metrics": [ { "service": "orders-db", "name": "connections", "max": 100,
//!                  "start_ms": 0, "step_ms": 15000, "values": [12.0, 13.5, ...] } ],
//!   "events": [ { "ts_ms": 1250000, "service": "api", "kind": "deploy", "detail": "v2.4.1" } ],
//!   "truth": { "cause": "db.down", "service": "orders-db", "family": "db.down" }
//! }
//! ```
//!
//! - `window_ms`: the incident window `[from, to]`; everything before `from`
//!   is the baseline (metric level and spread, chronic log lines).
//! - `metrics[].max`: optional known ceiling (pool size, disk size).
//! - `truth` is what the evaluation scores against; the replay never reads it.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use state::model::Level;

use super::observe::{Novelty, metric_shift};
use super::score::ServiceObs;
use super::topology::{Edge, EdgeSource, Topology};
use crate::detect::signatures::Catalogue;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceDef {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TopologyDef {
    pub services: BTreeMap<String, ServiceDef>,
}

impl TopologyDef {
    pub fn to_topology(&self) -> Topology {
        let mut t = Topology::default();
        for (s, d) in &self.services {
            if let Some(k) = &d.kind {
                t.set_kind(s, k);
            }
            for callee in &d.depends_on {
                t.add(Edge {
                    caller: s.clone(),
                    callee: callee.clone(),
                    source: EdgeSource::Config,
                    confidence: 1.0,
                    support: 0,
                });
            }
        }
        t
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub ts_ms: i64,
    pub service: String,
    pub level: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    pub service: String,
    pub name: String,
    #[serde(default)]
    pub max: Option<f64>,
    pub start_ms: i64,
    pub step_ms: i64,
    pub values: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub ts_ms: i64,
    pub service: String,
    /// `deploy`, `config`, ...
    pub kind: String,
    #[serde(default)]
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub cause: String,
    pub service: String,
    #[serde(default)]
    pub family: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub id: String,
    pub topology: TopologyDef,
    pub window_ms: (i64, i64),
    #[serde(default)]
    pub logs: Vec<LogLine>,
    #[serde(default)]
    pub metrics: Vec<MetricSeries>,
    #[serde(default)]
    pub events: Vec<ChangeEvent>,
    pub truth: Truth,
}

impl Scenario {
    /// Replay the timeline: signature matches and novel warning/error lines,
    /// metric shifts against the baseline, change events, per service.
    pub fn observations(&self, catalogue: &Catalogue) -> Vec<ServiceObs> {
        let (from, to) = self.window_ms;
        let mut novelty = Novelty::default();
        for l in self.logs.iter().filter(|l| l.ts_ms < from) {
            novelty.learn(&l.service, &l.message);
        }
        let mut by: HashMap<&str, ServiceObs> = HashMap::new();
        for l in self.logs.iter().filter(|l| (from..=to).contains(&l.ts_ms)) {
            let level = Level::parse(&l.level).unwrap_or(Level::Info);
            if level < Level::Warn || !novelty.is_new(&l.service, &l.message) {
                continue;
            }
            let o = by
                .entry(l.service.as_str())
                .or_insert_with(|| ServiceObs::new(&l.service));
            if let Some(sig) = catalogue.match_line(level, &l.message) {
                o.signal(format!("sig:{}", sig.id), 1.0, l.ts_ms);
                o.signal(format!("cat:{}", sig.category), 1.0, l.ts_ms);
            } else {
                o.onset_ms = Some(o.onset_ms.map_or(l.ts_ms, |t| t.min(l.ts_ms)));
            }
            o.line(&l.message);
        }
        for m in &self.metrics {
            let pts: Vec<(i64, f64)> = m
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| (m.start_ms + i as i64 * m.step_ms, *v))
                .filter(|(t, _)| *t <= to)
                .collect();
            if let Some(s) = metric_shift(&pts, from, m.max) {
                by.entry(m.service.as_str())
                    .or_insert_with(|| ServiceObs::new(&m.service))
                    .signal(
                        format!("metric:{}:{}", m.name, s.dir.as_str()),
                        s.strength,
                        s.onset_ms,
                    );
            }
        }
        for e in self
            .events
            .iter()
            .filter(|e| (from..=to).contains(&e.ts_ms))
        {
            by.entry(e.service.as_str())
                .or_insert_with(|| ServiceObs::new(&e.service))
                .signal(
                    format!("kind:{}", e.kind.to_ascii_lowercase()),
                    1.0,
                    e.ts_ms,
                );
        }
        let mut out: Vec<ServiceObs> = by.into_values().collect();
        out.sort_by(|a, b| a.service.cmp(&b.service));
        out
    }
}
