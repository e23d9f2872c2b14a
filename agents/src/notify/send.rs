//! Delivery of one message with retries: 5xx, 429 and network errors are
//! retried with exponential backoff (a `Retry-After` header, or Telegram's
//! `parameters.retry_after`, wins, capped); other 4xx are final. Errors
//! never carry the URL (it may hold a token).

use std::time::Duration;

use serde_json::Value;

use super::config::RetryConfig;

/// The final result of a delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct Sent {
    pub ok: bool,
    pub attempts: u32,
    /// Last error, without URL or token.
    pub error: String,
}

fn retry_after(resp_headers: &reqwest::header::HeaderMap, body: &str) -> Option<Duration> {
    if let Some(s) = resp_headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some(Duration::from_secs(s));
    }
    serde_json::from_str::<Value>(body)
        .ok()?
        .pointer("/parameters/retry_after")?
        .as_u64()
        .map(Duration::from_secs)
}

pub async fn deliver(client: &reqwest::Client, url: &str, body: &Value, r: &RetryConfig) -> Sent {
    let mut error = String::new();
    let mut wait = Duration::from_millis(r.base_ms);
    let max = Duration::from_millis(r.max_ms);
    for attempt in 1..=r.attempts {
        let resp = client
            .post(url)
            .timeout(Duration::from_millis(r.timeout_ms))
            .json(body)
            .send()
            .await;
        let mut next_wait = wait;
        match resp {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                let text = resp.text().await.unwrap_or_default();
                if status.is_success() {
                    return Sent {
                        ok: true,
                        attempts: attempt,
                        error: String::new(),
                    };
                }
                error = format!("answered {}", status.as_u16());
                let retryable = status.is_server_error() || status.as_u16() == 429;
                if !retryable {
                    return Sent {
                        ok: false,
                        attempts: attempt,
                        error,
                    };
                }
                if let Some(ra) = retry_after(&headers, &text) {
                    next_wait = ra;
                }
            }
            Err(e) => error = e.without_url().to_string(),
        }
        if attempt < r.attempts {
            tokio::time::sleep(next_wait.min(max)).await;
            wait = (wait * 2).min(max);
        }
    }
    Sent {
        ok: false,
        attempts: r.attempts,
        error,
    }
}
