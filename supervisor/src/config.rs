//! Configuration: defaults → TOML file (`--config`) → environment
//! (`SELFHEAL_*`) → command-line flags. Unknown keys are errors naming the
//! key; [`Config::validate`] reports every problem at once; secrets are
//! never printed.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A secret string: Debug and Display print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Secret(String::deserialize(d)?))
    }
}

/// A duration written as text: `500ms`, `30s`, `15m`, `24h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map(Dur)
            .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a duration: {e}")))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable on a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP API listens on. Non-loopback needs `api_key`.
    pub listen: SocketAddr,
    /// Directory of the embedded store.
    pub data_dir: PathBuf,
    /// Bearer token required on mutating endpoints (`POST`).
    pub api_key: Option<Secret>,
    /// Largest accepted request body, in bytes (larger: 413).
    pub max_body_bytes: usize,
    pub log_format: LogFormat,
    /// sled page cache, in MiB.
    pub cache_mb: u64,
    pub wal: WalConfig,
    pub triage: TriageConfig,
    pub supervision: SupervisionConfig,
    /// A TOML file of extra failure signatures (same id overrides a built-in).
    pub signatures_file: Option<PathBuf>,
    /// Recovery actions and guardrails (dry-run unless `mode` says otherwise).
    #[serde(default)]
    pub recovery: agents::recovery::config::RecoveryConfig,
    /// Notification channels, routing, retries.
    #[serde(default)]
    pub notify: agents::notify::config::NotifyConfig,
    /// Root-cause analysis, correlation and fix selection.
    pub rca: RcaConfig,
    /// Statistical detectors of metric and log-derived streams (`[detect]`).
    #[serde(default)]
    pub detect: agents::detect::streams::StreamsConfig,
}

/// `[rca]`: the dependency graph, correlation windows, the knowledge base
/// file and fix-selection settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RcaConfig {
    /// Service → the services it calls (`api = ["orders-db", "redis"]`).
    pub dependencies: std::collections::BTreeMap<String, Vec<String>>,
    /// Service → component kind (`orders-db = "database"`): lets causes
    /// specific to a kind (database, cache, queue, dns, external, auth) apply.
    pub kinds: std::collections::BTreeMap<String, String>,
    /// A TOML file of extra causes (same id overrides a built-in).
    pub causes_file: Option<PathBuf>,
    /// Signals of linked services this close to an incident join it.
    pub correlation_window: Dur,
    /// An incident re-opened this soon after being resolved is flapping.
    pub flap_window: Dur,
    /// Resolve incidents whose signals stayed quiet this long (`0s` = never).
    pub auto_resolve_after: Dur,
    /// A fix tried on a target is not proposed again for it within this time.
    pub fix_cooldown: Dur,
    /// Rank fixes by a draw from their posterior (exploration) instead of its mean.
    pub thompson_sampling: bool,
}

impl Default for RcaConfig {
    fn default() -> Self {
        Self {
            dependencies: Default::default(),
            kinds: Default::default(),
            causes_file: None,
            correlation_window: Dur(Duration::from_secs(5 * 60)),
            flap_window: Dur(Duration::from_secs(30 * 60)),
            auto_resolve_after: Dur(Duration::ZERO),
            fix_cooldown: Dur(Duration::from_secs(10 * 60)),
            thompson_sampling: false,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    /// Processed write-ahead records older than this are removed.
    pub retention_age: Dur,
    /// Processed records are removed, oldest first, above this size; when
    /// unprocessed records alone exceed it, ingest answers 503.
    pub retention_bytes: u64,
    /// Batches handed to the pipeline but not yet committed, at most.
    pub max_inflight_batches: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TriageConfig {
    /// Same failure on the same service within this window = same incident.
    pub dedup_window: Dur,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionConfig {
    /// Restarts allowed per `period` before a supervisor gives up.
    pub max_restarts: u32,
    pub period: Dur,
    /// A stage with queued work and no progress for this long is restarted.
    pub stuck_after: Dur,
    /// How long a stage may take to stop before it is killed.
    pub shutdown_timeout: Dur,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            data_dir: PathBuf::from("./data"),
            api_key: None,
            max_body_bytes: 10 * 1024 * 1024,
            log_format: LogFormat::Text,
            cache_mb: 64,
            wal: WalConfig::default(),
            triage: TriageConfig::default(),
            supervision: SupervisionConfig::default(),
            signatures_file: None,
            recovery: Default::default(),
            notify: Default::default(),
            rca: RcaConfig::default(),
            detect: Default::default(),
        }
    }
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            retention_age: Dur(Duration::from_secs(24 * 3600)),
            retention_bytes: 1024 * 1024 * 1024,
            max_inflight_batches: 64,
        }
    }
}

impl Default for TriageConfig {
    fn default() -> Self {
        Self {
            dedup_window: Dur(Duration::from_secs(15 * 60)),
        }
    }
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            period: Dur(Duration::from_secs(10)),
            stuck_after: Dur(Duration::from_secs(30)),
            shutdown_timeout: Dur(Duration::from_secs(5)),
        }
    }
}

