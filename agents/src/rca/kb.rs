//! The knowledge base of root causes, as data.
//!
//! The built-in catalogue (`kb/causes.toml`) is compiled in; the user's file
//! and causes learned at run time extend it (same id replaces). A cause has
//! evidence patterns (what the failing component itself shows), symptom
//! patterns (what its callers show), a topology position and candidate fixes.
//!
//! Pattern syntax, one string per pattern, `kind:body`:
//!
//! | pattern | matches a signal |
//! |---|---|
//! | `sig:db.connection_refused` | the failure signature with this id fired |
//! | `tpl:T17` | the log template with this id was seen |
//! | `metric:memory:up` | a metric whose name contains `memory` went anomalously up (`down`, `max` = at its ceiling) |
//! | `log:x509\|certificate` | a case-insensitive regular expression on a log line |
//! | `cat:database` | an anomaly of this category |
//! | `kind:deploy` | an event of this kind (a deploy, a config change) |

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};
use state::model::{Layer, Risk};

pub const BUILTIN: &str = include_str!("kb/causes.toml");

/// Where the component carrying the cause sits in the dependency graph.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// A dependency of others (database, cache, queue, DNS): its callers show symptoms.
    Dependency,
    /// The component itself (a deploy, a leak in a service).
    #[serde(rename = "self")]
    OwnComponent,
    /// Anywhere.
    #[default]
    Any,
}

/// A candidate fix of a cause.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixDef {
    pub id: String,
    pub layer: Layer,
    pub risk: Risk,
    /// Prior success probability from the catalogue, in (0, 1).
    #[serde(default = "default_prior")]
    pub prior: f64,
    /// How many observations the prior is worth (Beta prior strength).
    #[serde(default = "default_prior_strength")]
    pub prior_strength: f64,
    /// Needs an operator's approval before it runs (default: risk is high).
    #[serde(default)]
    pub needs_approval: Option<bool>,
}

fn default_prior() -> f64 {
    0.5
}
fn default_prior_strength() -> f64 {
    2.0
}

impl FixDef {
    pub fn needs_approval(&self) -> bool {
        self.needs_approval.unwrap_or(self.risk == Risk::High)
    }
}

/// One cause as written in the catalogue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CauseDef {
    pub id: String,
    pub name: String,
    pub category: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub position: Position,
    /// Component kinds this cause applies to (`database`, `cache`...); empty = any.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Patterns the failing component itself shows.
    pub evidence: Vec<String>,
    /// Patterns its callers show (timeouts, errors, latency).
    #[serde(default)]
    pub symptoms: Vec<String>,
    /// Patterns that speak against this cause on the component.
    #[serde(default)]
    pub against: Vec<String>,
    #[serde(default)]
    pub fixes: Vec<FixDef>,
    /// Multiplier learned from feedback (confirmations raise it).
    #[serde(default = "one")]
    pub weight: f64,
    /// Per-pattern multipliers learned from feedback (false positives lower them).
    #[serde(default)]
    pub pattern_weights: BTreeMap<String, f64>,
    /// Where the entry comes from: `builtin`, `user`, `learned`.
    #[serde(default = "builtin_source")]
    pub source: String,
}

