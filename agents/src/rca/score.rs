//! Scoring causes against an incident's evidence.
//!
//! A hypothesis is a pair (cause, service). For each, with `s` the service:
//!
//! ```text
//! score = weight(cause) · kind_fit · ( 0.40·E_self + 0.25·S_callers·coverage
//!                                    + 0.20·explained + 0.05·onset + 0.10·mentions )
//!         − 0.30·against
//! ```
//!
//! - `E_self`: noisy-OR of the cause's evidence patterns matched on `s`
//!   (`1 − Π(1 − w_kind · w_learned · strength)`; kind weights: signature 0.9,
//!   template, log and event kind 0.8, metric 0.6, category 0.3), scaled by
//!   `0.75 + 0.25·(share of the cause's evidence patterns matched)` and by
//!   `1 − 0.4·(share of s's signals the cause does not explain)`, each signal
//!   weighted by its kind as above. Lines that name one of `s`'s
//!   dependencies are left out of `s`'s own evidence.
//!   A service with signals of its own needs some own evidence for a cause;
//!   only silent services are inferred from their callers alone.
//! - `S_callers`: mean over the anomalous services that depend on `s`
//!   (directly or not) and show the cause's symptom patterns, of their
//!   noisy-OR × `(0.7 + 0.3·share of the symptom patterns shown)` ×
//!   `(1 − 0.5·noisy-OR of the cause's against patterns on that caller)`;
//!   `coverage`: the share of all other anomalous services that are such
//!   callers (weighted by the confidence of the graph path).
//! - `explained`: share of anomalous services that are `s` or depend on it.
//! - `onset`: 1 when `s` went wrong first, falling with its rank; 0.5 when
//!   `s` is silent (a dependency with no signals of its own).
//! - `mentions`: share of the symptomatic callers whose log lines name `s`.
//! - callers that went wrong more than [`CAUSAL_SLACK_MS`] before `s` did
//!   are not counted as its symptoms (an effect does not precede its cause).
//! - `kind_fit`: 1 when `s`'s kind is among the cause's kinds, 0.92 when the
//!   cause is generic (lists no kinds: a specific cause beats a generic one),
//!   0.8 when `s`'s kind is unknown, 0.3 when it is another kind.
//! - `against`: noisy-OR of the cause's `against` patterns matched on `s`.
//!
//! Cause versus symptom: a service is *failing* when some cause's `E_self`
//! on it reaches [`FAILING`]. A service `a` is a *symptom* when it depends
//! (transitively, path confidence ≥ 0.5) on a service `d` with a hypothesis
//! whose symptoms `a` shows, and either `a` names `d` in its own lines or `d`
//! is failing and that hypothesis scores at least as well as `a`'s best own
//! one. Hypotheses on symptom services rank after all others, so the
//! upstream-most failing component that explains the rest comes first and a
//! component that only suffers from it is not named first.
//!
//! Confidence is a softmax of the scores (temperature 0.08) over the
//! hypotheses returned.

use std::collections::{BTreeSet, HashMap};

pub use state::model::diagnosis::{Diagnosis, Hypothesis, ServiceObs, Signal};

use super::kb::{Cause, KnowledgeBase, Pattern, Position};
use super::topology::Topology;

/// Weights of own evidence, callers' symptoms × coverage, explained share,
/// onset and mentions (tuned on generated scenarios of seed 1).
const W: [f64; 5] = [0.40, 0.25, 0.20, 0.05, 0.10];

/// How much earlier (ms) than a service its caller may show symptoms and
/// still count as explained by it (clocks and detection delays differ).
pub const CAUSAL_SLACK_MS: i64 = 120_000;

/// `E_self` from which a service counts as failing in its own right.
pub const FAILING: f64 = 0.45;
const TEMPERATURE: f64 = 0.08;

/// Pattern match results on one service, cached by pattern text.
struct Matches<'a> {
    obs: Option<&'a ServiceObs>,
    cache: HashMap<&'a str, Option<(f64, String)>>,
}

impl<'a> Matches<'a> {
    fn get(&mut self, raw: &'a str, p: &Pattern) -> Option<(f64, String)> {
        let obs = self.obs?;
        self.cache
            .entry(raw)
            .or_insert_with(|| match_pattern(p, obs))
            .clone()
    }
}

