//! `GET /observability/anomalies?service=&since=&limit=`: recent anomalies
//! (newest first) as the detect stage recorded them, with score and
//! evidence. `since` is milliseconds since the epoch.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use state::trees::anomalies::{Anomalies, AnomalyFilter};

use super::AppState;
use super::error::ApiError;

/// Trim bound handed to the tree; only the detect stage inserts (and
/// trims), so this reader's value is never used.
const KEEP: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub service: Option<String>,
    /// Only anomalies at or after this time (ms since the epoch).
    pub since: Option<i64>,
    /// Page size (1..=1000, default 100).
    pub limit: Option<usize>,
}

pub async fn list(
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit: must be between 1 and 1000"));
    }
    if q.since.is_some_and(|s| s < 0) {
        return Err(ApiError::bad_request(
            "since: must be milliseconds since the epoch (>= 0)",
        ));
    }
    let filter = AnomalyFilter {
        service: q.service,
        since_ms: q.since,
        limit,
    };
    let store = app.store.clone();
    let items = tokio::task::spawn_blocking(move || {
        Anomalies::open(&store, KEEP).and_then(|t| t.list(&filter))
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(json!({ "anomalies": items })))
}
