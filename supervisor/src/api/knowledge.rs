//! What the system knows about logs: `GET /templates` (mined templates,
//! by service, with counts, first/last seen and lines per minute over the
//! recent minutes) and `GET /signatures` (the
//! failure-signature catalogue in use).

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use state::trees::templates::Templates;

use super::AppState;
use super::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateQuery {
    /// Only templates seen in this service (counts are then per service).
    pub service: Option<String>,
    /// At most this many (default 100, at most 10000).
    pub limit: Option<usize>,
}

pub async fn templates(
    State(app): State<AppState>,
    Query(q): Query<TemplateQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::bad_request("limit must be between 1 and 10000"));
    }
    let tree = Templates::open(&app.store)?;
    let list = tree.list(q.service.as_deref(), limit)?;
    let items: Vec<Value> = list
        .into_iter()
        .map(|t| {
            let per_service = q.service.as_deref().and_then(|s| t.services.get(s));
            let (count, first, last) = match per_service {
                Some(c) => (c.count, c.first_seen_ms, c.last_seen_ms),
                None => (t.count, t.first_seen_ms, t.last_seen_ms),
            };
            // Lines per minute over the recent minutes (summed over services).
            let mut per_minute = std::collections::BTreeMap::<i64, u64>::new();
            for c in per_service
                .into_iter()
                .chain(t.services.values().filter(|_| per_service.is_none()))
            {
                for &(m, n) in &c.per_minute {
                    *per_minute.entry(m).or_default() += n;
                }
            }
            json!({
                "id": t.id,
                "template": t.text,
                "count": count,
                "first_seen_ms": first,
                "last_seen_ms": last,
                "first_level": t.first_level,
                "max_level": t.max_level,
                "per_minute": per_minute.into_iter().collect::<Vec<_>>(),
                "aliases": t.aliases,
                "services": t.services,
            })
        })
        .collect();
    Ok(Json(json!({ "templates": items })))
}

pub async fn signatures(State(app): State<AppState>) -> Json<Value> {
    let sigs: Vec<Value> = app
        .catalogue
        .signatures()
        .iter()
        .map(|s| serde_json::to_value(&s.def).unwrap_or(Value::Null))
        .collect();
    Json(json!({ "count": sigs.len(), "signatures": sigs }))
}
