//! Each source's metrics as one vector: all metrics of one host or service
//! scored together (as in SMD) by a [`VectorDetector`], so a combination
//! that no single metric shows (CPU normal, latency and queue length off
//! together; a broken correlation) still raises. Pure logic; the detect
//! actor drives it through [`super::streams::StreamBank`].
//!
//! Rows: a source's samples are grouped into fixed buckets of `row_ms`
//! (the mean of a metric's samples in the bucket); a bucket is a row when a
//! sample of a later bucket arrives. A metric missing from a row keeps its
//! last value. The row's layout (which metrics, in name order) is fixed
//! from the metrics seen in the first `schema_rows` rows, at most
//! `max_dims` of them; a source with fewer than 2 is left to the
//! univariate streams. When the rows differ from the layout (a metric
//! added, or one gone) for `relayout_rows` rows in a row, the layout and
//! the detector are learned afresh (a fit still running for the old layout
//! is dropped). Samples older than the open row are not used here.
//!
//! Scoring: until the first model set is fitted (`detector.models.min_fit`
//! rows) rows are only learned, so the vector never repeats what the
//! per-metric streams already say from their own warm-up. After that every
//! row is scored by the isolation forest and k-means over the standardised
//! vector; refits run in the background like the streams' (at most one
//! outstanding per source).
//!
//! Memory per source: `4·dims·reservoir` B of training rows + the forest
//! (`n_trees` trees of ≤ `2·sample_size` nodes) + `k·dims` centroids + one
//! robust baseline per metric: 940 KB for a fitted 38-metric source with
//! the defaults (measured by `bench_detect`); at most `max_sources`, so
//! ≈ 188 MB. When full, a new source takes the place of the least recently
//! updated one only if that one has been silent for `idle_evict_ms`;
//! otherwise it is left to the univariate streams (counted in `refused`).
//! State is written to the store on every new model set and every
//! `snapshot_rows` rows (it holds the training rows, so not on every row).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use state::model::{Anomaly, Evidence, MetricSample, Severity};
use state::trees::detector_state::DetectorRecord;

use super::stats::ensemble::{FitJob, Models, Transition, VectorConfig, VectorDetector};
use super::streams::{evict_least_recent, part_evidence};

/// Record kind of a source's vector detector in the `detector_state` tree.
pub const KIND: &str = "vector";
/// Key prefix of a source's vector detector.
pub const PREFIX: &str = "host|";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostsConfig {
    /// Score each source's metrics as one vector.
    pub enabled: bool,
    /// Width of a row.
    pub row_ms: i64,
    /// Rows whose metric names fix the layout.
    pub schema_rows: u32,
    /// Most metrics in one vector (the first in name order).
    pub max_dims: usize,
    /// Most sources tracked at once.
    pub max_sources: usize,
    /// Event time a tracked source must have been silent before a new
    /// one may take its place when the bank is full.
    pub idle_evict_ms: i64,
    /// Rows between two snapshots of a source's state.
    pub snapshot_rows: u64,
    /// Consecutive rows whose metrics differ from the layout (a metric
    /// added, or one gone) before the layout is learned afresh.
    pub relayout_rows: u32,
    /// Evidence entries named in an anomaly.
    pub evidence: usize,
    pub detector: VectorConfig,
}

impl Default for HostsConfig {
    fn default() -> Self {
        // 4,096 rows: 11 h of 10 s rows to learn from, refitted as often.
        // More frequent refits learn a long anomaly as the new normal (SMD
        // with this config: F1 point-wise best 0.608 / default 0.606; with
        // 2,048 rows refitted every 1,024: 0.407 / 0.358).
        let mut detector = VectorConfig::default();
        detector.models.reservoir = 4096;
        detector.models.refit_every = 4096;
        detector.hysteresis.refractory = 30;
        HostsConfig {
            enabled: true,
            row_ms: 10_000,
            schema_rows: 3,
            max_dims: 64,
            max_sources: 200,
            idle_evict_ms: 3_600_000,
            snapshot_rows: 360,
            relayout_rows: 60,
            evidence: 5,
            detector,
        }
    }
}

