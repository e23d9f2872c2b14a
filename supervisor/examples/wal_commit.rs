//! Group-commit benchmark without HTTP: C concurrent writers append batches
//! of 1,000 log events (~250 bytes each) through the same `GroupCommit` the
//! API uses, on a store in a temporary directory, for S seconds. Prints
//! batches/s, events/s and the p50/p99 time from `append` to durable.
//!
//! Usage: cargo run --release -p supervisor --example wal_commit [C] [S]

use std::time::{Duration, Instant};

use agents::ingest::commit::GroupCommit;
use state::model::{Event, Level, LogEvent, WalBatch};
use state::{Store, StoreConfig};

fn batch(seed: u64) -> WalBatch {
    let mut x = seed | 1;
    let events = (0..1000)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut fields = std::collections::BTreeMap::new();
            fields.insert("trace_id".to_string(), format!("{x:032x}"));
            fields.insert("host".to_string(), format!("node-{:02}", i % 20));
            Event::Log(LogEvent {
                ts_ms: 1_700_000_000_000 + i,
                service: format!("checkout-{}", i % 8),
                level: Level::Info,
                message: format!(
                    "GET /api/v1/orders/{} 200 in {}ms user={} region=eu-west-1 cache=hit",
                    x % 99_999,
                    x % 999,
                    x % 9_999
                ),
                fields,
            })
        })
        .collect();
    WalBatch {
        received_ms: 0,
        events,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let conns: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(16);
    let secs: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let dir = tempfile::tempdir()?;
    let store = Store::open(&StoreConfig::at(dir.path()))?;
    let gc = GroupCommit::start(store.clone());
    let template = batch(7);
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let gc = gc.clone();
        let b = template.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < until {
                let t = Instant::now();
                gc.append(b.clone()).await.expect("append");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await?);
    }
    lat.sort();
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
    let rate = lat.len() as f64 / secs as f64;
    println!(
        "{conns} writers, {secs} s: {rate:.0} batches/s = {:.0} events/s; append-to-durable p50 {:.2} ms, p99 {:.2} ms; wal {} bytes",
        rate * 1000.0,
        q(0.5),
        q(0.99),
        store.wal().bytes()
    );
    Ok(())
}
