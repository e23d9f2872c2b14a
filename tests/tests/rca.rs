//! End to end: correlation across services, root-cause analysis, feedback
//! and fix statistics.

use std::time::{Duration, Instant};

use e2e::{TestApp, log_line, spawn_app_with};
use serde_json::{Value, json};
use supervisor::config::Config;

const WAIT: Duration = Duration::from_secs(20);

fn config() -> Config {
    let mut cfg = Config::default();
    cfg.rca
        .dependencies
        .insert("api".into(), vec!["db".into(), "cache".into()]);
    cfg.rca
        .dependencies
        .insert("worker".into(), vec!["db".into()]);
    cfg.rca
        .dependencies
        .insert("web".into(), vec!["api".into()]);
    cfg.rca.kinds.insert("db".into(), "database".into());
    cfg.rca.kinds.insert("cache".into(), "cache".into());
    cfg
}

async fn post_json(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = app.post(path, "application/json", body.to_string()).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Poll `GET path` until `pred` holds on the body; panic after `WAIT`.
async fn wait_json(app: &TestApp, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = app.get_json(path).await;
        if status == 200 && pred(&body) {
            return body;
        }
        if Instant::now() > deadline {
            panic!("condition on {path} not met within {WAIT:?}; last: {status} {body:#}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A database outage as two callers see it: timeouts.
async fn db_outage(app: &TestApp) -> String {
    let api = log_line("api", "error", "query timed out after 5000ms calling db");
    assert_eq!(
        app.post("/ingest/logs", "application/json", api)
            .await
            .status(),
        202
    );
    app.wait_incidents("", WAIT, |i| !i.is_empty()).await;
    let worker = log_line("worker", "error", "read timeout while waiting for db");
    assert_eq!(
        app.post("/ingest/logs", "application/json", worker)
            .await
            .status(),
        202
    );
    let items = app
        .wait_incidents("", WAIT, |i| {
            i.iter().any(|x| {
                let s = x["services"].as_array().cloned().unwrap_or_default();
                s.contains(&json!("api")) && s.contains(&json!("worker"))
            })
        })
        .await;
    assert_eq!(items.len(), 1, "one incident for one outage: {items:#?}");
    items[0]["id"].as_str().unwrap().to_string()
}

async fn rca_with(app: &TestApp, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_json(app, &format!("/incidents/{id}/rca"), pred).await
}

fn rank_of(rca: &Value, cause: &str, service: &str) -> Option<usize> {
    rca["diagnosis"]["hypotheses"]
        .as_array()?
        .iter()
        .position(|h| h["cause_id"] == cause && h["service"] == service)
}

#[tokio::test]
async fn a_database_outage_seen_as_timeouts_in_two_callers_is_one_incident_naming_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(config(), dir.path()).await;
    let id = db_outage(&app).await;
    let rca = rca_with(&app, &id, |r| {
        let obs = r["observations"].as_array().map_or(0, |o| o.len());
        obs >= 2 && r["plan"].is_object()
    })
    .await;
    let top = &rca["diagnosis"]["hypotheses"][0];
    assert_eq!(top["service"], "db", "{rca:#}");
    assert_eq!(top["category"], "database", "{rca:#}");
    assert!(!top["evidence_for"].as_array().unwrap().is_empty());
    let affected = rca["diagnosis"]["affected"].as_array().unwrap();
    for s in ["api", "worker", "db"] {
        assert!(affected.contains(&json!(s)), "{s} not in {affected:?}");
    }
    // The callers are never named first.
    assert_ne!(top["service"], "api");
    assert_ne!(top["service"], "worker");
    // A plan for the database, best estimate first.
    let steps = rca["plan"]["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    assert!(steps.iter().all(|s| s["target"] == "db"));
    let est: Vec<f64> = steps
        .iter()
        .map(|s| s["expected_success"].as_f64().unwrap())
        .collect();
    assert!(est.windows(2).all(|w| w[0] >= w[1]), "{est:?}");
    // The graph is visible.
    let (_, topo) = app.get_json("/topology").await;
    assert!(
        topo["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["caller"] == "api" && e["callee"] == "db")
    );
    app.stop().await;
}

#[tokio::test]
async fn feedback_moves_the_confirmed_cause_up_in_the_next_ranking() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(config(), dir.path()).await;
    let id = db_outage(&app).await;
    let before = rca_with(&app, &id, |r| {
        r["observations"].as_array().is_some_and(|o| o.len() >= 2)
    })
    .await;
    let hyps = before["diagnosis"]["hypotheses"]
        .as_array()
        .unwrap()
        .clone();
    // Confirm the best database cause that did not come first.
    let second = hyps
        .iter()
        .skip(1)
        .find(|h| h["service"] == "db")
        .expect("a second hypothesis on the database")
        .clone();
    let cause = second["cause_id"].as_str().unwrap();
    let old_rank = rank_of(&before, cause, "db").unwrap();
    let (status, body) = post_json(
        &app,
        &format!("/incidents/{id}/feedback"),
        json!({ "confirmed_cause": cause }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // New signals: the incident is analysed again with what was learned.
    let analysed = before["analyzed_ms"].as_i64().unwrap();
    let more = log_line("api", "error", "query timed out after 7000ms calling db");
    assert_eq!(
        app.post("/ingest/logs", "application/json", more)
            .await
            .status(),
        202
    );
    let after = rca_with(&app, &id, |r| {
        r["analyzed_ms"].as_i64().unwrap_or(0) > analysed
    })
    .await;
    let new_rank = rank_of(&after, cause, "db").unwrap();
    assert!(new_rank < old_rank, "{cause}: rank {old_rank} → {new_rank}");
    // The knowledge base shows the learned weight.
    let (_, kb) = app.get_json("/kb/causes").await;
    let entry = kb["causes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == cause)
        .unwrap()
        .clone();
    assert!(entry["weight"].as_f64().unwrap() > 1.0);
    // Bad feedback is a 400 naming the problem.
    let (status, body) = post_json(
        &app,
        &format!("/incidents/{id}/feedback"),
        json!({ "fix": "x" }),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("fix_worked"));
    app.stop().await;
}

#[tokio::test]
async fn fix_outcomes_shape_the_plan_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(config(), dir.path()).await;
    let id = db_outage(&app).await;
    let rca = rca_with(&app, &id, |r| {
        r["observations"].as_array().is_some_and(|o| o.len() >= 2) && r["plan"].is_object()
    })
    .await;
    let cause = rca["plan"]["cause_id"].as_str().unwrap().to_string();
    let first = rca["plan"]["steps"][0]["fix"].as_str().unwrap().to_string();
    // The first fix failed for this incident.
    let (status, _) = post_json(
        &app,
        &format!("/incidents/{id}/feedback"),
        json!({ "fix": first, "fix_worked": false }),
    )
    .await;
    assert_eq!(status, 200);
    let analysed = rca["analyzed_ms"].as_i64().unwrap();
    let more = log_line("worker", "error", "read timeout while waiting for db");
    assert_eq!(
        app.post("/ingest/logs", "application/json", more)
            .await
            .status(),
        202
    );
    let again = rca_with(&app, &id, |r| {
        r["analyzed_ms"].as_i64().unwrap_or(0) > analysed
            && r["skipped"].as_array().is_some_and(|s| !s.is_empty())
    })
    .await;
    let steps: Vec<&str> = again["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["fix"].as_str().unwrap())
        .collect();
    assert!(
        !steps.contains(&first.as_str()),
        "{first} proposed again: {steps:?}"
    );
    let (_, stats) = app.get_json("/fixes/stats").await;
    let row = |stats: &Value| {
        stats["stats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["cause"] == cause.as_str() && r["fix"] == first.as_str() && r["service"].is_null()
            })
            .cloned()
    };
    let before = row(&stats).expect("a statistics row");
    assert_eq!(before["failures"], 1);
    app.stop().await;

    let app = spawn_app_with(config(), dir.path()).await;
    let (_, stats) = app.get_json("/fixes/stats").await;
    assert_eq!(row(&stats).expect("the row after a restart"), before);
    app.stop().await;
}

#[tokio::test]
async fn silences_are_validated_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(config(), dir.path()).await;
    let (status, body) = post_json(&app, "/silences", json!({ "service": "db" })).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("duration"),
        "{body}"
    );
    let (status, body) = post_json(
        &app,
        "/silences",
        json!({ "service": "db", "duration": "1h", "reason": "maintenance" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, list) = app.get_json("/silences").await;
    assert_eq!(list["silences"][0]["active"], true);
    // A silenced incident is still recorded, and its plan is marked silenced.
    let id = db_outage(&app).await;
    rca_with(&app, &id, |r| {
        r["silenced_by"].as_array().is_some_and(|s| !s.is_empty())
    })
    .await;
    app.stop().await;
}
