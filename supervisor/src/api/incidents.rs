//! `GET /incidents`, `GET /incidents/{id}`, and the lifecycle actions
//! `POST /incidents/{id}/{ack|resolve|close}` (409 when not allowed).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use state::keys::Id;
use state::model::{Incident, IncidentStatus};
use state::trees::IncidentFilter;

use super::AppState;
use super::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub status: Option<String>,
    pub service: Option<String>,
    /// Page size (1..=500, default 50).
    pub limit: Option<usize>,
    /// Id of the last incident of the previous page.
    pub before: Option<String>,
}

pub fn parse_id(raw: &str) -> Result<Id, ApiError> {
    raw.parse()
        .map_err(|e: String| ApiError::bad_request(format!("incident id: {e}")))
}

pub async fn list(
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            IncidentStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "status: {s:?} is not one of open, acknowledged, resolved, closed"
                ))
            })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit: must be between 1 and 500"));
    }
    let before = q.before.as_deref().map(parse_id).transpose()?;
    let filter = IncidentFilter {
        status,
        service: q.service,
        before,
        limit,
    };
    let store = app.store.clone();
    let items: Vec<Incident> = tokio::task::spawn_blocking(move || store.incidents().list(&filter))
        .await
        .map_err(ApiError::internal)??;
    let next = (items.len() == limit)
        .then(|| items.last().map(|i| i.id.to_string()))
        .flatten();
    let summaries: Vec<Value> = items.iter().map(summary).collect();
    Ok(Json(json!({ "incidents": summaries, "next_before": next })))
}

fn summary(i: &Incident) -> Value {
    json!({
        "id": i.id, "status": i.status, "service": i.service, "services": i.services,
        "category": i.category, "kind": i.kind, "severity": i.severity, "title": i.title,
        "count": i.count, "first_seen_ms": i.first_seen_ms, "last_seen_ms": i.last_seen_ms,
        "auto_fixable": i.auto_fixable,
    })
}

pub async fn get(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let inc = app
        .store
        .incidents()
        .get(id)?
        .ok_or_else(|| ApiError::not_found(format!("no incident with id {id}")))?;
    let mut body = serde_json::to_value(&inc).map_err(ApiError::internal)?;
    // Additive: the recovery actions and audit entries of this incident.
    body["recovery"] = app.recovery.for_incident(&id.to_string())?;
    Ok(Json(body))
}

pub async fn transition(
    State(app): State<AppState>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<Incident>, ApiError> {
    if !matches!(action.as_str(), "ack" | "resolve" | "close") {
        return Err(ApiError::not_found(format!(
            "unknown action {action:?}: use ack, resolve or close"
        )));
    }
    let id = parse_id(&id)?;
    let now = state::now_ms();
    match app
        .store
        .incidents()
        .update(id, |inc| inc.transition(&action, now))?
    {
        None => Err(ApiError::not_found(format!("no incident with id {id}"))),
        Some(Err(e)) => Err(ApiError::new(StatusCode::CONFLICT, e.to_string())
            .with_details(json!({ "current": e.current }))),
        Some(Ok(inc)) => {
            tracing::info!(incident.id = %id, action = %action, "operator changed incident");
            Ok(Json(inc))
        }
    }
}
