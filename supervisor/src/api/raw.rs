//! `POST /ingest/logs/raw`: raw log lines (any common format, optionally
//! gzip-encoded), parsed by [`agents::ingest::raw`], appended to the
//! write-ahead log like every other ingest body and answered 202 once
//! durable. The service comes from the line itself, else `?service=`, else
//! the `X-Service` header, else `unknown`.

use std::io::Read;

use agents::ingest::raw::{RawOptions, parse_body};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use state::model::Event;

use super::AppState;
use super::error::ApiError;
use super::ingest::{accept, read_body};

#[derive(Debug, Deserialize)]
pub struct RawQuery {
    /// Service for lines that do not name one.
    pub service: Option<String>,
}

const MAX_SERVICE_CHARS: usize = 200;

fn valid_service(s: &str, source: &str) -> Result<String, ApiError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(ApiError::bad_request(format!("{source} must not be empty")));
    }
    if t.chars().count() > MAX_SERVICE_CHARS || t.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "{source} must be at most {MAX_SERVICE_CHARS} printable characters"
        )));
    }
    Ok(t.to_owned())
}

/// Inflate a gzip body, refusing more than `limit` decoded bytes.
pub fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let mut dec = flate2::read::MultiGzDecoder::new(bytes).take(limit as u64 + 1);
    dec.read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request(format!("body is not valid gzip: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("decompressed body is larger than the limit of {limit} bytes"),
        ));
    }
    Ok(out)
}

pub async fn logs_raw(
    State(app): State<AppState>,
    Query(q): Query<RawQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let bytes = read_body(&headers, body, app.max_body_bytes).await?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let text = match encoding.as_deref() {
        None | Some("identity") | Some("") => bytes.to_vec(),
        Some("gzip") | Some("x-gzip") => gunzip(&bytes, app.max_body_bytes)?,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content-encoding {other:?} is not supported (use gzip or none)"),
            ));
        }
    };
    let header_service = match headers.get("x-service") {
        Some(v) => Some(valid_service(
            v.to_str()
                .map_err(|_| ApiError::bad_request("X-Service header must be text"))?,
            "X-Service header",
        )?),
        None => None,
    };
    let query_service = q
        .service
        .as_deref()
        .map(|s| valid_service(s, "service query parameter"))
        .transpose()?;
    let opts = RawOptions {
        default_service: query_service
            .or(header_service)
            .unwrap_or_else(|| RawOptions::default().default_service),
        ..RawOptions::default()
    };
    let now = state::now_ms();
    let events = parse_body(&text, now, &opts);
    if events.is_empty() {
        return Err(ApiError::bad_request("body holds no log lines"));
    }
    accept(&app, now, events.into_iter().map(Event::Log).collect()).await
}
