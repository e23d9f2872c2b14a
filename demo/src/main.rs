//! # demo: a service that breaks on demand
//!
//! Serves `GET /` and `GET /health`, exposes Prometheus `GET /metrics`,
//! writes one log line per notable event to stdout and, with `--ship-to`,
//! ships them as NDJSON to a selfheal supervisor's `/ingest/logs`.
//!
//! Fault switches (`POST /fault/{kind}`) and `POST /reset`:
//! - `crash`: log a panic line, ship it, exit with status 1;
//! - `leak`: allocate memory until requests fail with "out of memory";
//! - `pool`: the connection pool is exhausted ("too many connections");
//! - `500s`: a feature flag sends every request down a broken path that
//!   answers 500 ("HTTP 500 internal server error");
//! - `hang`: every worker blocks; requests (and health checks) hang until
//!   reset, logging a timeout after 300 ms.
//!
//! The log lines use the wording real services use for these failures, so
//! the supervisor's built-in signatures and knowledge base recognise them.
//! Remedies, one per fix the knowledge base proposes for them:
//! `POST /flags/broken_path/off` (disable the feature flag),
//! `POST /pool/recycle` (recycle the connection pool), and a restart:
//! started with `--replace`, the demo stops the process named in its pid
//! file before listening. `POST /reset` clears every fault.
//!
//! `/health` answers 200 only when no fault is active, so it is the
//! natural verification of a fix.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use tokio::sync::{mpsc, oneshot, watch};

#[derive(Parser, Debug)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Service name in the log lines.
    #[arg(long, default_value = "demo")]
    service: String,
    /// A supervisor's ingest URL (`http://127.0.0.1:8080/ingest/logs`).
    #[arg(long)]
    ship_to: Option<String>,
    /// Write the process id here once listening.
    #[arg(long)]
    pid_file: Option<std::path::PathBuf>,
    /// Restart: stop the process named in `--pid-file` (SIGKILL) and take
    /// over its address.
    #[arg(long, requires = "pid_file")]
    replace: bool,
}

const POOL_SIZE: u64 = 10;
const LEAK_LIMIT: u64 = 32 * 1024 * 1024;

enum Ship {
    Line(String),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
struct App {
    service: Arc<String>,
    ship: Option<mpsc::UnboundedSender<Ship>>,
    errors_500: Arc<AtomicBool>,
    pool_in_use: Arc<AtomicU64>,
    leaking: Arc<AtomicBool>,
    leaked: Arc<Mutex<Vec<Vec<u8>>>>,
    leaked_bytes: Arc<AtomicU64>,
    hang: Arc<watch::Sender<bool>>,
    requests: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
}

impl App {
    fn log(&self, level: &str, message: &str) {
        let line = serde_json::json!({
            "service": self.service.as_str(), "level": level, "message": message,
        })
        .to_string();
        // Ignore a closed stdout (a restarter that stopped reading it).
        let _ = writeln!(std::io::stdout(), "{line}");
        if let Some(s) = &self.ship {
            let _ = s.send(Ship::Line(line));
        }
    }

    async fn flush(&self) {
        if let Some(s) = &self.ship {
            let (tx, rx) = oneshot::channel();
            if s.send(Ship::Flush(tx)).is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(2), rx).await;
            }
        }
    }

    /// The current fault as an error response, waiting out a hang.
    async fn fault(&self, path: &str) -> Option<Response> {
        if *self.hang.borrow() {
            let mut rx = self.hang.subscribe();
            let cleared = tokio::time::timeout(Duration::from_millis(300), rx.wait_for(|h| !*h))
                .await
                .map(|r| r.is_ok())
                .unwrap_or(false);
            if !cleared {
                self.log(
                    "error",
                    &format!("request timed out after 300ms on GET {path}: no available workers"),
                );
                let _ = rx.wait_for(|h| !*h).await;
            }
        }
        if self.errors_500.load(Ordering::SeqCst) {
            self.log(
                "error",
                &format!(
                    "HTTP 500 internal server error on GET {path} (feature flag broken_path enabled)"
                ),
            );
            return Some(
                (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response(),
            );
        }
        let in_use = self.pool_in_use.load(Ordering::SeqCst);
        if in_use >= POOL_SIZE {
            self.log(
                "error",
                &format!(
                    "too many connections: connection pool exhausted ({in_use}/{POOL_SIZE} in use)"
                ),
            );
            return Some((StatusCode::SERVICE_UNAVAILABLE, "pool exhausted").into_response());
        }
        let leaked = self.leaked_bytes.load(Ordering::SeqCst);
        if leaked >= LEAK_LIMIT {
            self.log(
                "error",
                &format!(
                    "out of memory: {} MiB leaked, allocation failed",
                    leaked >> 20
                ),
            );
            return Some((StatusCode::SERVICE_UNAVAILABLE, "out of memory").into_response());
        }
        None
    }
}

async fn index(State(app): State<App>) -> Response {
    app.requests.fetch_add(1, Ordering::Relaxed);
    match app.fault("/").await {
        Some(r) => {
            app.errors.fetch_add(1, Ordering::Relaxed);
            r
        }
        None => "hello\n".into_response(),
    }
}

async fn health(State(app): State<App>) -> Response {
    match app.fault("/health").await {
        Some(r) => r,
        None => "ok\n".into_response(),
    }
}

