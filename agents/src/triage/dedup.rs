//! Folding anomalies into incidents: the same fingerprint (service and
//! failure kind) within the dedup window updates one incident's count and
//! evidence instead of opening another. Pure: the caller looks incidents up
//! and persists the result.

use std::collections::HashMap;

use state::keys::IdGen;
use state::model::{Anomaly, Incident, IncidentStatus, TraceCarrier};

#[derive(Clone, Debug)]
pub struct DedupConfig {
    /// Signals this close (ms) to an incident's last one fold into it.
    pub window_ms: i64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            window_ms: 15 * 60 * 1000,
        }
    }
}

/// The dedup key of an anomaly.
pub fn fingerprint(a: &Anomaly) -> String {
    format!("{}|{}", a.service, a.kind)
}

/// Fold `anomalies` into incidents. `lookup` finds the newest stored
/// incident with a fingerprint; `new_trace` makes the trace carrier of a
/// newly opened incident. Returns every incident created or changed.
pub fn fold(
    anomalies: &[Anomaly],
    mut lookup: impl FnMut(&str) -> Option<Incident>,
    ids: &IdGen,
    now_ms: i64,
    cfg: &DedupConfig,
    mut new_trace: impl FnMut() -> TraceCarrier,
) -> Vec<Incident> {
    let mut touched: Vec<Incident> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for a in anomalies {
        let fp = fingerprint(a);
        let slot = match index.get(&fp) {
            Some(&i) => Some(i),
            None => lookup(&fp).and_then(|inc| {
                let live = inc.status.is_active() || inc.status == IncidentStatus::Resolved;
                // The window is in event time: logs that arrive late (a
                // backfill, a replay, a shipper catching up) still fold.
                (live && a.ts_ms - inc.last_seen_ms <= cfg.window_ms).then(|| {
                    touched.push(inc);
                    index.insert(fp.clone(), touched.len() - 1);
                    touched.len() - 1
                })
            }),
        };
        match slot {
            Some(i) => absorb(&mut touched[i], a, now_ms),
            None => {
                touched.push(open(a, fp.clone(), ids, now_ms, new_trace()));
                index.insert(fp, touched.len() - 1);
            }
        }
    }
    touched
}

fn open(
    a: &Anomaly,
    fingerprint: String,
    ids: &IdGen,
    now_ms: i64,
    trace: TraceCarrier,
) -> Incident {
    let mut inc = Incident {
        id: ids.next(now_ms),
        fingerprint,
        service: a.service.clone(),
        services: vec![a.service.clone()],
        category: a.category.clone(),
        kind: a.kind.clone(),
        severity: a.severity,
        status: IncidentStatus::Open,
        title: format!("{} on {}: {}", a.kind, a.service, a.summary),
        count: a.count,
        auto_fixable: a.auto_fixable,
        signatures: a.signature.iter().cloned().collect(),
        reasons: vec![reason(a)],
        max_score: a.score,
        first_seen_ms: a.ts_ms,
        last_seen_ms: a.ts_ms,
        updated_ms: now_ms,
        trace,
        timeline: Vec::new(),
        classification: None,
    };
    inc.push_timeline(now_ms, "opened", a.summary.clone());
    inc
}

fn reason(a: &Anomaly) -> String {
    match &a.signature {
        Some(s) => format!(
            "signature {s} ({}/{}, {:?}) matched: {}",
            a.category, a.kind, a.severity, a.summary
        ),
        None => format!("anomaly score {:.2}: {}", a.score, a.summary),
    }
}

fn absorb(inc: &mut Incident, a: &Anomaly, now_ms: i64) {
    if inc.status == IncidentStatus::Resolved {
        inc.status = IncidentStatus::Open;
        inc.push_timeline(now_ms, "reopened", a.summary.clone());
    }
    inc.count += a.count;
    inc.last_seen_ms = inc.last_seen_ms.max(a.ts_ms);
    inc.updated_ms = now_ms;
    inc.max_score = inc.max_score.max(a.score);
    if a.severity > inc.severity {
        inc.severity = a.severity;
        inc.push_timeline(now_ms, "escalated", format!("severity {:?}", a.severity));
    }
    if !inc.services.contains(&a.service) {
        inc.services.push(a.service.clone());
    }
    if let Some(sig) = &a.signature
        && !inc.signatures.contains(sig)
    {
        inc.signatures.push(sig.clone());
        inc.reasons.push(reason(a));
        inc.push_timeline(
            now_ms,
            "signal",
            format!("new signature {sig}: {}", a.summary),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::model::Severity;

    fn anomaly(service: &str, sig: &str, count: u64, ts: i64) -> Anomaly {
        Anomaly {
            ts_ms: ts,
            service: service.into(),
            category: "database".into(),
            kind: "DATABASE_CONNECTION".into(),
            severity: Severity::High,
            score: 1.0,
            signature: Some(sig.into()),
            auto_fixable: true,
            summary: "connection refused".into(),
            count,
            evidence: vec![],
        }
    }

    #[test]
    fn same_fingerprint_in_window_folds_and_counts() {
        let ids = IdGen::default();
        let cfg = DedupConfig { window_ms: 1000 };
        let first = fold(
            &[anomaly("api", "a", 10, 0)],
            |_| None,
            &ids,
            0,
            &cfg,
            Default::default,
        );
        assert_eq!(first.len(), 1);
        let stored = first[0].clone();
        let again = fold(
            &[anomaly("api", "a", 5, 500), anomaly("api", "b", 1, 600)],
            |_| Some(stored.clone()),
            &ids,
            600,
            &cfg,
            Default::default,
        );
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, stored.id);
        assert_eq!(again[0].count, 16);
        assert_eq!(again[0].signatures, vec!["a", "b"]);
        // Outside the window: a new incident.
        let later = fold(
            &[anomaly("api", "a", 1, 5000)],
            |_| Some(again[0].clone()),
            &ids,
            5000,
            &cfg,
            Default::default,
        );
        assert_ne!(later[0].id, stored.id);
        assert_eq!(later[0].count, 1);
    }

    #[test]
    fn late_logs_fold_by_their_own_time_not_arrival_time() {
        let ids = IdGen::default();
        let cfg = DedupConfig { window_ms: 1000 };
        // Logs of 10:00 arriving three hours later, batch after batch.
        let three_hours = 3 * 3600 * 1000;
        let first = fold(
            &[anomaly("api", "a", 1, 100)],
            |_| None,
            &ids,
            three_hours,
            &cfg,
            Default::default,
        );
        let again = fold(
            &[anomaly("api", "a", 1, 300)],
            |_| Some(first[0].clone()),
            &ids,
            three_hours + 50,
            &cfg,
            Default::default,
        );
        assert_eq!(again[0].id, first[0].id);
        assert_eq!(again[0].count, 2);
    }

    #[test]
    fn a_resolved_incident_reopens_within_the_window() {
        let ids = IdGen::default();
        let cfg = DedupConfig::default();
        let mut inc = fold(
            &[anomaly("api", "a", 1, 0)],
            |_| None,
            &ids,
            0,
            &cfg,
            Default::default,
        )
        .remove(0);
        inc.transition("resolve", 10).unwrap();
        let back = fold(
            &[anomaly("api", "a", 1, 20)],
            |_| Some(inc.clone()),
            &ids,
            20,
            &cfg,
            Default::default,
        );
        assert_eq!(back[0].id, inc.id);
        assert_eq!(back[0].status, IncidentStatus::Open);
        assert_eq!(back[0].timeline.last().unwrap().kind, "reopened");
    }
}
