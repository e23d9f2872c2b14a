//! End to end: fix plans over HTTP are carried out behind the guardrails,
//! verified, audited, and shown on the incident.

use std::time::{Duration, Instant};

use e2e::{TestApp, log_line, spawn_app_with, wait_until};
use serde_json::{Value, json};
use supervisor::config::Config;

const WAIT: Duration = Duration::from_secs(20);

async fn app_with(recovery_toml: &str) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::from_toml(recovery_toml).unwrap();
    assert_eq!(cfg.validate(), Ok(()));
    let app = spawn_app_with(cfg, dir.path()).await;
    (app, dir)
}

async fn open_incident(app: &TestApp) -> String {
    let line = log_line(
        "checkout",
        "error",
        "could not connect to database: connection refused",
    );
    assert_eq!(
        app.post("/ingest/logs", "application/json", line)
            .await
            .status(),
        202
    );
    let items = app.wait_incidents("", WAIT, |i| !i.is_empty()).await;
    items[0]["id"].as_str().unwrap().to_string()
}

fn plan(incident: &str, fix: &str) -> String {
    json!({
        "incident_id": incident, "cause_id": null, "service": "checkout",
        "steps": [{ "fix": fix, "layer": "service", "target": "checkout",
                    "expected_success": 0.6, "risk": "low", "needs_approval": false }]
    })
    .to_string()
}

