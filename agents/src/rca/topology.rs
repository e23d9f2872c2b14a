//! The service dependency graph: edges caller → callee, from configuration
//! (confidence 1) and learned from co-occurrence of anomalies (confidence in
//! (0, 1), direction from which service went wrong first: the callee usually
//! fails first and its callers follow).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Where an edge comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeSource {
    Config,
    Learned,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    pub caller: String,
    pub callee: String,
    pub source: EdgeSource,
    /// 1 for configured edges; learned edges: co-occurrences / occurrences of
    /// the rarer endpoint, shrunk toward 0 by a pseudo-count.
    pub confidence: f64,
    /// How often both ends were anomalous together (learned edges).
    #[serde(default)]
    pub support: u64,
}

/// Co-occurrence counts, persisted by the stage that learns them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CoOccurrence {
    /// Anomaly episodes per service.
    pub seen: BTreeMap<String, u64>,
    /// Episodes where `a` and `b` were anomalous within the window, keyed
    /// `(earlier, later)`: the earlier one is the likely callee.
    pub pairs: BTreeMap<String, BTreeMap<String, u64>>,
}

impl CoOccurrence {
    /// Record one episode: services with the time each turned anomalous.
    pub fn observe(&mut self, onsets: &[(String, i64)]) {
        let uniq: BTreeMap<&str, i64> = onsets.iter().fold(BTreeMap::new(), |mut m, (s, t)| {
            let e = m.entry(s.as_str()).or_insert(*t);
            *e = (*e).min(*t);
            m
        });
        for s in uniq.keys() {
            *self.seen.entry((*s).to_string()).or_default() += 1;
        }
        for (a, ta) in &uniq {
            for (b, tb) in &uniq {
                if a != b && (ta < tb || (ta == tb && a < b)) {
                    *self
                        .pairs
                        .entry((*a).to_string())
                        .or_default()
                        .entry((*b).to_string())
                        .or_default() += 1;
                }
            }
        }
    }

    /// Learned edges caller → callee with confidence at least `min_conf`
    /// and at least `min_support` joint episodes.
    pub fn edges(&self, min_support: u64, min_conf: f64) -> Vec<Edge> {
        const PSEUDO: f64 = 2.0;
        let mut out = Vec::new();
        for (first, laters) in &self.pairs {
            for (later, &n) in laters {
                // Episodes in the opposite order weaken the direction.
                let back = self
                    .pairs
                    .get(later)
                    .and_then(|m| m.get(first))
                    .copied()
                    .unwrap_or(0);
                if n < min_support || n <= back {
                    continue;
                }
                let rarer = self
                    .seen
                    .get(first)
                    .copied()
                    .unwrap_or(0)
                    .min(self.seen.get(later).copied().unwrap_or(0))
                    .max(1);
                let conf = (n - back) as f64 / (rarer as f64 + PSEUDO);
                if conf >= min_conf {
                    out.push(Edge {
                        caller: later.clone(),
                        callee: first.clone(),
                        source: EdgeSource::Learned,
                        confidence: conf.min(1.0),
                        support: n,
                    });
                }
            }
        }
        out
    }
}

/// The graph used by root-cause analysis.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    edges: Vec<Edge>,
    kinds: HashMap<String, String>,
    /// caller → [(callee, confidence)]
    out: HashMap<String, Vec<(String, f64)>>,
    /// callee → [(caller, confidence)]
    inc: HashMap<String, Vec<(String, f64)>>,
}

