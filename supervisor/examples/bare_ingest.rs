//! Baseline for the ingest benchmark: a bare HTTP server that only parses
//! and counts NDJSON log batches with the same parser as the supervisor,
//! with no store, no flush and no pipeline. `scripts/bench_ingest.sh`
//! compares the supervisor's durable acceptance rate against it.
//!
//! Usage: `bare_ingest [ADDR]` (default 127.0.0.1:0); prints its address.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use agents::ingest::parse::{Framing, parse_logs};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let count = Arc::new(AtomicU64::new(0));
    let app =
        Router::new()
            .route("/ingest/logs", post(ingest))
            .route(
                "/count",
                get(|State(c): State<Arc<AtomicU64>>| async move {
                    c.load(Ordering::Relaxed).to_string()
                }),
            )
            .layer(axum::extract::DefaultBodyLimit::max(10 * 1024 * 1024))
            .with_state(count);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bare ingest listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn ingest(
    State(count): State<Arc<AtomicU64>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match parse_logs(&body, Framing::detect(ct, &body), 0) {
        Ok(events) => {
            count.fetch_add(events.len() as u64, Ordering::Relaxed);
            StatusCode::ACCEPTED
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}
