//! Executors: run one configured action for real.
//!
//! - `command`: `tokio::process`, no shell, arguments from templates (one
//!   argument per template), its own process group, killed (group and
//!   child) when the timeout passes, stdout/stderr captured (bounded).
//! - `http`: reqwest, host allow-list checked before any request, no
//!   redirects (a redirect could leave the allow-list), templated JSON
//!   body, timeout, expected status.
//! - `data`: snapshot / restore / integrity check of the store, on the
//!   blocking pool.
//! - `restart_agent`: through a callback the supervisor provides (its tree
//!   registry restarts one child).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde::Serialize;
use state::Store;
use tokio::io::AsyncReadExt;

use super::config::{ActionConfig, ActionKind, DataOp};
use super::template::{Fields, Template, fill_args, fill_json};

/// Most bytes kept of each of stdout and stderr.
pub const OUTPUT_CAP: usize = 16 * 1024;

/// Restarts one of the supervisor's stages by tree path.
pub type RestartFn = Arc<dyn Fn(String) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// What running an action did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExecReport {
    /// The action did what it is expected to (exit 0, expected status...).
    pub ok: bool,
    pub detail: String,
    pub exit: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub elapsed_ms: u64,
}

impl ExecReport {
    pub fn failed(detail: impl Into<String>) -> Self {
        Self {
            ok: false,
            detail: detail.into(),
            exit: None,
            timed_out: false,
            stdout: String::new(),
            stderr: String::new(),
            elapsed_ms: 0,
        }
    }
}

/// Whether `raw` is an http(s) URL whose `host` or `host:port` is allowed.
pub fn check_url(raw: &str, allowed: &[String]) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{raw:?}: only http and https are allowed"));
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("{raw:?} has no host"))?
        .to_ascii_lowercase();
    let with_port = url
        .port_or_known_default()
        .map(|p| format!("{host}:{p}"))
        .unwrap_or_else(|| host.clone());
    if allowed
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&host) || a.eq_ignore_ascii_case(&with_port))
    {
        Ok(url)
    } else {
        Err(format!("host {with_port} is not in recovery.allowed_hosts"))
    }
}

