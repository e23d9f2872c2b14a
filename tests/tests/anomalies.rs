//! End to end: a metric stream posted over HTTP is scored by the
//! statistical detectors; a planted spike becomes an anomaly and an
//! incident, and the learned baseline survives a restart.

use std::time::Duration;

use e2e::{spawn_app_with, wait_until};
use supervisor::config::Config;

const WAIT: Duration = Duration::from_secs(20);

fn samples(source: &str, from: usize, values: &[f64], t0: i64) -> String {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::json!({
                "timestamp": t0 + ((from + i) as i64) * 1000,
                "source": source,
                "name": "latency_ms",
                "value": v,
            })
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn normal(n: usize, from: usize) -> Vec<f64> {
    (from..from + n)
        .map(|i| 20.0 + [0.0, 0.6, -0.4, 0.3, -0.7, 0.5, -0.2][i % 7])
        .collect()
}

async fn drained(app: &e2e::TestApp) {
    let store = app.store.clone();
    wait_until(WAIT, "the pipeline to process every batch", || {
        store.cursors().get("pipeline").unwrap_or(0) >= store.wal().head()
    })
    .await;
}

#[tokio::test]
async fn a_planted_spike_after_a_restart_is_an_anomaly_and_an_incident() {
    let dir = tempfile::tempdir().expect("temp dir");
    let t0 = state::now_ms() - 3_600_000;

    // Learn a baseline, then restart the whole application.
    let app = spawn_app_with(Config::default(), dir.path()).await;
    let r = app
        .post(
            "/ingest/metrics",
            "application/x-ndjson",
            samples("payments", 0, &normal(120, 0), t0),
        )
        .await;
    assert_eq!(r.status(), 202);
    drained(&app).await;
    let (_, body) = app.get_json("/observability/anomalies").await;
    assert_eq!(body["anomalies"].as_array().map(Vec::len), Some(0));
    app.stop().await;

    // After the restart: a few ordinary points, then the spike. A fresh
    // detector would still be warming up (30 points) and stay silent.
    let app = spawn_app_with(Config::default(), dir.path()).await;
    let mut after = normal(5, 120);
    after.push(95.0);
    let r = app
        .post(
            "/ingest/metrics",
            "application/x-ndjson",
            samples("payments", 120, &after, t0),
        )
        .await;
    assert_eq!(r.status(), 202);

    let items = app
        .wait_incidents("?service=payments", WAIT, |i| !i.is_empty())
        .await;
    assert_eq!(items.len(), 1, "{items:#?}");
    assert_eq!(items[0]["category"], "metrics");

    let (status, body) = app
        .get_json(&format!(
            "/observability/anomalies?service=payments&since={t0}"
        ))
        .await;
    assert_eq!(status, 200);
    let list = body["anomalies"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 1, "{body:#}");
    let a = &list[0];
    assert_eq!(a["ts_ms"], t0 + 125 * 1000);
    assert!(a["score"].as_f64().unwrap() >= 0.5);
    assert_eq!(a["evidence"][0]["signal"], "metric:latency_ms");

    let (_, other) = app
        .get_json("/observability/anomalies?service=nobody")
        .await;
    assert_eq!(other["anomalies"].as_array().map(Vec::len), Some(0));
    let (status, err) = app.get_json("/observability/anomalies?limit=0").await;
    assert_eq!(status, 400);
    assert!(err.to_string().contains("limit"));
    app.stop().await;
}