/// Environment variables read on top of the file (name, what it sets).
pub const ENV_VARS: &[(&str, &str)] = &[
    ("SELFHEAL_LISTEN", "listen"),
    ("SELFHEAL_DATA_DIR", "data_dir"),
    ("SELFHEAL_API_KEY", "api_key"),
    ("SELFHEAL_LOG_FORMAT", "log_format (text | json)"),
    ("SELFHEAL_MAX_BODY_BYTES", "max_body_bytes"),
];

impl Config {
    /// Defaults, then the TOML file if given.
    pub fn from_file(path: Option<&Path>) -> anyhow::Result<Config> {
        match path {
            None => Ok(Config::default()),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("reading config {}: {e}", p.display()))?;
                Config::from_toml(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", p.display()))
            }
        }
    }

    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Apply `SELFHEAL_*` variables from `get` (the process environment in
    /// `main`), collecting every bad value.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if let Some(v) = get("SELFHEAL_LISTEN") {
            match v.parse() {
                Ok(a) => self.listen = a,
                Err(_) => errors.push(format!(
                    "SELFHEAL_LISTEN: {v:?} is not an address like 127.0.0.1:8080"
                )),
            }
        }
        if let Some(v) = get("SELFHEAL_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("SELFHEAL_API_KEY") {
            self.api_key = Some(Secret(v));
        }
        if let Some(v) = get("SELFHEAL_LOG_FORMAT") {
            match v.as_str() {
                "text" => self.log_format = LogFormat::Text,
                "json" => self.log_format = LogFormat::Json,
                _ => errors.push(format!("SELFHEAL_LOG_FORMAT: {v:?} is not text or json")),
            }
        }
        if let Some(v) = get("SELFHEAL_MAX_BODY_BYTES") {
            match v.parse() {
                Ok(n) => self.max_body_bytes = n,
                Err(_) => errors.push(format!("SELFHEAL_MAX_BODY_BYTES: {v:?} is not a number")),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Every problem, at once.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if !self.listen.ip().is_loopback() && self.api_key.is_none() {
            errors.push(format!(
                "listen: {} is not a loopback address; set api_key (or SELFHEAL_API_KEY) to listen on it",
                self.listen
            ));
        }
        if self.api_key.as_ref().is_some_and(|k| k.0.len() < 16) {
            errors.push("api_key: must be at least 16 characters".into());
        }
        if self.max_body_bytes == 0 {
            errors.push("max_body_bytes: must be greater than 0".into());
        }
        if self.wal.max_inflight_batches == 0 {
            errors.push("wal.max_inflight_batches: must be greater than 0".into());
        }
        if self.supervision.max_restarts == 0 {
            errors.push("supervision.max_restarts: must be greater than 0".into());
        }
        if self.supervision.period.0.is_zero() {
            errors.push("supervision.period: must be greater than 0".into());
        }
        errors.extend(self.recovery.validate());
        errors.extend(self.notify.validate());
        if self.rca.correlation_window.0.is_zero() {
            errors.push("rca.correlation_window: must be greater than 0".into());
        }
        for (svc, deps) in &self.rca.dependencies {
            if deps.iter().any(|d| d == svc) {
                errors.push(format!(
                    "rca.dependencies.{svc}: a service cannot depend on itself"
                ));
            }
        }
        errors.extend(self.detect.validate());
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_toml("listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap_err();
        assert!(err.contains("listen_port"), "{err}");
        let err = Config::from_toml("[wal]\nretention = \"1h\"\n").unwrap_err();
        assert!(err.contains("retention"), "{err}");
    }

    #[test]
    fn file_then_env_override_defaults() {
        let mut c =
            Config::from_toml("data_dir = \"/tmp/x\"\n[triage]\ndedup_window = \"2m\"\n").unwrap();
        assert_eq!(c.triage.dedup_window.0, Duration::from_secs(120));
        c.apply_env(|k| (k == "SELFHEAL_DATA_DIR").then(|| "/tmp/y".to_string()))
            .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/y"));
        let errs = c
            .apply_env(|k| match k {
                "SELFHEAL_LISTEN" => Some("nope".into()),
                "SELFHEAL_LOG_FORMAT" => Some("xml".into()),
                _ => None,
            })
            .unwrap_err();
        assert_eq!(errs.len(), 2);
    }

    #[test]
    fn validation_reports_every_problem_and_hides_secrets() {
        let mut c = Config {
            listen: "0.0.0.0:8080".parse().unwrap(),
            max_body_bytes: 0,
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().len(), 2);
        c.api_key = Some(Secret("a-long-enough-secret".into()));
        c.max_body_bytes = 1;
        assert!(c.validate().is_ok());
        assert!(!format!("{c:?}").contains("a-long-enough-secret"));
    }
}
