//! The notifier against a local server standing in for Telegram and Slack
//! (same paths and bodies as the real APIs), with injected 500s and 429s.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ractor::Actor;
use serde_json::{Value, json};
use state::Store;
use state::model::Severity;
use state::trees::Deliveries;

use super::actor::{Notifier, NotifierArgs, NotifyMsg};
use super::config::{ChannelConfig, ChannelKind, NotifyConfig, RetryConfig, Secret};
use super::message::Notice;
use super::send::deliver;
use crate::recovery::exec::http_client;

const TOKEN: &str = "123456:SECRET-bot-token";

#[derive(Clone, Default)]
struct Fake {
    /// Status codes to answer next, per API; then 200.
    telegram_script: Arc<Mutex<VecDeque<u16>>>,
    slack_script: Arc<Mutex<VecDeque<u16>>>,
    telegram: Arc<Mutex<Vec<(String, Value)>>>,
    slack: Arc<Mutex<Vec<Value>>>,
    /// Every request, accepted or not.
    hits: Arc<Mutex<Vec<(Instant, &'static str, u16)>>>,
}

fn answer(code: u16, telegram: bool) -> Response {
    let mut h = HeaderMap::new();
    if code == 429 {
        if telegram {
            // Telegram says it in the body; no header.
            let body = json!({"ok": false, "error_code": 429, "parameters": {"retry_after": 1}});
            return (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
        }
        h.insert("retry-after", "1".parse().unwrap());
    }
    (StatusCode::from_u16(code).unwrap(), h, "").into_response()
}

async fn serve(f: Fake) -> String {
    let app = Router::new()
        .route(
            "/{bot}/sendMessage",
            post(
                |State(f): State<Fake>, Path(bot): Path<String>, Json(b): Json<Value>| async move {
                    let code = f.telegram_script.lock().unwrap().pop_front().unwrap_or(200);
                    f.hits
                        .lock()
                        .unwrap()
                        .push((Instant::now(), "telegram", code));
                    if code == 200 {
                        f.telegram.lock().unwrap().push((bot, b));
                        return (StatusCode::OK, Json(json!({"ok": true, "result": {}})))
                            .into_response();
                    }
                    answer(code, true)
                },
            ),
        )
        .route(
            "/services/T0/B0/XYZ",
            post(|State(f): State<Fake>, Json(b): Json<Value>| async move {
                let code = f.slack_script.lock().unwrap().pop_front().unwrap_or(200);
                f.hits.lock().unwrap().push((Instant::now(), "slack", code));
                if code == 200 {
                    f.slack.lock().unwrap().push(b);
                    return (StatusCode::OK, "ok").into_response();
                }
                answer(code, false)
            }),
        )
        .with_state(f);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

fn notice(key: &str) -> Notice {
    Notice {
        incident_id: "0000000000000007".into(),
        update: "verified".into(),
        key: key.into(),
        service: "checkout".into(),
        severity: Severity::High,
        title: "database connection refused".into(),
        root_cause: Some("db_down".into()),
        fix: Some("restart_db".into()),
        detail: "healthy, held for 2s".into(),
        link: "http://sup/incidents/0000000000000007".into(),
    }
}

async fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn messages_reach_telegram_and_slack_after_500s_and_429s_without_duplicates() {
    let fake = Fake::default();
    fake.telegram_script.lock().unwrap().extend([500, 429, 502]);
    fake.slack_script.lock().unwrap().extend([429, 500]);
    let base = serve(fake.clone()).await;
    let store = Store::temporary().unwrap();
    let cfg = NotifyConfig {
        public_url: "http://sup".into(),
        channels: vec![
            ChannelConfig {
                name: "tg".into(),
                kind: ChannelKind::Telegram {
                    token: Secret(TOKEN.into()),
                    chat_id: "-10042".into(),
                    base_url: base.clone(),
                },
                min_severity: Severity::Low,
                services: vec![],
                per_minute: 600,
            },
            ChannelConfig {
                name: "slack".into(),
                kind: ChannelKind::Slack {
                    webhook_url: Secret(format!("{base}/services/T0/B0/XYZ")),
                },
                min_severity: Severity::Critical, // routed away below Critical
                services: vec![],
                per_minute: 600,
            },
        ],
        retry: RetryConfig {
            attempts: 5,
            base_ms: 20,
            max_ms: 2_000,
            timeout_ms: 2_000,
        },
    };
    let (n, _) = Actor::spawn(
        None,
        Notifier,
        NotifierArgs {
            store: store.clone(),
            config: Arc::new(cfg),
            client: http_client(),
            scan_every: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    // The same update three times, then a second update, then a critical one.
    for _ in 0..3 {
        n.cast(NotifyMsg::Notice(notice("i7/verified/1"))).unwrap();
    }
    n.cast(NotifyMsg::Notice(notice("i7/resolved/2"))).unwrap();
    let mut crit = notice("i7/escalated/3");
    crit.severity = Severity::Critical;
    n.cast(NotifyMsg::Notice(crit.clone())).unwrap();
    n.cast(NotifyMsg::Notice(crit)).unwrap();

    let deliveries = Deliveries::open(store.open_tree("notify_deliveries").unwrap());
    wait_until("every delivery recorded", || {
        let all = deliveries.list(100).unwrap();
        all.len() == 4 && all.iter().all(|d| d.status == "delivered")
    })
    .await;
    let tg = fake.telegram.lock().unwrap().clone();
    assert_eq!(tg.len(), 3, "{tg:#?}");
    assert!(tg.iter().all(|(bot, _)| *bot == format!("bot{TOKEN}")));
    assert_eq!(tg[0].1["chat_id"], "-10042");
    let text = tg[0].1["text"].as_str().unwrap();
    assert!(text.contains("root cause: db_down") && text.contains("fix: restart_db"));
    assert!(text.contains("http://sup/incidents/0000000000000007"));
    let slack = fake.slack.lock().unwrap().clone();
    assert_eq!(slack.len(), 1);
    assert!(
        slack[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("[Critical] checkout")
    );

    // The first telegram message needed 4 attempts (500, 429, 502, 200),
    // the slack one 3 (429, 500, 200).
    let first = deliveries.get("tg", "i7/verified/1").unwrap().unwrap();
    assert_eq!(first.attempts, 4);
    assert_eq!(
        deliveries
            .get("slack", "i7/escalated/3")
            .unwrap()
            .unwrap()
            .attempts,
        3
    );
    // Retry-After (1 s) was honoured after the 429s.
    let hits = fake.hits.lock().unwrap().clone();
    for api in ["telegram", "slack"] {
        let h: Vec<_> = hits.iter().filter(|h| h.1 == api).collect();
        let after_429 = h.iter().position(|x| x.2 == 429).unwrap();
        let gap = h[after_429 + 1].0 - h[after_429].0;
        assert!(gap >= Duration::from_millis(950), "{api}: {gap:?}");
    }
    // No token in the delivery log.
    let log = format!("{:?}", deliveries.list(100).unwrap());
    assert!(!log.contains("SECRET"));
    n.stop(None);
}

#[tokio::test]
async fn network_errors_do_not_reveal_the_url_or_token() {
    let url = format!("http://127.0.0.1:1/bot{TOKEN}/sendMessage");
    let retry = RetryConfig {
        attempts: 2,
        base_ms: 1,
        max_ms: 1,
        timeout_ms: 500,
    };
    let sent = deliver(&http_client(), &url, &json!({}), &retry).await;
    assert!(!sent.ok);
    assert_eq!(sent.attempts, 2);
    assert!(
        !sent.error.contains("SECRET") && !sent.error.contains("127.0.0.1:1"),
        "{}",
        sent.error
    );
}

#[tokio::test]
async fn a_4xx_other_than_429_is_not_retried() {
    let fake = Fake::default();
    fake.slack_script.lock().unwrap().extend([404, 404]);
    let base = serve(fake.clone()).await;
    let sent = deliver(
        &http_client(),
        &format!("{base}/services/T0/B0/XYZ"),
        &json!({"text": "x"}),
        &RetryConfig::default(),
    )
    .await;
    assert_eq!((sent.ok, sent.attempts), (false, 1));
    assert_eq!(sent.error, "answered 404");
}
