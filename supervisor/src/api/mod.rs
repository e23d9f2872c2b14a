//! The HTTP API. [`router`] builds it from an [`AppState`], so handlers are
//! testable with `oneshot` and the binary only binds and serves.

pub mod actions;
pub mod anomalies;
pub mod detectors;
pub mod error;
pub mod incidents;
pub mod ingest;
pub mod knowledge;
pub mod metrics;
pub mod raw;
pub mod rca;

use std::sync::Arc;

use agents::ingest::commit::GroupCommit;
use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use state::Store;
use subtle::ConstantTimeEq;

use crate::tree::Registry;
use error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub commit: GroupCommit,
    pub registry: Registry,
    pub metrics: Arc<metrics::Metrics>,
    /// Bearer token for mutating requests; `None` = open (loopback only).
    pub api_key: Option<Arc<String>>,
    pub max_body_bytes: usize,
    /// Above this many unprocessed write-ahead bytes, ingest answers 503.
    pub wal_limit_bytes: u64,
    /// The recovery stage: actions, approvals, breakers, audit log.
    pub recovery: actions::RecoveryHandle,
    /// The failure-signature catalogue in use (`GET /signatures`).
    pub catalogue: Arc<agents::detect::signatures::Catalogue>,
    /// Knowledge base, dependency graph and rca/fixes stores.
    pub rca: Arc<agents::rca::shared::RcaShared>,
    /// What the detect stage reports while it runs (`/metrics`,
    /// `/observability/detectors`).
    pub detect: Arc<agents::detect::gauges::DetectGauges>,
}

pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(prometheus))
        .route("/ingest/logs", post(ingest::logs))
        .route("/ingest/metrics", post(ingest::metrics))
        .route("/incidents", get(incidents::list))
        .route("/incidents/{id}", get(incidents::get))
        .route("/incidents/{id}/{action}", post(incidents::transition))
        .route("/observability/agents", get(agents_status))
        .route("/ingest/logs/raw", post(raw::logs_raw))
        .route("/actions", get(actions::list))
        .route("/actions/plans", post(actions::submit_plan))
        .route("/actions/breaker/reset", post(actions::reset_breaker))
        .route("/actions/{id}/approve", post(actions::approve))
        .route("/observability/anomalies", get(anomalies::list))
        .route("/observability/detectors", get(detectors::list))
        .route("/templates", get(knowledge::templates))
        .route("/signatures", get(knowledge::signatures))
        .route("/kb/causes", get(rca::list_causes).post(rca::add_cause))
        .route("/incidents/{id}/rca", get(rca::incident_rca))
        .route("/incidents/{id}/similar", get(rca::similar))
        .route("/incidents/{id}/feedback", post(rca::feedback))
        .route("/fixes/stats", get(rca::fix_stats))
        .route("/topology", get(rca::topology))
        .route("/silences", get(rca::list_silences).post(rca::add_silence))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), require_key))
        .with_state(app)
}

/// Mutating requests need `Authorization: Bearer <api_key>` when a key is
/// configured; compared in constant time.
async fn require_key(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET
        && req.method() != Method::HEAD
        && let Some(key) = &app.api_key
    {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(key.as_bytes())) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong API key: send Authorization: Bearer <key>",
            )
            .into_response();
        }
    }
    next.run(req).await
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn ready(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let agents = app.registry.snapshot();
    let store_ok = app.store.is_healthy();
    let down: Vec<&str> = agents
        .iter()
        .filter(|a| a.status != crate::tree::ChildState::Running)
        .map(|a| a.path.as_str())
        .collect();
    if store_ok && !agents.is_empty() && down.is_empty() {
        Ok(Json(json!({ "status": "ready", "agents": agents.len() })))
    } else {
        Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not ready")
            .with_details(json!({ "store_open": store_ok, "agents_not_running": down })))
    }
}

async fn agents_status(State(app): State<AppState>) -> Json<Value> {
    Json(json!({ "agents": app.registry.snapshot() }))
}

async fn prometheus(State(app): State<AppState>) -> impl IntoResponse {
    let mut out = String::new();
    app.metrics.render(
        &mut out,
        &app.registry.snapshot(),
        app.store.wal().bytes(),
        app.store.incidents().len(),
        &app.detect.figures(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
