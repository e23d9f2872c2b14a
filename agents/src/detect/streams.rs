//! The live streams the statistical detectors watch, and how a verdict
//! becomes an [`Anomaly`] for triage. Pure logic; the actor drives it.
//!
//! Streams:
//! - every metric `(source, name)` → `metric|<source>|<name>`;
//! - per service, the error rate of its log lines (errors / lines) over
//!   fixed buckets of `error_bucket_ms` → `log|<service>|error_rate`; a
//!   bucket is scored when a line of a later bucket arrives;
//! - per service and failure signature, the count of matching lines per
//!   bucket → `sig|<service>|<signature>` (buckets without a match count 0,
//!   at most `MAX_GAP` of them are filled), fed from the signature scan.
//!
//! Memory: at most `max_streams` detectors (when full, the least recently
//! updated 1 % go at once), each a [`UnivariateDetector`]: 3,304 B with the
//! default config, measured by `bench_detect` (1,352 B inline: its
//! settings, robust state, sustained signals, hysteresis, a 6-value window;
//! 1,952 B on the heap: the pattern memory's 256 remembered shapes in
//! bfloat16, 1 KB, its 32 recent values and held-back shapes, and
//! the last 100 scores; see `stats::novelty` and `stats::ensemble` for the
//! formula and the bound with the optional forest), so the default 100,000
//! streams hold ≈ 330 MB of detector state, plus the stream names and one
//! open bucket per service. A season (`robust.season`, off by default)
//! adds 40 B per point of it (the baseline's offsets and the daily and
//! weekly differences, see `stats::seasonal`).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use state::model::{Anomaly, Event, Evidence, Severity};
use state::trees::detector_state::DetectorRecord;

use super::gauges::BankCounts;
use super::hosts::{self, HostBank, HostSummary, HostsConfig};
use super::stats::ensemble::{FitJob, Models, Transition, UnivariateConfig, UnivariateDetector};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamsConfig {
    /// Most streams tracked at once.
    pub max_streams: usize,
    /// Width of the log error-rate buckets.
    pub error_bucket_ms: i64,
    /// Lines a bucket needs before its error rate is scored.
    pub min_bucket_lines: u64,
    /// How often dirty detector states are written to the store.
    pub snapshot_every_ms: i64,
    /// Anomalies kept for `GET /observability/anomalies`.
    pub keep_anomalies: usize,
    /// Detector settings of every stream.
    pub detector: UnivariateConfig,
    /// Each source's metrics as one vector (see `hosts`).
    pub hosts: HostsConfig,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            max_streams: 100_000,
            error_bucket_ms: 10_000,
            min_bucket_lines: 5,
            snapshot_every_ms: 5_000,
            keep_anomalies: 10_000,
            detector: live_detector(),
            hosts: HostsConfig::default(),
        }
    }
}

impl StreamsConfig {
    /// Every problem, named by its config key.
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        if self.max_streams == 0 {
            e.push("detect.max_streams: must be greater than 0".into());
        }
        if self.error_bucket_ms <= 0 {
            e.push("detect.error_bucket_ms: must be greater than 0".into());
        }
        if self.snapshot_every_ms < 0 {
            e.push("detect.snapshot_every_ms: must not be negative".into());
        }
        if self.keep_anomalies == 0 {
            e.push("detect.keep_anomalies: must be greater than 0".into());
        }
        if let Err(r) = self.detector.validate() {
            e.extend(r.split("; ").map(|p| format!("detect.detector.{p}")));
        }
        e.extend(self.hosts.validate());
        e
    }
}

/// The evaluation defaults with a shorter refractory period: a live
/// stream may alarm again after 30 points (the evaluation default is 100).
pub fn live_detector() -> UnivariateConfig {
    let mut c = UnivariateConfig::default();
    c.hysteresis.refractory = 30;
    c
}

#[derive(Clone, Debug)]
struct Stream {
    det: UnivariateDetector,
    last_ts_ms: i64,
    touched: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    index: i64,
    lines: u64,
    errors: u64,
}

pub struct StreamBank {
    cfg: StreamsConfig,
    streams: HashMap<String, Stream>,
    dirty: HashSet<String>,
    buckets: HashMap<String, Bucket>,
    tick: u64,
    hosts: HostBank,
    /// Streams dropped to make room so far.
    evicted: u64,
}

