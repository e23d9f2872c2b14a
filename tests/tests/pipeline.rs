//! End to end: logs over HTTP become incidents.

use std::time::Duration;

use agents::chaos::Fault;
use e2e::{log_line, spawn_app, wait_until};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_connection_refused_error_opens_one_database_incident() {
    let app = spawn_app().await;
    let body = log_line(
        "checkout",
        "error",
        "could not connect to database: connection to 10.0.0.7:5432 refused",
    );
    let r = app.post("/ingest/logs", "application/json", body).await;
    assert_eq!(r.status(), 202);

    let items = app.wait_incidents("", WAIT, |i| !i.is_empty()).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["category"], "database");
    assert_eq!(items[0]["service"], "checkout");
    assert_eq!(items[0]["status"], "open");

    let id = items[0]["id"].as_str().unwrap();
    let (status, inc) = app.get_json(&format!("/incidents/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(inc["timeline"][0]["kind"], "opened");
    assert!(
        inc["trace"]["traceparent"]
            .as_str()
            .unwrap()
            .starts_with("00-")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_thousand_identical_lines_make_one_incident_counting_a_thousand() {
    let app = spawn_app().await;
    let line = log_line("orders", "error", "FATAL: sorry, too many clients already");
    // Several requests, so the lines also cross batch boundaries.
    for _ in 0..4 {
        let body = vec![line.as_str(); 250].join("\n");
        let r = app.post("/ingest/logs", "application/x-ndjson", body).await;
        assert_eq!(r.status(), 202);
    }
    let items = app
        .wait_incidents("?service=orders", WAIT, |i| {
            i.first().is_some_and(|x| x["count"] == 1000)
        })
        .await;
    assert_eq!(items.len(), 1, "{items:#?}");
    app.stop().await;
}

#[tokio::test]
async fn a_stage_that_panics_mid_stream_is_restarted_and_nothing_is_lost_or_doubled() {
    let app = spawn_app().await;
    let line = log_line(
        "billing",
        "error",
        "deadlock detected while updating invoices",
    );
    for _ in 0..5 {
        assert_eq!(
            app.post(
                "/ingest/logs",
                "application/x-ndjson",
                [line.as_str(); 10].join("\n")
            )
            .await
            .status(),
            202
        );
    }
    app.wait_incidents("?service=billing", WAIT, |i| {
        i.first().is_some_and(|x| x["count"] == 50)
    })
    .await;

    // The next batch makes detect panic once.
    app.faults.arm("detect", Fault::Panic, 1);
    for _ in 0..5 {
        assert_eq!(
            app.post(
                "/ingest/logs",
                "application/x-ndjson",
                [line.as_str(); 10].join("\n")
            )
            .await
            .status(),
            202
        );
    }
    let registry = app.registry.clone();
    wait_until(WAIT, "detect to be restarted", || {
        registry
            .snapshot()
            .iter()
            .any(|c| c.path.ends_with("detect") && c.restarts >= 1)
    })
    .await;
    let items = app
        .wait_incidents("?service=billing", WAIT, |i| {
            i.first().is_some_and(|x| x["count"] == 100)
        })
        .await;
    assert_eq!(items.len(), 1, "one incident, not a second one: {items:#?}");
    let detect = registry
        .snapshot()
        .into_iter()
        .find(|c| c.path.ends_with("detect"))
        .unwrap();
    assert!(detect.last_failure.unwrap().contains("injected panic"));
    // Still processing after the restart, and not double counting.
    assert_eq!(
        app.post("/ingest/logs", "application/x-ndjson", line.clone())
            .await
            .status(),
        202
    );
    app.wait_incidents("?service=billing", WAIT, |i| {
        i.first().is_some_and(|x| x["count"] == 101)
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_stuck_stage_is_detected_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = supervisor::config::Config::default();
    cfg.supervision.stuck_after = supervisor::config::Dur(Duration::from_millis(300));
    let app = e2e::spawn_app_with(cfg, dir.path()).await;
    app.faults
        .arm("triage", Fault::Freeze(Duration::from_secs(3600)), 1);
    let line = log_line("search", "error", "No space left on device");
    assert_eq!(
        app.post("/ingest/logs", "application/json", line.clone())
            .await
            .status(),
        202
    );
    assert_eq!(
        app.post("/ingest/logs", "application/json", line)
            .await
            .status(),
        202
    );
    let registry = app.registry.clone();
    wait_until(WAIT, "triage to be restarted as stuck", || {
        registry.snapshot().iter().any(|c| {
            c.path.ends_with("triage")
                && c.last_failure
                    .as_deref()
                    .is_some_and(|f| f.contains("stuck"))
        })
    })
    .await;
    app.wait_incidents("?service=search", WAIT, |i| {
        i.first().is_some_and(|x| x["count"] == 2)
    })
    .await;
    app.stop().await;
}
