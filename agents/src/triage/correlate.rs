//! Cross-service correlation: anomalies of services linked in the
//! dependency graph, within a time window, become one incident listing
//! every affected service. Also: flapping (an incident resolved and
//! re-opened within the flap window is marked flapping) and auto-resolve
//! (an incident whose signals stayed quiet long enough).
//!
//! Pure: the triage actor asks [`Correlator::find`] when an anomaly has no
//! incident of its own, merges incidents opened in the same batch with
//! [`merge_new`], and feeds every committed incident back with
//! [`Correlator::note`].

use std::collections::{HashMap, HashSet};

use state::keys::Id;
use state::model::{Incident, IncidentStatus};

use crate::rca::topology::Topology;

#[derive(Clone, Debug)]
pub struct CorrelateConfig {
    /// Signals of linked services this close (ms) to an incident's last
    /// signal join it.
    pub window_ms: i64,
    /// Re-opened this soon (ms) after being resolved = flapping.
    pub flap_window_ms: i64,
    /// No signals for this long (ms) = resolved automatically (0 = never).
    pub quiet_ms: i64,
}

impl Default for CorrelateConfig {
    fn default() -> Self {
        Self {
            window_ms: 5 * 60 * 1000,
            flap_window_ms: 30 * 60 * 1000,
            quiet_ms: 0,
        }
    }
}

/// Whether two services are linked: one depends on the other (directly or
/// not) or both call a common dependency.
pub fn linked(topo: &Topology, a: &str, b: &str) -> bool {
    if a == b {
        return false;
    }
    let da = topo.dependencies(a);
    if da.contains_key(b) {
        return true;
    }
    let db = topo.dependencies(b);
    db.contains_key(a) || da.keys().any(|d| db.contains_key(d))
}

#[derive(Clone, Debug)]
struct Recent {
    id: Id,
    services: Vec<String>,
    last_seen_ms: i64,
    active: bool,
}

/// Recently active incidents, for correlation.
#[derive(Clone, Debug, Default)]
pub struct Correlator {
    recent: Vec<Recent>,
}

impl Correlator {
    pub fn note(&mut self, inc: &Incident) {
        let r = Recent {
            id: inc.id,
            services: inc.services.clone(),
            last_seen_ms: inc.last_seen_ms,
            active: inc.status.is_active(),
        };
        match self.recent.iter_mut().find(|x| x.id == inc.id) {
            Some(slot) => *slot = r,
            None => self.recent.push(r),
        }
        if self.recent.len() > 1024 {
            self.recent
                .sort_by_key(|r| std::cmp::Reverse(r.last_seen_ms));
            self.recent.truncate(512);
        }
    }

    /// The active incident, already holding `service` (a signal that was
    /// correlated into it before) or linked to it, and seen within the
    /// window of `ts_ms`, that a new signal of `service` should join (the
    /// most recent one), excluding `taken`.
    pub fn find(
        &self,
        service: &str,
        ts_ms: i64,
        topo: &Topology,
        cfg: &CorrelateConfig,
        taken: &HashSet<Id>,
    ) -> Option<Id> {
        self.recent
            .iter()
            .filter(|r| r.active && !taken.contains(&r.id))
            .filter(|r| (ts_ms - r.last_seen_ms).abs() <= cfg.window_ms)
            .filter(|r| {
                r.services.iter().any(|s| s == service)
                    || r.services.iter().any(|s| linked(topo, s, service))
            })
            .max_by_key(|r| r.last_seen_ms)
            .map(|r| r.id)
    }
}

/// Fold `from` into `into`: services, counts, signatures, reasons, times.
pub fn absorb_incident(into: &mut Incident, from: &Incident, now_ms: i64) {
    for s in &from.services {
        if !into.services.contains(s) {
            into.services.push(s.clone());
        }
    }
    for s in &from.signatures {
        if !into.signatures.contains(s) {
            into.signatures.push(s.clone());
        }
    }
    into.reasons.extend(from.reasons.iter().cloned());
    into.count += from.count;
    into.max_score = into.max_score.max(from.max_score);
    into.severity = into.severity.max(from.severity);
    into.first_seen_ms = into.first_seen_ms.min(from.first_seen_ms);
    into.last_seen_ms = into.last_seen_ms.max(from.last_seen_ms);
    into.push_timeline(
        now_ms,
        "correlated",
        format!("{} on {} joined: {}", from.kind, from.service, from.title),
    );
}

/// Merge incidents newly opened in this batch into a linked incident of the
/// same batch (the earliest). Returns the incidents to commit and, for each
/// merged one, (its fingerprint, the id it joined).
pub fn merge_new(
    incidents: Vec<Incident>,
    topo: &Topology,
    cfg: &CorrelateConfig,
    now_ms: i64,
) -> (Vec<Incident>, Vec<(String, Id)>) {
    let is_new = |i: &Incident| i.timeline.len() == 1 && i.timeline[0].kind == "opened";
    let mut out: Vec<Incident> = Vec::with_capacity(incidents.len());
    let mut moved = Vec::new();
    for inc in incidents {
        if is_new(&inc)
            && let Some(target) = out.iter_mut().find(|t| {
                t.status.is_active()
                    && (inc.first_seen_ms - t.last_seen_ms).abs() <= cfg.window_ms
                    && !t.services.contains(&inc.service)
                    && t.services.iter().any(|s| linked(topo, s, &inc.service))
            })
        {
            absorb_incident(target, &inc, now_ms);
            moved.push((inc.fingerprint.clone(), target.id));
            continue;
        }
        out.push(inc);
    }
    (out, moved)
}

