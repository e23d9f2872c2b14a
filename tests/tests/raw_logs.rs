//! `POST /ingest/logs/raw`: raw lines in mixed formats, gzip bodies, the
//! service from line / query / header, and the same error rules as the
//! other ingest endpoints.

use std::io::Write;

use e2e::{spawn_app, spawn_app_with};
use serde_json::Value;
use state::model::{Event, Level, LogEvent};
use supervisor::config::Config;

fn logs_in_wal(app: &e2e::TestApp) -> Vec<LogEvent> {
    app.store
        .wal()
        .read_after(0, 1000)
        .unwrap()
        .into_iter()
        .flat_map(|(_, b)| b.events)
        .filter_map(|e| match e {
            Event::Log(l) => Some(l),
            Event::Metric(_) => None,
        })
        .collect()
}

async fn post_raw(
    app: &e2e::TestApp,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(app.url(path))
        .header("content-type", "text/plain");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.body(body).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn mixed_formats_are_parsed_and_durable_before_202() {
    let app = spawn_app().await;
    let body = b"{\"level\":\"error\",\"service\":\"api\",\"msg\":\"db down\"}\n\
ts=2024-05-01T12:34:56Z level=warn msg=slow\n\
<34>May  1 12:34:56 host1 sshd[9]: Failed password for root\n\
10.0.0.1 - - [01/May/2024:12:34:56 +0000] \"GET /x HTTP/1.1\" 503 12\n\
2024-05-01 12:34:56,001 ERROR boom\n\
\tat a.b.C(C.java:1)\n\
just words \xff here\n";
    let (s, b) = post_raw(&app, "/ingest/logs/raw?service=web", &[], body.to_vec()).await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["accepted"], 6);
    let logs = logs_in_wal(&app);
    let services: Vec<&str> = logs.iter().map(|l| l.service.as_str()).collect();
    assert_eq!(services, ["api", "web", "sshd", "web", "web", "web"]);
    assert_eq!(logs[3].level, Level::Error, "503 is an error");
    assert!(logs[4].message.contains("\n\tat a.b.C"));
    let formats: Vec<&str> = logs
        .iter()
        .map(|l| l.fields["log.format"].as_str())
        .collect();
    assert_eq!(
        formats,
        ["json", "logfmt", "syslog3164", "access", "text", "plain"]
    );
    app.stop().await;
}

#[tokio::test]
async fn gzip_bodies_and_the_service_header() {
    let app = spawn_app().await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..100 {
        writeln!(
            gz,
            "2024-05-01T12:00:00Z ERROR connection to 10.0.0.{i}:5432 refused"
        )
        .unwrap();
    }
    let body = gz.finish().unwrap();
    let (s, b) = post_raw(
        &app,
        "/ingest/logs/raw",
        &[("content-encoding", "gzip"), ("x-service", "orders")],
        body,
    )
    .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["accepted"], 100);
    assert!(logs_in_wal(&app).iter().all(|l| l.service == "orders"));
    app.stop().await;
}

/// Path, headers, body, expected status, word the error must contain.
type Case = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<u8>,
    u16,
    &'static str,
);

#[tokio::test]
async fn bad_raw_bodies_get_clear_4xx_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        max_body_bytes: 2048,
        ..Config::default()
    };
    let app = spawn_app_with(cfg, dir.path()).await;
    let cases: Vec<Case> = vec![
        (
            "/ingest/logs/raw",
            vec![],
            b"\n  \n".to_vec(),
            400,
            "no log lines",
        ),
        (
            "/ingest/logs/raw",
            vec![("content-encoding", "gzip")],
            b"not gzip".to_vec(),
            400,
            "gzip",
        ),
        (
            "/ingest/logs/raw",
            vec![("content-encoding", "br")],
            b"x".to_vec(),
            415,
            "not supported",
        ),
        (
            "/ingest/logs/raw?service=",
            vec![],
            b"x".to_vec(),
            400,
            "service",
        ),
        (
            "/ingest/logs/raw",
            vec![("x-service", " ")],
            b"x".to_vec(),
            400,
            "X-Service",
        ),
        ("/ingest/logs/raw", vec![], vec![b'a'; 4096], 413, "limit"),
    ];
    // A small gzip body that inflates past the limit.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b'a'; 100_000]).unwrap();
    let bomb = gz.finish().unwrap();
    let mut cases = cases;
    cases.push((
        "/ingest/logs/raw",
        vec![("content-encoding", "gzip")],
        bomb,
        413,
        "decompressed",
    ));
    for (path, headers, body, status, needle) in cases {
        let (s, b) = post_raw(&app, path, &headers, body).await;
        assert_eq!(s, status, "{path} {headers:?}: {b}");
        assert!(b["error"].as_str().unwrap_or("").contains(needle), "{b}");
    }
    assert_eq!(app.store.wal().head(), 0);
    app.stop().await;
}