fn one() -> f64 {
    1.0
}
fn builtin_source() -> String {
    "builtin".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KbFile {
    version: u32,
    #[serde(default)]
    cause: Vec<CauseDef>,
}

#[derive(Debug, thiserror::Error)]
pub enum KbError {
    #[error("cause catalogue is not valid TOML: {0}")]
    Toml(String),
    #[error("cause catalogue has errors: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// A compiled pattern.
#[derive(Clone, Debug)]
pub enum Pattern {
    Signature(String),
    Template(String),
    Metric { fragment: String, dir: Dir },
    Log(Regex),
    Category(String),
    Kind(String),
}

/// Direction of an anomalous metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    Up,
    Down,
    Max,
}

impl Dir {
    pub fn parse(s: &str) -> Option<Dir> {
        Some(match s {
            "up" => Dir::Up,
            "down" => Dir::Down,
            "max" => Dir::Max,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::Up => "up",
            Dir::Down => "down",
            Dir::Max => "max",
        }
    }
}

impl Pattern {
    pub fn parse(raw: &str) -> Result<Pattern, String> {
        let (kind, body) = raw.split_once(':').ok_or_else(|| {
            format!("pattern {raw:?} has no kind: use sig:, tpl:, metric:, log:, cat: or kind:")
        })?;
        if body.is_empty() {
            return Err(format!("pattern {raw:?} is empty"));
        }
        Ok(match kind {
            "sig" => Pattern::Signature(body.into()),
            "tpl" => Pattern::Template(body.into()),
            "cat" => Pattern::Category(body.to_ascii_lowercase()),
            "kind" => Pattern::Kind(body.to_ascii_lowercase()),
            "log" => Pattern::Log(
                Regex::new(&format!("(?i){body}"))
                    .map_err(|e| format!("pattern {raw:?}: bad regex: {e}"))?,
            ),
            "metric" => {
                let (frag, dir) = body.rsplit_once(':').ok_or_else(|| {
                    format!("pattern {raw:?}: use metric:<name fragment>:<up|down|max>")
                })?;
                let dir = Dir::parse(dir)
                    .ok_or_else(|| format!("pattern {raw:?}: direction must be up, down or max"))?;
                Pattern::Metric {
                    fragment: frag.to_ascii_lowercase(),
                    dir,
                }
            }
            k => return Err(format!("pattern {raw:?}: unknown kind {k:?}")),
        })
    }

    /// Base weight of a pattern kind: how specific such evidence usually is.
    pub fn base_weight(&self) -> f64 {
        match self {
            Pattern::Signature(_) => 0.9,
            Pattern::Template(_) => 0.8,
            Pattern::Log(_) => 0.8,
            Pattern::Kind(_) => 0.8,
            Pattern::Metric { .. } => 0.6,
            Pattern::Category(_) => 0.3,
        }
    }
}

/// A cause ready for scoring.
#[derive(Clone, Debug)]
pub struct Cause {
    pub def: CauseDef,
    /// (raw text, compiled) of evidence, symptoms and against patterns.
    pub evidence: Vec<(String, Pattern)>,
    pub symptoms: Vec<(String, Pattern)>,
    pub against: Vec<(String, Pattern)>,
}

impl Cause {
    pub fn compile(def: CauseDef) -> Result<Cause, Vec<String>> {
        let mut errors = Vec::new();
        let mut comp = |list: &[String]| -> Vec<(String, Pattern)> {
            list.iter()
                .filter_map(|p| match Pattern::parse(p) {
                    Ok(c) => Some((p.clone(), c)),
                    Err(e) => {
                        errors.push(e);
                        None
                    }
                })
                .collect()
        };
        let evidence = comp(&def.evidence);
        let symptoms = comp(&def.symptoms);
        let against = comp(&def.against);
        if def.id.trim().is_empty() {
            errors.push("id is empty".into());
        }
        if def.evidence.is_empty() {
            errors.push("needs at least one evidence pattern".into());
        }
        if !(def.weight.is_finite() && def.weight > 0.0) {
            errors.push("weight must be a positive number".into());
        }
        for f in &def.fixes {
            if !(f.prior > 0.0 && f.prior < 1.0) {
                errors.push(format!("fix {}: prior must be in (0, 1)", f.id));
            }
            if !(f.prior_strength > 0.0 && f.prior_strength.is_finite()) {
                errors.push(format!("fix {}: prior_strength must be positive", f.id));
            }
        }
        if errors.is_empty() {
            Ok(Cause {
                def,
                evidence,
                symptoms,
                against,
            })
        } else {
            Err(errors)
        }
    }

    /// Learned multiplier of one pattern (1 when never adjusted).
    pub fn pattern_weight(&self, raw: &str) -> f64 {
        self.def.pattern_weights.get(raw).copied().unwrap_or(1.0)
    }
}

/// The compiled knowledge base.
#[derive(Clone, Debug)]
pub struct KnowledgeBase {
    pub version: u32,
    causes: Vec<Cause>,
}

impl KnowledgeBase {
    /// The built-in catalogue. It is tested, so failing here is a bug.
    pub fn builtin() -> KnowledgeBase {
        KnowledgeBase::from_toml(BUILTIN, None).expect("built-in cause catalogue is valid")
    }

    /// Built-ins plus the user's file: same id replaces.
    pub fn from_toml(builtin: &str, user: Option<&str>) -> Result<KnowledgeBase, KbError> {
        let base = parse(builtin)?;
        let mut defs = base.cause;
        if let Some(u) = user {
            for mut d in parse(u)?.cause {
                d.source = "user".into();
                upsert(&mut defs, d);
            }
        }
        Self::from_defs(base.version, defs)
    }

    /// Compile definitions, reporting every error at once.
    pub fn from_defs(version: u32, defs: Vec<CauseDef>) -> Result<KnowledgeBase, KbError> {
        let mut errors = Vec::new();
        let mut causes = Vec::with_capacity(defs.len());
        let mut seen = std::collections::HashSet::new();
        for d in defs {
            if !seen.insert(d.id.clone()) {
                errors.push(format!("cause {}: duplicate id", d.id));
                continue;
            }
            let id = d.id.clone();
            match Cause::compile(d) {
                Ok(c) => causes.push(c),
                Err(es) => errors.extend(es.into_iter().map(|e| format!("cause {id}: {e}"))),
            }
        }
        if errors.is_empty() {
            Ok(KnowledgeBase { version, causes })
        } else {
            Err(KbError::Invalid(errors))
        }
    }

    /// Add or replace one cause (validated).
    pub fn upsert(&mut self, def: CauseDef) -> Result<(), KbError> {
        let id = def.id.clone();
        let c = Cause::compile(def).map_err(|es| {
            KbError::Invalid(es.into_iter().map(|e| format!("cause {id}: {e}")).collect())
        })?;
        match self.causes.iter_mut().find(|x| x.def.id == id) {
            Some(slot) => *slot = c,
            None => self.causes.push(c),
        }
        Ok(())
    }

    pub fn causes(&self) -> &[Cause] {
        &self.causes
    }

    pub fn get(&self, id: &str) -> Option<&Cause> {
        self.causes.iter().find(|c| c.def.id == id)
    }

    pub fn defs(&self) -> Vec<CauseDef> {
        self.causes.iter().map(|c| c.def.clone()).collect()
    }
}

fn upsert(defs: &mut Vec<CauseDef>, d: CauseDef) {
    match defs.iter_mut().find(|x| x.id == d.id) {
        Some(slot) => *slot = d,
        None => defs.push(d),
    }
}

fn parse(text: &str) -> Result<KbFile, KbError> {
    toml::from_str(text).map_err(|e| KbError::Toml(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn builtin_catalogue_is_valid_and_large_enough() {
        let kb = KnowledgeBase::builtin();
        assert!(kb.version >= 1);
        assert!(kb.causes().len() >= 40, "{} causes", kb.causes().len());
        for c in kb.causes() {
            assert!(!c.def.fixes.is_empty(), "cause {} has no fix", c.def.id);
            assert!(
                !c.def.name.is_empty() && !c.def.description.is_empty(),
                "{}",
                c.def.id
            );
        }
    }

    #[test]
    fn builtin_covers_every_signature_category() {
        let kb = KnowledgeBase::builtin();
        let cats: HashSet<&str> = kb
            .causes()
            .iter()
            .map(|c| c.def.category.as_str())
            .collect();
        for s in crate::detect::signatures::Catalogue::builtin().signatures() {
            assert!(
                cats.contains(s.category.as_str()),
                "no cause for category {}",
                s.category
            );
            let referenced = kb.causes().iter().any(|c| {
                c.evidence
                    .iter()
                    .chain(c.symptoms.iter())
                    .any(|(_, p)| matches!(p, Pattern::Signature(id) if *id == s.id))
            });
            assert!(
                referenced,
                "signature {} is not evidence of any cause",
                s.id
            );
        }
    }

    #[test]
    fn builtin_references_only_known_signatures() {
        let kb = KnowledgeBase::builtin();
        let known: HashSet<String> = crate::detect::signatures::Catalogue::builtin()
            .signatures()
            .iter()
            .map(|s| s.id.clone())
            .collect();
        let mut unknown = Vec::new();
        for c in kb.causes() {
            for (raw, p) in c.evidence.iter().chain(&c.symptoms).chain(&c.against) {
                if let Pattern::Signature(id) = p
                    && !known.contains(id)
                {
                    unknown.push(format!("{}: {raw}", c.def.id));
                }
            }
        }
        assert!(unknown.is_empty(), "unknown signatures: {unknown:?}");
    }

    #[test]
    fn signatures_point_at_the_causes_they_reveal() {
        let kb = KnowledgeBase::builtin();
        let refers = |cause: &str, sig: &str| {
            let c = kb.get(cause).unwrap_or_else(|| panic!("no cause {cause}"));
            c.evidence
                .iter()
                .chain(&c.symptoms)
                .any(|(_, p)| matches!(p, Pattern::Signature(id) if id == sig))
        };
        for (sig, cause) in [
            ("db.too_many_connections", "db.pool_exhausted"),
            ("db.pool_timeout", "db.pool_exhausted"),
            ("db.connection_refused", "db.down"),
            ("db.connection_lost", "db.down"),
            ("db.deadlock", "db.lock_contention"),
            ("db.lock_wait_timeout", "db.lock_contention"),
            ("db.disk_full", "db.disk_full"),
            ("cert.expired", "tls.cert_expired"),
            ("net.tls_handshake", "tls.cert_expired"),
            ("cert.untrusted", "tls.untrusted_chain"),
            ("mem.oom_killed", "mem.limit_too_low"),
            ("mem.out_of_memory", "mem.leak"),
            ("mem.gc_overhead", "runtime.gc_pressure"),
            ("net.dns_failure", "dns.failure"),
            ("disk.full", "disk.full"),
            ("k8s.crash_loop", "runtime.crash_loop"),
            ("http.rate_limited", "external.rate_limited"),
            ("queue.broker_unavailable", "queue.broker_down"),
            ("cpu.throttling", "cpu.saturation"),
        ] {
            assert!(refers(cause, sig), "{sig} should point at {cause}");
        }
        // A caller's view is a symptom of the dependency, not its own evidence.
        let down = kb.get("db.down").unwrap();
        assert!(
            !down
                .evidence
                .iter()
                .any(|(_, p)| matches!(p, Pattern::Signature(id) if id == "db.connection_refused"))
        );
    }

    #[test]
    fn user_file_extends_and_overrides_and_reports_every_error() {
        let user = r#"
version = 1
[[cause]]
id = "db.down"
name = "Database down (site rule)"
category = "database"
evidence = ["sig:db.connection_refused"]
[[cause]]
id = "site.custom"
name = "Custom"
category = "app"
evidence = ["log:flux capacitor"]
"#;
        let kb = KnowledgeBase::from_toml(BUILTIN, Some(user)).unwrap();
        assert_eq!(
            kb.get("db.down").unwrap().def.name,
            "Database down (site rule)"
        );
        assert_eq!(kb.get("site.custom").unwrap().def.source, "user");
        let bad = r#"
version = 1
[[cause]]
id = "a"
name = "A"
category = "x"
evidence = ["metric:cpu:sideways"]
[[cause]]
id = "b"
name = "B"
category = "x"
evidence = ["log:("]
"#;
        let err = KnowledgeBase::from_toml(BUILTIN, Some(bad))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cause a") && err.contains("cause b"), "{err}");
    }
}
