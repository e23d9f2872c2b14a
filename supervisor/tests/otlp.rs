//! The real binary exports spans over OTLP/HTTP when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and an incident's trace context
//! is the trace its spans are exported under.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// (span name, trace id hex) of every span received.
type Received = Arc<Mutex<Vec<(String, String)>>>;

async fn receive(State(got): State<Received>, body: Bytes) -> &'static str {
    if let Ok(req) = ExportTraceServiceRequest::decode(body) {
        let mut g = got.lock().unwrap();
        for rs in req.resource_spans {
            for ss in rs.scope_spans {
                for s in ss.spans {
                    g.push((s.name, hex::encode(&s.trace_id)));
                }
            }
        }
    }
    ""
}

#[allow(unsafe_code)]
fn sigterm(pid: u32) {
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
}

#[tokio::test]
async fn incident_spans_reach_an_otlp_receiver_under_the_incident_trace() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let got: Received = Default::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(receive))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_supervisor"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first.split("http://").nth(1).unwrap().trim().to_string();
    std::thread::spawn(move || for _ in lines {});

    let client = reqwest::Client::new();
    let r = client
        .post(format!("http://{addr}/ingest/logs"))
        .body(r#"{"service":"cart","level":"error","message":"ERROR: deadlock detected"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(20);
    let incident = loop {
        let v: serde_json::Value = client
            .get(format!("http://{addr}/incidents"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(i) = v["incidents"].as_array().and_then(|a| a.first()).cloned() {
            break i;
        }
        assert!(Instant::now() < deadline, "no incident");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let id = incident["id"].as_str().unwrap();
    let full: serde_json::Value = client
        .get(format!("http://{addr}/incidents/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let traceparent = full["trace"]["traceparent"].as_str().unwrap().to_string();
    let trace_id = traceparent.split('-').nth(1).unwrap().to_string();

    // Shutdown flushes the batch exporter.
    sigterm(child.id());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let spans = got.lock().unwrap().clone();
    let names: Vec<&str> = spans.iter().map(|s| s.0.as_str()).collect();
    assert!(
        spans
            .iter()
            .any(|(n, t)| n == "triage.opened" && *t == trace_id),
        "no triage.opened span in trace {trace_id}; got {names:?}"
    );
    assert!(
        spans
            .iter()
            .any(|(n, t)| n == "triage.open_incident" && *t == trace_id),
        "the incident's root span is exported: {names:?}"
    );
}
