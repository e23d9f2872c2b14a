//! Seeded generator of fault scenarios (the format of
//! [`agents::rca::scenario`]). Each scenario draws a random topology
//! (gateway, apps, databases, caches, queues, DNS, external APIs, identity
//! provider), a fault family and a root among the components of the right
//! kind, then writes a 30-minute timeline: baseline metrics with noise,
//! chronic warnings, the root's own signals (each dropped at random, the
//! root sometimes silent), symptoms in its callers after random delays,
//! and unrelated noise (novel warnings, shifts of unrelated metrics).

use std::collections::BTreeMap;

use agents::rca::scenario::{
    ChangeEvent, LogLine, MetricSeries, Scenario, ServiceDef, TopologyDef, Truth,
};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

const STEP_MS: i64 = 15_000;
const POINTS: usize = 120;

#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Multiply by a factor drawn in [lo, hi].
    Step(f64, f64),
    /// Ramp linearly to base × factor.
    Ramp(f64, f64),
    /// Go to the series' ceiling.
    Max,
    Zero,
}

struct Family {
    cause: &'static str,
    roots: &'static [&'static str],
    /// Probability that the root shows nothing of its own.
    silent: f64,
    logs: &'static [&'static str],
    metrics: &'static [(&'static str, Shape)],
    event: Option<&'static str>,
    caller_logs: &'static [&'static str],
    caller_metrics: &'static [(&'static str, Shape)],
}

const APP: &[&str] = &["app", "gateway"];
const TIMEOUTS: &[&str] = &[
    "request timed out after {n}ms calling {dep}",
    "upstream timeout while waiting for {dep}",
    "context deadline exceeded",
];
const SLOW: &[(&str, Shape)] = &[("latency_p99", Shape::Step(3.0, 8.0))];
const FAILING: &[(&str, Shape)] = &[
    ("error_rate", Shape::Step(8.0, 30.0)),
    ("latency_p99", Shape::Step(2.0, 5.0)),
];

