//! Executors against real processes and a real local HTTP server.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use proptest::prelude::*;
use state::Store;
use state::model::{Layer, Risk};

use super::config::{ActionConfig, ActionKind, Check, DataOp, Span, Verification};
use super::exec::{Executors, http_client, run_command};
use super::template::{Fields, fill_args};
use super::verify::verify;

#[derive(Clone, Default)]
struct Hook {
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    health: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
}

async fn serve(hook: Hook) -> u16 {
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(h): State<Hook>, Json(b): Json<serde_json::Value>| async move {
                    h.bodies.lock().unwrap().push(b);
                    StatusCode::ACCEPTED
                },
            ),
        )
        .route(
            "/health",
            get(|State(h): State<Hook>| async move {
                h.hits.fetch_add(1, Ordering::SeqCst);
                StatusCode::from_u16(h.health.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
            }),
        )
        .route(
            "/metrics",
            get(|State(h): State<Hook>| async move {
                format!(
                    "# TYPE pool_in_use gauge\npool_in_use {}\n",
                    h.hits.fetch_add(1, Ordering::SeqCst)
                )
            }),
        )
        .with_state(hook);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await });
    port
}

fn executors(allowed: Vec<String>, dir: &std::path::Path) -> Executors {
    Executors {
        http: http_client(),
        allowed_hosts: Arc::new(allowed),
        store: Store::temporary().unwrap(),
        snapshot_dir: dir.to_path_buf(),
        restart: None,
    }
}

fn action(kind: ActionKind) -> ActionConfig {
    ActionConfig {
        layer: Layer::Service,
        risk: Risk::Low,
        kind,
        verify: None,
    }
}

fn pid_alive(pid: &str) -> bool {
    // A reaped process has no /proc entry; a zombie would show state Z.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.contains(") Z "),
        Err(_) => false,
    }
}

#[tokio::test]
async fn command_timeout_kills_the_child_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    // The shell starts a grandchild, writes its pid, and waits forever.
    let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
    let started = Instant::now();
    let r = run_command(
        "/bin/sh",
        &["-c".into(), script],
        Duration::from_millis(300),
    )
    .await;
    assert!(r.timed_out && !r.ok, "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let grandchild = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(&grandchild) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !pid_alive(&grandchild),
        "grandchild {grandchild} survived the timeout"
    );
}

