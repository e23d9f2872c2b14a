//! Incident classification: category and severity from the matched
//! signatures, adjusted by the anomaly score and the blast radius (services
//! and events), and whether the incident can be fixed automatically. Every
//! decision is written down as a reason, stored with the incident
//! (`classification`) and shown by `GET /incidents/{id}`. Pure: the triage
//! actor calls [`classify`] for each incident a batch touched.

use state::model::{Anomaly, Classification, Incident, Severity, SignatureHit};

/// Blast radius at which severity goes up one level.
pub const WIDE_SERVICES: usize = 3;
pub const WIDE_EVENTS: u64 = 10_000;
/// Below this score, an incident with no known signature goes down a level.
pub const WEAK_SCORE: f64 = 0.5;

fn up(s: Severity) -> Severity {
    match s {
        Severity::Low => Severity::Medium,
        Severity::Medium => Severity::High,
        Severity::High | Severity::Critical => Severity::Critical,
    }
}

fn down(s: Severity) -> Severity {
    match s {
        Severity::Critical => Severity::High,
        Severity::High => Severity::Medium,
        Severity::Medium | Severity::Low => Severity::Low,
    }
}

fn name(s: Severity) -> &'static str {
    match s {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// Fold this batch's `signals` (the anomalies that went into `inc`) into
/// its classification and set the incident's category, kind, severity and
/// auto-fixable flag from it.
pub fn classify(inc: &mut Incident, signals: &[&Anomaly], now_ms: i64) {
    let mut c = inc.classification.take().unwrap_or_else(|| Classification {
        category: inc.category.clone(),
        kind: inc.kind.clone(),
        base_severity: Severity::Low,
        severity: inc.severity,
        score: 0.0,
        services: 0,
        events: 0,
        signatures: Vec::new(),
        auto_fixable: true,
        reasons: Vec::new(),
    });
    for a in signals {
        c.base_severity = c.base_severity.max(a.severity);
        c.score = c.score.max(a.score);
        c.auto_fixable &= a.auto_fixable;
        if let Some(id) = &a.signature {
            match c.signatures.iter_mut().find(|h| &h.id == id) {
                Some(h) => h.count += a.count,
                None => c.signatures.push(SignatureHit {
                    id: id.clone(),
                    category: a.category.clone(),
                    kind: a.kind.clone(),
                    severity: a.severity,
                    auto_fixable: a.auto_fixable,
                    count: a.count,
                }),
            }
        }
    }
    c.services = inc.services.len();
    c.events = inc.count;
    let mut reasons = Vec::new();
    // The category of the most severe signature (most lines on a tie).
    let top = c
        .signatures
        .iter()
        .max_by(|a, b| a.severity.cmp(&b.severity).then(a.count.cmp(&b.count)));
    if let Some(top) = top {
        c.category = top.category.clone();
        c.kind = top.kind.clone();
        let list: Vec<String> = c
            .signatures
            .iter()
            .map(|h| {
                format!(
                    "{} ({}, {}, {} lines)",
                    h.id,
                    h.kind,
                    name(h.severity),
                    h.count
                )
            })
            .collect();
        reasons.push(format!("matched signatures: {}", list.join(", ")));
        reasons.push(format!(
            "category {}/{} from {}, the most severe signature",
            c.category, c.kind, top.id
        ));
    } else {
        reasons.push(format!(
            "no known signature; category {}/{} from the detector",
            c.category, c.kind
        ));
    }
    reasons.push(format!(
        "base severity {}: the highest of the signals",
        name(c.base_severity)
    ));
    let mut severity = c.base_severity;
    if c.signatures.is_empty() && c.score < WEAK_SCORE {
        severity = down(severity);
        reasons.push(format!(
            "anomaly score {:.2} below {WEAK_SCORE} with no signature: lowered to {}",
            c.score,
            name(severity)
        ));
    } else {
        reasons.push(format!("anomaly score {:.2}", c.score));
    }
    if c.services >= WIDE_SERVICES || c.events >= WIDE_EVENTS {
        severity = up(severity);
        reasons.push(format!(
            "blast radius {} service(s), {} event(s) (at least {WIDE_SERVICES} services or {WIDE_EVENTS} events): raised to {}",
            c.services,
            c.events,
            name(severity)
        ));
    } else {
        reasons.push(format!(
            "blast radius {} service(s), {} event(s): no change",
            c.services, c.events
        ));
    }
    reasons.push(if c.auto_fixable {
        "auto-fixable: every signal is".to_string()
    } else {
        let not: Vec<&str> = c
            .signatures
            .iter()
            .filter(|h| !h.auto_fixable)
            .map(|h| h.id.as_str())
            .collect();
        format!(
            "not auto-fixable: {}",
            if not.is_empty() {
                "a detector signal is not".into()
            } else {
                not.join(", ")
            }
        )
    });
    if severity != inc.severity {
        inc.push_timeline(
            now_ms,
            "classified",
            format!("severity {} → {}", name(inc.severity), name(severity)),
        );
    }
    c.severity = severity;
    c.reasons = reasons;
    inc.severity = severity;
    inc.category = c.category.clone();
    inc.kind = c.kind.clone();
    inc.auto_fixable = c.auto_fixable;
    inc.classification = Some(c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::dedup::{DedupConfig, fold};
    use state::keys::IdGen;

    fn anomaly(service: &str, sig: &str, sev: Severity, auto: bool, count: u64) -> Anomaly {
        Anomaly {
            ts_ms: 0,
            service: service.into(),
            category: "database".into(),
            kind: "DATABASE_CONNECTION".into(),
            severity: sev,
            score: 1.0,
            signature: Some(sig.into()),
            auto_fixable: auto,
            summary: sig.into(),
            count,
            evidence: vec![],
        }
    }

    fn open(a: &[Anomaly]) -> Incident {
        let ids = IdGen::default();
        let mut inc = fold(
            a,
            |_| None,
            &ids,
            0,
            &DedupConfig::default(),
            Default::default,
        )
        .remove(0);
        let refs: Vec<&Anomaly> = a.iter().collect();
        classify(&mut inc, &refs, 0);
        inc
    }

    #[test]
    fn severity_and_kind_from_signatures_with_reasons() {
        let inc = open(&[
            anomaly("api", "db.connection_refused", Severity::High, true, 5),
            anomaly("api", "db.pool_timeout", Severity::Medium, true, 50),
        ]);
        let c = inc.classification.as_ref().unwrap();
        assert_eq!(
            (inc.kind.as_str(), inc.severity),
            ("DATABASE_CONNECTION", Severity::High)
        );
        assert_eq!(c.signatures.len(), 2);
        assert!(inc.auto_fixable);
        assert!(
            c.reasons
                .iter()
                .any(|r| r.contains("from db.connection_refused")),
            "{:?}",
            c.reasons
        );
    }

    #[test]
    fn one_non_fixable_signal_makes_the_incident_manual() {
        let mut inc = open(&[anomaly(
            "api",
            "db.connection_refused",
            Severity::High,
            true,
            1,
        )]);
        assert!(inc.auto_fixable);
        let auth = anomaly("api", "db.auth_failed", Severity::High, false, 1);
        classify(&mut inc, &[&auth], 1);
        assert!(!inc.auto_fixable);
        let c = inc.classification.unwrap();
        assert!(c.reasons.last().unwrap().contains("db.auth_failed"));
    }

    #[test]
    fn blast_radius_raises_severity_once_not_per_batch() {
        let mut inc = open(&[anomaly("api", "x", Severity::Medium, true, 1)]);
        inc.services = vec!["api".into(), "web".into(), "jobs".into()];
        let more = anomaly("web", "x", Severity::Medium, true, 1);
        classify(&mut inc, &[&more], 1);
        assert_eq!(inc.severity, Severity::High);
        classify(&mut inc, &[&more], 2);
        assert_eq!(
            inc.severity,
            Severity::High,
            "based on the signals, not on the last result"
        );
        assert_eq!(
            inc.timeline
                .iter()
                .filter(|t| t.kind == "classified")
                .count(),
            1
        );
    }

    #[test]
    fn weak_detector_signal_without_signature_is_lowered() {
        let mut a = anomaly("api", "x", Severity::Medium, false, 1);
        a.signature = None;
        a.score = 0.3;
        let inc = open(&[a]);
        assert_eq!(inc.severity, Severity::Low);
        assert!(!inc.auto_fixable);
    }
}