const FAMILIES: &[Family] = &[
    Family {
        cause: "db.down",
        roots: &["database"],
        silent: 0.4,
        logs: &[
            "LOG: received fast shutdown request",
            "FATAL: terminating connection due to administrator command",
            "LOG: database system is shut down",
        ],
        metrics: &[("up", Shape::Zero), ("connections", Shape::Zero)],
        event: None,
        caller_logs: &[
            "could not connect to server {dep}: Connection refused",
            "connection to {dep}:5432 refused",
            "query timed out after {n}ms calling {dep}",
        ],
        caller_metrics: FAILING,
    },
    Family {
        cause: "db.pool_exhausted",
        roots: &["database"],
        silent: 0.1,
        logs: &[
            "FATAL: sorry, too many clients already",
            "FATAL: remaining connection slots are reserved for non-replication superuser connections",
        ],
        metrics: &[("connections", Shape::Max)],
        event: None,
        caller_logs: &[
            "timeout acquiring connection from pool for {dep} after {n}ms",
            "connection pool exhausted ({dep})",
            "request timed out after {n}ms calling {dep}",
        ],
        caller_metrics: SLOW,
    },
    Family {
        cause: "db.lock_contention",
        roots: &["database"],
        silent: 0.05,
        logs: &[
            "ERROR: deadlock detected",
            "ERROR: lock wait timeout exceeded; try restarting transaction",
            "LOG: process {n} still waiting for ExclusiveLock on relation {n}",
        ],
        metrics: &[
            ("lock_waits", Shape::Step(10.0, 40.0)),
            ("query_time_ms", Shape::Step(5.0, 20.0)),
        ],
        event: None,
        caller_logs: TIMEOUTS,
        caller_metrics: SLOW,
    },
    Family {
        cause: "db.slow_queries",
        roots: &["database"],
        silent: 0.05,
        logs: &[
            "LOG: duration: {n}{n}.5 ms statement: SELECT * FROM orders WHERE customer_id = $1",
            "slow query: full table scan on orders",
        ],
        metrics: &[
            ("query_time_ms", Shape::Step(8.0, 30.0)),
            ("cpu_usage", Shape::Step(2.0, 3.0)),
        ],
        event: None,
        caller_logs: TIMEOUTS,
        caller_metrics: SLOW,
    },
    Family {
        cause: "db.replication_lag",
        roots: &["database"],
        silent: 0.0,
        logs: &[
            "replica is {n}s behind primary",
            "replication lag {n}s exceeds threshold",
        ],
        metrics: &[("replication_lag_s", Shape::Ramp(50.0, 200.0))],
        event: None,
        caller_logs: &[
            "stale read detected from {dep}",
            "read returned stale data (version {n})",
        ],
        caller_metrics: &[("error_rate", Shape::Step(4.0, 10.0))],
    },
    Family {
        cause: "db.auth_failed",
        roots: &["database"],
        silent: 0.5,
        logs: &["FATAL: password authentication failed for user \"app\""],
        metrics: &[],
        event: None,
        caller_logs: &[
            "FATAL: password authentication failed for user \"app\" on {dep}",
            "authentication failed for user app connecting to {dep}",
        ],
        caller_metrics: &[("error_rate", Shape::Step(10.0, 40.0))],
    },
    Family {
        cause: "db.disk_full",
        roots: &["database"],
        silent: 0.0,
        logs: &[
            "PANIC: could not write to file \"pg_wal/xlogtemp.{n}\": No space left on device",
            "ERROR: could not extend file \"base/{n}/{n}\": No space left on device",
        ],
        metrics: &[("disk_used", Shape::Max)],
        event: None,
        caller_logs: &[
            "insert failed on {dep}: could not extend file",
            "write to {dep} failed: read-only",
        ],
        caller_metrics: &[("error_rate", Shape::Step(5.0, 20.0))],
    },
    Family {
        cause: "mem.leak",
        roots: APP,
        silent: 0.0,
        logs: &[
            "java.lang.OutOfMemoryError: Java heap space",
            "fatal: out of memory allocating {n} bytes",
        ],
        metrics: &[
            ("memory_rss", Shape::Ramp(3.0, 6.0)),
            ("gc_pause_ms", Shape::Step(3.0, 6.0)),
        ],
        event: None,
        caller_logs: TIMEOUTS,
        caller_metrics: FAILING,
    },
    Family {
        cause: "disk.full",
        roots: APP,
        silent: 0.0,
        logs: &[
            "write /var/log/app.log: no space left on device",
            "failed to write temp file: ENOSPC",
        ],
        metrics: &[("disk_used", Shape::Max)],
        event: None,
        caller_logs: &[
            "{dep} returned 500 internal server error",
            "upstream {dep} failed",
        ],
        caller_metrics: &[("error_rate", Shape::Step(5.0, 20.0))],
    },
    Family {
        cause: "deploy.bad_release",
        roots: APP,
        silent: 0.0,
        logs: &[
            "deployed version v2.{n}.1 (revision {n})",
            "error handling request: NullPointerException at OrderService.java:{n}",
            "error handling request: KeyError 'customer'",
        ],
        metrics: &[("error_rate", Shape::Step(10.0, 50.0))],
        event: Some("deploy"),
        caller_logs: &[
            "{dep} returned 500 internal server error",
            "call to {dep} failed with status 500",
        ],
        caller_metrics: &[("error_rate", Shape::Step(5.0, 20.0))],
    },
    Family {
        cause: "config.bad_change",
        roots: APP,
        silent: 0.0,
        logs: &[
            "configuration reloaded from /etc/app/config.yaml",
            "invalid value for setting max_batch_size: -{n}",
        ],
        metrics: &[("error_rate", Shape::Step(10.0, 40.0))],
        event: Some("config"),
        caller_logs: &[
            "{dep} returned 500 internal server error",
            "call to {dep} failed with status 500",
        ],
        caller_metrics: &[("error_rate", Shape::Step(5.0, 20.0))],
    },
    Family {
        cause: "tls.cert_expired",
        roots: &["external", "auth"],
        silent: 1.0,
        logs: &[],
        metrics: &[],
        event: None,
        caller_logs: &[
            "x509: certificate has expired or is not yet valid when calling https://{dep}/v1",
            "TLS handshake error with {dep}: certificate has expired",
            "certificate verify failed",
        ],
        caller_metrics: &[("error_rate", Shape::Step(10.0, 40.0))],
    },
    Family {
        cause: "dns.failure",
        roots: &["dns"],
        silent: 0.4,
        logs: &[
            "SERVFAIL for {host}. from upstream resolver",
            "plugin/forward: no healthy upstreams, resolver error",
        ],
        metrics: &[("dns_errors", Shape::Step(20.0, 80.0))],
        event: None,
        caller_logs: &[
            "dial tcp: lookup {host}: no such host",
            "getaddrinfo: Temporary failure in name resolution ({host})",
            "could not resolve host {host}",
        ],
        caller_metrics: &[("error_rate", Shape::Step(5.0, 30.0))],
    },
    Family {
        cause: "net.downstream_latency",
        roots: &["app"],
        silent: 0.1,
        logs: &["slow response: GET /v1/items took {n}{n}ms"],
        metrics: &[("latency_p99", Shape::Step(6.0, 15.0))],
        event: None,
        caller_logs: TIMEOUTS,
        caller_metrics: SLOW,
    },
    Family {
        cause: "cpu.saturation",
        roots: APP,
        silent: 0.0,
        logs: &["cpu usage critical: {n}%"],
        metrics: &[
            ("cpu_usage", Shape::Max),
            ("latency_p99", Shape::Step(2.0, 4.0)),
        ],
        event: None,
        caller_logs: TIMEOUTS,
        caller_metrics: SLOW,
    },
    Family {
        cause: "host.noisy_neighbour",
        roots: APP,
        silent: 0.0,
        logs: &[],
        metrics: &[
            ("cpu_steal", Shape::Step(8.0, 20.0)),
            ("latency_p99", Shape::Step(2.0, 4.0)),
        ],
        event: None,
        caller_logs: TIMEOUTS,
        caller_metrics: SLOW,
    },
    Family {
        cause: "cache.down",
        roots: &["cache"],
        silent: 0.3,
        logs: &[
            "# User requested shutdown...",
            "redis shutdown: saving the final RDB snapshot before exiting",
        ],
        metrics: &[("up", Shape::Zero), ("connections", Shape::Zero)],
        event: None,
        caller_logs: &[
            "could not connect to redis at {dep}:6379: Connection refused",
            "cache unavailable ({dep}), falling back to database",
            "redis error talking to {dep}: connection reset",
        ],
        caller_metrics: &[("latency_p99", Shape::Step(2.0, 4.0))],
    },
    Family {
        cause: "queue.backlog",
        roots: &["queue"],
        silent: 0.0,
        logs: &[
            "consumer group billing is {n} messages behind",
            "queue is full, rejecting publish",
        ],
        metrics: &[
            ("consumer_lag", Shape::Ramp(20.0, 80.0)),
            ("queue_depth", Shape::Ramp(10.0, 50.0)),
        ],
        event: None,
        caller_logs: &[
            "publish to {dep} timed out: queue full",
            "enqueue to {dep} rejected",
        ],
        caller_metrics: SLOW,
    },
    Family {
        cause: "queue.broker_down",
        roots: &["queue"],
        silent: 0.3,
        logs: &["broker shutting down: controlled shutdown complete"],
        metrics: &[("up", Shape::Zero)],
        event: None,
        caller_logs: &[
            "broker {dep}:9092 not available",
            "LEADER_NOT_AVAILABLE from {dep}",
            "amqp connection to {dep} refused",
        ],
        caller_metrics: &[("error_rate", Shape::Step(8.0, 30.0))],
    },
    Family {
        cause: "runtime.gc_pressure",
        roots: APP,
        silent: 0.0,
        logs: &[
            "[Full GC (Allocation Failure) pause {n}ms]",
            "GC overhead limit approaching: pause {n} ms",
        ],
        metrics: &[
            ("gc_pause_ms", Shape::Step(10.0, 40.0)),
            ("latency_p99", Shape::Step(2.0, 4.0)),
        ],
        event: None,
        caller_logs: TIMEOUTS,
        caller_metrics: SLOW,
    },
    Family {
        cause: "runtime.thread_pool_exhausted",
        roots: APP,
        silent: 0.0,
        logs: &[
            "RejectedExecutionException: thread pool exhausted (200 active)",
            "no idle workers available, request queued",
        ],
        metrics: &[("threads", Shape::Max)],
        event: None,
        caller_logs: TIMEOUTS,
        caller_metrics: SLOW,
    },
    Family {
        cause: "runtime.fd_exhausted",
        roots: APP,
        silent: 0.0,
        logs: &[
            "accept tcp [::]:8080: accept4: too many open files",
            "open /tmp/upload-{n}: too many open files",
        ],
        metrics: &[("fd_open", Shape::Max)],
        event: None,
        caller_logs: &[
            "{dep} returned 503 service unavailable",
            "call to {dep} failed: connection reset by peer",
        ],
        caller_metrics: &[("error_rate", Shape::Step(5.0, 20.0))],
    },
    Family {
        cause: "net.packet_loss",
        roots: APP,
        silent: 0.0,
        logs: &["read tcp: connection reset by peer", "write: broken pipe"],
        metrics: &[("tcp_retransmits", Shape::Step(10.0, 50.0))],
        event: None,
        caller_logs: &[
            "connection reset by peer calling {dep}",
            "request timed out after {n}ms calling {dep}",
        ],
        caller_metrics: &[("error_rate", Shape::Step(3.0, 10.0))],
    },
    Family {
        cause: "external.rate_limited",
        roots: &["external"],
        silent: 1.0,
        logs: &[],
        metrics: &[],
        event: None,
        caller_logs: &[
            "HTTP 429 Too Many Requests from {dep}",
            "rate limit exceeded calling {dep}, retry after {n}s",
            "quota exceeded for {dep}",
        ],
        caller_metrics: &[("error_rate", Shape::Step(5.0, 20.0))],
    },
    Family {
        cause: "runtime.crash_loop",
        roots: &["app"],
        silent: 0.0,
        logs: &[
            "panic: runtime error: invalid memory address or nil pointer dereference",
            "process exited with code 2, restarting",
        ],
        metrics: &[("restarts", Shape::Step(5.0, 20.0))],
        event: None,
        caller_logs: &[
            "connection to {dep} refused",
            "{dep} returned 503 service unavailable",
        ],
        caller_metrics: &[("error_rate", Shape::Step(8.0, 30.0))],
    },
    Family {
        cause: "disk.io_saturation",
        roots: &["database", "app"],
        silent: 0.0,
        logs: &["INFO: task kworker blocked for more than 120 seconds"],
        metrics: &[
            ("io_wait", Shape::Step(8.0, 20.0)),
            ("disk_latency_ms", Shape::Step(10.0, 30.0)),
        ],
        event: None,
        caller_logs: TIMEOUTS,
        caller_metrics: SLOW,
    },
    Family {
        cause: "traffic.spike",
        roots: &["gateway"],
        silent: 0.0,
        logs: &[],
        metrics: &[
            ("request_rate", Shape::Step(4.0, 10.0)),
            ("latency_p99", Shape::Step(2.0, 4.0)),
        ],
        event: None,
        caller_logs: &[],
        caller_metrics: &[],
    },
];

