//! What a notification says, and the request each channel gets (the real
//! APIs' request shapes: Telegram Bot API `sendMessage`, Slack and Discord
//! incoming webhooks, a generic JSON webhook).

use serde::Serialize;
use serde_json::{Value, json};
use state::model::Severity;

use super::config::ChannelKind;

/// One incident update to tell people about.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notice {
    pub incident_id: String,
    /// `opened`, `diagnosed`, `awaiting_approval`, `fix_applied`,
    /// `verified`, `escalated`, `resolved`, `paged`...
    pub update: String,
    /// Identifies this update: the same key is sent once per channel.
    pub key: String,
    pub service: String,
    pub severity: Severity,
    pub title: String,
    pub root_cause: Option<String>,
    pub fix: Option<String>,
    pub detail: String,
    pub link: String,
}

impl Notice {
    pub fn text(&self) -> String {
        let mut t = format!(
            "[{:?}] {} — {}\n{}: {}",
            self.severity, self.service, self.title, self.update, self.detail
        );
        if let Some(c) = &self.root_cause {
            t.push_str(&format!("\nroot cause: {c}"));
        }
        if let Some(f) = &self.fix {
            t.push_str(&format!("\nfix: {f}"));
        }
        t.push_str(&format!("\n{}", self.link));
        t
    }
}

/// URL and JSON body for `kind`. The URL may hold a secret: never log it.
pub fn request(kind: &ChannelKind, n: &Notice) -> (String, Value) {
    match kind {
        ChannelKind::Telegram {
            token,
            chat_id,
            base_url,
        } => (
            format!(
                "{}/bot{}/sendMessage",
                base_url.trim_end_matches('/'),
                token.0
            ),
            json!({ "chat_id": chat_id, "text": n.text(), "disable_web_page_preview": true }),
        ),
        ChannelKind::Slack { webhook_url } => (webhook_url.0.clone(), json!({ "text": n.text() })),
        ChannelKind::Discord { webhook_url } => {
            let text: String = n.text().chars().take(2000).collect();
            (webhook_url.0.clone(), json!({ "content": text }))
        }
        ChannelKind::Webhook { url } => (
            url.0.clone(),
            serde_json::to_value(n).unwrap_or(Value::Null),
        ),
    }
}
