//! End-to-end suite helpers: the whole application on port 0 with a real
//! store in a temporary directory, driven over real HTTP.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agents::chaos::Faults;
use serde_json::Value;
use supervisor::config::Config;
use supervisor::startup::{Application, Stopped};
use supervisor::tree::Registry;
use tokio::sync::oneshot;

pub struct TestApp {
    pub addr: String,
    pub client: reqwest::Client,
    pub faults: Arc<Faults>,
    pub registry: Registry,
    pub store: state::Store,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<Stopped>>>,
    _dir: Option<tempfile::TempDir>,
}

/// Start the app on port 0 in a fresh temporary data directory.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = spawn_app_with(Config::default(), dir.path()).await;
    app._dir = Some(dir);
    app
}

/// Start the app with `cfg` on port 0 in `data_dir`.
pub async fn spawn_app_with(mut cfg: Config, data_dir: &Path) -> TestApp {
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    spawn_app_on(cfg, data_dir).await
}

/// Start the app with `cfg` on `cfg.listen` (e.g. a port another process
/// must know in advance) in `data_dir`.
pub async fn spawn_app_on(mut cfg: Config, data_dir: &Path) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    cfg.data_dir = data_dir.to_path_buf();
    let app = Application::build(cfg).await.expect("app builds");
    let addr = format!("http://{}", app.local_addr());
    let faults = app.faults();
    let registry = app.registry();
    let store = app.store();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        faults,
        registry,
        store,
        stop: Some(stop),
        task: Some(task),
        _dir: None,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Poll `GET /incidents` until `pred` holds, or panic after `within`.
    pub async fn wait_incidents(
        &self,
        query: &str,
        within: Duration,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let (_, body) = self.get_json(&format!("/incidents{query}")).await;
            let items = body["incidents"].as_array().cloned().unwrap_or_default();
            if pred(&items) {
                return items;
            }
            if Instant::now() > deadline {
                panic!("condition not met within {within:?}; last incidents: {items:#?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stop gracefully and return how it stopped.
    pub async fn stop(mut self) -> Stopped {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.take().unwrap().await.unwrap().unwrap()
    }
}

/// Poll `cond` every 10 ms until it holds; panic after `within`.
pub async fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One NDJSON log line.
pub fn log_line(service: &str, level: &str, message: &str) -> String {
    serde_json::json!({ "service": service, "level": level, "message": message }).to_string()
}