/// Families the generator knows, by cause id.
pub fn families() -> Vec<&'static str> {
    FAMILIES.iter().map(|f| f.cause).collect()
}

const NAMES: &[(&str, &[&str])] = &[
    ("gateway", &["web", "gateway", "edge", "frontend"]),
    (
        "app",
        &[
            "api",
            "orders",
            "payments",
            "users",
            "catalog",
            "search",
            "checkout",
            "billing",
            "inventory",
            "shipping",
            "notify",
            "reports",
            "worker",
            "profile",
            "cart",
            "pricing",
        ],
    ),
    (
        "database",
        &["orders-db", "users-db", "pg-main", "mysql-1", "ledger-db"],
    ),
    ("cache", &["redis", "session-cache", "memcached"]),
    ("queue", &["kafka", "rabbitmq", "events-bus"]),
    ("dns", &["coredns", "resolver"]),
    (
        "external",
        &["stripe-api", "maps-api", "sms-gateway", "tax-api"],
    ),
    ("auth", &["idp", "keycloak"]),
];

fn pick_names(rng: &mut StdRng, kind: &str, n: usize) -> Vec<String> {
    let pool = NAMES
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, p)| *p)
        .unwrap_or(&[]);
    let mut v: Vec<&str> = pool
        .choose_multiple(rng, n.min(pool.len()))
        .copied()
        .collect();
    v.sort();
    v.into_iter().map(String::from).collect()
}

