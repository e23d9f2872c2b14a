//! Failure signatures: known bad lines, as data.
//!
//! The catalogue is a TOML file compiled into the binary
//! (`builtin.toml`), extendable and overridable by the user's own file:
//! a user signature with the id of a built-in one replaces it.

use std::collections::BTreeMap;

use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};
use state::model::{Level, LogEvent, Severity};

/// One signature as written in the catalogue file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureDef {
    pub id: String,
    /// Top-level family, e.g. `database`.
    pub category: String,
    /// Second-level kind, e.g. `DATABASE_CONNECTION`.
    pub kind: String,
    pub severity: String,
    #[serde(default)]
    pub auto_fixable: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Case-insensitive regular expression on the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Words that must all appear (any case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// A mined template (`<*>` for each variable part) the whole message
    /// must fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Field name → case-insensitive regex its value must match (a missing
    /// field does not match).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// The line's level must be at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_level: Option<String>,
    /// Raw lines this signature must match (first in the catalogue).
    #[serde(default)]
    pub examples: Vec<String>,
    /// Raw lines that look alike but must not match it.
    #[serde(default)]
    pub near_misses: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    #[serde(default)]
    version: u32,
    #[serde(default)]
    signature: Vec<SignatureDef>,
}

/// A compiled signature.
#[derive(Clone, Debug)]
pub struct Signature {
    pub id: String,
    pub category: String,
    pub kind: String,
    pub severity: Severity,
    pub auto_fixable: bool,
    pub tags: Vec<String>,
    /// The definition it was compiled from (what `GET /signatures` shows).
    pub def: SignatureDef,
    regex: Option<Regex>,
    template: Option<Regex>,
    keywords: Vec<String>,
    fields: Vec<(String, Regex)>,
    min_level: Level,
    /// Indexes of `regex` and `template` in the catalogue's `RegexSet`.
    set_regex: Option<usize>,
    set_template: Option<usize>,
}

impl Signature {
    /// Does the line match (without the catalogue's prefilter)?
    pub fn matches(&self, level: Level, message: &str) -> bool {
        self.matches_parts(level, message, None, &mut None, None)
    }

    /// Does the event (level, message and fields) match?
    pub fn matches_event(&self, ev: &LogEvent) -> bool {
        self.matches_parts(ev.level, &ev.message, Some(&ev.fields), &mut None, None)
    }

    fn matches_parts(
        &self,
        level: Level,
        message: &str,
        fields: Option<&BTreeMap<String, String>>,
        lower: &mut Option<String>,
        set: Option<&regex::SetMatches>,
    ) -> bool {
        if level < self.min_level {
            return false;
        }
        let hit = |re: &Option<Regex>, idx: Option<usize>| match (re, set, idx) {
            (None, _, _) => true,
            (Some(_), Some(m), Some(i)) => m.matched(i),
            (Some(r), _, _) => r.is_match(message),
        };
        if !hit(&self.regex, self.set_regex) || !hit(&self.template, self.set_template) {
            return false;
        }
        if !self.keywords.is_empty() {
            let lower = lower.get_or_insert_with(|| message.to_ascii_lowercase());
            if !self.keywords.iter().all(|k| lower.contains(k.as_str())) {
                return false;
            }
        }
        for (name, re) in &self.fields {
            match fields.and_then(|f| f.get(name)) {
                Some(v) if re.is_match(v) => {}
                _ => return false,
            }
        }
        true
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("signature catalogue is not valid TOML: {0}")]
    Toml(String),
    #[error("signature catalogue has errors: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// The compiled catalogue, in match order.
#[derive(Clone, Debug)]
pub struct Catalogue {
    signatures: Vec<Signature>,
    /// Every regex and template at once: one pass over the message finds
    /// which of them match, instead of one pass per signature.
    set: RegexSet,
}

pub const BUILTIN: &str = include_str!("builtin.toml");

impl Catalogue {
    /// The built-in catalogue. It is tested, so failing here is a bug.
    pub fn builtin() -> Catalogue {
        Catalogue::from_toml(BUILTIN, None).expect("built-in signature catalogue is valid")
    }

