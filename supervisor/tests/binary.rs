//! Black-box tests of the real `supervisor` binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn client(timeout: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(timeout).build().unwrap()
}

struct Running {
    child: Child,
    addr: String,
}

fn start(data: &Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_supervisor"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines
        .next()
        .expect("prints its address")
        .expect("readable stdout");
    let addr = first
        .split("http://")
        .nth(1)
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .trim()
        .to_string();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running {
        child,
        addr: format!("http://{addr}"),
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY-free: libc::kill on our own child's pid.
    let rc = unsafe_kill(child.id() as i32, sig);
    assert_eq!(rc, 0, "signal delivered");
}

#[allow(unsafe_code)]
fn unsafe_kill(pid: i32, sig: i32) -> i32 {
    // SAFETY: sending a signal to a child process we own has no memory effects.
    unsafe { libc::kill(pid, sig) }
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit in {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn incidents(client: &reqwest::Client, addr: &str) -> Vec<Value> {
    let r = client
        .get(format!("{addr}/incidents"))
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["incidents"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn wait_count(client: &reqwest::Client, addr: &str, at_least: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let total: u64 = incidents(client, addr)
            .await
            .iter()
            .map(|i| i["count"].as_u64().unwrap())
            .sum();
        if total >= at_least {
            return total;
        }
        assert!(
            Instant::now() < deadline,
            "only {total} of {at_least} events processed"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

const LINE: &str = r#"{"service":"pay","level":"error","message":"could not connect to database: connection refused"}"#;

#[tokio::test]
async fn sigterm_exits_zero_and_incidents_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(Duration::from_secs(10));
    let mut run = start(dir.path());
    let r = client
        .post(format!("{}/ingest/logs", run.addr))
        .body(LINE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_count(&client, &run.addr, 1).await;
    signal(&run.child, libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut run.child, Duration::from_secs(20)).code(),
        Some(0)
    );

    let mut again = start(dir.path());
    let items = incidents(&client, &again.addr).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["service"], "pay");
    assert_eq!(items[0]["category"], "database");
    signal(&again.child, libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut again.child, Duration::from_secs(20)).code(),
        Some(0)
    );
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_batch() {
    const PER_BATCH: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let client = client(Duration::from_secs(5));
    let body = vec![LINE; PER_BATCH as usize].join("\n");
    let mut acked: u64 = 0;
    let mut sent: u64 = 0;
    // Several kill points: after a different number of batches each round.
    for round in [3u64, 11, 1, 25] {
        let mut run = start(dir.path());
        let addr = run.addr.clone();
        let (c, b) = (client.clone(), body.clone());
        let poster = tokio::spawn(async move {
            let mut ok = 0u64;
            let mut tried = 0u64;
            loop {
                tried += 1;
                match c
                    .post(format!("{addr}/ingest/logs"))
                    .header("content-type", "application/x-ndjson")
                    .body(b.clone())
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 202 => ok += 1,
                    _ => return (ok, tried),
                }
            }
        });
        // Kill once this round's client has had `round` batches acknowledged.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let total: u64 = incidents(&client, &run.addr)
                .await
                .iter()
                .map(|i| i["count"].as_u64().unwrap())
                .sum();
            if total >= (acked + round) * PER_BATCH || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        run.child.kill().unwrap();
        run.child.wait().unwrap();
        let (ok, tried) = poster.await.unwrap();
        acked += ok;
        sent += tried;
    }
    let mut last = start(dir.path());
    let total = wait_count(&client, &last.addr, acked * PER_BATCH).await;
    assert!(
        total >= acked * PER_BATCH,
        "acknowledged {acked} batches, processed {total} events"
    );
    assert!(
        total <= sent * PER_BATCH,
        "more events than were sent: {total}"
    );
    assert_eq!(
        total % PER_BATCH,
        0,
        "a batch was processed partially or twice"
    );
    let items = incidents(&client, &last.addr).await;
    assert_eq!(items.len(), 1, "one incident across restarts: {items:#?}");
    signal(&last.child, libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut last.child, Duration::from_secs(20)).code(),
        Some(0)
    );
}
