//! Parsing and validation of ingest bodies: one JSON object, a JSON array,
//! or NDJSON. Every bad item is reported (index, field, reason), and a body
//! with any bad item is refused whole, so a client never has to guess which
//! part was accepted.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use state::model::{Level, LogEvent, MetricSample};

/// What was wrong with one item of a body.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ItemError {
    /// Position of the item in the body (0-based; line number - 1 for NDJSON).
    pub index: usize,
    /// The field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

/// Why a body was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("body holds no events")]
    Empty,
    #[error("{} invalid item(s)", .0.len())]
    Invalid(Vec<ItemError>),
}

/// How a body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// One object or an array of objects.
    Json,
    /// One object per line.
    Ndjson,
}

impl Framing {
    /// From the `Content-Type` header and the body: NDJSON when declared, or
    /// when a non-array body has more than one non-empty line.
    pub fn detect(content_type: Option<&str>, body: &[u8]) -> Framing {
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        if ct.contains("ndjson") || ct.contains("jsonlines") || ct.contains("json-seq") {
            return Framing::Ndjson;
        }
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'[') {
            return Framing::Json;
        }
        let trimmed = body.trim_ascii();
        if trimmed.contains(&b'\n') {
            Framing::Ndjson
        } else {
            Framing::Json
        }
    }
}

/// Split a body into the raw JSON text of each item.
fn items(body: &[u8], framing: Framing) -> Result<Vec<(usize, &[u8])>, ParseError> {
    match framing {
        Framing::Ndjson => {
            let mut out = Vec::new();
            for (i, line) in body.split(|b| *b == b'\n').enumerate() {
                let line = line.trim_ascii();
                if !line.is_empty() {
                    out.push((i, line));
                }
            }
            Ok(out)
        }
        Framing::Json => {
            let trimmed = body.trim_ascii();
            if trimmed.first() == Some(&b'[') {
                let raws: Vec<&RawValue> = serde_json::from_slice(trimmed)
                    .map_err(|e| ParseError::Malformed(e.to_string()))?;
                Ok(raws
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| (i, r.get().as_bytes()))
                    .collect())
            } else if trimmed.is_empty() {
                Ok(Vec::new())
            } else {
                Ok(vec![(0, trimmed)])
            }
        }
    }
}

fn parse_all<T>(
    body: &[u8],
    framing: Framing,
    now_ms: i64,
    one: impl Fn(&[u8], i64) -> Result<T, (Option<String>, String)>,
) -> Result<Vec<T>, ParseError> {
    let items = items(body, framing)?;
    if items.is_empty() {
        return Err(ParseError::Empty);
    }
    let single = items.len() == 1;
    let mut out = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, raw) in items {
        match one(raw, now_ms) {
            Ok(v) => out.push(v),
            Err((None, message)) if single && message.starts_with("malformed JSON") => {
                return Err(ParseError::Malformed(
                    message.trim_start_matches("malformed JSON: ").to_string(),
                ));
            }
            Err((field, message)) => {
                // Keep the response bounded for a body full of junk.
                if errors.len() < 100 {
                    errors.push(ItemError {
                        index,
                        field,
                        message,
                    })
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ParseError::Invalid(errors))
    }
}

/// Parse a `/ingest/logs` body. `now_ms` is the arrival time, used for
/// events without a timestamp.
pub fn parse_logs(body: &[u8], framing: Framing, now_ms: i64) -> Result<Vec<LogEvent>, ParseError> {
    parse_all(body, framing, now_ms, parse_log)
}

/// Parse a `/ingest/metrics` body.
pub fn parse_metrics(
    body: &[u8],
    framing: Framing,
    now_ms: i64,
) -> Result<Vec<MetricSample>, ParseError> {
    parse_all(body, framing, now_ms, parse_metric)
}

/// Split a serde error of the form "field `x`: reason at line ..." into the
/// field and the reason.
fn split_error(raw: &[u8], e: serde_json::Error) -> (Option<String>, String) {
    // A field's own error wraps syntax errors too: tell them apart by
    // checking the syntax alone (only on this error path).
    if let Err(syntax) = serde_json::from_slice::<de::IgnoredAny>(raw) {
        return (None, format!("malformed JSON: {syntax}"));
    }
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(p) if e.is_data() => msg[..p].to_string(),
        _ => msg,
    };
    if let Some(rest) = msg.strip_prefix("field `")
        && let Some((field, reason)) = rest.split_once("`: ")
    {
        return (Some(field.to_string()), reason.to_string());
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.trim_end_matches('`');
        return (Some(field.to_string()), "missing".to_string());
    }
    (None, msg)
}