/// If `inc` was re-opened now within the flap window of its last
/// resolution, mark it flapping (a timeline entry) and say so.
pub fn mark_flapping(inc: &mut Incident, cfg: &CorrelateConfig, now_ms: i64) -> bool {
    let Some(reopen) = inc.timeline.iter().rposition(|e| e.kind == "reopened") else {
        return false;
    };
    if inc.timeline[reopen..].iter().any(|e| e.kind == "flapping") {
        return false;
    }
    let reopened_at = inc.timeline[reopen].ts_ms;
    let resolved_at = inc.timeline[..reopen]
        .iter()
        .rev()
        .find(|e| e.kind == "resolved")
        .map(|e| e.ts_ms);
    match resolved_at {
        Some(r) if reopened_at - r <= cfg.flap_window_ms => {
            inc.push_timeline(
                now_ms,
                "flapping",
                format!(
                    "re-opened {}s after it was resolved",
                    (reopened_at - r) / 1000
                ),
            );
            true
        }
        _ => false,
    }
}

/// Whether the incident ever flapped.
pub fn is_flapping(inc: &Incident) -> bool {
    inc.timeline.iter().any(|e| e.kind == "flapping")
}

/// Resolve `inc` if it is active and quiet for the configured time.
pub fn auto_resolve(inc: &mut Incident, cfg: &CorrelateConfig, now_ms: i64) -> bool {
    if cfg.quiet_ms <= 0 || !inc.status.is_active() || now_ms - inc.last_seen_ms < cfg.quiet_ms {
        return false;
    }
    inc.status = IncidentStatus::Resolved;
    inc.push_timeline(
        now_ms,
        "resolved",
        format!(
            "automatically: no signals for {}s",
            (now_ms - inc.last_seen_ms) / 1000
        ),
    );
    true
}

/// Anomaly fingerprint → incident id, after a fold and a merge.
pub fn assignments(
    incidents: &[Incident],
    moved: &[(String, Id)],
    correlated: &HashMap<String, Id>,
) -> HashMap<String, Id> {
    let mut m: HashMap<String, Id> = incidents
        .iter()
        .map(|i| (i.fingerprint.clone(), i.id))
        .collect();
    m.extend(correlated.iter().map(|(k, v)| (k.clone(), *v)));
    m.extend(moved.iter().cloned());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rca::topology::{Edge, EdgeSource};
    use state::model::{Severity, TraceCarrier};

    fn topo() -> Topology {
        let mut t = Topology::default();
        for (a, b) in [("api", "db"), ("worker", "db"), ("web", "api")] {
            t.add(Edge {
                caller: a.into(),
                callee: b.into(),
                source: EdgeSource::Config,
                confidence: 1.0,
                support: 0,
            });
        }
        t
    }

    fn inc(id: u64, service: &str, at: i64) -> Incident {
        let mut i = Incident {
            id: Id(id),
            fingerprint: format!("{service}|NETWORK_TIMEOUT"),
            service: service.into(),
            services: vec![service.into()],
            category: "network".into(),
            kind: "NETWORK_TIMEOUT".into(),
            severity: Severity::Medium,
            status: IncidentStatus::Open,
            title: format!("timeouts on {service}"),
            count: 1,
            auto_fixable: true,
            signatures: vec!["net.dependency_timeout".into()],
            reasons: vec![],
            max_score: 1.0,
            first_seen_ms: at,
            last_seen_ms: at,
            updated_ms: at,
            trace: TraceCarrier::default(),
            timeline: vec![],
            classification: None,
        };
        i.push_timeline(at, "opened", "x");
        i
    }

    #[test]
    fn services_sharing_a_dependency_are_linked_and_strangers_are_not() {
        let t = topo();
        assert!(linked(&t, "api", "worker"));
        assert!(linked(&t, "web", "db"));
        assert!(!linked(&t, "api", "mail"));
        assert!(!linked(&t, "api", "api"));
    }

    #[test]
    fn linked_incidents_of_one_batch_merge_into_one() {
        let cfg = CorrelateConfig::default();
        let (out, moved) = merge_new(
            vec![inc(1, "api", 0), inc(2, "worker", 10), inc(3, "mail", 10)],
            &topo(),
            &cfg,
            20,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].services, vec!["api", "worker"]);
        assert_eq!(moved, vec![("worker|NETWORK_TIMEOUT".to_string(), Id(1))]);
    }

    #[test]
    fn a_later_signal_of_a_linked_service_finds_the_open_incident() {
        let cfg = CorrelateConfig::default();
        let mut c = Correlator::default();
        c.note(&inc(1, "api", 0));
        let none = HashSet::new();
        assert_eq!(c.find("worker", 1000, &topo(), &cfg, &none), Some(Id(1)));
        assert_eq!(c.find("mail", 1000, &topo(), &cfg, &none), None);
        assert_eq!(
            c.find("worker", cfg.window_ms + 10, &topo(), &cfg, &none),
            None
        );
        assert_eq!(
            c.find("worker", 1000, &topo(), &cfg, &HashSet::from([Id(1)])),
            None
        );
    }

    #[test]
    fn flapping_and_auto_resolve() {
        let cfg = CorrelateConfig {
            quiet_ms: 1000,
            ..Default::default()
        };
        let mut i = inc(1, "api", 0);
        assert!(!auto_resolve(&mut i, &cfg, 500));
        assert!(auto_resolve(&mut i, &cfg, 1500));
        assert_eq!(i.status, IncidentStatus::Resolved);
        i.status = IncidentStatus::Open;
        i.push_timeline(2000, "reopened", "back");
        assert!(mark_flapping(&mut i, &cfg, 2000));
        assert!(
            !mark_flapping(&mut i, &cfg, 2001),
            "marked once per re-open"
        );
        assert!(is_flapping(&i));
    }
}