impl HostsConfig {
    /// Every problem, named by its config key.
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        if self.row_ms <= 0 {
            e.push("detect.hosts.row_ms: must be greater than 0".into());
        }
        if self.schema_rows == 0 {
            e.push("detect.hosts.schema_rows: must be greater than 0".into());
        }
        if self.max_dims < 2 {
            e.push("detect.hosts.max_dims: must be at least 2".into());
        }
        if self.relayout_rows == 0 {
            e.push("detect.hosts.relayout_rows: must be greater than 0".into());
        }
        if self.max_sources == 0 {
            e.push("detect.hosts.max_sources: must be greater than 0".into());
        }
        if self.idle_evict_ms < 0 {
            e.push("detect.hosts.idle_evict_ms: must not be negative".into());
        }
        if self.detector.models.forest.is_none() && self.detector.models.kmeans.is_none() {
            e.push(
                "detect.hosts.detector.models: needs a forest or k-means (or set enabled = false)"
                    .into(),
            );
        }
        e
    }
}

/// One source's row assembly and detector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Host {
    /// Bucket index of the open row and its per-metric (sum, count).
    open: i64,
    cells: BTreeMap<String, (f64, u32)>,
    /// Names seen while the layout is not fixed yet, and rows seen.
    seen: BTreeSet<String>,
    rows_seen: u32,
    /// The fixed layout (empty while learning it; with fewer than 2
    /// metrics there is no detector).
    names: Vec<String>,
    /// Consecutive rows whose metrics differ from the layout.
    #[serde(default)]
    off_layout: u32,
    /// Layouts learned so far (a fit for an older one is dropped).
    #[serde(default)]
    generation: u64,
    /// Last value of each dimension (NaN until first seen).
    last: Vec<f64>,
    det: Option<VectorDetector>,
    /// Rows fed since the last snapshot.
    since_snapshot: u64,
    #[serde(skip)]
    touched: u64,
}

impl Host {
    fn new(open: i64) -> Self {
        Host {
            open,
            cells: BTreeMap::new(),
            seen: BTreeSet::new(),
            rows_seen: 0,
            names: Vec::new(),
            off_layout: 0,
            generation: 0,
            last: Vec::new(),
            det: None,
            since_snapshot: 0,
            touched: 0,
        }
    }

    fn summary(&self, source: &str, last_ts_ms: i64) -> HostSummary {
        let (rows, fitted) = self
            .det
            .as_ref()
            .map_or((0, false), |d| (d.rows(), d.fitted()));
        HostSummary {
            source: source.to_string(),
            metrics: if self.det.is_some() {
                self.names.clone()
            } else {
                Vec::new()
            },
            rows,
            fitted,
            layout_generation: self.generation + 1,
            last_ts_ms,
        }
    }

    fn layout_fixed(&self, cfg: &HostsConfig) -> bool {
        self.rows_seen >= cfg.schema_rows
    }
}

pub struct HostBank {
    cfg: HostsConfig,
    hosts: HashMap<String, Host>,
    dirty: HashSet<String>,
    tick: u64,
    refused: u64,
    evicted: u64,
}