    /// Built-ins plus the user's file (`overrides`): same id replaces.
    pub fn from_toml(builtin: &str, overrides: Option<&str>) -> Result<Catalogue, CatalogueError> {
        let mut defs = parse(builtin)?;
        if let Some(user) = overrides {
            for d in parse(user)? {
                match defs.iter_mut().find(|x| x.id == d.id) {
                    Some(slot) => *slot = d,
                    None => defs.push(d),
                }
            }
        }
        let mut errors = Vec::new();
        let mut signatures = Vec::with_capacity(defs.len());
        let mut patterns: Vec<String> = Vec::new();
        for d in defs {
            match compile(&d, &mut patterns) {
                Ok(s) => signatures.push(s),
                Err(e) => errors.push(format!("signature {}: {e}", d.id)),
            }
        }
        if !errors.is_empty() {
            return Err(CatalogueError::Invalid(errors));
        }
        let set = RegexSet::new(&patterns)
            .map_err(|e| CatalogueError::Invalid(vec![format!("regex set: {e}")]))?;
        Ok(Catalogue { signatures, set })
    }

    /// The first signature matching the line, if any (no fields).
    pub fn match_line(&self, level: Level, message: &str) -> Option<&Signature> {
        self.first(level, message, None)
    }

    /// The first signature matching the event, fields included.
    pub fn match_event(&self, ev: &LogEvent) -> Option<&Signature> {
        self.first(ev.level, &ev.message, Some(&ev.fields))
    }

    fn first(
        &self,
        level: Level,
        message: &str,
        fields: Option<&BTreeMap<String, String>>,
    ) -> Option<&Signature> {
        let set = self.set.matches(message);
        let mut lower = None;
        self.signatures
            .iter()
            .find(|s| s.matches_parts(level, message, fields, &mut lower, Some(&set)))
    }

    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    pub fn get(&self, id: &str) -> Option<&Signature> {
        self.signatures.iter().find(|s| s.id == id)
    }
}

fn parse(text: &str) -> Result<Vec<SignatureDef>, CatalogueError> {
    let f: CatalogueFile = toml::from_str(text).map_err(|e| CatalogueError::Toml(e.to_string()))?;
    let _ = f.version;
    Ok(f.signature)
}

/// A template (`connection to <*> refused`) as an anchored regex: literal
/// parts escaped, `<*>` any non-empty text, runs of spaces any whitespace.
pub fn template_regex(template: &str) -> String {
    let parts: Vec<String> = template
        .split("<*>")
        .map(|p| {
            p.split_whitespace()
                .map(regex::escape)
                .collect::<Vec<_>>()
                .join(r"\s+")
                + if p.ends_with(' ') && !p.trim().is_empty() {
                    r"\s+"
                } else {
                    ""
                }
        })
        .map(|p| p.to_string())
        .collect();
    let mut re = String::from(r"^\s*");
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            re.push_str(".+?");
        }
        re.push_str(p);
    }
    re.push_str(r"\s*$");
    re
}

