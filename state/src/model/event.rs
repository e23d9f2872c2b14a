//! Normalised events, as accepted by ingest and written to the write-ahead log.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Log level, normalised from the many spellings services use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    /// Parse the usual spellings (`WARNING`, `err`, `CRIT`, `emerg`, ...).
    pub fn parse(s: &str) -> Option<Level> {
        let l = s.trim().to_ascii_lowercase();
        Some(match l.as_str() {
            "trace" | "trc" | "finest" | "verbose" => Level::Trace,
            "debug" | "dbg" | "fine" | "finer" => Level::Debug,
            "info" | "inf" | "information" | "notice" | "informational" => Level::Info,
            "warn" | "warning" | "wrn" => Level::Warn,
            "error" | "err" | "eror" | "severe" => Level::Error,
            "fatal" | "crit" | "critical" | "alert" | "emerg" | "emergency" | "panic" => {
                Level::Fatal
            }
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    pub fn is_error(self) -> bool {
        self >= Level::Error
    }
}

/// One log line from a watched service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    /// Milliseconds since the Unix epoch (arrival time when the line had none).
    pub ts_ms: i64,
    pub service: String,
    pub level: Level,
    pub message: String,
    /// Extra string fields the sender attached.
    pub fields: BTreeMap<String, String>,
}

/// One metric sample from a watched service or host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    pub ts_ms: i64,
    /// The service or host the sample describes.
    pub source: String,
    pub name: String,
    pub value: f64,
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    Log(LogEvent),
    Metric(MetricSample),
}

impl Event {
    pub fn service(&self) -> &str {
        match self {
            Event::Log(l) => &l.service,
            Event::Metric(m) => &m.source,
        }
    }
    pub fn ts_ms(&self) -> i64 {
        match self {
            Event::Log(l) => l.ts_ms,
            Event::Metric(m) => m.ts_ms,
        }
    }
}

/// One accepted request body: the unit of the write-ahead log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WalBatch {
    pub received_ms: i64,
    pub events: Vec<Event>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_common_spellings() {
        assert_eq!(Level::parse("WARNING"), Some(Level::Warn));
        assert_eq!(Level::parse("err"), Some(Level::Error));
        assert_eq!(Level::parse("CRIT"), Some(Level::Fatal));
        assert_eq!(Level::parse("loud"), None);
        assert!(Level::Fatal.is_error() && !Level::Warn.is_error());
    }
}