async fn poll(app: &TestApp, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, v) = app.get_json(path).await;
        if pred(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition on {path} not met: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn decisions(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["decision"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_verified_fix_resolves_the_incident_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let healed = dir.path().join("healed");
    let toml = format!(
        r#"
[recovery]
mode = "auto"
[recovery.actions.heal]
layer = "service"
risk = "low"
kind = {{ type = "command", program = "/usr/bin/touch", args = ["{p}"] }}
verify = {{ check = {{ type = "command", program = "/usr/bin/test", args = ["-f", "{p}"] }}, within = "5s", hold = "100ms", interval = "20ms" }}
"#,
        p = healed.display()
    );
    let (app, _d) = app_with(&toml).await;
    let id = open_incident(&app).await;
    let r = app
        .post("/actions/plans", "application/json", plan(&id, "heal"))
        .await;
    assert_eq!(r.status(), 202);
    let inc = poll(&app, &format!("/incidents/{id}"), |v| {
        v["status"] == "resolved"
    })
    .await;
    let d = decisions(&inc["recovery"]["audit"]);
    assert_eq!(
        d,
        vec!["proposed", "executing", "executed", "verified"],
        "{inc:#}"
    );
    assert_eq!(inc["recovery"]["actions"][0]["phase"]["phase"], "done");
    assert!(healed.exists());
    let (s, actions) = app.get_json("/actions").await;
    assert_eq!(s, 200);
    assert_eq!(actions["audit_chain"]["intact"], true);
    assert_eq!(actions["guard"]["mode"], "auto");
    app.stop().await;
}

#[tokio::test]
async fn dry_run_is_the_default_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let toml = format!(
        r#"
[recovery.actions.heal]
layer = "service"
risk = "low"
kind = {{ type = "command", program = "/usr/bin/touch", args = ["{p}"] }}
"#,
        p = ran.display()
    );
    let (app, _d) = app_with(&toml).await;
    let id = open_incident(&app).await;
    assert_eq!(
        app.post("/actions/plans", "application/json", plan(&id, "heal"))
            .await
            .status(),
        202
    );
    let inc = poll(&app, &format!("/incidents/{id}"), |v| {
        decisions(&v["recovery"]["audit"]).contains(&"dry_run".to_string())
    })
    .await;
    assert_eq!(inc["status"], "open");
    assert!(!ran.exists());
    app.stop().await;
}

#[tokio::test]
async fn approvals_and_breaker_reset_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let healed = dir.path().join("healed");
    let toml = format!(
        r#"
[recovery]
mode = "approve"
[recovery.actions.heal]
layer = "service"
risk = "low"
kind = {{ type = "command", program = "/usr/bin/touch", args = ["{p}"] }}
verify = {{ check = {{ type = "command", program = "/usr/bin/test", args = ["-f", "{p}"] }}, within = "5s", interval = "20ms" }}
"#,
        p = healed.display()
    );
    let (app, _d) = app_with(&toml).await;
    let id = open_incident(&app).await;
    assert_eq!(
        app.post("/actions/plans", "application/json", plan(&id, "heal"))
            .await
            .status(),
        202
    );
    let actions = poll(&app, "/actions", |v| {
        v["actions"][0]["phase"]["phase"] == "awaiting_approval"
    })
    .await;
    assert!(!healed.exists());
    let action_id = actions["actions"][0]["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/actions/{action_id}/approve"),
            "application/json",
            "",
        )
        .await;
    assert_eq!(r.status(), 200);
    poll(&app, &format!("/incidents/{id}"), |v| {
        v["status"] == "resolved"
    })
    .await;
    assert!(healed.exists());

    let again = app
        .post(
            &format!("/actions/{action_id}/approve"),
            "application/json",
            "",
        )
        .await;
    assert_eq!(again.status(), 409);
    let unknown = app
        .post("/actions/0000000000000001/approve", "application/json", "")
        .await;
    assert_eq!(unknown.status(), 404);
    let bad = app
        .post("/actions/nope/approve", "application/json", "")
        .await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("action id"));
    let reset = app
        .post("/actions/breaker/reset", "application/json", "")
        .await;
    assert_eq!(reset.status(), 200);
    let bad_plan = app
        .post("/actions/plans", "application/json", "{\"incident_id\": 3}")
        .await;
    assert_eq!(bad_plan.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn restart_agent_restarts_a_stage_through_the_tree() {
    let toml = r#"
[recovery]
mode = "auto"
[recovery.actions.restart_detect]
layer = "application"
risk = "low"
kind = { type = "restart_agent", path = "root/pipeline/detect" }
"#;
    let (app, _d) = app_with(toml).await;
    let before = app.registry.get("root/pipeline/detect").unwrap().restarts;
    let r = app
        .post(
            "/actions/plans",
            "application/json",
            plan("0000000000000042", "restart_detect"),
        )
        .await;
    assert_eq!(r.status(), 202);
    let registry = app.registry.clone();
    wait_until(WAIT, "detect restarted", || {
        registry
            .get("root/pipeline/detect")
            .is_some_and(|c| c.restarts == before + 1)
    })
    .await;
    let actions = poll(&app, "/actions", |v| {
        v["actions"][0]["phase"]["phase"] == "done"
    })
    .await;
    assert_eq!(
        actions["actions"][0]["phase"]["result"],
        "applied_unverified"
    );
    app.stop().await;
}

/// A local stand-in for a Slack incoming webhook.
async fn fake_slack() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::routing::post;
    let got: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/services/T/B/X",
        post(move |axum::Json(b): axum::Json<Value>| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push(b);
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/services/T/B/X", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, got)
}

#[tokio::test]
async fn people_hear_once_about_each_update_of_a_healed_incident() {
    let dir = tempfile::tempdir().unwrap();
    let healed = dir.path().join("healed");
    let (slack, got) = fake_slack().await;
    let toml = format!(
        r#"
[recovery]
mode = "auto"
[recovery.actions.heal]
layer = "service"
risk = "low"
kind = {{ type = "command", program = "/usr/bin/touch", args = ["{p}"] }}
verify = {{ check = {{ type = "command", program = "/usr/bin/test", args = ["-f", "{p}"] }}, within = "5s", interval = "20ms" }}
[[notify.channels]]
name = "slack"
kind = {{ type = "slack", webhook_url = "{slack}" }}
per_minute = 6000
"#,
        p = healed.display()
    );
    let (app, _d) = app_with(&toml).await;
    let id = open_incident(&app).await;
    // More lines of the same failure: still one "opened" message.
    for _ in 0..3 {
        let line = log_line(
            "checkout",
            "error",
            "could not connect to database: connection refused",
        );
        app.post("/ingest/logs", "application/json", line).await;
    }
    assert_eq!(
        app.post("/actions/plans", "application/json", plan(&id, "heal"))
            .await
            .status(),
        202
    );
    let texts = || -> Vec<String> {
        got.lock()
            .unwrap()
            .iter()
            .filter_map(|b| b["text"].as_str().map(String::from))
            .collect()
    };
    let deadline = Instant::now() + WAIT;
    while !texts().iter().any(|t| t.contains("\nresolved:")) {
        assert!(
            Instant::now() < deadline,
            "no resolved message: {:#?}",
            texts()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t = texts();
    for update in ["opened", "fix_applied", "verified", "resolved"] {
        let n = t
            .iter()
            .filter(|x| x.contains(&format!("\n{update}:")))
            .count();
        assert_eq!(n, 1, "{update} sent {n} times: {t:#?}");
    }
    assert!(t.iter().all(|x| x.contains(&format!("/incidents/{id}"))));
    app.stop().await;
}
