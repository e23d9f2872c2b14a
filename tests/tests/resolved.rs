//! An incident resolved outside triage (an operator through the API, or a
//! verified fix) is not joined by the next, different failure of the same
//! service: that failure opens an incident of its own.

use std::time::Duration;

use e2e::{log_line, spawn_app};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_new_failure_after_a_resolution_opens_its_own_incident() {
    let app = spawn_app().await;
    let pool = log_line("shop", "error", "too many connections: pool exhausted");
    assert_eq!(
        app.post("/ingest/logs", "application/json", pool)
            .await
            .status(),
        202
    );
    let first = app.wait_incidents("", WAIT, |i| i.len() == 1).await;
    let first_id = first[0]["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/incidents/{first_id}/resolve"),
            "application/json",
            String::new(),
        )
        .await;
    assert_eq!(r.status(), 200);

    let oom = log_line("shop", "error", "out of memory: allocation failed");
    assert_eq!(
        app.post("/ingest/logs", "application/json", oom)
            .await
            .status(),
        202
    );
    let all = app.wait_incidents("", WAIT, |i| i.len() == 2).await;
    let (_, first) = app.get_json(&format!("/incidents/{first_id}")).await;
    assert_eq!(first["status"], "resolved", "{first:#}");
    let second = all.iter().find(|i| i["id"] != first_id.as_str()).unwrap();
    assert_eq!(second["status"], "open");
    assert_eq!(second["service"], "shop");
    app.stop().await;
}