impl HostBank {
    pub fn new(cfg: HostsConfig) -> Self {
        HostBank {
            cfg,
            hosts: HashMap::new(),
            dirty: HashSet::new(),
            tick: 0,
            refused: 0,
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The metrics of `source`'s vector, in order (empty until fixed, or
    /// when it has fewer than 2).
    pub fn layout(&self, source: &str) -> &[String] {
        self.hosts
            .get(source)
            .filter(|h| h.det.is_some())
            .map_or(&[], |h| &h.names)
    }

    /// Rows learned or scored for `source`, and whether its models are fitted.
    pub fn progress(&self, source: &str) -> (u64, bool) {
        self.hosts
            .get(source)
            .and_then(|h| h.det.as_ref())
            .map_or((0, false), |d| (d.rows(), d.fitted()))
    }

    /// Feed one sample; an anomaly when the row it closes raises.
    pub fn observe(&mut self, m: &MetricSample) -> Option<Anomaly> {
        if !self.cfg.enabled || !m.value.is_finite() {
            return None;
        }
        self.tick += 1;
        let idx = m.ts_ms.div_euclid(self.cfg.row_ms.max(1));
        if !self.hosts.contains_key(&m.source) {
            if !self.make_room(m.ts_ms) {
                self.refused += 1;
                return None;
            }
            self.hosts.insert(m.source.clone(), Host::new(idx));
        }
        let cfg = &self.cfg;
        let h = self.hosts.get_mut(&m.source)?;
        h.touched = self.tick;
        if idx < h.open {
            return None; // late for the vector
        }
        let mut out = None;
        if idx > h.open {
            let (closed, ts) = (std::mem::take(&mut h.cells), (h.open + 1) * cfg.row_ms);
            h.open = idx;
            let (anomaly, snapshot) = close_row(cfg, &m.source, h, closed, ts);
            out = anomaly;
            if snapshot {
                self.dirty.insert(m.source.clone());
            }
        }
        let h = self.hosts.get_mut(&m.source)?;
        let c = h.cells.entry(m.name.clone()).or_insert((0.0, 0));
        c.0 += m.value;
        c.1 += 1;
        out
    }

    /// Restore sources from stored records; returns how many were usable.
    pub fn restore(&mut self, records: &[(String, DetectorRecord)]) -> usize {
        let mut n = 0;
        for (key, rec) in records {
            let DetectorRecord::V1 { kind, state, .. } = rec;
            let Some(source) = key.strip_prefix(PREFIX) else {
                continue;
            };
            if kind != KIND {
                continue;
            }
            let Ok(mut h) = serde_json::from_value::<Host>(state.clone()) else {
                continue;
            };
            if let Some(d) = &mut h.det {
                if d.dims() != h.names.len() || h.last.len() != h.names.len() {
                    continue; // inconsistent: relearn this source
                }
                // The configuration in force wins over the stored one.
                d.cfg = self.cfg.detector.clone();
            }
            self.tick += 1;
            h.touched = self.tick;
            self.hosts.insert(source.to_string(), h);
            n += 1;
        }
        n
    }

    /// Records of the sources due a snapshot; `all` takes every source
    /// (at stop).
    pub fn take_dirty(&mut self, all: bool) -> Vec<(String, DetectorRecord)> {
        let keys: Vec<String> = if all {
            self.dirty.clear();
            self.hosts.keys().cloned().collect()
        } else {
            self.dirty.drain().collect()
        };
        keys.into_iter()
            .filter_map(|k| {
                let h = self.hosts.get_mut(&k)?;
                h.since_snapshot = 0;
                let state = serde_json::to_value(&*h).ok()?;
                let last_ts_ms = h.open * self.cfg.row_ms;
                Some((
                    format!("{PREFIX}{k}"),
                    DetectorRecord::V1 {
                        kind: KIND.into(),
                        last_ts_ms,
                        state,
                    },
                ))
            })
            .collect()
    }

    /// Retraining jobs due, keyed `host|<source>#<layout generation>`.
    pub fn fit_jobs(&mut self) -> Vec<(String, FitJob)> {
        self.hosts
            .iter_mut()
            .filter_map(|(k, h)| {
                let job = h.det.as_mut()?.fit_job()?;
                Some((format!("{PREFIX}{k}#{}", h.generation), job))
            })
            .collect()
    }

    /// Install a background fit (ignored if the source went or its layout
    /// changed since the fit started).
    pub fn install(&mut self, key: &str, models: Option<Models>) {
        let Some((source, generation)) = key.strip_prefix(PREFIX).and_then(|k| k.rsplit_once('#'))
        else {
            return;
        };
        let Some(h) = self.hosts.get_mut(source) else {
            return;
        };
        if generation.parse() != Ok(h.generation) {
            return;
        }
        if let Some(d) = h.det.as_mut() {
            d.install(models);
            self.dirty.insert(source.to_string());
        }
    }

    /// Room for one more source: when full, the least recently updated
    /// goes if it has been idle for `idle_evict_ms` of event time;
    /// otherwise the newcomer is not tracked (so many sources take turns
    /// at nothing: the ones already learning keep their place).
    fn make_room(&mut self, now_ms: i64) -> bool {
        if self.hosts.len() < self.cfg.max_sources.max(1) {
            return true;
        }
        let row_ms = self.cfg.row_ms.max(1);
        let idle = self
            .hosts
            .values()
            .min_by_key(|h| h.touched)
            .is_some_and(|h| now_ms - h.open * row_ms >= self.cfg.idle_evict_ms);
        if idle {
            self.evicted += evict_least_recent(
                &mut self.hosts,
                &mut self.dirty,
                self.cfg.max_sources,
                1,
                |h| h.touched,
            ) as u64;
        }
        idle
    }

    /// Samples of sources not tracked because the bank was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Sources dropped to make room for others.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Sources whose models are fitted (rows are scored).
    pub fn fitted(&self) -> usize {
        self.hosts
            .values()
            .filter(|h| h.det.as_ref().is_some_and(VectorDetector::fitted))
            .count()
    }

    /// Every source's summary as held in memory, by source name.
    pub fn summaries(&self) -> Vec<HostSummary> {
        let mut out: Vec<_> = self
            .hosts
            .iter()
            .map(|(k, h)| h.summary(k, h.open * self.cfg.row_ms))
            .collect();
        out.sort_by(|a, b| a.source.cmp(&b.source));
        out
    }
}

/// What `GET /observability/detectors` shows of one source's vector.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostSummary {
    pub source: String,
    /// The vector's metrics, in order (empty while the layout is learned).
    pub metrics: Vec<String>,
    /// Rows learned or scored.
    pub rows: u64,
    /// Whether a model set is fitted (rows are scored, not only learned).
    pub fitted: bool,
    /// Layouts learned so far (1 = the first).
    pub layout_generation: u64,
    /// End of the last row seen, ms since the epoch.
    pub last_ts_ms: i64,
}

/// The summary of a stored `host|<source>` record (`None`: not one).
pub fn summarize(key: &str, rec: &DetectorRecord) -> Option<HostSummary> {
    let DetectorRecord::V1 {
        kind,
        last_ts_ms,
        state,
    } = rec;
    let source = key.strip_prefix(PREFIX)?;
    if kind != KIND {
        return None;
    }
    let h: Host = serde_json::from_value(state.clone()).ok()?;
    Some(h.summary(source, *last_ts_ms))
}

/// Turn a closed bucket into a row of `h`'s vector and feed it. Returns the
/// anomaly (if the row raised) and whether the source is due a snapshot.
fn close_row(
    cfg: &HostsConfig,
    source: &str,
    h: &mut Host,
    cells: BTreeMap<String, (f64, u32)>,
    ts_ms: i64,
) -> (Option<Anomaly>, bool) {
    if cells.is_empty() {
        return (None, false);
    }
    if h.layout_fixed(cfg) {
        let grown =
            h.names.len() < cfg.max_dims && cells.keys().any(|k| h.names.binary_search(k).is_err());
        let shrunk = h.names.iter().any(|n| !cells.contains_key(n));
        h.off_layout = if grown || shrunk { h.off_layout + 1 } else { 0 };
        if h.off_layout >= cfg.relayout_rows {
            // The source's metrics changed for good: learn them afresh.
            *h = Host {
                touched: h.touched,
                generation: h.generation + 1,
                ..Host::new(h.open)
            };
        }
    }
    if !h.layout_fixed(cfg) {
        h.seen.extend(cells.keys().cloned());
        h.rows_seen += 1;
        if !h.layout_fixed(cfg) {
            return (None, h.rows_seen == 1);
        }
        h.names = std::mem::take(&mut h.seen)
            .into_iter()
            .take(cfg.max_dims)
            .collect();
        if h.names.len() < 2 {
            return (None, true);
        }
        h.last = vec![f64::NAN; h.names.len()];
        h.det = Some(VectorDetector::new(h.names.len(), cfg.detector.clone()));
    }
    let Some(det) = h.det.as_mut() else {
        return (None, false);
    };
    for (j, name) in h.names.iter().enumerate() {
        if let Some(&(sum, n)) = cells.get(name) {
            h.last[j] = sum / f64::from(n.max(1));
        }
    }
    if h.last.iter().any(|v| !v.is_finite()) {
        return (None, false); // a metric of the layout not seen yet
    }
    h.since_snapshot += 1;
    let snapshot = h.since_snapshot >= cfg.snapshot_rows;
    if !det.fitted() {
        det.learn(&h.last);
        return (None, snapshot);
    }
    let expected = det.expected();
    let v = det.update(&h.last);
    if v.transition != Transition::Raised {
        return (None, snapshot);
    }
    let mut evidence: Vec<Evidence> = v
        .evidence
        .iter()
        .take(cfg.evidence)
        .map(|&(j, w)| Evidence {
            signal: format!("metric:{}", h.names[j]),
            weight: w.clamp(0.0, 1.0),
            detail: format!("observed {}, expected {:.4}", h.last[j], expected[j]),
        })
        .collect();
    evidence.extend(part_evidence(
        &v.parts,
        &format!(" over {} metrics", h.names.len()),
    ));
    let top: Vec<&str> = v
        .evidence
        .iter()
        .take(3)
        .map(|&(j, _)| h.names[j].as_str())
        .collect();
    let anomaly = Anomaly {
        ts_ms,
        service: source.to_string(),
        category: "metrics".into(),
        kind: "HOST_METRICS_ANOMALY".into(),
        severity: if v.score >= 0.9 {
            Severity::High
        } else {
            Severity::Medium
        },
        score: v.score,
        signature: None,
        auto_fixable: false,
        summary: format!(
            "the {} metrics of {source} are jointly unusual (score {:.2}; most off: {})",
            h.names.len(),
            v.score,
            top.join(", ")
        ),
        count: 1,
        evidence,
    };
    (Some(anomaly), snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(source: &str, name: &str, value: f64, ts_ms: i64) -> MetricSample {
        MetricSample {
            ts_ms,
            source: source.into(),
            name: name.into(),
            value,
            labels: BTreeMap::new(),
        }
    }

    /// Deterministic wobble in [-1, 1].
    fn wobble(i: usize, k: usize) -> f64 {
        (((i * 7919 + k * 104_729) % 1000) as f64 / 500.0) - 1.0
    }

    /// Row `i` of a host with three related metrics; `shift` moves `queue`.
    fn row(bank: &mut HostBank, i: usize, shift: f64) -> Vec<Anomaly> {
        let ts = i as i64 * 10_000;
        let cpu = 50.0 + 5.0 * wobble(i, 0);
        [
            sample("web-1", "cpu", cpu, ts),
            sample("web-1", "latency_ms", 2.0 * cpu + wobble(i, 1), ts + 10),
            sample("web-1", "queue", 10.0 + wobble(i, 2) + shift, ts + 20),
        ]
        .iter()
        .filter_map(|m| bank.observe(m))
        .collect()
    }

    fn fit_all(bank: &mut HostBank) {
        for (k, job) in bank.fit_jobs() {
            bank.install(&k, job.run());
        }
    }

    fn trained() -> HostBank {
        let mut bank = HostBank::new(HostsConfig::default());
        for i in 0..400 {
            let learning = !bank.progress("web-1").1;
            let found = row(&mut bank, i, 0.0);
            assert!(!learning || found.is_empty(), "learning rows never raise");
            fit_all(&mut bank);
        }
        bank
    }

    #[test]
    fn the_layout_is_fixed_from_the_first_rows_in_name_order() {
        let bank = trained();
        assert_eq!(bank.layout("web-1"), ["cpu", "latency_ms", "queue"]);
        let (rows, fitted) = bank.progress("web-1");
        assert!(fitted);
        assert!(rows >= 390, "{rows}");
    }

    #[test]
    fn a_planted_excursion_raises_one_anomaly_naming_the_metric() {
        let mut bank = trained();
        let mut quiet = 0;
        for i in 400..600 {
            quiet += row(&mut bank, i, 0.0).len();
            fit_all(&mut bank);
        }
        assert!(quiet <= 1, "{quiet} anomalies on quiet rows");
        let mut found = Vec::new();
        for i in 600..605 {
            found.extend(row(&mut bank, i, 40.0));
        }
        // The row closes when the next bucket's first sample arrives.
        found.extend(row(&mut bank, 605, 0.0));
        assert_eq!(found.len(), 1, "{found:?}");
        let a = &found[0];
        assert_eq!(a.kind, "HOST_METRICS_ANOMALY");
        assert_eq!(a.service, "web-1");
        assert!((0.5..=1.0).contains(&a.score), "{}", a.score);
        assert_eq!(a.evidence[0].signal, "metric:queue", "{:?}", a.evidence);
    }

    #[test]
    fn a_metric_added_for_good_is_learned_into_a_new_layout() {
        let mut bank = trained();
        // A fourth metric appears on every row from now on.
        let cfg = HostsConfig::default();
        for i in 400..(400 + cfg.relayout_rows as usize + 10) {
            row(&mut bank, i, 0.0);
            let ts = i as i64 * 10_000 + 30;
            bank.observe(&sample("web-1", "errors", wobble(i, 3), ts));
        }
        assert_eq!(
            bank.layout("web-1"),
            ["cpu", "errors", "latency_ms", "queue"]
        );
        // A fit started for the old layout does not land in the new one.
        let stale = trained().fit_jobs();
        assert!(stale.is_empty(), "the trained bank has no fit due");
        let mut old = trained();
        let every = HostsConfig::default().detector.models.refit_every as usize;
        for i in 400..(400 + every) {
            row(&mut old, i, 0.0);
        }
        let (key, job) = old.fit_jobs().pop().expect("a refit is due");
        assert_eq!(key, "host|web-1#0");
        bank.install(&key, job.run());
        assert!(!bank.progress("web-1").1, "stale 3-metric models refused");
        let (rows, fitted) = bank.progress("web-1");
        assert!(
            !fitted && rows < 20,
            "relearning: {rows} rows, fitted {fitted}"
        );
    }

    #[test]
    fn a_metric_missing_from_some_rows_keeps_the_layout() {
        let mut bank = trained();
        let before = bank.progress("web-1").0;
        // `queue` only every other row (a slower scrape): forward-filled.
        for i in 400..600 {
            let ts = i as i64 * 10_000;
            bank.observe(&sample("web-1", "cpu", 50.0 + wobble(i, 0), ts));
            bank.observe(&sample("web-1", "latency_ms", 100.0 + wobble(i, 1), ts + 1));
            if i % 2 == 0 {
                bank.observe(&sample("web-1", "queue", 10.0 + wobble(i, 2), ts + 2));
            }
        }
        assert_eq!(bank.layout("web-1"), ["cpu", "latency_ms", "queue"]);
        assert!(bank.progress("web-1").0 >= before + 190);
    }

    #[test]
    fn a_source_with_one_metric_gets_no_vector() {
        let mut bank = HostBank::new(HostsConfig::default());
        for i in 0..10 {
            assert!(
                bank.observe(&sample("db", "cpu", 1.0, i * 10_000))
                    .is_none()
            );
        }
        assert!(bank.layout("db").is_empty());
        assert!(bank.fit_jobs().is_empty());
    }

    #[test]
    fn restored_state_keeps_the_models_and_scores_at_once() {
        let mut bank = trained();
        let recs = bank.take_dirty(true);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].0, "host|web-1");
        let sum = summarize(&recs[0].0, &recs[0].1).expect("a host record");
        assert_eq!(sum.source, "web-1");
        assert_eq!(sum.metrics, ["cpu", "latency_ms", "queue"]);
        assert!(sum.fitted && sum.rows >= 390, "{sum:?}");
        let mut again = HostBank::new(HostsConfig::default());
        assert_eq!(again.restore(&recs), 1);
        assert_eq!(again.progress("web-1"), bank.progress("web-1"));
        let mut found = Vec::new();
        for i in 400..403 {
            found.extend(row(&mut again, i, 40.0));
        }
        assert!(!found.is_empty(), "no relearning after a restore");
    }