fn compile(d: &SignatureDef, patterns: &mut Vec<String>) -> Result<Signature, String> {
    let severity =
        Severity::parse(&d.severity).ok_or_else(|| format!("unknown severity {:?}", d.severity))?;
    let min_level = match &d.min_level {
        Some(l) => Level::parse(l).ok_or_else(|| format!("unknown min_level {l:?}"))?,
        None => Level::Trace,
    };
    if d.regex.is_none() && d.keywords.is_empty() && d.template.is_none() && d.fields.is_empty() {
        return Err("needs a regex, keywords, a template or a field condition".into());
    }
    let mut add = |src: String, what: &str| -> Result<(Regex, usize), String> {
        let src = format!("(?i){src}");
        let re = Regex::new(&src).map_err(|e| format!("bad {what}: {e}"))?;
        patterns.push(src);
        Ok((re, patterns.len() - 1))
    };
    let (regex, set_regex) = match &d.regex {
        Some(r) => add(r.clone(), "regex").map(|(r, i)| (Some(r), Some(i)))?,
        None => (None, None),
    };
    let (template, set_template) = match &d.template {
        Some(t) => add(template_regex(t), "template").map(|(r, i)| (Some(r), Some(i)))?,
        None => (None, None),
    };
    let fields = d
        .fields
        .iter()
        .map(|(k, v)| {
            Regex::new(&format!("(?i){v}"))
                .map(|r| (k.clone(), r))
                .map_err(|e| format!("bad regex for field {k}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Signature {
        id: d.id.clone(),
        category: d.category.clone(),
        kind: d.kind.clone(),
        severity,
        auto_fixable: d.auto_fixable,
        tags: d.tags.clone(),
        def: d.clone(),
        regex,
        template,
        keywords: d.keywords.iter().map(|k| k.to_ascii_lowercase()).collect(),
        fields,
        min_level,
        set_regex,
        set_template,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_signature_matches_its_examples_first_and_not_its_near_misses() {
        let c = Catalogue::builtin();
        let opts = crate::ingest::raw::RawOptions::default();
        let mut failures = Vec::new();
        for sig in c.signatures() {
            if sig.def.examples.is_empty() || sig.def.near_misses.is_empty() {
                failures.push(format!("{}: needs examples and near misses", sig.id));
            }
            for line in &sig.def.examples {
                let (ev, _) = crate::ingest::raw::parse_line(line, 0, &opts);
                let got = c.match_event(&ev).map(|s| s.id.as_str());
                if got != Some(sig.id.as_str()) {
                    failures.push(format!("{}: example {line:?} matched {got:?}", sig.id));
                }
            }
            for line in &sig.def.near_misses {
                let (ev, _) = crate::ingest::raw::parse_line(line, 0, &opts);
                if sig.matches_event(&ev) {
                    failures.push(format!("{}: near miss {line:?} matched", sig.id));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn catalogue_covers_the_known_categories() {
        let c = Catalogue::builtin();
        assert!(c.signatures().len() >= 60, "{}", c.signatures().len());
        for kind in [
            "DUPLICATE_DATA",
            "CONNECTION_ISSUE",
            "LOCK_CONTENTION",
            "PERMISSION_ERROR",
            "QUERY_SYNTAX",
            "CONSTRAINT_VIOLATION",
            "RESOURCE_EXHAUSTION",
            "MEMORY_LEAK",
            "CPU_SPIKE",
            "NETWORK_TIMEOUT",
            "DATABASE_CONNECTION",
            "API_FAILURE",
            "DEPLOYMENT_FAILURE",
            "CONFIGURATION_ERROR",
            "DEPENDENCY_FAILURE",
        ] {
            assert!(c.signatures().iter().any(|s| s.kind == kind), "no {kind}");
        }
        let mut ids: Vec<&str> = c.signatures().iter().map(|s| s.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), c.signatures().len(), "duplicate ids");
    }

    #[test]
    fn templates_keywords_and_field_conditions_match() {
        let user = r#"
[[signature]]
id = "t"
category = "x"
kind = "X"
severity = "low"
template = "connection to <*> refused"
[[signature]]
id = "k"
category = "x"
kind = "X"
severity = "low"
keywords = ["Disk", "quota"]
fields = { volume = "^/data" }
"#;
        let c = Catalogue::from_toml("", Some(user)).unwrap();
        assert_eq!(
            c.match_line(Level::Info, "connection to 10.0.0.1:5432 refused")
                .map(|s| s.id.as_str()),
            Some("t")
        );
        assert!(
            c.match_line(Level::Info, "connection to x refused now")
                .is_none()
        );
        let mut ev = LogEvent {
            ts_ms: 0,
            service: "s".into(),
            level: Level::Warn,
            message: "disk QUOTA reached".into(),
            fields: BTreeMap::new(),
        };
        assert!(c.match_event(&ev).is_none(), "field missing");
        ev.fields.insert("volume".into(), "/data/1".into());
        assert_eq!(c.match_event(&ev).map(|s| s.id.as_str()), Some("k"));
    }

    #[test]
    fn user_file_overrides_by_id_and_reports_every_error() {
        let user = r#"
[[signature]]
id = "disk.full"
category = "disk"
kind = "RESOURCE_EXHAUSTION"
severity = "low"
regex = "disk full"
"#;
        let c = Catalogue::from_toml(BUILTIN, Some(user)).unwrap();
        assert_eq!(c.get("disk.full").unwrap().severity, Severity::Low);
        let bad = r#"
[[signature]]
id = "a"
category = "x"
kind = "X"
severity = "huge"
regex = "("
[[signature]]
id = "b"
category = "x"
kind = "X"
severity = "low"
"#;
        let err = Catalogue::from_toml(BUILTIN, Some(bad))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("signature a") && err.contains("signature b"),
            "{err}"
        );
    }
}
