//! What the detect stage reports about itself while it runs: the counters
//! on `/metrics` and the live view of `GET /observability/detectors`.
//!
//! One `Arc<DetectGauges>` is shared by the stage and the API and outlives
//! restarts of the stage, so the `*_total` counters count since the process
//! started (a restarted stage adds to them, it does not reset them).
//! Fits and anomalies are counted as they happen; the sizes, the eviction
//! and refusal counts and the per-source view are published together, at
//! most once a second and within a second of the last batch.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::hosts::HostSummary;

/// Counts kept by the stream bank since it was created (it restarts with
/// the stage; [`DetectGauges::publish`] turns them into process totals).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BankCounts {
    /// Univariate streams dropped to make room.
    pub streams_evicted: u64,
    /// Per-source vectors dropped to make room.
    pub hosts_evicted: u64,
    /// Samples of sources not given a vector because the bank was full.
    pub host_samples_refused: u64,
}

/// The stage's state as last published, in one consistent read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DetectFigures {
    /// Univariate streams tracked now.
    pub streams: u64,
    pub streams_evicted_total: u64,
    /// Sources with a metric vector now, and how many have models fitted.
    pub host_sources: u64,
    pub host_sources_fitted: u64,
    pub host_sources_evicted_total: u64,
    pub host_samples_refused_total: u64,
    /// Model sets fitted in the background and installed.
    pub fits_total: u64,
    /// Statistical anomalies raised (signature matches not included).
    pub anomalies_total: u64,
}

/// Per-source vectors as the stage holds them in memory.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiveHosts {
    /// Wall-clock ms when the stage last refreshed this view.
    pub as_of_ms: i64,
    pub hosts: Vec<HostSummary>,
}

#[derive(Debug, Default)]
pub struct DetectGauges {
    streams: AtomicU64,
    streams_evicted: AtomicU64,
    host_sources: AtomicU64,
    host_sources_fitted: AtomicU64,
    hosts_evicted: AtomicU64,
    host_samples_refused: AtomicU64,
    fits: AtomicU64,
    anomalies: AtomicU64,
    hosts: Mutex<Option<LiveHosts>>,
}

impl DetectGauges {
    /// Publish the bank's sizes, and what its counts gained since `seen`
    /// (which becomes `now`).
    pub fn publish(
        &self,
        streams: usize,
        hosts: (usize, usize),
        seen: &mut BankCounts,
        now: BankCounts,
    ) {
        self.streams.store(streams as u64, Ordering::Relaxed);
        self.host_sources.store(hosts.0 as u64, Ordering::Relaxed);
        self.host_sources_fitted
            .store(hosts.1 as u64, Ordering::Relaxed);
        let gain = |a: &AtomicU64, now: u64, was: u64| {
            a.fetch_add(now.saturating_sub(was), Ordering::Relaxed);
        };
        gain(
            &self.streams_evicted,
            now.streams_evicted,
            seen.streams_evicted,
        );
        gain(&self.hosts_evicted, now.hosts_evicted, seen.hosts_evicted);
        gain(
            &self.host_samples_refused,
            now.host_samples_refused,
            seen.host_samples_refused,
        );
        *seen = now;
    }

    pub fn fitted(&self) {
        self.fits.fetch_add(1, Ordering::Relaxed);
    }

    pub fn raised(&self, n: usize) {
        self.anomalies.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn set_hosts(&self, live: LiveHosts) {
        *self.hosts.lock().unwrap_or_else(|p| p.into_inner()) = Some(live);
    }

    /// The live per-source view; `None` until the stage has published one.
    pub fn hosts(&self) -> Option<LiveHosts> {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn figures(&self) -> DetectFigures {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DetectFigures {
            streams: get(&self.streams),
            streams_evicted_total: get(&self.streams_evicted),
            host_sources: get(&self.host_sources),
            host_sources_fitted: get(&self.host_sources_fitted),
            host_sources_evicted_total: get(&self.hosts_evicted),
            host_samples_refused_total: get(&self.host_samples_refused),
            fits_total: get(&self.fits),
            anomalies_total: get(&self.anomalies),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_survive_a_bank_that_starts_again_from_zero() {
        let g = DetectGauges::default();
        let mut seen = BankCounts::default();
        let counts = |e| BankCounts {
            streams_evicted: e,
            hosts_evicted: 1,
            host_samples_refused: 2 * e,
        };
        g.publish(10, (2, 1), &mut seen, counts(5));
        g.publish(12, (2, 2), &mut seen, counts(7));
        // The stage restarted: a new bank counts from zero.
        seen = BankCounts::default();
        g.publish(3, (1, 0), &mut seen, counts(4));
        let f = g.figures();
        assert_eq!(f.streams, 3);
        assert_eq!((f.host_sources, f.host_sources_fitted), (1, 0));
        assert_eq!(f.streams_evicted_total, 7 + 4);
        assert_eq!(f.host_sources_evicted_total, 1 + 1);
        assert_eq!(f.host_samples_refused_total, 14 + 8);
    }
}