/// Baseline metrics per component kind: (name, level, relative noise, ceiling).
fn base_metrics(kind: &str) -> &'static [(&'static str, f64, f64, Option<f64>)] {
    match kind {
        "gateway" | "app" => &[
            ("cpu_usage", 35.0, 0.06, Some(100.0)),
            ("memory_rss", 512.0, 0.03, None),
            ("latency_p99", 120.0, 0.08, None),
            ("error_rate", 0.5, 0.1, None),
            ("request_rate", 200.0, 0.05, None),
            ("gc_pause_ms", 15.0, 0.1, None),
            ("threads", 80.0, 0.05, Some(200.0)),
            ("fd_open", 300.0, 0.05, Some(1024.0)),
            ("tcp_retransmits", 2.0, 0.2, None),
            ("restarts", 0.1, 0.5, None),
            ("cpu_steal", 1.0, 0.2, None),
            ("disk_used", 40.0, 0.01, Some(100.0)),
            ("io_wait", 2.0, 0.15, None),
            ("disk_latency_ms", 3.0, 0.1, None),
        ],
        "database" => &[
            ("up", 1.0, 0.0, None),
            ("cpu_usage", 30.0, 0.06, Some(100.0)),
            ("connections", 40.0, 0.06, Some(100.0)),
            ("query_time_ms", 8.0, 0.08, None),
            ("lock_waits", 1.0, 0.2, None),
            ("replication_lag_s", 0.5, 0.2, None),
            ("disk_used", 55.0, 0.01, Some(100.0)),
            ("io_wait", 3.0, 0.15, None),
            ("disk_latency_ms", 4.0, 0.1, None),
        ],
        "cache" => &[
            ("up", 1.0, 0.0, None),
            ("memory_used", 900.0, 0.03, None),
            ("connections", 60.0, 0.05, None),
            ("evictions", 5.0, 0.2, None),
        ],
        "queue" => &[
            ("up", 1.0, 0.0, None),
            ("queue_depth", 50.0, 0.1, None),
            ("consumer_lag", 20.0, 0.1, None),
        ],
        "dns" => &[("up", 1.0, 0.0, None), ("dns_errors", 0.5, 0.2, None)],
        "auth" => &[("up", 1.0, 0.0, None), ("latency_p99", 40.0, 0.08, None)],
        _ => &[],
    }
}

