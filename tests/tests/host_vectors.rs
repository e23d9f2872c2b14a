//! End to end: the metrics of one host posted over HTTP are scored as one
//! vector; once its model is fitted (and after a restart), a broken
//! relation between metrics that stay inside their usual ranges is a
//! `HOST_METRICS_ANOMALY` naming the metric that moved.

use std::time::Duration;

use e2e::{spawn_app_with, wait_until};
use state::trees::detector_state::DetectorStates;
use supervisor::config::Config;

const WAIT: Duration = Duration::from_secs(30);

/// Deterministic wobble in [-1, 1].
fn wobble(i: usize, k: usize) -> f64 {
    (((i * 7919 + k * 104_729) % 1000) as f64 / 500.0) - 1.0
}

/// Rows `from..to` of host `web-1` (10 s apart): latency follows CPU, except
/// by `decouple` ms on the rows in `off`.
fn rows(from: usize, to: usize, off: std::ops::Range<usize>, decouple: f64, t0: i64) -> String {
    let mut out = Vec::new();
    for i in from..to {
        let ts = t0 + i as i64 * 10_000;
        let cpu = 50.0 + 5.0 * wobble(i, 0);
        let lat = 2.0 * cpu + wobble(i, 1) + if off.contains(&i) { decouple } else { 0.0 };
        for (k, (name, v)) in [
            ("cpu", cpu),
            ("latency_ms", lat),
            ("queue", 10.0 + wobble(i, 2)),
        ]
        .into_iter()
        .enumerate()
        {
            out.push(
                serde_json::json!({
                    "timestamp": ts + k as i64,
                    "host": "web-1",
                    "name": name,
                    "value": v,
                })
                .to_string(),
            );
        }
    }
    out.join("\n")
}

fn host_fitted(store: &state::Store) -> bool {
    let Ok(states) = DetectorStates::open(store) else {
        return false;
    };
    let Ok((records, _)) = states.load_prefix("host|web-1") else {
        return false;
    };
    records
        .iter()
        .filter_map(|(k, r)| agents::detect::hosts::summarize(k, r))
        .any(|h| h.source == "web-1" && h.fitted)
}

#[tokio::test]
async fn a_broken_relation_between_metrics_is_a_host_anomaly_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Whole 10 s rows, so row `i` closes at `t0 + (i + 1)·10 s`.
    let t0 = (state::now_ms() - 24 * 3_600_000) / 10_000 * 10_000;
    let mut cfg = Config::default();
    cfg.detect.hosts.detector.models.min_fit = 300;
    cfg.detect.snapshot_every_ms = 0; // a fitted model is stored at once

    let app = spawn_app_with(cfg.clone(), dir.path()).await;
    let r = app
        .post(
            "/ingest/metrics",
            "application/x-ndjson",
            rows(0, 400, 0..0, 0.0, t0),
        )
        .await;
    assert_eq!(r.status(), 202);
    let store = app.store.clone();
    wait_until(WAIT, "the host model to be fitted and stored", || {
        host_fitted(&store)
    })
    .await;
    drop(store); // the store's lock goes with the last handle
    app.stop().await;

    // What was learned is visible, restart or not.
    let app = spawn_app_with(cfg.clone(), dir.path()).await;
    let (status, body) = app.get_json("/observability/detectors?source=web-1").await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["hosts"].as_array().map(Vec::len), Some(1), "{body:#}");
    let h = &body["hosts"][0];
    assert_eq!(h["source"], "web-1");
    assert_eq!(
        h["metrics"],
        serde_json::json!(["cpu", "latency_ms", "queue"])
    );
    assert_eq!(h["fitted"], true);
    let rows_before = h["rows"].as_u64().unwrap();
    assert!(rows_before >= 300, "{h:#}");
    // The restored stage shows its state in memory, not a stored copy.
    assert_eq!(body["from"], "live", "{body:#}");
    assert_eq!(body["stage"]["host_sources_fitted"], 1, "{body:#}");
    let (status, body) = app.get_json("/observability/detectors?source=").await;
    assert_eq!(status, 400);
    assert!(body.to_string().contains("source"), "{body}");
    app.stop().await;

    // After the restart: latency 25 ms below what CPU implies for three
    // rows (each metric still inside its own range), then one more row so
    // the last of them closes.
    let app = spawn_app_with(cfg, dir.path()).await;
    let r = app
        .post(
            "/ingest/metrics",
            "application/x-ndjson",
            rows(400, 421, 415..418, -25.0, t0),
        )
        .await;
    assert_eq!(r.status(), 202);
    let items = app
        .wait_incidents("?service=web-1", WAIT, |i| {
            i.iter().any(|x| x["kind"] == "HOST_METRICS_ANOMALY")
        })
        .await;
    let inc = items
        .iter()
        .find(|x| x["kind"] == "HOST_METRICS_ANOMALY")
        .expect("host incident");
    assert_eq!(inc["category"], "metrics");
    let store = app.store.clone();
    wait_until(WAIT, "the pipeline to process every batch", || {
        store.cursors().get("pipeline").unwrap_or(0) >= store.wal().head()
    })
    .await;

    let (status, body) = app.get_json("/observability/anomalies?service=web-1").await;
    assert_eq!(status, 200);
    let list = body["anomalies"].as_array().cloned().unwrap_or_default();
    let host: Vec<_> = list
        .iter()
        .filter(|a| a["kind"] == "HOST_METRICS_ANOMALY")
        .collect();
    // Raised on the first decoupled row, and on no ordinary one.
    assert_eq!(host.len(), 1, "{host:#?}");
    let a = host[0];
    assert_eq!(a["ts_ms"], t0 + 416 * 10_000, "{a:#}");
    assert!(a["score"].as_f64().unwrap() >= 0.5);
    assert_eq!(a["evidence"][0]["signal"], "metric:latency_ms", "{a:#}");

    // The live view follows the rows just scored (within its one-second
    // refresh), and /metrics counts what the stage holds and raised.
    let deadline = std::time::Instant::now() + WAIT;
    let body = loop {
        let (_, body) = app.get_json("/observability/detectors?source=web-1").await;
        if body["hosts"][0]["rows"].as_u64() >= Some(rows_before + 20) {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "live view never showed the new rows: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(body["from"], "live", "{body:#}");
    assert!(
        body["stage"]["anomalies_total"].as_u64() >= Some(1),
        "{body:#}"
    );
    let m = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request sent")
        .text()
        .await
        .expect("text");
    let value = |name: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{m}"))
    };
    assert_eq!(value("selfheal_detect_host_sources"), 1);
    assert_eq!(value("selfheal_detect_host_sources_fitted"), 1);
    assert!(value("selfheal_detect_anomalies_total") >= 1);
    assert_eq!(value("selfheal_detect_host_samples_refused_total"), 0);
    app.stop().await;
}