fn parse_log(raw: &[u8], now_ms: i64) -> Result<LogEvent, (Option<String>, String)> {
    let r: RawLog = serde_json::from_slice(raw).map_err(|e| split_error(raw, e))?;
    let service = r
        .service
        .ok_or((Some("service".into()), "missing".into()))?;
    if service.trim().is_empty() {
        return Err((Some("service".into()), "must not be empty".into()));
    }
    let message = r
        .message
        .ok_or((Some("message".into()), "missing".into()))?;
    Ok(LogEvent {
        ts_ms: r.ts_ms.unwrap_or(now_ms),
        service,
        level: r.level.unwrap_or(Level::Info),
        message,
        fields: r.fields,
    })
}

fn parse_metric(raw: &[u8], now_ms: i64) -> Result<MetricSample, (Option<String>, String)> {
    let r: RawMetric = serde_json::from_slice(raw).map_err(|e| split_error(raw, e))?;
    let source = r
        .source
        .ok_or((Some("service".into()), "missing (or host)".into()))?;
    if source.trim().is_empty() {
        return Err((Some("service".into()), "must not be empty".into()));
    }
    let name = r.name.ok_or((Some("name".into()), "missing".into()))?;
    if name.trim().is_empty() {
        return Err((Some("name".into()), "must not be empty".into()));
    }
    let value = r.value.ok_or((Some("value".into()), "missing".into()))?;
    Ok(MetricSample {
        ts_ms: r.ts_ms.unwrap_or(now_ms),
        source,
        name,
        value,
        labels: r.labels,
    })
}

/// A timestamp: epoch milliseconds or RFC 3339 text.
struct Timestamp(i64);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("epoch milliseconds or an RFC 3339 timestamp")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v)
                    .map(Timestamp)
                    .map_err(|_| E::custom("timestamp out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                if v.is_finite() && v.abs() < 1e16 {
                    Ok(Timestamp(v as i64))
                } else {
                    Err(E::custom("timestamp out of range"))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                parse_rfc3339_ms(v)
                    .map(Timestamp)
                    .ok_or_else(|| E::custom(format!("{v:?} is not an RFC 3339 timestamp")))
            }
        }
        d.deserialize_any(V)
    }
}

/// RFC 3339 text → epoch milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// A scalar field value, kept as text.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A map of string fields (`fields`, `labels`).
struct StringMap(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m: BTreeMap<String, Scalar> = BTreeMap::deserialize(d)?;
        Ok(StringMap(m.into_iter().map(|(k, v)| (k, v.0)).collect()))
    }
}

struct LevelText(Level);

impl<'de> Deserialize<'de> for LevelText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: std::borrow::Cow<'de, str> = Deserialize::deserialize(d)?;
        Level::parse(&s)
            .map(LevelText)
            .ok_or_else(|| de::Error::custom(format!("unknown level {s:?}")))
    }
}

/// Wrap a field's own error with its name, so clients see which one.
fn field<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    map: &mut A,
    name: &str,
) -> Result<T, A::Error> {
    map.next_value::<T>()
        .map_err(|e| de::Error::custom(format!("field `{name}`: {e}")))
}

#[derive(Default)]
struct RawLog {
    ts_ms: Option<i64>,
    service: Option<String>,
    level: Option<Level>,
    message: Option<String>,
    fields: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for RawLog {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawLog;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a log event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawLog, A::Error> {
                let mut r = RawLog::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "timestamp" | "ts" | "time" | "@timestamp" => {
                            r.ts_ms = Some(field::<Timestamp, _>(&mut map, &key)?.0)
                        }
                        "service" => r.service = Some(field(&mut map, &key)?),
                        "level" | "severity" => {
                            r.level = Some(field::<LevelText, _>(&mut map, &key)?.0)
                        }
                        "message" | "msg" => r.message = Some(field(&mut map, &key)?),
                        "fields" => r.fields.extend(field::<StringMap, _>(&mut map, &key)?.0),
                        other => {
                            let v: Scalar = field(&mut map, other)?;
                            r.fields.insert(other.to_string(), v.0);
                        }
                    }
                }
                Ok(r)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Default)]
struct RawMetric {
    ts_ms: Option<i64>,
    source: Option<String>,
    name: Option<String>,
    value: Option<f64>,
    labels: BTreeMap<String, String>,
}

struct Finite(f64);

impl<'de> Deserialize<'de> for Finite {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if v.is_finite() {
            Ok(Finite(v))
        } else {
            Err(de::Error::custom("must be a finite number"))
        }
    }
}