const CHRONIC: &[&str] = &[
    "deprecated API /v1/legacy called by client {n}",
    "slow request to /health took {n}{n}ms",
    "user {n} not found",
    "retrying request attempt {n}",
    "validation failed for field email",
];
const NOISE: &[&str] = &[
    "cache miss ratio above 20% for prefix session:",
    "certificate for internal.example will expire in {n} days",
    "request to /admin denied for user {n}",
    "unexpected field 'tags' in payload, ignoring",
    "job report-{n} took longer than expected",
    "connection to metrics exporter lost, reconnecting",
];

fn fill(rng: &mut StdRng, t: &str, dep: &str, host: &str) -> String {
    let mut s = t.replace("{dep}", dep).replace("{host}", host);
    while let Some(i) = s.find("{n}") {
        let n: u32 = rng.random_range(2..999);
        s.replace_range(i..i + 3, &n.to_string());
    }
    s
}

fn noise_factor(rng: &mut StdRng, rel: f64) -> f64 {
    // Sum of uniforms: cheap, roughly normal, bounded.
    let u: f64 = (0..4).map(|_| rng.random::<f64>() - 0.5).sum::<f64>() / 4f64.sqrt() * 2.0;
    1.0 + rel * u
}

/// One scenario from `rng`.
pub fn scenario(rng: &mut StdRng, index: usize) -> Scenario {
    let family = &FAMILIES[index % FAMILIES.len()];
    // Components.
    let mut kinds: BTreeMap<String, String> = BTreeMap::new();
    let mut add = |rng: &mut StdRng, kind: &str, n: usize| -> Vec<String> {
        let names = pick_names(rng, kind, n);
        for s in &names {
            kinds.insert(s.clone(), kind.to_string());
        }
        names
    };
    let need = |k: &str| family.roots.contains(&k);
    let gateway = add(rng, "gateway", 1);
    let n_apps = rng.random_range(2..=6);
    let apps = add(rng, "app", n_apps);
    let n_db = if need("database") {
        rng.random_range(1..=2)
    } else {
        rng.random_range(0..=2)
    };
    let dbs = add(rng, "database", n_db);
    let n = usize::from(need("cache") || rng.random_bool(0.6));
    let caches = add(rng, "cache", n);
    let n = usize::from(need("queue") || rng.random_bool(0.4));
    let queues = add(rng, "queue", n);
    let n = usize::from(need("dns") || rng.random_bool(0.5));
    let dns = add(rng, "dns", n);
    let n = usize::from(need("external") || rng.random_bool(0.5));
    let exts = add(rng, "external", n);
    let n = usize::from(need("auth") || rng.random_bool(0.3));
    let auths = add(rng, "auth", n);
    // Edges.
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    fn edge(deps: &mut BTreeMap<String, Vec<String>>, a: &str, b: &str) {
        let v = deps.entry(a.to_string()).or_default();
        if !v.iter().any(|x| x == b) && a != b {
            v.push(b.to_string());
        }
    }
    let g = &gateway[0];
    let fanout = rng.random_range(1..=apps.len().min(3));
    for a in apps.iter().take(fanout) {
        edge(&mut deps, g, a);
    }
    for (i, a) in apps.iter().enumerate() {
        for b in apps.iter().skip(i + 1) {
            if rng.random_bool(0.3) {
                edge(&mut deps, a, b);
            }
        }
    }
    // Apps not reached from the gateway get a caller.
    for (i, a) in apps.iter().enumerate().skip(fanout) {
        let reached = deps.values().any(|v| v.contains(a));
        if !reached {
            let caller = if i == 0 {
                g.clone()
            } else {
                apps[rng.random_range(0..i)].clone()
            };
            edge(&mut deps, &caller, a);
        }
    }
    for store in dbs
        .iter()
        .chain(&caches)
        .chain(&queues)
        .chain(&exts)
        .chain(&auths)
    {
        let n = rng.random_range(1..=apps.len().min(3));
        for a in apps.choose_multiple(rng, n) {
            edge(&mut deps, a, store);
        }
    }
    if let Some(a) = auths.first() {
        edge(&mut deps, g, a);
    }
    if let Some(d) = dns.first() {
        for s in gateway.iter().chain(&apps) {
            edge(&mut deps, s, d);
        }
    }
    // Root.
    let candidates: Vec<&String> = kinds
        .iter()
        .filter(|(_, k)| family.roots.contains(&k.as_str()))
        .map(|(s, _)| s)
        .collect();
    let root = (*candidates
        .choose(rng)
        .expect("the family's root kind was added"))
    .clone();
    // Callers by level.
    let callers_of = |s: &str| -> Vec<String> {
        deps.iter()
            .filter(|(_, v)| v.iter().any(|x| x == s))
            .map(|(k, _)| k.clone())
            .collect()
    };

    let fault_ms = rng.random_range(18 * 60_000..24 * 60_000) as i64;
    let from_ms = fault_ms - rng.random_range(60_000..240_000) as i64;
    let end_ms = POINTS as i64 * STEP_MS;
    let mut logs: Vec<LogLine> = Vec::new();
    let mut events = Vec::new();
    // Metric series with baseline noise; faults are applied afterwards.
    let mut series: Vec<MetricSeries> = Vec::new();
    for (s, k) in &kinds {
        for (name, level, rel, max) in base_metrics(k) {
            let level = level * rng.random_range(0.6..1.4);
            let values = (0..POINTS)
                .map(|_| (level * noise_factor(rng, *rel)).max(0.0))
                .map(|v| max.map_or(v, |m| v.min(m * 0.9)))
                .collect();
            series.push(MetricSeries {
                service: s.clone(),
                name: name.to_string(),
                max: *max,
                start_ms: 0,
                step_ms: STEP_MS,
                values,
            });
        }
        // Chronic warnings, before and during the window.
        if rng.random_bool(0.5) {
            let t = *CHRONIC.choose(rng).expect("non-empty");
            for _ in 0..rng.random_range(3..10) {
                let msg = fill(rng, t, "", "");
                logs.push(LogLine {
                    ts_ms: rng.random_range(0..end_ms),
                    service: s.clone(),
                    level: "warn".into(),
                    message: msg,
                });
            }
        }
    }
    let apply = |rng: &mut StdRng,
                 series: &mut Vec<MetricSeries>,
                 svc: &str,
                 name: &str,
                 shape: Shape,
                 at: i64| {
        if let Some(m) = series
            .iter_mut()
            .find(|m| m.service == svc && m.name == name)
        {
            let start = ((at / STEP_MS) as usize).min(POINTS);
            let n = POINTS - start;
            let f = match shape {
                Shape::Step(lo, hi) | Shape::Ramp(lo, hi) => rng.random_range(lo..hi),
                _ => 1.0,
            };
            for (j, v) in m.values.iter_mut().enumerate().skip(start) {
                *v = match shape {
                    Shape::Step(..) => *v * f,
                    Shape::Ramp(..) => *v * (1.0 + (f - 1.0) * ((j - start + 1) as f64 / n as f64)),
                    Shape::Max => m.max.unwrap_or(*v * 5.0),
                    Shape::Zero => 0.0,
                };
            }
        }
    };
    let other_host = |rng: &mut StdRng| {
        kinds
            .keys()
            .filter(|s| **s != root)
            .collect::<Vec<_>>()
            .choose(rng)
            .map(|s| s.to_string())
            .unwrap_or_default()
    };
    // The root's own signals.
    let silent = rng.random_bool(family.silent);
    if !silent {
        let mut kept = 0;
        let total = family.logs.len() + family.metrics.len();
        let keep_any = rng.random_range(0..total.max(1));
        for (i, t) in family.logs.iter().enumerate() {
            if rng.random_bool(0.7) || (kept == 0 && i == keep_any) {
                kept += 1;
                for _ in 0..rng.random_range(1..5) {
                    let host = other_host(rng);
                    let msg = fill(rng, t, &root, &host);
                    logs.push(LogLine {
                        ts_ms: fault_ms + rng.random_range(0..120_000),
                        service: root.clone(),
                        level: "error".into(),
                        message: msg,
                    });
                }
            }
        }
        for (i, (name, shape)) in family.metrics.iter().enumerate() {
            if rng.random_bool(0.75) || (kept == 0 && family.logs.len() + i >= keep_any) {
                kept += 1;
                apply(rng, &mut series, &root, name, *shape, fault_ms);
            }
        }
    }
    if let Some(k) = family.event {
        events.push(ChangeEvent {
            ts_ms: fault_ms - rng.random_range(0..30_000),
            service: root.clone(),
            kind: k.into(),
            detail: format!("v2.{}.0", rng.random_range(1..40)),
        });
    }
    // Symptoms in callers (direct, then theirs).
    let mut frontier = vec![(root.clone(), fault_ms)];
    let mut touched = vec![root.clone()];
    let mut depth = 0;
    while !frontier.is_empty() && depth < 3 {
        let mut next = Vec::new();
        for (callee, at) in &frontier {
            let cs = callers_of(callee);
            let p = if depth == 0 { 0.9 } else { 0.5 };
            let forced = cs.choose(rng).cloned();
            for c in cs {
                if touched.contains(&c) {
                    continue;
                }
                let show = rng.random_bool(p) || (depth == 0 && Some(&c) == forced.as_ref());
                if !show {
                    continue;
                }
                touched.push(c.clone());
                let onset = at + rng.random_range(5_000..60_000);
                let templates: &[&str] = if depth == 0 && !family.caller_logs.is_empty() {
                    family.caller_logs
                } else {
                    &[
                        "{dep} returned 503 service unavailable",
                        "request timed out after {n}ms calling {dep}",
                    ]
                };
                for _ in 0..rng.random_range(1..6) {
                    let t = *templates.choose(rng).expect("non-empty");
                    let host = other_host(rng);
                    let msg = fill(rng, t, callee, &host);
                    logs.push(LogLine {
                        ts_ms: onset + rng.random_range(0..120_000),
                        service: c.clone(),
                        level: if rng.random_bool(0.7) {
                            "error"
                        } else {
                            "warn"
                        }
                        .into(),
                        message: msg,
                    });
                }
                let ms: &[(&str, Shape)] = if depth == 0 {
                    family.caller_metrics
                } else {
                    FAILING
                };
                for (name, shape) in ms {
                    if rng.random_bool(0.7) {
                        apply(rng, &mut series, &c, name, *shape, onset);
                    }
                }
                next.push((c, onset));
            }
        }
        frontier = next;
        depth += 1;
    }
    // Unrelated noise.
    let bystanders: Vec<String> = kinds
        .keys()
        .filter(|s| !touched.contains(s))
        .cloned()
        .collect();
    if !bystanders.is_empty() && rng.random_bool(0.4) {
        let s = bystanders.choose(rng).expect("non-empty").clone();
        let t = *NOISE.choose(rng).expect("non-empty");
        for _ in 0..rng.random_range(1..4) {
            let msg = fill(rng, t, "", "");
            logs.push(LogLine {
                ts_ms: rng.random_range(from_ms..end_ms),
                service: s.clone(),
                level: "warn".into(),
                message: msg,
            });
        }
    }
    if !bystanders.is_empty() && rng.random_bool(0.25) {
        let s = bystanders.choose(rng).expect("non-empty").clone();
        let names: Vec<String> = series
            .iter()
            .filter(|m| m.service == s && m.name != "up")
            .map(|m| m.name.clone())
            .collect();
        if let Some(n) = names.choose(rng) {
            let at = rng.random_range(from_ms..end_ms - 10 * STEP_MS);
            apply(rng, &mut series, &s, n, Shape::Step(1.6, 2.5), at);
        }
    }
    // Some info chatter.
    for s in kinds.keys() {
        for _ in 0..5 {
            logs.push(LogLine {
                ts_ms: rng.random_range(0..end_ms),
                service: s.clone(),
                level: "info".into(),
                message: "handled request in 12ms".into(),
            });
        }
    }
    logs.sort_by_key(|l| l.ts_ms);
    let services = kinds
        .iter()
        .map(|(s, k)| {
            (
                s.clone(),
                ServiceDef {
                    kind: Some(k.clone()),
                    depends_on: deps.get(s).cloned().unwrap_or_default(),
                },
            )
        })
        .collect();
    Scenario {
        id: format!("s{index:05}"),
        topology: TopologyDef { services },
        window_ms: (from_ms, end_ms),
        logs,
        metrics: series,
        events,
        truth: Truth {
            cause: family.cause.into(),
            service: root,
            family: family.cause.into(),
        },
    }
}

/// `count` scenarios from `seed`, families in turn.
pub fn generate(seed: u64, count: usize) -> Vec<Scenario> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count).map(|i| scenario(&mut rng, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use agents::rca::kb::KnowledgeBase;

    #[test]
    fn generation_is_seeded_and_families_name_known_causes() {
        let a = generate(7, 30);
        let b = generate(7, 30);
        assert_eq!(a, b);
        assert_ne!(a, generate(8, 30));
        assert!(FAMILIES.len() >= 20);
        let kb = KnowledgeBase::builtin();
        for f in FAMILIES {
            assert!(kb.get(f.cause).is_some(), "family {} has no cause", f.cause);
        }
        for s in &a {
            assert!(s.topology.services.contains_key(&s.truth.service));
        }
    }
}
