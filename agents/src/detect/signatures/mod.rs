//! Failure signatures: known bad lines, as data.
//!
//! The catalogue is a TOML file compiled into the binary
//! (`builtin.toml`), extendable and overridable by the user's own file:
//! a user signature with the id of a built-in one replaces it.

use regex::Regex;
use serde::Deserialize;
use state::model::{Level, Severity};

/// One signature as written in the catalogue file.
#[derive(Clone, Debug, Deserialize)]
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
    #[serde(default)]
    pub regex: Option<String>,
    /// Words that must all appear (any case).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The line's level must be at least this.
    #[serde(default)]
    pub min_level: Option<String>,
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
    regex: Option<Regex>,
    keywords: Vec<String>,
    min_level: Level,
}

impl Signature {
    pub fn matches(&self, level: Level, message: &str) -> bool {
        if level < self.min_level {
            return false;
        }
        if let Some(re) = &self.regex
            && !re.is_match(message)
        {
            return false;
        }
        if !self.keywords.is_empty() {
            let lower = message.to_ascii_lowercase();
            if !self.keywords.iter().all(|k| lower.contains(k.as_str())) {
                return false;
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
        for d in defs {
            match compile(&d) {
                Ok(s) => signatures.push(s),
                Err(e) => errors.push(format!("signature {}: {e}", d.id)),
            }
        }
        if errors.is_empty() {
            Ok(Catalogue { signatures })
        } else {
            Err(CatalogueError::Invalid(errors))
        }
    }

    /// The first signature matching the line, if any.
    pub fn match_line(&self, level: Level, message: &str) -> Option<&Signature> {
        self.signatures.iter().find(|s| s.matches(level, message))
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

fn compile(d: &SignatureDef) -> Result<Signature, String> {
    let severity =
        Severity::parse(&d.severity).ok_or_else(|| format!("unknown severity {:?}", d.severity))?;
    let min_level = match &d.min_level {
        Some(l) => Level::parse(l).ok_or_else(|| format!("unknown min_level {l:?}"))?,
        None => Level::Trace,
    };
    if d.regex.is_none() && d.keywords.is_empty() {
        return Err("needs a regex or keywords".into());
    }
    let regex = d
        .regex
        .as_deref()
        .map(|r| Regex::new(&format!("(?i){r}")).map_err(|e| format!("bad regex: {e}")))
        .transpose()?;
    Ok(Signature {
        id: d.id.clone(),
        category: d.category.clone(),
        kind: d.kind.clone(),
        severity,
        auto_fixable: d.auto_fixable,
        tags: d.tags.clone(),
        regex,
        keywords: d.keywords.iter().map(|k| k.to_ascii_lowercase()).collect(),
        min_level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(level: Level, msg: &str) -> Option<String> {
        Catalogue::builtin()
            .match_line(level, msg)
            .map(|s| s.id.clone())
    }

    #[test]
    fn builtin_signatures_match_their_lines_and_not_near_misses() {
        let cases = [
            (
                "db.connection_refused",
                "connection to 10.0.0.7:5432 refused",
                "connection accepted from 10.0.0.7",
            ),
            (
                "db.too_many_connections",
                "FATAL: sorry, too many clients already",
                "connections: 12 of 100 in use",
            ),
            (
                "db.deadlock",
                "ERROR: deadlock detected",
                "deadline approaching for report",
            ),
            (
                "mem.out_of_memory",
                "java.lang.OutOfMemoryError: Java heap space",
                "memory usage 40% of limit",
            ),
            (
                "disk.full",
                "write failed: No space left on device",
                "disk usage at 30%",
            ),
            (
                "net.dependency_timeout",
                "request timed out after 30s calling payments",
                "timeout configured to 30s",
            ),
        ];
        for (id, pos, neg) in cases {
            assert_eq!(id_of(Level::Error, pos).as_deref(), Some(id), "{pos}");
            assert_eq!(id_of(Level::Error, neg), None, "{neg}");
        }
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