impl<'de> Deserialize<'de> for RawMetric {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMetric;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a metric sample object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMetric, A::Error> {
                let mut r = RawMetric::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "timestamp" | "ts" | "time" => {
                            r.ts_ms = Some(field::<Timestamp, _>(&mut map, &key)?.0)
                        }
                        "service" | "host" | "source" => r.source = Some(field(&mut map, &key)?),
                        "name" | "metric" => r.name = Some(field(&mut map, &key)?),
                        "value" => r.value = Some(field::<Finite, _>(&mut map, &key)?.0),
                        "labels" | "tags" => {
                            r.labels.extend(field::<StringMap, _>(&mut map, &key)?.0)
                        }
                        other => {
                            return Err(de::Error::custom(format!(
                                "field `{other}`: unknown field (expected timestamp, service, host, name, value, labels)"
                            )));
                        }
                    }
                }
                Ok(r)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000;

    #[test]
    fn accepts_object_array_and_ndjson() {
        let one = br#"{"service":"api","level":"error","message":"boom"}"#;
        let arr = br#"[{"service":"api","message":"a"},{"service":"db","message":"b","timestamp":"2024-01-01T00:00:00Z"}]"#;
        let nd = b"{\"service\":\"api\",\"message\":\"a\",\"ts\":42}\n\n{\"service\":\"api\",\"message\":\"b\",\"user\":7}\n";
        let a = parse_logs(one, Framing::detect(None, one), NOW).unwrap();
        assert_eq!(a[0].level, Level::Error);
        assert_eq!(a[0].ts_ms, NOW);
        let b = parse_logs(arr, Framing::detect(None, arr), NOW).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].ts_ms, 1_704_067_200_000);
        let c = parse_logs(nd, Framing::detect(Some("application/x-ndjson"), nd), NOW).unwrap();
        assert_eq!(c[0].ts_ms, 42);
        assert_eq!(c[1].fields.get("user").map(String::as_str), Some("7"));
    }

    #[test]
    fn names_each_bad_item_and_field() {
        let body = b"{\"service\":\"api\",\"message\":\"ok\"}\n{\"service\":\"api\"}\n{\"service\":5,\"message\":\"x\"}\n{\"service\":\"a\",\"message\":\"x\",\"level\":\"loud\"}\n{\"service\":\"a\",\"message\":\"x\",\"timestamp\":\"yesterday\"}";
        let err = parse_logs(body, Framing::Ndjson, NOW).unwrap_err();
        let ParseError::Invalid(items) = err else {
            panic!("expected invalid items, got {err:?}")
        };
        let got: Vec<(usize, Option<&str>)> = items
            .iter()
            .map(|e| (e.index, e.field.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, Some("message")),
                (2, Some("service")),
                (3, Some("level")),
                (4, Some("timestamp"))
            ]
        );
        assert!(items[2].message.contains("loud"), "{:?}", items[2]);
    }

    #[test]
    fn malformed_and_empty_bodies_are_refused() {
        assert!(matches!(
            parse_logs(b"[{\"service\":", Framing::Json, NOW),
            Err(ParseError::Malformed(_))
        ));
        assert_eq!(
            parse_logs(b"  ", Framing::Json, NOW),
            Err(ParseError::Empty)
        );
        assert!(matches!(
            parse_logs(b"{not json}", Framing::Json, NOW),
            Err(ParseError::Malformed(_))
        ));
        // In NDJSON a broken line is one bad item among good ones.
        let nd = b"{\"service\":\"a\",\"message\":\"x\"}\n{not json}";
        let Err(ParseError::Invalid(items)) = parse_logs(nd, Framing::Ndjson, NOW) else {
            panic!("expected an invalid item")
        };
        assert_eq!(items[0].index, 1);
        assert!(items[0].message.starts_with("malformed JSON"));
    }

    #[test]
    fn metrics_validate_value_and_names() {
        let ok = br#"[{"host":"h1","name":"cpu","value":0.5,"labels":{"core":0}}]"#;
        let m = parse_metrics(ok, Framing::Json, NOW).unwrap();
        assert_eq!(m[0].source, "h1");
        assert_eq!(m[0].labels["core"], "0");
        let bad = br#"[{"host":"h1","name":"cpu","value":"high"},{"host":"h1","value":1},{"service":"s","name":"n","value":1,"colour":"red"}]"#;
        let ParseError::Invalid(items) = parse_metrics(bad, Framing::Json, NOW).unwrap_err() else {
            panic!()
        };
        let fields: Vec<_> = items.iter().map(|e| e.field.clone().unwrap()).collect();
        assert_eq!(fields, vec!["value", "name", "colour"]);
    }
}