    #[test]
    fn sources_are_bounded_and_bad_config_is_named() {
        let cfg = HostsConfig {
            max_sources: 2,
            ..HostsConfig::default()
        };
        let mut bank = HostBank::new(cfg);
        for s in ["a", "b", "c"] {
            bank.observe(&sample(s, "x", 1.0, 0));
        }
        // Full, and nobody idle: the newcomer waits, the others keep learning.
        assert_eq!(bank.len(), 2);
        assert_eq!((bank.refused(), bank.evicted()), (1, 0));
        bank.observe(&sample("b", "x", 1.0, 3_600_000));
        // `a` has been silent an hour: `c` takes its place.
        bank.observe(&sample("c", "x", 1.0, 3_600_000));
        assert_eq!(bank.len(), 2);
        assert_eq!((bank.refused(), bank.evicted()), (1, 1));
        assert!(bank.hosts.contains_key("c") && !bank.hosts.contains_key("a"));
        let live: Vec<_> = bank.summaries().into_iter().map(|h| h.source).collect();
        assert_eq!(live, ["b", "c"]);
        let bad = HostsConfig {
            row_ms: 0,
            max_dims: 1,
            ..HostsConfig::default()
        };
        let e = bad.validate().join("; ");
        assert!(
            e.contains("detect.hosts.row_ms") && e.contains("detect.hosts.max_dims"),
            "{e}"
        );
    }
}