async fn metrics(State(app): State<App>) -> String {
    format!(
        "# TYPE demo_requests_total counter\ndemo_requests_total {}\n\
         # TYPE demo_errors_total counter\ndemo_errors_total {}\n\
         # TYPE demo_pool_in_use gauge\ndemo_pool_in_use {}\n\
         # TYPE demo_leaked_bytes gauge\ndemo_leaked_bytes {}\n",
        app.requests.load(Ordering::Relaxed),
        app.errors.load(Ordering::Relaxed),
        app.pool_in_use.load(Ordering::SeqCst),
        app.leaked_bytes.load(Ordering::SeqCst),
    )
}

async fn fault(State(app): State<App>, Path(kind): Path<String>) -> Response {
    app.log("info", &format!("fault switch {kind} thrown"));
    match kind.as_str() {
        "crash" => {
            app.log(
                "fatal",
                "panic: crash switch thrown; process exited unexpectedly (exit code 1)",
            );
            app.flush().await;
            std::process::exit(1);
        }
        "500s" => app.errors_500.store(true, Ordering::SeqCst),
        "pool" => app.pool_in_use.store(POOL_SIZE, Ordering::SeqCst),
        "hang" => {
            app.hang.send_replace(true);
        }
        "leak" => {
            if !app.leaking.swap(true, Ordering::SeqCst) {
                let a = app.clone();
                tokio::spawn(async move {
                    while a.leaking.load(Ordering::SeqCst)
                        && a.leaked_bytes.load(Ordering::SeqCst) < 2 * LEAK_LIMIT
                    {
                        // Touch every page so the memory is really used.
                        let block = vec![1u8; 4 << 20];
                        a.leaked
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(block);
                        a.leaked_bytes.fetch_add(4 << 20, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                });
            }
        }
        _ => {
            return (
                StatusCode::NOT_FOUND,
                "unknown fault: use crash, leak, pool, 500s or hang\n",
            )
                .into_response();
        }
    }
    "fault on\n".into_response()
}

/// The remedy for the `500s` fault: turn the broken feature flag off.
async fn flag_off(State(app): State<App>, Path(name): Path<String>) -> Response {
    if name != "broken_path" {
        return (StatusCode::NOT_FOUND, "unknown flag: use broken_path\n").into_response();
    }
    app.errors_500.store(false, Ordering::SeqCst);
    app.log("info", "feature flag broken_path disabled");
    "flag off\n".into_response()
}

/// The remedy for the `pool` fault: drop every pooled connection.
async fn pool_recycle(State(app): State<App>) -> &'static str {
    app.pool_in_use.store(0, Ordering::SeqCst);
    app.log("info", "connection pool recycled");
    "pool recycled\n"
}

async fn reset(State(app): State<App>) -> &'static str {
    app.errors_500.store(false, Ordering::SeqCst);
    app.pool_in_use.store(0, Ordering::SeqCst);
    app.leaking.store(false, Ordering::SeqCst);
    app.leaked.lock().unwrap_or_else(|p| p.into_inner()).clear();
    app.leaked_bytes.store(0, Ordering::SeqCst);
    app.hang.send_replace(false);
    app.log("info", "reset: every fault cleared");
    "reset\n"
}

/// Ship log lines in batches (every 20 ms or on flush).
async fn shipper(url: String, mut rx: mpsc::UnboundedReceiver<Ship>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let mut buf: Vec<String> = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_millis(20), rx.recv()).await;
        let mut done = None;
        match msg {
            Ok(Some(Ship::Line(l))) => {
                buf.push(l);
                continue;
            }
            Ok(Some(Ship::Flush(tx))) => done = Some(tx),
            Ok(None) => return,
            Err(_) => {}
        }
        if !buf.is_empty() {
            let body = buf.join("\n");
            buf.clear();
            let _ = client
                .post(&url)
                .header("content-type", "application/x-ndjson")
                .timeout(Duration::from_secs(2))
                .body(body)
                .send()
                .await;
        }
        if let Some(tx) = done {
            let _ = tx.send(());
        }
    }
}

/// Kill the process named in the pid file (not this one).
fn stop_previous(pid_file: &std::path::Path) {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return;
    };
    if pid != std::process::id() {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Bind; when replacing a process, wait (up to 5 s) for it to let go of
/// the address.
async fn bind(addr: SocketAddr, replace: bool) -> std::io::Result<tokio::net::TcpListener> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Err(e)
                if replace
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            r => return r,
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let ship = cli.ship_to.clone().map(|url| {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(shipper(url, rx));
        tx
    });
    let app = App {
        service: Arc::new(cli.service.clone()),
        ship,
        errors_500: Default::default(),
        pool_in_use: Default::default(),
        leaking: Default::default(),
        leaked: Default::default(),
        leaked_bytes: Default::default(),
        hang: Arc::new(watch::Sender::new(false)),
        requests: Default::default(),
        errors: Default::default(),
    };
    let router = Router::new()
        .route("/", get(index))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/fault/{kind}", post(fault))
        .route("/reset", post(reset))
        .route("/flags/{name}/off", post(flag_off))
        .route("/pool/recycle", post(pool_recycle))
        .with_state(app.clone());
    if cli.replace
        && let Some(p) = &cli.pid_file
    {
        stop_previous(p);
    }
    let listener = match bind(cli.listen, cli.replace).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo: cannot listen on {}: {e}", cli.listen);
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(p) = &cli.pid_file {
        let _ = std::fs::write(p, std::process::id().to_string());
    }
    app.log("info", &format!("demo listening on {}", cli.listen));
    if let Err(e) = axum::serve(listener, router).await {
        eprintln!("demo: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
