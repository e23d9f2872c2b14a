//! Recovery actions as configuration: named actions with a layer, a kind
//! and its parameters, a verification and a risk; plus the guardrail
//! settings. Serde types the supervisor's config embeds as `[recovery]`.
//!
//! ```toml
//! [recovery]
//! mode = "auto"                       # dry-run (default) | approve | auto
//! allowed_hosts = ["127.0.0.1:9000"]
//!
//! [recovery.actions.restart_demo]
//! layer = "service"
//! risk = "low"
//! kind = { type = "command", program = "/usr/bin/systemctl", args = ["restart", "{target}"], timeout = "10s" }
//! verify = { check = { type = "http", url = "http://127.0.0.1:9000/health", status = 200 }, within = "10s", hold = "2s" }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use state::model::{Layer, Risk};

use super::template::Template;

/// A duration written as text (`500ms`, `10s`, `5m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(pub Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map(Span)
            .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a duration: {e}")))
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(self.0))
    }
}

impl Span {
    pub fn secs(n: u64) -> Self {
        Span(Duration::from_secs(n))
    }
    pub fn millis(n: u64) -> Self {
        Span(Duration::from_millis(n))
    }
    pub fn ms(self) -> i64 {
        self.0.as_millis() as i64
    }
}

/// How much the recovery stage may do on its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Plan and log, execute nothing.
    #[default]
    DryRun,
    /// Every action waits for `POST /actions/{id}/approve`.
    Approve,
    /// Actions run unless a guardrail says otherwise.
    Auto,
}

/// What the stores' `data` action does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataOp {
    Snapshot,
    Restore,
    Check,
}

/// What an action runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionKind {
    /// Restart one of the supervisor's own stages through the tree, by
    /// path (`root/pipeline/detect`); the path may use placeholders.
    RestartAgent { path: String },
    /// Run `program` with `args`, without a shell. Each argument is a
    /// template; each placeholder fills exactly one argument.
    Command {
        program: String,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default = "default_timeout")]
        timeout: Span,
    },
    /// Call a webhook on an allowed host; string leaves of `body` are
    /// templates. Succeeds when the answer has `status`.
    Http {
        #[serde(default = "default_method")]
        method: String,
        url: String,
        #[serde(default)]
        body: Option<serde_json::Value>,
        #[serde(default = "default_timeout")]
        timeout: Span,
        #[serde(default = "default_status")]
        status: u16,
    },
    /// Snapshot / restore / integrity check of the supervisor's own store.
    Data { op: DataOp },
}

fn default_timeout() -> Span {
    Span::secs(30)
}
fn default_method() -> String {
    "POST".into()
}
fn default_status() -> u16 {
    200
}
fn default_within() -> Span {
    Span::secs(30)
}
fn default_hold() -> Span {
    Span::secs(0)
}
fn default_interval() -> Span {
    Span::millis(200)
}

/// A health check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// `GET url` answers `status`.
    Http {
        url: String,
        #[serde(default = "default_status")]
        status: u16,
    },
    /// `program args` exits with `exit`.
    Command {
        program: String,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        exit: i32,
    },
    /// The Prometheus text at `url` has every series `name` below `below`.
    Metric {
        url: String,
        name: String,
        below: f64,
    },
}

/// A check that must pass within `within` and keep passing for `hold`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    pub check: Check,
    #[serde(default = "default_within")]
    pub within: Span,
    #[serde(default = "default_hold")]
    pub hold: Span,
    /// Time between checks.
    #[serde(default = "default_interval")]
    pub interval: Span,
    /// Timeout of one check.
    #[serde(default = "default_check_timeout")]
    pub timeout: Span,
}

fn default_check_timeout() -> Span {
    Span::secs(2)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    pub layer: Layer,
    pub risk: Risk,
    pub kind: ActionKind,
    /// Without a verification an action can never count as a success.
    #[serde(default)]
    pub verify: Option<Verification>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// Attempts per target within `period`.
    pub max_attempts: u32,
    pub period: Span,
    /// Wait after the first failure; doubles with each further failure.
    pub backoff_base: Span,
    pub backoff_max: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failures on one target that open its breaker.
    pub failures: u32,
    /// How long it stays open before one trial action is allowed.
    pub cooldown: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StormConfig {
    /// Actions across all targets within `period` that halt automation.
    pub max_actions: u32,
    pub period: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecoveryConfig {
    pub mode: Mode,
    /// Hosts (`host` or `host:port`) webhooks and checks may call.
    pub allowed_hosts: Vec<String>,
    /// Actions of this risk or higher always wait for approval.
    pub approval_risk: Risk,
    /// How long an action waits for approval before it expires.
    pub approval_ttl: Span,
    pub budget: BudgetConfig,
    pub breaker: BreakerConfig,
    pub storm: StormConfig,
    /// Targets never acted on.
    pub silenced: Vec<String>,
    /// Where `data` snapshots go (default: `<data_dir>/snapshots`).
    pub snapshot_dir: Option<PathBuf>,
    pub actions: BTreeMap<String, ActionConfig>,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            period: Span::secs(600),
            backoff_base: Span::secs(5),
            backoff_max: Span::secs(300),
        }
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 3,
            cooldown: Span::secs(600),
        }
    }
}