pub const KIND: &str = "univariate";

/// Empty buckets filled with 0 between two signature matches, at most.
pub const MAX_GAP: i64 = 100;

impl StreamBank {
    pub fn new(cfg: StreamsConfig) -> Self {
        StreamBank {
            hosts: HostBank::new(cfg.hosts.clone()),
            cfg,
            streams: HashMap::new(),
            dirty: HashSet::new(),
            buckets: HashMap::new(),
            tick: 0,
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// What this bank has dropped or refused since it was created.
    pub fn counts(&self) -> BankCounts {
        BankCounts {
            streams_evicted: self.evicted,
            hosts_evicted: self.hosts.evicted(),
            host_samples_refused: self.hosts.refused(),
        }
    }

    /// The per-source vectors: (sources, sources with models fitted).
    pub fn host_sizes(&self) -> (usize, usize) {
        (self.hosts.len(), self.hosts.fitted())
    }

    /// What `GET /observability/detectors` shows of every per-source vector.
    pub fn host_summaries(&self) -> Vec<HostSummary> {
        self.hosts.summaries()
    }

    /// Points learned so far by stream `key` (0 when unknown).
    pub fn points(&self, key: &str) -> u64 {
        self.streams.get(key).map_or(0, |s| s.det.points())
    }

    /// Restore streams (and per-source vectors) from stored records;
    /// returns how many were usable.
    pub fn restore(&mut self, records: Vec<(String, DetectorRecord)>) -> usize {
        let mut n = self.hosts.restore(&records);
        for (key, rec) in records {
            let DetectorRecord::V1 {
                kind,
                last_ts_ms,
                state,
            } = rec;
            if kind != KIND {
                continue;
            }
            let Ok(mut det) = serde_json::from_value::<UnivariateDetector>(state) else {
                continue;
            };
            // The configuration in force wins over the stored one.
            det.cfg = self.cfg.detector.clone();
            self.tick += 1;
            self.streams.insert(
                key,
                Stream {
                    det,
                    last_ts_ms,
                    touched: self.tick,
                },
            );
            n += 1;
        }
        n
    }

    /// Records of the streams changed since the last call (and of the
    /// per-source vectors due a snapshot).
    pub fn take_dirty(&mut self) -> Vec<(String, DetectorRecord)> {
        let mut out = self.take_streams();
        out.extend(self.hosts.take_dirty(false));
        out
    }

    /// Everything not yet written, every per-source vector included (at stop).
    pub fn take_final(&mut self) -> Vec<(String, DetectorRecord)> {
        let mut out = self.take_streams();
        out.extend(self.hosts.take_dirty(true));
        out
    }

    fn take_streams(&mut self) -> Vec<(String, DetectorRecord)> {
        let keys: Vec<String> = self.dirty.drain().collect();
        keys.into_iter()
            .filter_map(|k| {
                let s = self.streams.get(&k)?;
                let state = serde_json::to_value(&s.det).ok()?;
                Some((
                    k,
                    DetectorRecord::V1 {
                        kind: KIND.into(),
                        last_ts_ms: s.last_ts_ms,
                        state,
                    },
                ))
            })
            .collect()
    }

    /// Score every event of a batch; anomalies for the episodes raised.
    pub fn observe(&mut self, events: &[Event]) -> Vec<Anomaly> {
        let mut out = Vec::new();
        for ev in events {
            match ev {
                Event::Metric(m) => {
                    let key = format!("metric|{}|{}", m.source, m.name);
                    if let Some(a) = self.update(&key, &m.source, &m.name, m.value, m.ts_ms) {
                        out.push(a);
                    }
                    out.extend(self.hosts.observe(m));
                }
                Event::Log(l) => {
                    let idx = l.ts_ms.div_euclid(self.cfg.error_bucket_ms.max(1));
                    let b = self.buckets.entry(l.service.clone()).or_insert(Bucket {
                        index: idx,
                        ..Bucket::default()
                    });
                    if idx > b.index {
                        let closed = *b;
                        *b = Bucket {
                            index: idx,
                            ..Bucket::default()
                        };
                        if closed.lines >= self.cfg.min_bucket_lines {
                            let rate = closed.errors as f64 / closed.lines as f64;
                            let key = format!("log|{}|error_rate", l.service);
                            let ts = (closed.index + 1) * self.cfg.error_bucket_ms;
                            if let Some(a) = self.update(&key, &l.service, "error_rate", rate, ts) {
                                out.push(a);
                            }
                        }
                    }
                    // Lines of an already closed bucket (late) count in the open one.
                    if let Some(b) = self.buckets.get_mut(&l.service) {
                        b.lines += 1;
                        b.errors += u64::from(l.level.is_error());
                    }
                }
            }
        }
        out
    }

    /// Feed the signature matches of a batch (the anomalies of the
    /// signature scan) into per-(service, signature) count streams.
    pub fn observe_signatures(&mut self, found: &[Anomaly]) -> Vec<Anomaly> {
        let mut out = Vec::new();
        let w = self.cfg.error_bucket_ms.max(1);
        for a in found {
            let Some(sig) = &a.signature else { continue };
            let key = format!("sig|{}|{}", a.service, sig);
            let idx = a.ts_ms.div_euclid(w);
            let b = self.buckets.entry(key.clone()).or_insert(Bucket {
                index: idx,
                ..Bucket::default()
            });
            if idx > b.index {
                let closed = *b;
                *b = Bucket {
                    index: idx,
                    ..Bucket::default()
                };
                let mut series = vec![(closed.index, closed.lines as f64)];
                let gap = (idx - closed.index - 1).clamp(0, MAX_GAP);
                series.extend((0..gap).map(|k| (idx - gap + k, 0.0)));
                for (i, v) in series {
                    if let Some(x) = self.update(&key, &a.service, sig, v, (i + 1) * w) {
                        out.push(x);
                    }
                }
            }
            if let Some(b) = self.buckets.get_mut(&key) {
                b.lines += a.count;
            }
        }
        out
    }

    fn update(
        &mut self,
        key: &str,
        service: &str,
        signal: &str,
        value: f64,
        ts_ms: i64,
    ) -> Option<Anomaly> {
        self.tick += 1;
        if !self.streams.contains_key(key) {
            self.evict_if_full();
            self.streams.insert(
                key.to_string(),
                Stream {
                    det: UnivariateDetector::new(self.cfg.detector.clone()),
                    last_ts_ms: ts_ms,
                    touched: self.tick,
                },
            );
        }
        let s = self.streams.get_mut(key)?;
        let expected = s.det.baseline();
        let v = s.det.update(value);
        s.last_ts_ms = ts_ms;
        s.touched = self.tick;
        self.dirty.insert(key.to_string());
        if v.transition != Transition::Raised {
            return None;
        }
        let is_log = key.starts_with("log|") || key.starts_with("sig|");
        let mut evidence = vec![Evidence {
            signal: if is_log {
                format!("log:{signal}")
            } else {
                format!("metric:{signal}")
            },
            weight: v.score,
            detail: format!("observed {value}, expected {expected:.4}"),
        }];
        evidence.extend(part_evidence(&v.parts, ""));
        Some(Anomaly {
            ts_ms,
            service: service.to_string(),
            category: if is_log { "logs" } else { "metrics" }.into(),
            kind: if key.starts_with("sig|") {
                "SIGNATURE_RATE_ANOMALY".into()
            } else if is_log {
                "ERROR_RATE_ANOMALY".into()
            } else {
                "METRIC_ANOMALY".into()
            },
            severity: if v.score >= 0.9 {
                Severity::High
            } else {
                Severity::Medium
            },
            score: v.score,
            signature: key.strip_prefix("sig|").map(|_| signal.to_string()),
            auto_fixable: false,
            summary: format!(
                "{signal} = {value} on {service} (expected {expected:.4}, score {:.2})",
                v.score
            ),
            count: 1,
            evidence,
        })
    }

    fn evict_if_full(&mut self) {
        // 1 % at a time: at 100,000 streams, one pass per 1,000 new ones.
        self.evicted += evict_least_recent(
            &mut self.streams,
            &mut self.dirty,
            self.cfg.max_streams,
            self.cfg.max_streams / 100,
            |s| s.touched,
        ) as u64;
    }

    /// Retraining jobs due (at most one outstanding per stream or source).
    pub fn fit_jobs(&mut self) -> Vec<(String, FitJob)> {
        let mut jobs: Vec<(String, FitJob)> = self
            .streams
            .iter_mut()
            .filter_map(|(k, s)| s.det.fit_job().map(|j| (k.clone(), j)))
            .collect();
        jobs.extend(self.hosts.fit_jobs());
        jobs
    }

    /// Install the result of a background fit (ignored if the stream went).
    pub fn install(&mut self, key: &str, models: Option<Models>) {
        if key.starts_with(hosts::PREFIX) {
            self.hosts.install(key, models);
        } else if let Some(s) = self.streams.get_mut(key) {
            s.det.install(models);
            self.dirty.insert(key.to_string());
        }
    }
}

/// Make room for one entry: when `map` is full, drop its `batch` least
/// recently touched entries at once (one pass over the map per `batch`
/// insertions, not one per insertion). Returns how many went.
pub(super) fn evict_least_recent<V>(
    map: &mut HashMap<String, V>,
    dirty: &mut HashSet<String>,
    cap: usize,
    batch: usize,
    touched: impl Fn(&V) -> u64,
) -> usize {
    let cap = cap.max(1);
    if map.len() < cap {
        return 0;
    }
    let n = (map.len() + 1 - cap).max(batch.clamp(1, cap));
    let mut ages: Vec<(u64, &String)> = map.iter().map(|(k, v)| (touched(v), k)).collect();
    if n < ages.len() {
        ages.select_nth_unstable(n - 1);
        ages.truncate(n);
    }
    let gone: Vec<String> = ages.into_iter().map(|(_, k)| k.clone()).collect();
    for k in &gone {
        map.remove(k);
        dirty.remove(k);
    }
    gone.len()
}

/// The component detectors' scores as evidence, highest first.
pub(super) fn part_evidence(parts: &[(&'static str, f64)], about: &str) -> Vec<Evidence> {
    let mut parts = parts.to_vec();
    parts.sort_by(|a, b| b.1.total_cmp(&a.1));
    parts
        .into_iter()
        .map(|(name, w)| Evidence {
            signal: format!("detector:{name}"),
            weight: w.clamp(0.0, 1.0),
            detail: format!("{name} score {w:.3}{about}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::stats::robust::RobustConfig;
    use state::model::{Level, LogEvent, MetricSample};

    fn metric(source: &str, name: &str, value: f64, ts: i64) -> Event {
        Event::Metric(MetricSample {
            ts_ms: ts,
            source: source.into(),
            name: name.into(),
            value,
            labels: Default::default(),
        })
    }

    fn wobble(i: usize) -> f64 {
        50.0 + [0.0, 1.0, -1.0, 0.5, -0.5, 0.8, -0.8][i % 7]
    }

    #[test]
    fn a_metric_spike_becomes_one_anomaly_with_evidence() {
        let mut b = StreamBank::new(StreamsConfig::default());
        let mut events: Vec<Event> = (0..200)
            .map(|i| metric("db", "latency_ms", wobble(i), i as i64 * 1000))
            .collect();
        events.push(metric("db", "latency_ms", 400.0, 200_000));
        events.push(metric("db", "latency_ms", 410.0, 201_000));
        let a = b.observe(&events);
        assert_eq!(a.len(), 1, "{a:#?}");
        assert_eq!(a[0].service, "db");
        assert_eq!(a[0].kind, "METRIC_ANOMALY");
        assert!(a[0].score >= 0.5 && a[0].score <= 1.0);
        assert_eq!(a[0].evidence[0].signal, "metric:latency_ms");
    }

    #[test]
    fn an_error_burst_raises_an_error_rate_anomaly() {
        let mut b = StreamBank::new(StreamsConfig::default());
        let mut events = Vec::new();
        for bucket in 0..80i64 {
            for j in 0..20 {
                let err = if bucket == 70 {
                    j < 15
                } else {
                    j == 0 && bucket % 3 == 0
                };
                events.push(Event::Log(LogEvent {
                    ts_ms: bucket * 10_000 + j,
                    service: "web".into(),
                    level: if err { Level::Error } else { Level::Info },
                    message: "x".into(),
                    fields: Default::default(),
                }));
            }
        }
        let a = b.observe(&events);
        assert_eq!(a.len(), 1, "{a:#?}");
        assert_eq!(a[0].kind, "ERROR_RATE_ANOMALY");
        assert_eq!(a[0].ts_ms, 71 * 10_000);
    }

    #[test]
    fn a_burst_of_a_known_signature_raises_a_rate_anomaly() {
        let mut b = StreamBank::new(StreamsConfig::default());
        let sig = |bucket: i64, count: u64| Anomaly {
            ts_ms: bucket * 10_000 + 5,
            service: "db".into(),
            category: "database".into(),
            kind: "DATABASE_CONNECTION".into(),
            severity: Severity::High,
            score: 1.0,
            signature: Some("db-refused".into()),
            auto_fixable: true,
            summary: String::new(),
            count,
            evidence: vec![],
        };
        let mut found = Vec::new();
        for bucket in 0..100 {
            // A steady trickle: 2 or 3 matches per bucket, then a burst.
            let n = if bucket == 90 {
                60
            } else {
                2 + (bucket % 2) as u64
            };
            found.extend(b.observe_signatures(&[sig(bucket, n)]));
        }
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].kind, "SIGNATURE_RATE_ANOMALY");
        assert_eq!(found[0].signature.as_deref(), Some("db-refused"));
        assert_eq!(found[0].ts_ms, 91 * 10_000);
    }

    #[test]
    fn state_restored_from_records_keeps_the_baseline() {
        let mut b = StreamBank::new(StreamsConfig::default());
        let events: Vec<Event> = (0..100)
            .map(|i| metric("api", "cpu", wobble(i), i as i64))
            .collect();
        b.observe(&events);
        let recs = b.take_dirty();
        assert_eq!(recs.len(), 1);
        assert!(b.take_dirty().is_empty());
        let mut c = StreamBank::new(StreamsConfig::default());
        assert_eq!(c.restore(recs), 1);
        assert_eq!(c.points("metric|api|cpu"), 100);
        // Warm at once: a spike right after the restart is caught.
        let a = c.observe(&[metric("api", "cpu", 300.0, 101)]);
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn partial_toml_keeps_defaults_and_bad_values_are_named() {
        let c: StreamsConfig =
            toml::from_str("max_streams = 10\n[detector.robust]\nz_mid = 8.0\n").expect("parses");
        assert_eq!(c.max_streams, 10);
        assert_eq!(c.detector.robust.z_mid, 8.0);
        assert_eq!(c.detector.robust.alpha, RobustConfig::default().alpha);
        assert!(c.validate().is_empty());
        let c: StreamsConfig =
            toml::from_str("error_bucket_ms = 0\n[detector.robust]\nalpha = 2.0\n")
                .expect("parses");
        let e = c.validate();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[1].contains("alpha"));
        assert!(toml::from_str::<StreamsConfig>("max_stream = 1").is_err());
    }

    #[test]
    fn streams_are_bounded_evicting_the_least_recent() {
        let cfg = StreamsConfig {
            max_streams: 3,
            ..StreamsConfig::default()
        };
        let mut b = StreamBank::new(cfg);
        for (i, n) in ["a", "b", "c", "d"].iter().enumerate() {
            b.observe(&[metric("h", n, 1.0, i as i64)]);
        }
        assert_eq!(b.len(), 3);
        assert_eq!(b.points("metric|h|a"), 0);
        assert_eq!(b.points("metric|h|d"), 1);
        assert_eq!(b.counts().streams_evicted, 1);
        // One source, four metrics: one vector, its layout still learned.
        assert_eq!(b.host_sizes(), (1, 0));
    }

    #[test]
    fn a_full_map_sheds_its_least_recent_batch_at_once() {
        let mut map: HashMap<String, u64> = (0..100).map(|i| (format!("k{i}"), i)).collect();
        let mut dirty: HashSet<String> = ["k0".to_string(), "k50".to_string()].into();
        assert_eq!(
            evict_least_recent(&mut map, &mut dirty, 100, 10, |&t| t),
            10
        );
        assert_eq!(map.len(), 90);
        assert!((0..10).all(|i| !map.contains_key(&format!("k{i}"))));
        assert!((10..100).all(|i| map.contains_key(&format!("k{i}"))));
        assert_eq!(dirty, ["k50".to_string()].into());
        // Not full: nothing goes.
        assert_eq!(evict_least_recent(&mut map, &mut dirty, 100, 10, |&t| t), 0);
        assert_eq!(map.len(), 90);
    }
}
