//! Root-cause analysis and fix selection over HTTP:
//!
//! - `GET /kb/causes`, `POST /kb/causes` (add or replace a cause; validated)
//! - `GET /incidents/{id}/rca`: ranked hypotheses with evidence, the fix plan
//! - `GET /incidents/{id}/similar`: past incidents with similar signals, and
//!   how they were resolved
//! - `POST /incidents/{id}/feedback`: confirmed cause, fix outcome, false
//!   positive (the knowledge base and fix statistics learn from it)
//! - `GET /fixes/stats`: outcome statistics with the smoothed estimate
//! - `GET /topology`: the dependency graph (configured and learned edges)
//! - `POST /silences`, `GET /silences`

use std::collections::BTreeSet;

use agents::fixes::rank::posterior;
use agents::rca::kb::CauseDef;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use state::model::diagnosis::{Feedback, RcaResult, Silence};

use super::AppState;
use super::error::ApiError;
use super::incidents::parse_id;

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

pub async fn list_causes(State(app): State<AppState>) -> Json<Value> {
    let kb = app.rca.kb();
    Json(json!({ "version": kb.version, "count": kb.causes().len(), "causes": kb.defs() }))
}

pub async fn add_cause(
    State(app): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut def: CauseDef = parse_json(&body, "cause")?;
    if def.source == "builtin" {
        def.source = "user".into();
    }
    let id = def.id.clone();
    let replaced = app.rca.kb().get(&id).is_some();
    let rca = app.rca.clone();
    blocking(move || {
        rca.upsert_cause(def).map_err(|e| match e {
            agents::rca::shared::RcaError::Store(e) => ApiError::internal(e),
            other => ApiError::bad_request(other.to_string()),
        })
    })
    .await?;
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(json!({ "id": id, "replaced": replaced }))))
}

pub async fn incident_rca(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RcaResult>, ApiError> {
    let id = parse_id(&id)?;
    if app.store.incidents().get(id)?.is_none() {
        return Err(ApiError::not_found(format!("no incident with id {id}")));
    }
    app.rca
        .trees
        .result(id)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("incident {id} has not been analysed yet")))
}

fn keys(r: &RcaResult) -> BTreeSet<String> {
    r.observations
        .iter()
        .flat_map(|o| o.signals.iter())
        .filter(|s| !s.key.starts_with("cat:"))
        .map(|s| s.key.clone())
        .collect()
}

pub async fn similar(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let rca = app.rca.clone();
    let store = app.store.clone();
    blocking(move || {
        let Some(inc) = store.incidents().get(id)? else {
            return Err(ApiError::not_found(format!("no incident with id {id}")));
        };
        let mine = rca.trees.result(id)?.unwrap_or_default();
        let mut k = keys(&mine);
        k.extend(inc.signatures.iter().map(|s| format!("sig:{s}")));
        let my_cause = mine.diagnosis.top().map(|h| h.cause_id.clone());
        let mut out = Vec::new();
        for (oid, r) in rca.trees.recent_results(1000)? {
            if oid == id {
                continue;
            }
            let Some(other) = store.incidents().get(oid)? else {
                continue;
            };
            let mut ok = keys(&r);
            ok.extend(other.signatures.iter().map(|s| format!("sig:{s}")));
            let inter = k.intersection(&ok).count() as f64;
            let union = k.union(&ok).count().max(1) as f64;
            let cause = r.diagnosis.top().map(|h| h.cause_id.clone());
            let mut sim = inter / union;
            if cause.is_some() && cause == my_cause {
                sim = (sim + 0.2).min(1.0);
            }
            if sim < 0.2 {
                continue;
            }
            let feedback = rca.trees.feedback(oid)?;
            out.push(json!({
                "id": oid, "similarity": sim, "title": other.title, "status": other.status,
                "services": other.services, "diagnosed_cause": cause,
                "confirmed_cause": feedback.iter().rev().find_map(|f| f.confirmed_cause.clone()),
                "fixes_reported": feedback.iter().filter_map(|f| f.fix.as_ref().map(|x| json!({"fix": x, "worked": f.fix_worked}))).collect::<Vec<_>>(),
                "planned_fix": r.plan.as_ref().and_then(|p| p.steps.first()).map(|s| s.fix.clone()),
                "resolved": matches!(other.status, state::model::IncidentStatus::Resolved | state::model::IncidentStatus::Closed),
            }));
        }
        out.sort_by(|a, b| {
            b["similarity"]
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&a["similarity"].as_f64().unwrap_or(0.0))
        });
        out.truncate(10);
        Ok(Json(json!({ "incident": id, "similar": out })))
    })
    .await
}