/// Run `program argv` without a shell; kill it (and its process group) at
/// `timeout`.
pub async fn run_command(program: &str, argv: &[String], timeout: Duration) -> ExecReport {
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return ExecReport::failed(format!("cannot start {program}: {e}")),
    };
    let pid = child.id();
    let out = child.stdout.take().map(|s| tokio::spawn(read_capped(s)));
    let err = child.stderr.take().map(|s| tokio::spawn(read_capped(s)));
    let (status, timed_out) = tokio::select! {
        s = child.wait() => (s.ok(), false),
        _ = tokio::time::sleep(timeout) => {
            if let Some(pid) = pid {
                kill_group(pid).await;
            }
            let _ = child.kill().await;
            (None, true)
        }
    };
    let stdout = match out {
        Some(h) => h.await.unwrap_or_default(),
        None => String::new(),
    };
    let stderr = match err {
        Some(h) => h.await.unwrap_or_default(),
        None => String::new(),
    };
    let exit = status.and_then(|s| s.code());
    let ok = !timed_out && exit == Some(0);
    let detail = if timed_out {
        format!("{program} timed out after {timeout:?} and was killed")
    } else {
        match exit {
            Some(c) => format!("{program} exited with {c}"),
            None => format!("{program} was killed by a signal"),
        }
    };
    ExecReport {
        ok,
        detail,
        exit,
        timed_out,
        stdout,
        stderr,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// SIGKILL the child's whole process group (it leads its own group), so
/// grandchildren (`sh -c 'sleep ...'`) die with it.
async fn kill_group(pid: u32) {
    let _ = tokio::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

async fn read_capped(mut r: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// Everything the executors need; cheap to clone.
#[derive(Clone)]
pub struct Executors {
    pub http: reqwest::Client,
    pub allowed_hosts: Arc<Vec<String>>,
    pub store: Store,
    pub snapshot_dir: PathBuf,
    pub restart: Option<RestartFn>,
}

/// An HTTP client for executors and checks: no redirects.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

impl Executors {
    /// Run `action` for the incident fields `fields`.
    pub async fn run(&self, action: &ActionConfig, fields: &Fields) -> ExecReport {
        match &action.kind {
            ActionKind::Command {
                program,
                args,
                timeout,
            } => match fill_args(args, fields) {
                Ok(argv) => run_command(program, &argv, timeout.0).await,
                Err(e) => ExecReport::failed(format!("refused: {e}")),
            },
            ActionKind::Http {
                method,
                url,
                body,
                timeout,
                status,
            } => {
                self.call_http(method, url, body.as_ref(), timeout.0, *status, fields)
                    .await
            }
            ActionKind::Data { op } => self.data(*op).await,
            ActionKind::RestartAgent { path } => {
                let path = match Template::parse(path).and_then(|t| t.fill(fields)) {
                    Ok(p) => p,
                    Err(e) => return ExecReport::failed(format!("refused: {e}")),
                };
                let Some(restart) = &self.restart else {
                    return ExecReport::failed("no supervision tree to restart agents in");
                };
                let started = Instant::now();
                let r = restart(path.clone()).await;
                ExecReport {
                    ok: r.is_ok(),
                    detail: match r {
                        Ok(()) => format!("restarted {path}"),
                        Err(e) => format!("restart of {path} failed: {e}"),
                    },
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    ..ExecReport::failed("")
                }
            }
        }
    }

    async fn call_http(
        &self,
        method: &str,
        url: &str,
        body: Option<&serde_json::Value>,
        timeout: Duration,
        expect: u16,
        fields: &Fields,
    ) -> ExecReport {
        let url = match check_url(url, &self.allowed_hosts) {
            Ok(u) => u,
            Err(e) => return ExecReport::failed(format!("refused: {e}")),
        };
        let method = match reqwest::Method::from_bytes(method.as_bytes()) {
            Ok(m) => m,
            Err(_) => return ExecReport::failed(format!("refused: bad method {method:?}")),
        };
        let mut req = self.http.request(method, url.clone()).timeout(timeout);
        if let Some(b) = body {
            match fill_json(b, fields) {
                Ok(b) => req = req.json(&b),
                Err(e) => return ExecReport::failed(format!("refused: {e}")),
            }
        }
        let started = Instant::now();
        match req.send().await {
            Ok(resp) => {
                let code = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                let mut text = text;
                text.truncate(OUTPUT_CAP);
                ExecReport {
                    ok: code == expect,
                    detail: format!("{url} answered {code} (expected {expect})"),
                    exit: Some(code as i32),
                    timed_out: false,
                    stdout: text,
                    stderr: String::new(),
                    elapsed_ms: started.elapsed().as_millis() as u64,
                }
            }
            Err(e) => ExecReport {
                timed_out: e.is_timeout(),
                elapsed_ms: started.elapsed().as_millis() as u64,
                ..ExecReport::failed(format!("{url}: {e}"))
            },
        }
    }

    async fn data(&self, op: DataOp) -> ExecReport {
        let store = self.store.clone();
        let dir = self.snapshot_dir.clone();
        let started = Instant::now();
        let r = tokio::task::spawn_blocking(move || -> Result<String, String> {
            match op {
                DataOp::Snapshot => store
                    .snapshot_to(&dir)
                    .map(|i| format!("snapshot {} ({} records)", i.path.display(), i.records))
                    .map_err(|e| e.to_string()),
                DataOp::Restore => {
                    let p = Store::latest_snapshot(&dir)
                        .ok_or_else(|| format!("no snapshot in {}", dir.display()))?;
                    store
                        .restore_from(&p)
                        .map(|i| format!("restored {} ({} records)", i.path.display(), i.records))
                        .map_err(|e| e.to_string())
                }
                DataOp::Check => {
                    let checks = store.check_integrity().map_err(|e| e.to_string())?;
                    let bad: Vec<String> = checks
                        .iter()
                        .filter(|c| !c.errors.is_empty())
                        .map(|c| format!("{}: {}", c.tree, c.errors.join("; ")))
                        .collect();
                    if bad.is_empty() {
                        Ok(format!("{} trees intact", checks.len()))
                    } else {
                        Err(bad.join(" | "))
                    }
                }
            }
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        ExecReport {
            ok: r.is_ok(),
            detail: r.unwrap_or_else(|e| e),
            elapsed_ms: started.elapsed().as_millis() as u64,
            ..ExecReport::failed("")
        }
    }
}
