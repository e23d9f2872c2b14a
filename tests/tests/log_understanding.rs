//! Log understanding end to end: raw lines of one service during a
//! database outage become ONE classified incident with every signature as
//! evidence; templates and signatures are exposed over HTTP.

use std::time::Duration;

use e2e::spawn_app;
use serde_json::Value;

async fn post_raw(app: &e2e::TestApp, query: &str, body: String) {
    let r = app
        .post(&format!("/ingest/logs/raw{query}"), "text/plain", body)
        .await;
    assert_eq!(r.status(), 202);
}

#[tokio::test]
async fn a_database_outage_in_raw_lines_is_one_database_connection_incident() {
    let app = spawn_app().await;
    // Lines carry no timestamps (they are stamped on arrival), so the
    // outage is "now" for the dedup window.
    // Phase 1: the database refuses connections (free text with a level).
    let refused: String = (0..20)
        .map(|i| format!("ERROR [http-{i}] connection to 10.0.0.7:5432 refused\n"))
        .collect();
    post_raw(&app, "?service=orders", refused).await;
    // Phase 2: it comes back but is full (RFC 5424 syslog from the app).
    let full: String = (0..20)
        .map(|i| format!("<11>1 - app1 orders {i} - - FATAL: sorry, too many clients already\n"))
        .collect();
    post_raw(&app, "", full).await;
    // Phase 3: the pool times out (JSON lines), with a stack trace.
    let pool: String = (0..20)
        .map(|i| {
            format!(
                "{{\"thread\":\"worker-{i}\",\"level\":\"error\",\"service\":\"orders\",\"msg\":\"HikariPool-1 - Connection is not available, request timed out after 30000ms.\"}}\n\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)\n"
            )
        })
        .collect();
    post_raw(&app, "", pool).await;

    let items = app
        .wait_incidents("?service=orders", Duration::from_secs(10), |items| {
            items
                .iter()
                .map(|i| i["count"].as_u64().unwrap_or(0))
                .sum::<u64>()
                == 60
        })
        .await;
    assert_eq!(items.len(), 1, "one incident, not three: {items:#?}");
    let id = items[0]["id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| items[0]["id"].to_string());
    let (s, inc) = app.get_json(&format!("/incidents/{id}")).await;
    assert_eq!(s, 200, "{inc}");
    assert_eq!(inc["kind"], "DATABASE_CONNECTION");
    assert_eq!(inc["severity"], "high");
    assert_eq!(inc["count"], 60);
    let sigs: Vec<&str> = inc["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for want in [
        "db.connection_refused",
        "db.too_many_connections",
        "db.pool_timeout",
    ] {
        assert!(sigs.contains(&want), "{want} missing from {sigs:?}");
    }
    let class = &inc["classification"];
    assert_eq!(class["kind"], "DATABASE_CONNECTION");
    assert_eq!(class["signatures"].as_array().unwrap().len(), 3);
    assert_eq!(class["auto_fixable"], true);
    let reasons: Vec<&str> = class["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("db.pool_timeout")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("blast radius 1 service")),
        "{reasons:?}"
    );

    // The three phases are three templates of the service, counted.
    let (s, t) = app.get_json("/templates?service=orders").await;
    assert_eq!(s, 200, "{t}");
    let templates = t["templates"].as_array().unwrap();
    let texts: Vec<&str> = templates
        .iter()
        .filter_map(|t| t["template"].as_str())
        .collect();
    assert!(
        texts.contains(&"[http-<*>] connection to <*> refused"),
        "{texts:?}"
    );
    assert_eq!(templates.len(), 3, "{texts:?}");
    assert!(templates.iter().all(|t| t["count"] == 20), "{t}");
    let per_minute_total: u64 = templates
        .iter()
        .flat_map(|t| t["per_minute"].as_array().unwrap().iter())
        .filter_map(|pair| pair[1].as_u64())
        .sum();
    assert_eq!(per_minute_total, 60, "{t}");
    assert!(
        templates
            .iter()
            .all(|t| t["first_seen_ms"].as_i64() <= t["last_seen_ms"].as_i64())
    );
    let (s, bad) = app.get_json("/templates?limit=0").await;
    assert_eq!(s, 400, "{bad}");

    let (s, sigs) = app.get_json("/signatures").await;
    assert_eq!(s, 200);
    assert!(sigs["count"].as_u64().unwrap() >= 60);
    assert!(
        sigs["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "db.pool_timeout")
    );
    app.stop().await;
}

#[tokio::test]
async fn templates_survive_a_restart_with_the_same_ids() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = supervisor::config::Config::default();
    let app = e2e::spawn_app_with(cfg.clone(), dir.path()).await;
    post_raw(
        &app,
        "?service=api",
        "user 1 logged in\nuser 2 logged in\n".into(),
    )
    .await;
    let first = wait_templates(&app, 2).await;
    app.stop().await;
    let app = e2e::spawn_app_with(cfg, dir.path()).await;
    post_raw(&app, "?service=api", "user 3 logged in\n".into()).await;
    let again = wait_templates(&app, 3).await;
    assert_eq!(first[0]["id"], again[0]["id"]);
    assert_eq!(again.len(), 1);
    app.stop().await;
}

async fn wait_templates(app: &e2e::TestApp, count: u64) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, t) = app.get_json("/templates?service=api").await;
        let items = t["templates"].as_array().cloned().unwrap_or_default();
        if items.first().is_some_and(|t| t["count"] == count) {
            return items;
        }
        assert!(std::time::Instant::now() < deadline, "templates: {t}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
