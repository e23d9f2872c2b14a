//! Counters for `/metrics` (Prometheus text format).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    events_accepted: AtomicU64,
    batches_accepted: AtomicU64,
}

impl Metrics {
    pub fn accepted(&self, events: u64) {
        self.events_accepted.fetch_add(events, Ordering::Relaxed);
        self.batches_accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(
        &self,
        out: &mut String,
        agents: &[crate::tree::ChildStatus],
        wal_bytes: u64,
        incidents: usize,
        detect: &agents::detect::gauges::DetectFigures,
    ) {
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            "selfheal_events_accepted_total",
            "Events accepted durably.",
            self.events_accepted.load(Ordering::Relaxed),
        );
        counter(
            "selfheal_batches_accepted_total",
            "Request bodies accepted durably.",
            self.batches_accepted.load(Ordering::Relaxed),
        );
        for (name, help, v) in [
            (
                "selfheal_detect_streams_evicted_total",
                "Univariate detector streams dropped to make room (least recently updated first).",
                detect.streams_evicted_total,
            ),
            (
                "selfheal_detect_host_sources_evicted_total",
                "Per-source metric vectors dropped to make room (only sources idle for detect.hosts.idle_evict_ms).",
                detect.host_sources_evicted_total,
            ),
            (
                "selfheal_detect_host_samples_refused_total",
                "Samples of sources given no metric vector because every place was taken by an active source.",
                detect.host_samples_refused_total,
            ),
            (
                "selfheal_detect_fits_total",
                "Model sets fitted in the background and installed.",
                detect.fits_total,
            ),
            (
                "selfheal_detect_anomalies_total",
                "Statistical anomalies raised (signature matches not included).",
                detect.anomalies_total,
            ),
        ] {
            counter(name, help, v);
        }
        let mut gauge = |name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            "selfheal_detect_streams",
            "Univariate detector streams held in memory.",
            detect.streams,
        );
        gauge(
            "selfheal_detect_host_sources",
            "Sources with a metric vector held in memory.",
            detect.host_sources,
        );
        gauge(
            "selfheal_detect_host_sources_fitted",
            "Sources whose vector models are fitted (rows are scored, not only learned).",
            detect.host_sources_fitted,
        );
        let _ = writeln!(
            out,
            "# HELP selfheal_wal_bytes Bytes held by the write-ahead log.\n# TYPE selfheal_wal_bytes gauge\nselfheal_wal_bytes {wal_bytes}"
        );
        let _ = writeln!(
            out,
            "# HELP selfheal_incidents Incidents stored.\n# TYPE selfheal_incidents gauge\nselfheal_incidents {incidents}"
        );
        let _ = writeln!(
            out,
            "# HELP selfheal_agent_restarts_total Restarts per supervised actor.\n# TYPE selfheal_agent_restarts_total counter"
        );
        for a in agents {
            let _ = writeln!(
                out,
                "selfheal_agent_restarts_total{{agent=\"{}\"}} {}",
                a.path, a.restarts
            );
        }
        let _ = writeln!(
            out,
            "# HELP selfheal_agent_events_total Events processed per actor.\n# TYPE selfheal_agent_events_total counter"
        );
        for a in agents {
            let _ = writeln!(
                out,
                "selfheal_agent_events_total{{agent=\"{}\"}} {}",
                a.path, a.events_processed
            );
        }
    }
}