impl Topology {
    /// From configured dependencies: service → the services it calls.
    pub fn from_config<'a>(deps: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Topology {
        let mut t = Topology::default();
        for (svc, ds) in deps {
            for d in ds {
                t.add(Edge {
                    caller: svc.to_string(),
                    callee: d.clone(),
                    source: EdgeSource::Config,
                    confidence: 1.0,
                    support: 0,
                });
            }
        }
        t
    }

    /// Add an edge; an existing edge between the same pair keeps the higher
    /// confidence (configured edges win).
    pub fn add(&mut self, e: Edge) {
        if e.caller == e.callee {
            return;
        }
        if let Some(old) = self
            .edges
            .iter_mut()
            .find(|x| x.caller == e.caller && x.callee == e.callee)
        {
            if e.confidence > old.confidence || e.source == EdgeSource::Config {
                *old = e;
            }
        } else {
            self.edges.push(e);
        }
        self.reindex();
    }

    /// Add learned edges that do not contradict configured ones.
    pub fn merge_learned(&mut self, learned: Vec<Edge>) {
        for e in learned {
            let reverse_configured = self.edges.iter().any(|x| {
                x.source == EdgeSource::Config && x.caller == e.callee && x.callee == e.caller
            });
            if !reverse_configured {
                self.add(e);
            }
        }
    }

    pub fn set_kind(&mut self, service: &str, kind: &str) {
        self.kinds
            .insert(service.to_string(), kind.to_ascii_lowercase());
    }

    pub fn kind(&self, service: &str) -> Option<&str> {
        self.kinds.get(service).map(String::as_str)
    }

    fn reindex(&mut self) {
        self.out.clear();
        self.inc.clear();
        for e in &self.edges {
            self.out
                .entry(e.caller.clone())
                .or_default()
                .push((e.callee.clone(), e.confidence));
            self.inc
                .entry(e.callee.clone())
                .or_default()
                .push((e.caller.clone(), e.confidence));
        }
    }

    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    pub fn services(&self) -> BTreeSet<String> {
        self.edges
            .iter()
            .flat_map(|e| [e.caller.clone(), e.callee.clone()])
            .chain(self.kinds.keys().cloned())
            .collect()
    }

    /// Services `s` calls, directly or not, with the path's confidence
    /// (product along the best path).
    pub fn dependencies(&self, s: &str) -> HashMap<String, f64> {
        walk(&self.out, s)
    }

    /// Services that call `s`, directly or not, with path confidence.
    pub fn dependents(&self, s: &str) -> HashMap<String, f64> {
        walk(&self.inc, s)
    }

    pub fn direct_dependencies(&self, s: &str) -> impl Iterator<Item = &str> {
        self.out
            .get(s)
            .into_iter()
            .flatten()
            .map(|(c, _)| c.as_str())
    }
}

fn walk(adj: &HashMap<String, Vec<(String, f64)>>, start: &str) -> HashMap<String, f64> {
    let mut best: HashMap<String, f64> = HashMap::new();
    let mut q = VecDeque::from([(start.to_string(), 1.0f64)]);
    while let Some((n, c)) = q.pop_front() {
        for (m, w) in adj.get(&n).into_iter().flatten() {
            let nc = c * w;
            if m != start && best.get(m).is_none_or(|&b| nc > b + 1e-12) {
                best.insert(m.clone(), nc);
                q.push_back((m.clone(), nc));
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Topology {
        let deps = [
            ("web".to_string(), vec!["api".to_string()]),
            (
                "api".to_string(),
                vec!["db".to_string(), "cache".to_string()],
            ),
            ("worker".to_string(), vec!["db".to_string()]),
        ];
        Topology::from_config(deps.iter().map(|(s, d)| (s.as_str(), d.as_slice())))
    }

    #[test]
    fn transitive_dependencies_and_dependents() {
        let t = chain();
        let deps = t.dependencies("web");
        assert!(deps.contains_key("api") && deps.contains_key("db") && deps.contains_key("cache"));
        let callers = t.dependents("db");
        assert_eq!(callers.len(), 3, "{callers:?}");
        assert!(t.dependencies("db").is_empty());
    }

    #[test]
    fn co_occurrence_learns_direction_and_confidence() {
        let mut co = CoOccurrence::default();
        for i in 0..8 {
            // db goes first, then its callers.
            co.observe(&[("db".into(), 100 * i), ("api".into(), 100 * i + 5)]);
        }
        co.observe(&[("api".into(), 0)]);
        co.observe(&[("noise".into(), 0), ("api".into(), 1)]);
        let edges = co.edges(3, 0.3);
        assert_eq!(edges.len(), 1, "{edges:?}");
        assert_eq!(
            (edges[0].caller.as_str(), edges[0].callee.as_str()),
            ("api", "db")
        );
        assert!(edges[0].confidence > 0.5 && edges[0].confidence < 1.0);
        let mut t = Topology::default();
        t.add(Edge {
            caller: "db".into(),
            callee: "api".into(),
            source: EdgeSource::Config,
            confidence: 1.0,
            support: 0,
        });
        t.merge_learned(edges);
        assert_eq!(
            t.edges().len(),
            1,
            "a learned edge never contradicts a configured one"
        );
    }
}
