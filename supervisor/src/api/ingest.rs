//! `POST /ingest/logs` and `POST /ingest/metrics`: validate, append to the
//! write-ahead log, wait for the group flush, answer 202.

use agents::ingest::parse::{Framing, ParseError, parse_logs, parse_metrics};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use state::model::{Event, WalBatch};

use super::AppState;
use super::error::ApiError;

/// Read the body, refusing more than `limit` bytes with 413.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the limit of {limit} bytes"),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(too_big());
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_big())
}

fn parse_error(e: ParseError) -> ApiError {
    match e {
        ParseError::Invalid(items) => ApiError::bad_request(format!(
            "{} invalid item(s); nothing from this body was accepted",
            items.len()
        ))
        .with_details(json!(items)),
        other => ApiError::bad_request(other.to_string()),
    }
}

pub async fn logs(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let bytes = read_body(&headers, body, app.max_body_bytes).await?;
    let now = state::now_ms();
    let framing = Framing::detect(content_type(&headers), &bytes);
    let events = parse_logs(&bytes, framing, now).map_err(parse_error)?;
    accept(&app, now, events.into_iter().map(Event::Log).collect()).await
}

pub async fn metrics(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let bytes = read_body(&headers, body, app.max_body_bytes).await?;
    let now = state::now_ms();
    let framing = Framing::detect(content_type(&headers), &bytes);
    let samples = parse_metrics(&bytes, framing, now).map_err(parse_error)?;
    accept(&app, now, samples.into_iter().map(Event::Metric).collect()).await
}

pub fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// Append durably and answer 202 with the batch's sequence.
pub async fn accept(
    app: &AppState,
    now: i64,
    events: Vec<Event>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let store = &app.store;
    let processed = store.cursors().get(state::trees::cursors::PIPELINE)?;
    let unprocessed_full =
        store.wal().bytes() > app.wal_limit_bytes && store.wal().head() > processed;
    if unprocessed_full {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "write-ahead log is full of unprocessed batches; retry later",
        ));
    }
    let n = events.len();
    let batch = WalBatch {
        received_ms: now,
        events,
    };
    let seq = app
        .commit
        .append(batch)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    app.metrics.accepted(n as u64);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": n, "batch": seq })),
    ))
}
