//! `GET /observability/detectors?source=`: what the detect stage has
//! learned: per source its metric vector (layout, rows learned, whether a
//! model is fitted, so an operator knows whether joint anomalies can be
//! raised yet), the stage's sizes and counts, and how many detector states
//! the store holds.
//!
//! The vectors are the stage's live view (refreshed at most once a second
//! and at every installed fit; `as_of_ms` says when). Before the stage has
//! published one (it is starting, or statistics are off) they are read from
//! its last snapshot in the store instead (`from: "snapshot"`).

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
    let live = app.detect.hosts();
    let need_snapshot = live.is_none();
    let store = app.store.clone();
    let source = q.source.clone();
    let (stored, snapshot) = tokio::task::spawn_blocking(move || {
        let states = DetectorStates::open(&store)?;
        if !need_snapshot {
            return Ok((states.len(), Vec::new()));
        }
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
    let (from, as_of_ms, hosts) = match live {
        Some(l) => (
            "live",
            Some(l.as_of_ms),
            l.hosts
                .into_iter()
                .filter(|h| source.as_ref().is_none_or(|s| &h.source == s))
                .collect(),
        ),
        None => ("snapshot", None, snapshot),
    };
    Ok(Json(json!({
        "from": from,
        "as_of_ms": as_of_ms,
        "stage": app.detect.figures(),
        "stored_detectors": stored,
        "hosts": hosts,
    })))
}