pub async fn feedback(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let fb: Feedback = parse_json(&body, "feedback")?;
    if fb.confirmed_cause.is_none() && fb.fix.is_none() && !fb.false_positive {
        return Err(ApiError::bad_request(
            "feedback: give confirmed_cause, fix with fix_worked, or false_positive",
        ));
    }
    if fb.fix.is_some() != fb.fix_worked.is_some() {
        return Err(ApiError::bad_request(
            "feedback: fix and fix_worked go together",
        ));
    }
    if fb
        .confirmed_cause
        .as_ref()
        .is_some_and(|c| c.trim().is_empty())
    {
        return Err(ApiError::bad_request("feedback: confirmed_cause is empty"));
    }
    let rca = app.rca.clone();
    let changes = blocking(move || {
        rca.feedback(id, fb).map_err(|e| match e {
            agents::rca::shared::RcaError::Store(e) => ApiError::internal(e),
            agents::rca::shared::RcaError::Invalid(m) if m.starts_with("no incident") => {
                ApiError::not_found(m)
            }
            other => ApiError::bad_request(other.to_string()),
        })
    })
    .await?;
    Ok(Json(json!({ "incident": id, "changes": changes })))
}

pub async fn fix_stats(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let rows = app.rca.fix_stats.all()?;
    let kb = app.rca.kb();
    let out: Vec<Value> = rows
        .iter()
        .map(|r| {
            let fix = kb
                .get(&r.cause)
                .and_then(|c| c.def.fixes.iter().find(|f| f.id == r.fix));
            let (prior, strength) = fix.map_or((0.5, 2.0), |f| (f.prior, f.prior_strength));
            let (a, b) = match &r.service {
                None => posterior(prior, strength, r.stat, Default::default()),
                Some(_) => {
                    let global = rows
                        .iter()
                        .find(|g| g.service.is_none() && g.cause == r.cause && g.fix == r.fix)
                        .map(|g| g.stat)
                        .unwrap_or_default();
                    posterior(prior, strength, global, r.stat)
                }
            };
            json!({
                "cause": r.cause, "fix": r.fix, "service": r.service,
                "successes": r.stat.successes, "failures": r.stat.failures,
                "last_ms": r.stat.last_ms, "expected_success": a / (a + b),
            })
        })
        .collect();
    Ok(Json(json!({ "stats": out })))
}

pub async fn topology(State(app): State<AppState>) -> Json<Value> {
    let t = app.rca.topology();
    let kinds: serde_json::Map<String, Value> = t
        .services()
        .into_iter()
        .filter_map(|s| t.kind(&s).map(|k| (s.clone(), json!(k))))
        .collect();
    Json(json!({ "edges": t.edges(), "kinds": kinds }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    pub service: Option<String>,
    pub category: Option<String>,
    /// Start (ms since the epoch); default now.
    pub from_ms: Option<i64>,
    /// End (ms since the epoch); or give `duration`.
    pub to_ms: Option<i64>,
    /// `30m`, `2h`...
    pub duration: Option<String>,
    #[serde(default)]
    pub reason: String,
}

pub async fn add_silence(
    State(app): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    let n: NewSilence = parse_json(&body, "silence")?;
    let mut errors = Vec::new();
    if n.service.is_none() && n.category.is_none() {
        errors.push("give service and/or category".to_string());
    }
    let from = n.from_ms.unwrap_or_else(state::now_ms);
    let to = match (n.to_ms, &n.duration) {
        (Some(t), None) => Some(t),
        (None, Some(d)) => match humantime::parse_duration(d) {
            Ok(d) => Some(from + d.as_millis() as i64),
            Err(e) => {
                errors.push(format!("duration: {d:?} is not a duration: {e}"));
                None
            }
        },
        (Some(_), Some(_)) => {
            errors.push("give to_ms or duration, not both".into());
            None
        }
        (None, None) => {
            errors.push("give to_ms or duration".into());
            None
        }
    };
    if to.is_some_and(|t| t <= from) {
        errors.push("the silence must end after it starts".into());
    }
    if !errors.is_empty() {
        return Err(ApiError::bad_request(format!(
            "silence: {}",
            errors.join("; ")
        )));
    }
    let s = Silence {
        id: format!(
            "sil-{:016x}",
            state::keys::IdGen::default().next(state::now_ms()).0
        ),
        service: n.service,
        category: n.category,
        from_ms: from,
        to_ms: to.unwrap_or(from),
        reason: n.reason,
    };
    app.rca.trees.add_silence(&s)?;
    Ok((StatusCode::CREATED, Json(s)))
}

pub async fn list_silences(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let now = state::now_ms();
    let all: Vec<Value> = app
        .rca
        .trees
        .silences()?
        .into_iter()
        .map(|s| {
            let active = (s.from_ms..=s.to_ms).contains(&now);
            let mut v = serde_json::to_value(&s).unwrap_or(Value::Null);
            v["active"] = json!(active);
            v
        })
        .collect();
    Ok(Json(json!({ "silences": all })))
}