impl Default for StormConfig {
    fn default() -> Self {
        Self {
            max_actions: 10,
            period: Span::secs(300),
        }
    }
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self {
            mode: Mode::DryRun,
            allowed_hosts: vec![],
            approval_risk: Risk::High,
            approval_ttl: Span::secs(900),
            budget: BudgetConfig::default(),
            breaker: BreakerConfig::default(),
            storm: StormConfig::default(),
            silenced: vec![],
            snapshot_dir: None,
            actions: BTreeMap::new(),
        }
    }
}

impl RecoveryConfig {
    /// Every problem, at once, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.budget.max_attempts == 0 {
            errors.push("recovery.budget.max_attempts: must be greater than 0".into());
        }
        if self.breaker.failures == 0 {
            errors.push("recovery.breaker.failures: must be greater than 0".into());
        }
        if self.storm.max_actions == 0 {
            errors.push("recovery.storm.max_actions: must be greater than 0".into());
        }
        for (name, a) in &self.actions {
            let key = format!("recovery.actions.{name}");
            let mut templates: Vec<&str> = Vec::new();
            match &a.kind {
                ActionKind::RestartAgent { path } => templates.push(path),
                ActionKind::Command { program, args, .. } => {
                    if !program.starts_with('/') {
                        errors.push(format!(
                            "{key}.kind.program: {program:?} must be an absolute path"
                        ));
                    }
                    templates.extend(args.iter().map(String::as_str));
                }
                ActionKind::Http {
                    url, method, body, ..
                } => {
                    if let Err(e) = super::exec::check_url(url, &self.allowed_hosts) {
                        errors.push(format!("{key}.kind.url: {e}"));
                    }
                    if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
                        errors.push(format!(
                            "{key}.kind.method: {method:?} is not an HTTP method"
                        ));
                    }
                    if let Some(b) = body {
                        let mut strings = Vec::new();
                        collect_strings(b, &mut strings);
                        for s in strings {
                            if let Err(e) = Template::parse(s) {
                                errors.push(format!("{key}.kind.body: {e}"));
                            }
                        }
                    }
                }
                ActionKind::Data { .. } => {}
            }
            for t in templates {
                if let Err(e) = Template::parse(t) {
                    errors.push(format!("{key}.kind: {e}"));
                }
            }
            if let Some(v) = &a.verify {
                match &v.check {
                    Check::Http { url, .. } | Check::Metric { url, .. } => {
                        if let Err(e) = super::exec::check_url(url, &self.allowed_hosts) {
                            errors.push(format!("{key}.verify.check.url: {e}"));
                        }
                    }
                    Check::Command { program, .. } => {
                        if !program.starts_with('/') {
                            errors.push(format!(
                                "{key}.verify.check.program: {program:?} must be an absolute path"
                            ));
                        }
                    }
                }
                if v.interval.0.is_zero() {
                    errors.push(format!("{key}.verify.interval: must be greater than 0"));
                }
            }
        }
        errors
    }
}

fn collect_strings<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match v {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_strings(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
mode = "auto"
allowed_hosts = ["127.0.0.1:9000"]

[actions.restart_demo]
layer = "service"
risk = "low"
kind = { type = "command", program = "/usr/bin/systemctl", args = ["restart", "{target}"], timeout = "10s" }
verify = { check = { type = "http", url = "http://127.0.0.1:9000/health", status = 200 }, within = "10s", hold = "2s" }

[actions.page]
layer = "infrastructure"
risk = "medium"
kind = { type = "http", url = "http://127.0.0.1:9000/hook", body = { text = "fix {fix} on {service}" } }

[actions.restart_detect]
layer = "application"
risk = "low"
kind = { type = "restart_agent", path = "root/pipeline/detect" }

[actions.snap]
layer = "data"
risk = "medium"
kind = { type = "data", op = "snapshot" }
"#;

    #[test]
    fn sample_config_parses_and_validates() {
        let c: RecoveryConfig = toml::from_str(SAMPLE).unwrap();
        assert_eq!(c.mode, Mode::Auto);
        assert_eq!(c.actions.len(), 4);
        assert_eq!(c.validate(), Vec::<String>::new());
        assert_eq!(RecoveryConfig::default().mode, Mode::DryRun);
    }

    #[test]
    fn validation_names_every_bad_action() {
        let text = r#"
[actions.a]
layer = "service"
risk = "low"
kind = { type = "command", program = "rm", args = ["{password}"] }
[actions.b]
layer = "service"
risk = "low"
kind = { type = "http", url = "http://evil.example/x" }
"#;
        let c: RecoveryConfig = toml::from_str(text).unwrap();
        let errs = c.validate();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("password")));
        assert!(errs.iter().any(|e| e.contains("evil.example")));
        let bad = toml::from_str::<RecoveryConfig>(
            "[actions.a]\nlayer = \"service\"\nrisk = \"low\"\nkind = { type = \"data\", op = \"check\", extra = 1 }\n",
        );
        assert!(bad.unwrap_err().to_string().contains("extra"));
    }
}
