//! Turning a batch of events into anomalies: every log line at warn or
//! above is matched against the signature catalogue; matches of the same
//! signature from the same service within one batch become one anomaly
//! with a count, so a storm of identical errors costs one message.

use std::collections::HashMap;

use state::model::{Anomaly, Event, Evidence, Level};

use super::signatures::Catalogue;

/// Longest matched line kept as evidence.
const DETAIL_CHARS: usize = 300;

pub fn scan(catalogue: &Catalogue, events: &[Event]) -> Vec<Anomaly> {
    let mut by_key: HashMap<(&str, &str), usize> = HashMap::new();
    let mut out: Vec<Anomaly> = Vec::new();
    for ev in events {
        let Event::Log(log) = ev else { continue };
        if log.level < Level::Warn {
            continue;
        }
        let Some(sig) = catalogue.match_event(log) else {
            continue;
        };
        match by_key.get(&(log.service.as_str(), sig.id.as_str())) {
            Some(&i) => {
                let a = &mut out[i];
                a.count += 1;
                a.ts_ms = a.ts_ms.max(log.ts_ms);
            }
            None => {
                by_key.insert((log.service.as_str(), sig.id.as_str()), out.len());
                let detail: String = log.message.chars().take(DETAIL_CHARS).collect();
                out.push(Anomaly {
                    ts_ms: log.ts_ms,
                    service: log.service.clone(),
                    category: sig.category.clone(),
                    kind: sig.kind.clone(),
                    severity: sig.severity,
                    score: 1.0,
                    signature: Some(sig.id.clone()),
                    auto_fixable: sig.auto_fixable,
                    summary: detail.clone(),
                    count: 1,
                    evidence: vec![Evidence {
                        signal: format!("signature:{}", sig.id),
                        weight: 1.0,
                        detail,
                    }],
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::model::LogEvent;

    fn log(service: &str, level: Level, msg: &str) -> Event {
        Event::Log(LogEvent {
            ts_ms: 1,
            service: service.into(),
            level,
            message: msg.into(),
            fields: Default::default(),
        })
    }

    #[test]
    fn identical_errors_fold_into_one_counted_anomaly() {
        let c = Catalogue::builtin();
        let mut events: Vec<Event> = (0..1000)
            .map(|_| log("api", Level::Error, "connection to db:5432 refused"))
            .collect();
        events.push(log("api", Level::Info, "connection to db:5432 refused"));
        events.push(log("web", Level::Error, "all good"));
        let a = scan(&c, &events);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].count, 1000);
        assert_eq!(a[0].category, "database");
        assert_eq!(a[0].signature.as_deref(), Some("db.connection_refused"));
    }
}
