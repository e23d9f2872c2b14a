//! Bad input gets a clear 4xx, and the server keeps serving.

use std::time::Duration;

use e2e::{log_line, spawn_app, spawn_app_with};
use serde_json::Value;
use supervisor::config::{Config, Secret};

async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

#[tokio::test]
async fn bad_bodies_get_400_naming_the_item_and_field() {
    let app = spawn_app().await;
    let (s, b) = error_of(
        app.post("/ingest/logs", "application/json", "{\"service\": ")
            .await,
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        b["error"].as_str().unwrap().contains("malformed JSON"),
        "{b}"
    );

    let body = "{\"service\":\"api\",\"message\":\"ok\"}\n{\"service\":\"api\",\"level\":7,\"message\":\"x\"}\n{\"level\":\"error\",\"message\":\"x\"}";
    let (s, b) = error_of(app.post("/ingest/logs", "application/x-ndjson", body).await).await;
    assert_eq!(s, 400);
    let details = b["details"].as_array().unwrap();
    assert_eq!(details.len(), 2);
    assert_eq!(
        (details[0]["index"].as_u64(), details[0]["field"].as_str()),
        (Some(1), Some("level"))
    );
    assert_eq!(
        (details[1]["index"].as_u64(), details[1]["field"].as_str()),
        (Some(2), Some("service"))
    );

    let (s, b) = error_of(
        app.post(
            "/ingest/metrics",
            "application/json",
            "[{\"host\":\"h\",\"name\":\"cpu\",\"value\":\"lots\"}]",
        )
        .await,
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(b["details"][0]["field"], "value");

    // Nothing from the refused bodies was accepted.
    assert_eq!(app.store.wal().head(), 0);
    // Still serving.
    assert_eq!(
        app.post(
            "/ingest/logs",
            "application/json",
            log_line("api", "info", "fine")
        )
        .await
        .status(),
        202
    );
    app.stop().await;
}

#[tokio::test]
async fn over_size_bodies_get_413() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        max_body_bytes: 1024,
        ..Config::default()
    };
    let app = spawn_app_with(cfg, dir.path()).await;
    let big = vec![log_line("api", "info", "x"); 100].join("\n");
    let (s, b) = error_of(app.post("/ingest/logs", "application/x-ndjson", big).await).await;
    assert_eq!(s, 413);
    assert!(b["error"].as_str().unwrap().contains("1024"));
    assert_eq!(
        app.post(
            "/ingest/logs",
            "application/json",
            log_line("api", "info", "fine")
        )
        .await
        .status(),
        202
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_ids_and_illegal_transitions_get_404_400_and_409() {
    let app = spawn_app().await;
    let (s, _) = app.get_json("/incidents/00000000000000ff").await;
    assert_eq!(s, 404);
    let (s, b) = app.get_json("/incidents/not-an-id").await;
    assert_eq!(s, 400);
    assert!(b["error"].as_str().unwrap().contains("16 hex digits"));
    let (s, _) = app.get_json("/incidents?status=sleeping").await;
    assert_eq!(s, 400);

    app.post(
        "/ingest/logs",
        "application/json",
        log_line(
            "api",
            "error",
            "java.lang.OutOfMemoryError: Java heap space",
        ),
    )
    .await;
    let items = app
        .wait_incidents("", Duration::from_secs(20), |i| !i.is_empty())
        .await;
    let id = items[0]["id"].as_str().unwrap().to_string();
    let act = |a: &str| {
        app.client
            .post(app.url(&format!("/incidents/{id}/{a}")))
            .send()
    };
    let (s, b) = error_of(act("close").await.unwrap()).await;
    assert_eq!(s, 409);
    assert_eq!(b["details"]["current"], "open");
    assert_eq!(act("ack").await.unwrap().status(), 200);
    assert_eq!(act("resolve").await.unwrap().status(), 200);
    assert_eq!(act("close").await.unwrap().status(), 200);
    let (s, b) = error_of(act("ack").await.unwrap()).await;
    assert_eq!(s, 409);
    assert!(b["error"].as_str().unwrap().contains("closed"));
    let (_, inc) = app.get_json(&format!("/incidents/{id}")).await;
    assert_eq!(inc["status"], "closed");
    let r = app
        .client
        .post(app.url(&format!("/incidents/{id}/explode")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (s, _) = app.get_json("/health").await;
    assert_eq!(s, 200);
    app.stop().await;
}

#[tokio::test]
async fn with_an_api_key_mutations_need_the_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        api_key: Some(Secret("0123456789abcdef-key".into())),
        ..Config::default()
    };
    let app = spawn_app_with(cfg, dir.path()).await;
    let r = app
        .post(
            "/ingest/logs",
            "application/json",
            log_line("api", "info", "x"),
        )
        .await;
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .post(app.url("/ingest/logs"))
        .header("authorization", "Bearer 0123456789abcdef-key")
        .body(log_line("api", "info", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // Reads stay open.
    assert_eq!(app.get_json("/incidents").await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn ready_and_agents_report_the_tree() {
    let app = spawn_app().await;
    let (s, b) = app.get_json("/ready").await;
    assert_eq!(s, 200, "{b}");
    let (_, b) = app.get_json("/observability/agents").await;
    let paths: Vec<&str> = b["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    for stage in ["ingest", "detect", "triage"] {
        assert!(paths.iter().any(|p| p.ends_with(stage)), "{paths:?}");
    }
    let m = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("selfheal_agent_restarts_total"));
    app.stop().await;
}