#[tokio::test]
async fn command_output_and_exit_are_captured() {
    let r = run_command(
        "/bin/sh",
        &["-c".into(), "echo out; echo err >&2; exit 3".into()],
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(r.exit, Some(3));
    assert!(!r.ok);
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
    let r = run_command("/nonexistent/prog", &[], Duration::from_secs(5)).await;
    assert!(!r.ok && r.detail.contains("cannot start"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// The real program sees exactly one argument per template, whatever
    /// the hostile incident field values.
    #[test]
    fn hostile_field_values_reach_the_program_as_single_arguments(
        target in "\\PC{1,30}",
        service in prop::sample::select(vec![
            "a b c", "x; rm -rf /", "$(reboot)", "`id`", "' \" \\", "{target}", "*", "> /tmp/x",
        ]),
    ) {
        prop_assume!(!target.starts_with('-'));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let fields = Fields::default().with("target", target.clone()).with("service", service);
        let templates = vec!["%s\\0".to_string(), "{target}".into(), "svc={service}".into(), "{target}{service}".into()];
        let argv = fill_args(&templates, &fields).unwrap();
        let r = rt.block_on(run_command("/usr/bin/printf", &argv, Duration::from_secs(5)));
        prop_assert!(r.ok, "{:?}", r);
        let seen: Vec<&str> = r.stdout.split('\0').collect();
        // printf prints each argument followed by NUL: 3 args + trailing empty.
        prop_assert_eq!(seen.len(), 4, "{:?}", seen);
        prop_assert_eq!(seen[0], target.as_str());
        prop_assert_eq!(seen[1], format!("svc={service}"));
        prop_assert_eq!(seen[2], format!("{target}{service}"));
    }
}

#[tokio::test]
async fn webhook_posts_the_templated_body_to_an_allowed_host() {
    let hook = Hook::default();
    let port = serve(hook.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let ex = executors(vec![format!("127.0.0.1:{port}")], dir.path());
    let a = action(ActionKind::Http {
        method: "POST".into(),
        url: format!("http://127.0.0.1:{port}/hook"),
        body: Some(serde_json::json!({"text": "restart {target}", "incident": "{incident_id}"})),
        timeout: Span::secs(5),
        status: 202,
    });
    let f = Fields::default()
        .with("target", "api\"}")
        .with("incident_id", "0001");
    let r = ex.run(&a, &f).await;
    assert!(r.ok, "{r:?}");
    let bodies = hook.bodies.lock().unwrap().clone();
    assert_eq!(
        bodies,
        vec![serde_json::json!({"text": "restart api\"}", "incident": "0001"})]
    );
}

#[tokio::test]
async fn webhook_to_a_host_outside_the_allow_list_is_refused_without_a_request() {
    let hook = Hook::default();
    let port = serve(hook.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    // Same server, but only "localhost" is allowed, not 127.0.0.1:port.
    let ex = executors(vec!["localhost".into(), "127.0.0.1:1".into()], dir.path());
    let a = action(ActionKind::Http {
        method: "POST".into(),
        url: format!("http://127.0.0.1:{port}/hook"),
        body: Some(serde_json::json!({})),
        timeout: Span::secs(5),
        status: 202,
    });
    let r = ex.run(&a, &Fields::default()).await;
    assert!(
        !r.ok && r.detail.contains("not in recovery.allowed_hosts"),
        "{r:?}"
    );
    assert!(hook.bodies.lock().unwrap().is_empty());
    let a = action(ActionKind::Http {
        method: "POST".into(),
        url: "file:///etc/passwd".into(),
        body: None,
        timeout: Span::secs(5),
        status: 200,
    });
    assert!(
        ex.run(&a, &Fields::default())
            .await
            .detail
            .contains("only http")
    );
}

#[tokio::test]
async fn verification_waits_for_health_and_holds() {
    let hook = Hook::default();
    hook.health.store(500, Ordering::SeqCst);
    let port = serve(hook.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let ex = executors(vec![format!("127.0.0.1:{port}")], dir.path());
    let v = Verification {
        check: Check::Http {
            url: format!("http://127.0.0.1:{port}/health"),
            status: 200,
        },
        within: Span::millis(500),
        hold: Span::millis(100),
        interval: Span::millis(20),
        timeout: Span::secs(1),
    };
    let verdict = verify(&ex, &v).await;
    assert!(
        !verdict.passed && verdict.detail.contains("500"),
        "{verdict:?}"
    );

    let flip = hook.clone();
    let healer = tokio::spawn(async move {
        while flip.hits.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        flip.health.store(200, Ordering::SeqCst);
    });
    let v = Verification {
        within: Span::secs(5),
        ..v
    };
    let verdict = verify(&ex, &v).await;
    healer.await.unwrap();
    assert!(verdict.passed, "{verdict:?}");
    assert!(verdict.checks >= 4);

    // Metric: the gauge rises with each scrape, so "below 2" never holds.
    let m = Verification {
        check: Check::Metric {
            url: format!("http://127.0.0.1:{port}/metrics"),
            name: "pool_in_use".into(),
            below: 2.0,
        },
        within: Span::millis(300),
        hold: Span::millis(200),
        interval: Span::millis(20),
        timeout: Span::secs(1),
    };
    assert!(!verify(&ex, &m).await.passed);
}

#[tokio::test]
async fn data_actions_snapshot_check_and_restore_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let ex = executors(vec![], dir.path());
    let snap = ex
        .run(
            &action(ActionKind::Data {
                op: DataOp::Snapshot,
            }),
            &Fields::default(),
        )
        .await;
    assert!(snap.ok, "{snap:?}");
    assert!(Store::latest_snapshot(dir.path()).is_some());
    let check = ex
        .run(
            &action(ActionKind::Data { op: DataOp::Check }),
            &Fields::default(),
        )
        .await;
    assert!(check.ok, "{check:?}");
    let restore = ex
        .run(
            &action(ActionKind::Data {
                op: DataOp::Restore,
            }),
            &Fields::default(),
        )
        .await;
    assert!(restore.ok, "{restore:?}");
}

#[tokio::test]
async fn restart_agent_goes_through_the_callback() {
    let dir = tempfile::tempdir().unwrap();
    let mut ex = executors(vec![], dir.path());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    ex.restart = Some(Arc::new(move |path: String| {
        s.lock().unwrap().push(path.clone());
        Box::pin(async move {
            if path.ends_with("missing") {
                Err("unknown child".to_string())
            } else {
                Ok(())
            }
        })
    }));
    let ok = ex
        .run(
            &action(ActionKind::RestartAgent {
                path: "root/pipeline/{target}".into(),
            }),
            &Fields::default().with("target", "detect"),
        )
        .await;
    assert!(ok.ok, "{ok:?}");
    let bad = ex
        .run(
            &action(ActionKind::RestartAgent {
                path: "root/missing".into(),
            }),
            &Fields::default(),
        )
        .await;
    assert!(!bad.ok && bad.detail.contains("unknown child"));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            "root/pipeline/detect".to_string(),
            "root/missing".to_string()
        ]
    );
}
