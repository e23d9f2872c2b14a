//! Dependencies the topology does not name but the signals do. A service
//! logging `db.connection_refused` talks to a database even when no
//! `[rca] dependencies` say so and none was learned yet. Such a service gets
//! an inferred callee named `<service>:<kind>` (confidence 0.5, used for
//! this analysis only, never stored), so that causes placed in the
//! dependency (database down, pool exhausted, broker down, ...) compete
//! with the service's own causes instead of not being considered at all.

use state::model::diagnosis::ServiceObs;

use super::topology::{Edge, EdgeSource, Topology};

/// Signal prefixes that speak of a dependency of a kind.
const KIND_OF_SIGNAL: &[(&str, &str)] = &[
    ("sig:db.", "database"),
    ("sig:cache.", "cache"),
    ("sig:queue.", "queue"),
    ("sig:net.dns", "dns"),
];

/// Confidence of an inferred edge: a guess from the words of a log line.
pub const INFERRED_CONFIDENCE: f64 = 0.5;

/// `topo` plus the inferred dependencies, or `None` when nothing is missing.
pub fn with_inferred(topo: &Topology, observed: &[ServiceObs]) -> Option<Topology> {
    let mut extra: Vec<(String, &str)> = Vec::new();
    for o in observed {
        for (prefix, kind) in KIND_OF_SIGNAL {
            let speaks = o.signals.iter().any(|s| s.key.starts_with(prefix));
            let is_one = topo.kind(&o.service) == Some(kind);
            // A dependency of that kind, or of no stated kind (it may be
            // the one), already stands for it.
            let known = topo
                .dependencies(&o.service)
                .keys()
                .any(|d| topo.kind(d).is_none_or(|k| k == *kind));
            if speaks && !is_one && !known {
                extra.push((o.service.clone(), kind));
            }
        }
    }
    if extra.is_empty() {
        return None;
    }
    let mut t = topo.clone();
    for (svc, kind) in extra {
        let callee = format!("{svc}:{kind}");
        t.add(Edge {
            caller: svc,
            callee: callee.clone(),
            source: EdgeSource::Learned,
            confidence: INFERRED_CONFIDENCE,
            support: 0,
        });
        t.set_kind(&callee, kind);
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rca::kb::KnowledgeBase;
    use crate::rca::score::analyze;
    use state::model::diagnosis::Signal;

    fn obs(service: &str, sig: &str, line: &str) -> ServiceObs {
        let mut o = ServiceObs::new(service);
        o.onset_ms = Some(1_000);
        o.signals.push(Signal {
            key: sig.into(),
            strength: 1.0,
        });
        o.lines.push(line.into());
        o
    }

    #[test]
    fn a_database_error_without_topology_names_an_inferred_database() {
        let kb = KnowledgeBase::builtin();
        let topo = Topology::default();
        let seen = [obs(
            "checkout",
            "sig:db.connection_refused",
            "could not connect to database: connection to 10.0.0.7:5432 refused",
        )];
        let t = with_inferred(&topo, &seen).expect("a database is inferred");
        assert_eq!(t.kind("checkout:database"), Some("database"));
        // `analyze` infers it by itself.
        let d = analyze(&kb, &topo, &seen, 5);
        let top = d.top().expect("a hypothesis");
        assert_eq!(top.service, "checkout:database", "{d:#?}");
        assert!(top.cause_id.starts_with("db."), "{}", top.cause_id);
    }

    #[test]
    fn a_known_database_dependency_is_not_inferred_again() {
        let deps = vec!["orders-db".to_string()];
        let mut topo = Topology::from_config([("checkout", deps.as_slice())]);
        topo.set_kind("orders-db", "database");
        let seen = [obs(
            "checkout",
            "sig:db.connection_refused",
            "connection refused",
        )];
        assert!(with_inferred(&topo, &seen).is_none());
        // Nor for the database itself.
        let seen = [obs(
            "orders-db",
            "sig:db.disk_full",
            "could not extend file: No space left",
        )];
        assert!(with_inferred(&topo, &seen).is_none());
    }
}