fn metric_name_matches(name: &str, fragment: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let bytes = name.as_bytes();
    let mut from = 0;
    while let Some(pos) = name[from..].find(fragment) {
        let at = from + pos;
        let end = at + fragment.len();
        let start_ok = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
        let end_ok =
            fragment.len() > 3 || end == bytes.len() || !bytes[end].is_ascii_alphanumeric();
        if start_ok && end_ok {
            return true;
        }
        from = at + 1;
    }
    false
}

fn match_pattern(p: &Pattern, obs: &ServiceObs) -> Option<(f64, String)> {
    let find = |key: String| {
        obs.signals
            .iter()
            .find(|s| s.key == key)
            .map(|s| (s.strength, key.clone()))
    };
    match p {
        Pattern::Signature(id) => find(format!("sig:{id}")),
        Pattern::Template(id) => find(format!("tpl:{id}")),
        Pattern::Category(c) => find(format!("cat:{c}")),
        Pattern::Kind(k) => find(format!("kind:{k}")),
        Pattern::Metric { fragment, dir } => obs
            .signals
            .iter()
            .filter_map(|s| {
                let rest = s.key.strip_prefix("metric:")?;
                let (name, d) = rest.rsplit_once(':')?;
                (d == dir.as_str() && metric_name_matches(name, fragment))
                    .then(|| (s.strength, s.key.clone()))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0)),
        Pattern::Log(re) => obs.lines.iter().find(|l| re.is_match(l)).map(|l| {
            (
                1.0,
                format!("log {:?}", l.chars().take(120).collect::<String>()),
            )
        }),
    }
}

/// Does this signal key match any of the patterns (by the same rules)?
fn explained_by(sig: &Signal, pats: &[&(String, Pattern)]) -> bool {
    let one = ServiceObs {
        signals: vec![sig.clone()],
        ..Default::default()
    };
    pats.iter().any(|(_, p)| match_pattern(p, &one).is_some())
}

/// Specificity of a signal by its kind (the base weights of the patterns
/// that match it).
fn signal_weight(key: &str) -> f64 {
    match key.split_once(':').map(|(k, _)| k) {
        Some("sig") => 0.9,
        Some("tpl") | Some("kind") => 0.8,
        Some("metric") => 0.6,
        _ => 0.3,
    }
}

fn noisy_or(parts: impl Iterator<Item = f64>) -> f64 {
    1.0 - parts.fold(1.0, |acc, w| acc * (1.0 - w.clamp(0.0, 0.999)))
}

fn mentions(lines: &[String], service: &str) -> bool {
    let s = service.to_ascii_lowercase();
    if s.len() < 2 {
        return false;
    }
    lines.iter().any(|l| {
        let l = l.to_ascii_lowercase();
        let b = l.as_bytes();
        let mut from = 0;
        while let Some(p) = l[from..].find(&s) {
            let at = from + p;
            let end = at + s.len();
            let ok_start = at == 0 || !(b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'-');
            let ok_end = end == b.len() || !(b[end].is_ascii_alphanumeric() || b[end] == b'-');
            if ok_start && ok_end {
                return true;
            }
            from = at + 1;
        }
        false
    })
}

