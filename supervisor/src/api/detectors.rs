//! `GET /observability/detectors?source=`: what the detect stage has
//! learned, as of its last snapshot: how many streams it stores, and per
//! source its metric vector (layout, rows learned, whether a model is
//! fitted, so an operator knows whether joint anomalies can be raised yet).

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use state::trees::detector_state::DetectorStates;

use super::AppState;
use super::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorsQuery {
    /// Only this source's vector.
    pub source: Option<String>,
}

pub async fn list(
    State(app): State<AppState>,
    Query(q): Query<DetectorsQuery>,
) -> Result<Json<Value>, ApiError> {
    if q.source.as_deref().is_some_and(str::is_empty) {
        return Err(ApiError::bad_request("source: must not be empty"));
    }
    let store = app.store.clone();
    let (stored, hosts) = tokio::task::spawn_blocking(move || {
        let states = DetectorStates::open(&store)?;
        let prefix = match &q.source {
            Some(s) => format!("{}{s}", agents::detect::hosts::PREFIX),
            None => agents::detect::hosts::PREFIX.to_string(),
        };
        let (records, _) = states.load_prefix(&prefix)?;
        let hosts: Vec<_> = records
            .iter()
            .filter_map(|(k, r)| agents::detect::hosts::summarize(k, r))
            .filter(|h| q.source.as_ref().is_none_or(|s| &h.source == s))
            .collect();
        Ok::<_, state::StoreError>((states.len(), hosts))
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(json!({
        "stored_detectors": stored,
        "hosts": hosts,
    })))
}
