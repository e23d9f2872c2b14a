//! Channels, routing, rate limits and retries of the notify stage.
//!
//! ```toml
//! [notify]
//! public_url = "http://127.0.0.1:8080"
//! [[notify.channels]]
//! name = "ops-telegram"
//! kind = { type = "telegram", token = "...", chat_id = "-100123" }
//! min_severity = "high"
//! services = ["checkout"]        # empty: every service
//! per_minute = 20
//! ```
//! Tokens and webhook URLs are [`Secret`]s: never printed, logged or
//! returned by the API.

use std::fmt;

use serde::{Deserialize, Deserializer};
use state::model::Severity;

/// A secret string: Debug and Display print `***`; not serializable.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Secret(String::deserialize(d)?))
    }
}

fn telegram_base() -> String {
    "https://api.telegram.org".into()
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelKind {
    /// Bot API `sendMessage`.
    Telegram {
        token: Secret,
        chat_id: String,
        /// Overridable for tests.
        #[serde(default = "telegram_base")]
        base_url: String,
    },
    /// Incoming webhook: `{"text": ...}`.
    Slack { webhook_url: Secret },
    /// Webhook: `{"content": ...}` (at most 2000 characters).
    Discord { webhook_url: Secret },
    /// Any URL: the whole notice as JSON.
    Webhook { url: Secret },
}

impl ChannelKind {
    pub fn name(&self) -> &'static str {
        match self {
            ChannelKind::Telegram { .. } => "telegram",
            ChannelKind::Slack { .. } => "slack",
            ChannelKind::Discord { .. } => "discord",
            ChannelKind::Webhook { .. } => "webhook",
        }
    }
}

fn default_per_minute() -> u32 {
    20
}
fn default_min_severity() -> Severity {
    Severity::Low
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Unique name (the delivery log's key).
    pub name: String,
    pub kind: ChannelKind,
    /// Only incidents of this severity or higher.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Only these services (empty: all).
    #[serde(default)]
    pub services: Vec<String>,
    /// Most messages per minute on this channel; more wait their turn.
    #[serde(default = "default_per_minute")]
    pub per_minute: u32,
}

impl ChannelConfig {
    pub fn routes(&self, severity: Severity, service: &str) -> bool {
        severity >= self.min_severity
            && (self.services.is_empty() || self.services.iter().any(|s| s == service))
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts per message, the first included.
    pub attempts: u32,
    /// First wait; doubles each retry (a Retry-After header wins).
    pub base_ms: u64,
    /// Longest wait between attempts.
    pub max_ms: u64,
    /// Timeout of one request.
    pub timeout_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_ms: 500,
            max_ms: 30_000,
            timeout_ms: 10_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Base of the incident links in messages.
    pub public_url: String,
    pub channels: Vec<ChannelConfig>,
    pub retry: RetryConfig,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            channels: vec![],
            retry: RetryConfig::default(),
        }
    }
}

impl NotifyConfig {
    /// Add the channels given by the environment (`TELEGRAM_BOT_TOKEN` +
    /// `TELEGRAM_CHAT_ID`, `SLACK_WEBHOOK_URL`, `DISCORD_WEBHOOK_URL`,
    /// `NOTIFY_WEBHOOK_URL`) unless a channel of that kind is configured.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        let has = |c: &Self, k: &str| c.channels.iter().any(|ch| ch.kind.name() == k);
        let add = |c: &mut Self, name: &str, kind: ChannelKind| {
            c.channels.push(ChannelConfig {
                name: name.into(),
                kind,
                min_severity: Severity::Low,
                services: vec![],
                per_minute: default_per_minute(),
            })
        };
        if !has(self, "telegram")
            && let (Some(token), Some(chat_id)) =
                (get("TELEGRAM_BOT_TOKEN"), get("TELEGRAM_CHAT_ID"))
        {
            let kind = ChannelKind::Telegram {
                token: Secret(token),
                chat_id,
                base_url: get("TELEGRAM_API_URL").unwrap_or_else(telegram_base),
            };
            add(self, "telegram", kind);
        }
        if !has(self, "slack")
            && let Some(u) = get("SLACK_WEBHOOK_URL")
        {
            add(
                self,
                "slack",
                ChannelKind::Slack {
                    webhook_url: Secret(u),
                },
            );
        }
        if !has(self, "discord")
            && let Some(u) = get("DISCORD_WEBHOOK_URL")
        {
            add(
                self,
                "discord",
                ChannelKind::Discord {
                    webhook_url: Secret(u),
                },
            );
        }
        if !has(self, "webhook")
            && let Some(u) = get("NOTIFY_WEBHOOK_URL")
        {
            add(self, "webhook", ChannelKind::Webhook { url: Secret(u) });
        }
    }

    /// Every problem at once.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            if c.name.is_empty() || self.channels[..i].iter().any(|o| o.name == c.name) {
                errors.push(format!(
                    "notify.channels[{i}].name: must be unique and not empty"
                ));
            }
            if c.per_minute == 0 {
                errors.push(format!(
                    "notify.channels[{i}].per_minute: must be greater than 0"
                ));
            }
        }
        if self.retry.attempts == 0 {
            errors.push("notify.retry.attempts: must be greater than 0".into());
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_adds_channels_and_secrets_stay_hidden() {
        let mut c = NotifyConfig::default();
        c.apply_env(|k| match k {
            "TELEGRAM_BOT_TOKEN" => Some("123:SECRET-TOKEN".into()),
            "TELEGRAM_CHAT_ID" => Some("42".into()),
            "SLACK_WEBHOOK_URL" => Some("https://hooks.slack.com/services/SECRET".into()),
            _ => None,
        });
        assert_eq!(c.channels.len(), 2);
        assert!(c.validate().is_empty());
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    #[test]
    fn routing_by_severity_and_service() {
        let c: NotifyConfig = toml::from_str(
            r#"
[[channels]]
name = "a"
kind = { type = "slack", webhook_url = "http://x" }
min_severity = "high"
services = ["checkout"]
"#,
        )
        .unwrap();
        let ch = &c.channels[0];
        assert!(ch.routes(Severity::Critical, "checkout"));
        assert!(!ch.routes(Severity::Medium, "checkout"));
        assert!(!ch.routes(Severity::Critical, "search"));
    }
}