/// Rank every cause of `kb` against `observed`, using `topo` to separate
/// cause from symptom. Returns at most `limit` hypotheses, best first.
pub fn analyze(
    kb: &KnowledgeBase,
    topo: &Topology,
    observed: &[ServiceObs],
    limit: usize,
) -> Diagnosis {
    let obs: HashMap<&str, &ServiceObs> = observed
        .iter()
        .filter(|o| !o.signals.is_empty() || !o.lines.is_empty())
        .map(|o| (o.service.as_str(), o))
        .collect();
    if obs.is_empty() {
        return Diagnosis::default();
    }
    // Dependencies the signals speak of but the graph does not name.
    let inferred = super::infer::with_inferred(topo, observed);
    let topo = inferred.as_ref().unwrap_or(topo);
    let anomalous: BTreeSet<&str> = obs.keys().copied().collect();
    // Candidates: anomalous services and the (silent) services they depend on.
    let mut candidates: BTreeSet<String> = anomalous.iter().map(|s| s.to_string()).collect();
    for s in &anomalous {
        candidates.extend(topo.dependencies(s).into_keys());
    }
    let mut onsets: Vec<(i64, &str)> = obs
        .values()
        .filter_map(|o| o.onset_ms.map(|t| (t, o.service.as_str())))
        .collect();
    onsets.sort();

    // Own evidence of a service leaves out the lines that name one of its
    // dependencies: those are about the dependency.
    let self_views: HashMap<&str, ServiceObs> = candidates
        .iter()
        .filter_map(|c| obs.get(c.as_str()).map(|o| (c.as_str(), o)))
        .map(|(c, o)| {
            let deps = topo.dependencies(c);
            let mut v = (*o).clone();
            v.lines
                .retain(|l| !deps.keys().any(|d| mentions(std::slice::from_ref(l), d)));
            (c, v)
        })
        .collect();
    let mut self_matches: HashMap<&str, Matches> = self_views
        .iter()
        .map(|(c, v)| {
            (
                *c,
                Matches {
                    obs: Some(v),
                    cache: HashMap::new(),
                },
            )
        })
        .collect();
    let mut matches: HashMap<&str, Matches> = HashMap::new();
    // Callers' matches are looked up through the same cache.
    for s in &anomalous {
        matches.entry(s).or_insert_with(|| Matches {
            obs: obs.get(s).copied(),
            cache: HashMap::new(),
        });
    }

    struct Raw {
        cause: usize,
        service: String,
        e_self: f64,
        score: f64,
        evidence_for: Vec<String>,
        evidence_against: Vec<String>,
        matched: Vec<String>,
        sym_callers: Vec<String>,
    }
    let mut raws: Vec<Raw> = Vec::new();
    let mut best_self: HashMap<String, f64> = HashMap::new();

    for s in &candidates {
        let s_obs = obs.get(s.as_str()).copied();
        let silent = s_obs.is_none();
        let dependents = topo.dependents(s);
        let callers: Vec<(&str, f64)> = anomalous
            .iter()
            .filter(|a| **a != s.as_str())
            .filter_map(|a| dependents.get(*a).map(|c| (*a, *c)))
            .collect();
        let others = anomalous.iter().filter(|a| **a != s.as_str()).count();
        let explained = (callers.len() + usize::from(!silent)) as f64 / anomalous.len() as f64;
        let onset = match s_obs.and_then(|o| o.onset_ms) {
            Some(t) => {
                let rank = onsets.iter().filter(|(o, _)| *o < t).count();
                1.0 / (1.0 + rank as f64)
            }
            None => 0.5,
        };
        let kind = topo.kind(s);
        for (ci, cause) in kb.causes().iter().enumerate() {
            if silent && (cause.def.position == Position::OwnComponent || callers.is_empty()) {
                continue;
            }
            let mut evidence_for = Vec::new();
            let mut evidence_against = Vec::new();
            let mut matched = Vec::new();
            // Evidence on the service itself.
            let mut parts = Vec::new();
            if let Some(m) = self_matches.get_mut(s.as_str()) {
                for (raw, p) in &cause.evidence {
                    match m.get(raw, p) {
                        Some((strength, detail)) => {
                            let w = p.base_weight() * cause.pattern_weight(raw) * strength;
                            parts.push(w);
                            matched.push(raw.clone());
                            evidence_for.push(format!("{s}: {detail} (+{w:.2})"));
                        }
                        None if !silent => {
                            evidence_against.push(format!("{s}: expected {raw} not seen"))
                        }
                        None => {}
                    }
                }
            }
            let mut e_self = 0.0;
            if !parts.is_empty() {
                let share = parts.len() as f64 / cause.evidence.len().max(1) as f64;
                e_self = noisy_or(parts.iter().copied()) * (0.75 + 0.25 * share);
                if let Some(o) = s_obs {
                    let pats: Vec<&(String, Pattern)> =
                        cause.evidence.iter().chain(cause.symptoms.iter()).collect();
                    let strong: Vec<&Signal> = o
                        .signals
                        .iter()
                        .filter(|x| !x.key.starts_with("cat:"))
                        .collect();
                    if !strong.is_empty() {
                        let unexplained = strong.iter().filter(|x| !explained_by(x, &pats)).count();
                        // Weighted by how specific each signal is: a
                        // signature the cause cannot explain speaks more
                        // against it than a generic metric.
                        let total: f64 = strong.iter().map(|x| signal_weight(&x.key)).sum();
                        let missed: f64 = strong
                            .iter()
                            .filter(|x| !explained_by(x, &pats))
                            .map(|x| signal_weight(&x.key))
                            .sum();
                        let u = missed / total;
                        e_self *= 1.0 - 0.4 * u;
                        if unexplained > 0 {
                            evidence_against.push(format!(
                                "{s}: {unexplained} of {} signals not explained by this cause",
                                strong.len()
                            ));
                        }
                    }
                }
            }
            if silent {
                evidence_against.push(format!(
                    "{s}: no signals of its own (inferred from its callers)"
                ));
            }
            // A service with signals of its own must show some of the
            // cause's evidence; only silent services are inferred.
            if !silent && parts.is_empty() {
                continue;
            }
            let against = match self_matches.get_mut(s.as_str()) {
                None => 0.0,
                Some(m) => {
                    let mut ws = Vec::new();
                    for (raw, p) in &cause.against {
                        if let Some((strength, detail)) = m.get(raw, p) {
                            ws.push(p.base_weight() * strength);
                            evidence_against.push(format!("{s}: {detail} speaks against it"));
                        }
                    }
                    noisy_or(ws.into_iter())
                }
            };
            // Symptoms on callers.
            let mut sym_sum = 0.0;
            let mut sym_cov = 0.0;
            let mut sym_n = 0usize;
            let mut mention_n = 0usize;
            let mut sym_names = Vec::new();
            let mut sym_callers = Vec::new();
            for (a, path) in &callers {
                // A caller that went wrong well before `s` did was not
                // brought down by `s`.
                if let (Some(ts), Some(ta)) = (
                    s_obs.and_then(|o| o.onset_ms),
                    obs.get(a).and_then(|o| o.onset_ms),
                ) && ta + CAUSAL_SLACK_MS < ts
                {
                    continue;
                }
                let m = matches.get_mut(a).expect("anomalous has a cache");
                let mut ws = Vec::new();
                let mut first = None;
                for (raw, p) in &cause.symptoms {
                    if let Some((strength, detail)) = m.get(raw, p) {
                        ws.push(p.base_weight() * cause.pattern_weight(raw) * strength);
                        first.get_or_insert(detail);
                    }
                }
                let mut contra = Vec::new();
                for (raw, p) in &cause.against {
                    if m.get(raw, p).is_some() {
                        contra.push(p.base_weight());
                    }
                }
                if !ws.is_empty() {
                    let share = ws.len() as f64 / cause.symptoms.len().max(1) as f64;
                    sym_sum += noisy_or(ws.into_iter())
                        * (0.7 + 0.3 * share)
                        * (1.0 - 0.5 * noisy_or(contra.into_iter()));
                    sym_callers.push(a.to_string());
                    sym_cov += path;
                    sym_n += 1;
                    if obs.get(a).is_some_and(|o| mentions(&o.lines, s)) {
                        mention_n += 1;
                    }
                    sym_names.push(format!("{a} ({})", first.unwrap_or_default()));
                }
            }
            let s_callers = if sym_n > 0 {
                sym_sum / sym_n as f64
            } else {
                0.0
            };
            let coverage = if others > 0 {
                sym_cov / others as f64
            } else {
                0.0
            };
            let mention = if sym_n > 0 {
                mention_n as f64 / sym_n as f64
            } else {
                0.0
            };
            if silent && sym_n == 0 {
                continue;
            }
            if sym_n > 0 {
                evidence_for.push(format!(
                    "{sym_n} of {others} other affected services depend on {s} and show its symptoms: {}",
                    sym_names.join(", ")
                ));
            } else if others > 0 && !cause.symptoms.is_empty() {
                evidence_against.push(format!("no caller of {s} shows this cause's symptoms"));
            }
            if mention_n > 0 {
                evidence_for.push(format!("{mention_n} of them name {s} in their logs"));
            }
            if onset >= 1.0 && !silent {
                evidence_for.push(format!("{s} went wrong first"));
            }
            // A cause specific to the component's kind beats a generic one.
            let kind_fit = match (cause.def.kinds.is_empty(), kind) {
                (true, _) => 0.92,
                (false, None) => 0.8,
                (false, Some(k)) if cause.def.kinds.iter().any(|x| x == k) => {
                    evidence_for.push(format!("{s} is a {k}"));
                    1.0
                }
                (false, Some(k)) => {
                    evidence_against.push(format!(
                        "{s} is a {k}, this cause applies to {}",
                        cause.def.kinds.join(", ")
                    ));
                    0.3
                }
            };
            let w = W;
            let base = w[0] * e_self
                + w[1] * s_callers * coverage
                + w[2] * explained
                + w[3] * onset
                + w[4] * mention;
            let score = cause.def.weight * kind_fit * base - 0.30 * against;
            if e_self <= 0.0 && sym_n == 0 {
                continue;
            }
            let b = best_self.entry(s.clone()).or_default();
            *b = b.max(e_self);
            raws.push(Raw {
                cause: ci,
                service: s.clone(),
                e_self,
                score,
                evidence_for,
                evidence_against,
                matched,
                sym_callers,
            });
        }
    }

    let failing: BTreeSet<String> = best_self
        .iter()
        .filter(|(s, e)| **e >= FAILING && obs.contains_key(s.as_str()))
        .map(|(s, _)| s.clone())
        .collect();
    // A service is a symptom when a dependency of it has a hypothesis whose
    // symptoms it shows, and that dependency is failing in its own right or
    // the service names it in its own lines.
    let mut own_best: HashMap<&str, f64> = HashMap::new();
    for r in raws.iter().filter(|r| r.e_self > 0.0) {
        let b = own_best.entry(r.service.as_str()).or_insert(f64::MIN);
        *b = b.max(r.score);
    }
    let mut blockers: HashMap<String, String> = HashMap::new();
    for r in &raws {
        let d = &r.service;
        for a in &r.sym_callers {
            if blockers.contains_key(a) {
                continue;
            }
            let path = topo.dependencies(a).get(d).copied().unwrap_or(0.0);
            let named = obs.get(a.as_str()).is_some_and(|o| mentions(&o.lines, d));
            let stronger = r.score >= own_best.get(a.as_str()).copied().unwrap_or(0.0);
            if path >= 0.5 && (named || (failing.contains(d) && stronger)) {
                blockers.insert(a.clone(), d.clone());
            }
        }
    }
    let mut out: Vec<Hypothesis> = raws
        .into_iter()
        .map(|r| {
            let blocker = blockers.get(&r.service);
            let mut against = r.evidence_against;
            if let Some(b) = blocker {
                against.insert(
                    0,
                    format!(
                        "{} depends on {b} and shows its symptoms: likely a symptom",
                        r.service
                    ),
                );
            }
            let c: &Cause = &kb.causes()[r.cause];
            Hypothesis {
                cause_id: c.def.id.clone(),
                cause_name: c.def.name.clone(),
                category: c.def.category.clone(),
                service: r.service,
                score: r.score,
                confidence: 0.0,
                symptom: blocker.is_some(),
                evidence_for: r.evidence_for,
                evidence_against: against,
                matched: r.matched,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        a.symptom
            .cmp(&b.symptom)
            .then(b.score.total_cmp(&a.score))
            .then(a.cause_id.cmp(&b.cause_id))
            .then(a.service.cmp(&b.service))
    });
    out.truncate(limit.max(1));
    let max = out.iter().map(|h| h.score).fold(f64::MIN, f64::max);
    let z: f64 = out
        .iter()
        .map(|h| ((h.score - max) / TEMPERATURE).exp())
        .sum();
    for h in &mut out {
        h.confidence = ((h.score - max) / TEMPERATURE).exp() / z;
    }
    let mut affected: Vec<String> = anomalous.iter().map(|s| s.to_string()).collect();
    if let Some(top) = out.first()
        && !affected.contains(&top.service)
    {
        affected.push(top.service.clone());
    }
    Diagnosis {
        hypotheses: out,
        affected,
        failing: failing.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(edges: &[(&str, &str)], kinds: &[(&str, &str)]) -> Topology {
        let mut t = Topology::default();
        for (a, b) in edges {
            t.add(super::super::topology::Edge {
                caller: a.to_string(),
                callee: b.to_string(),
                source: super::super::topology::EdgeSource::Config,
                confidence: 1.0,
                support: 0,
            });
        }
        for (s, k) in kinds {
            t.set_kind(s, k);
        }
        t
    }

    fn obs(service: &str, onset: i64, sigs: &[&str], lines: &[&str]) -> ServiceObs {
        let mut o = ServiceObs::new(service);
        for s in sigs {
            o.signal(*s, 1.0, onset);
        }
        for l in lines {
            o.line(l);
        }
        o.onset_ms = Some(onset);
        o
    }

    #[test]
    fn a_silent_database_behind_two_timing_out_callers_is_the_root() {
        let kb = KnowledgeBase::builtin();
        let t = topo(
            &[("api", "db"), ("worker", "db"), ("web", "api")],
            &[("db", "database")],
        );
        let o = vec![
            obs(
                "api",
                10,
                &["sig:net.dependency_timeout", "metric:latency_p99:up"],
                &["query timed out after 5s calling db"],
            ),
            obs(
                "worker",
                12,
                &["sig:net.dependency_timeout"],
                &["read timeout while waiting for db"],
            ),
        ];
        let d = analyze(&kb, &t, &o, 10);
        let top = d.top().unwrap();
        // Timeouts alone do not tell a dead database from a slow one; the
        // database is the root either way.
        assert_eq!(
            (top.category.as_str(), top.service.as_str()),
            ("database", "db"),
            "{:#?}",
            &d.hypotheses[..3]
        );
        assert!(d.hypotheses.iter().take(3).any(|h| h.cause_id == "db.down"));
        assert!(!top.evidence_for.is_empty() && !top.evidence_against.is_empty());
        assert!(d.affected.contains(&"api".into()) && d.affected.contains(&"db".into()));
        assert!(top.confidence > 0.0 && top.confidence <= 1.0);
    }

    #[test]
    fn the_upstream_most_failing_component_ranks_first_and_symptoms_never_do() {
        let kb = KnowledgeBase::builtin();
        let t = topo(&[("web", "api"), ("api", "cache")], &[("cache", "cache")]);
        // The callers shout louder than the root.
        let o = vec![
            obs(
                "web",
                20,
                &[
                    "metric:error_rate:up",
                    "metric:latency:up",
                    "sig:net.dependency_timeout",
                ],
                &[
                    "upstream timeout calling api",
                    "NullPointerException in handler",
                ],
            ),
            obs(
                "api",
                10,
                &["metric:latency:up", "metric:error_rate:up", "metric:cpu:up"],
                &["could not connect to redis cache: connection refused"],
            ),
            obs(
                "cache",
                5,
                &["metric:up:down"],
                &["redis shutdown: saving the final RDB snapshot"],
            ),
        ];
        let d = analyze(&kb, &t, &o, 20);
        let top = d.top().unwrap();
        assert_eq!(top.service, "cache", "{:#?}", &d.hypotheses[..3]);
        assert_eq!(top.cause_id, "cache.down");
        for h in &d.hypotheses {
            if h.service != "cache" {
                assert!(h.symptom, "{h:?}");
            }
        }
    }

    #[test]
    fn a_bad_deploy_is_blamed_on_the_service_not_its_healthy_database() {
        let kb = KnowledgeBase::builtin();
        let t = topo(&[("web", "api"), ("api", "db")], &[("db", "database")]);
        let o = vec![
            obs(
                "api",
                0,
                &["kind:deploy", "metric:error_rate:up"],
                &[
                    "deployed version 2.4.1",
                    "error handling request: KeyError 'user'",
                ],
            ),
            obs(
                "web",
                30,
                &["metric:error_rate:up"],
                &["500 internal server error from api"],
            ),
        ];
        let d = analyze(&kb, &t, &o, 10);
        let top = d.top().unwrap();
        assert_eq!(
            (top.cause_id.as_str(), top.service.as_str()),
            ("deploy.bad_release", "api"),
            "{:#?}",
            &d.hypotheses[..3]
        );
    }

    #[test]
    fn confirmed_weight_changes_the_ranking() {
        let mut kb = KnowledgeBase::builtin();
        let t = topo(&[], &[]);
        let o = vec![obs(
            "api",
            0,
            &["metric:memory:up", "metric:gc_pause:up", "metric:heap:up"],
            &[],
        )];
        let before = analyze(&kb, &t, &o, 5);
        let first = before.top().unwrap().cause_id.clone();
        let second = before.hypotheses[1].cause_id.clone();
        let mut def = kb.get(&second).unwrap().def.clone();
        def.weight = 2.0;
        kb.upsert(def).unwrap();
        let after = analyze(&kb, &t, &o, 5);
        assert_eq!(after.top().unwrap().cause_id, second, "was {first}");
    }

    #[test]
    fn metric_fragments_match_at_word_boundaries() {
        assert!(metric_name_matches("cpu_usage", "cpu"));
        assert!(metric_name_matches("service_up", "up"));
        assert!(!metric_name_matches("uptime", "up"));
        assert!(!metric_name_matches("backup_size", "up"));
        assert!(metric_name_matches("memory_rss", "memory"));
    }
}
