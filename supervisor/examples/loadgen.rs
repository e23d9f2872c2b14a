//! Fixed-rate (or as-fast-as-possible) HTTP load for the ingest benchmark.
//! Prints one JSON object: requests, errors, requests/s, events/s and the
//! acknowledgement latency percentiles.
//!
//! Usage: `loadgen URL BODY_FILE EVENTS_PER_BODY SECONDS CONNECTIONS [RATE_PER_S]`

use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        a.len() >= 6,
        "usage: loadgen URL BODY_FILE EVENTS_PER_BODY SECONDS CONNECTIONS [RATE_PER_S]"
    );
    let url = a[1].clone();
    let body = bytes::Bytes::from(std::fs::read(&a[2])?);
    let events: u64 = a[3].parse()?;
    let secs: f64 = a[4].parse()?;
    let conns: usize = a[5].parse()?;
    let rate: Option<f64> = a.get(6).map(|r| r.parse()).transpose()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conns)
        .build()?;
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for w in 0..conns {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        // Each connection sends on its own schedule: rate / conns per second.
        let gap = rate.map(|r| Duration::from_secs_f64(conns as f64 / r));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut next = start
                + gap
                    .map(|g| g.mul_f64(w as f64 / conns as f64))
                    .unwrap_or_default();
            while Instant::now() < end {
                if let Some(g) = gap {
                    tokio::time::sleep_until(next.into()).await;
                    next += g;
                }
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .body(body.clone())
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 202 => lat.push(t.elapsed().as_micros() as u64),
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        lat.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "{}",
        serde_json::json!({
            "requests": lat.len(), "errors": errors, "seconds": elapsed,
            "requests_per_s": lat.len() as f64 / elapsed,
            "events_per_s": lat.len() as f64 * events as f64 / elapsed,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0),
        })
    );
    Ok(())
}
