//! Recovery actions over HTTP:
//!
//! - `GET /actions`: recent actions (intents with their step results),
//!   the guardrail state (mode, breakers, storm halt) and the newest audit
//!   entries with the result of verifying the whole hash chain;
//! - `POST /actions/plans`: submit a fix plan (what fix selection sends);
//! - `POST /actions/{id}/approve`: approve an action awaiting approval
//!   (409 when it is not awaiting approval or has expired);
//! - `POST /actions/breaker/reset`: reset the storm and target breakers.
//!
//! Reads go to the store; changes go to the recovery actor, its single
//! writer (503 when it is not running).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agents::recovery::messages::RecoveryMsg;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ractor::ActorRef;
use ractor::rpc::CallResult;
use serde_json::{Value, json};
use state::Store;
use state::keys::Id;
use state::model::FixPlan;
use state::trees::{Audit, Intents};

use super::AppState;
use super::error::ApiError;

/// How long an API call waits for the recovery actor.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What the API needs of the recovery stage; cheap to clone.
#[derive(Clone)]
pub struct RecoveryHandle {
    /// Latest reference of the recovery actor (replaced on restart).
    pub actor: Arc<Mutex<Option<ActorRef<RecoveryMsg>>>>,
    pub audit: Audit,
    pub intents: Intents,
    /// Receivers of recovery events (notify, fix statistics).
    pub sinks: crate::recovery::Sinks,
}

impl RecoveryHandle {
    pub fn new(store: &Store, audit: Audit) -> Result<Self, state::StoreError> {
        Ok(Self {
            actor: Default::default(),
            audit,
            intents: Intents::open(store.open_tree("recovery_intents")?),
            sinks: Default::default(),
        })
    }

    pub fn set(&self, r: ActorRef<RecoveryMsg>) {
        *self.actor.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
    }

    fn actor(&self) -> Result<ActorRef<RecoveryMsg>, ApiError> {
        self.actor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "recovery stage is not running",
                )
            })
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(ractor::RpcReplyPort<T>) -> RecoveryMsg,
    ) -> Result<T, ApiError> {
        match self.actor()?.call(f, Some(CALL_TIMEOUT)).await {
            Ok(CallResult::Success(v)) => Ok(v),
            _ => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "recovery stage did not answer",
            )),
        }
    }

    /// Actions and audit entries of one incident (for `GET /incidents/{id}`).
    pub fn for_incident(&self, incident_id: &str) -> Result<Value, state::StoreError> {
        let actions = self.intents.for_incident(incident_id)?;
        let audit = self
            .audit
            .recent_matching(200, |e| e.draft.incident_id == incident_id)?;
        Ok(json!({ "actions": actions, "audit": audit }))
    }
}

pub async fn list(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let rec = app.recovery.clone();
    let guard = rec
        .call(|reply| RecoveryMsg::GuardState { reply })
        .await
        .ok();
    let (actions, audit, chain) = tokio::task::spawn_blocking(move || {
        let actions = rec.intents.recent(100)?;
        let audit = rec.audit.recent_matching(100, |_| true)?;
        let chain = match rec.audit.verify() {
            Ok(n) => json!({ "intact": true, "entries": n }),
            Err(e) => json!({ "intact": false, "error": e.to_string(), "seq": e.seq }),
        };
        Ok::<_, state::StoreError>((actions, audit, chain))
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(json!({
        "actions": actions,
        "guard": guard,
        "audit": audit,
        "audit_chain": chain,
    })))
}

pub async fn submit_plan(
    State(app): State<AppState>,
    body: Result<Json<FixPlan>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(plan) =
        body.map_err(|e| ApiError::bad_request(format!("fix plan: {}", e.body_text())))?;
    if plan.incident_id.is_empty() {
        return Err(ApiError::bad_request(
            "fix plan: incident_id must not be empty",
        ));
    }
    if plan.steps.is_empty() {
        return Err(ApiError::bad_request("fix plan: steps must not be empty"));
    }
    app.recovery
        .actor()?
        .cast(RecoveryMsg::Plan(plan.clone()))
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "recovery stage is not running",
            )
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": true, "incident_id": plan.incident_id })),
    ))
}

pub async fn approve(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: Id = id
        .parse()
        .map_err(|e: String| ApiError::bad_request(format!("action id: {e}")))?;
    match app
        .recovery
        .call(|reply| RecoveryMsg::Approve { id, reply })
        .await?
    {
        Ok(intent) => Ok(Json(json!({ "approved": true, "action": intent }))),
        Err(e) if e.starts_with("no action") => Err(ApiError::not_found(e)),
        Err(e) => Err(ApiError::new(StatusCode::CONFLICT, e)),
    }
}

pub async fn reset_breaker(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    app.recovery
        .call(|reply| RecoveryMsg::ResetBreaker { reply })
        .await?;
    Ok(Json(json!({ "reset": true })))
}
