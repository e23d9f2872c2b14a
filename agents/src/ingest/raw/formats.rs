//! One parser per line format. Each returns `None` when the line is not in
//! its format, so the caller can try the next; free text accepts anything.

use std::collections::BTreeMap;

use state::model::Level;

use super::time;

/// Which format a line was read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Logfmt,
    Syslog3164,
    Syslog5424,
    Access,
    /// Free text with a leading timestamp and/or level.
    Text,
    /// Free text with neither.
    Plain,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Logfmt => "logfmt",
            Format::Syslog3164 => "syslog3164",
            Format::Syslog5424 => "syslog5424",
            Format::Access => "access",
            Format::Text => "text",
            Format::Plain => "plain",
        }
    }
}

/// What a format parser extracted from one line.
#[derive(Debug, Default)]
pub struct Parts {
    pub ts_ms: Option<i64>,
    pub level: Option<Level>,
    pub service: Option<String>,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

fn first_str(obj: &serde_json::Map<String, serde_json::Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match obj.get(*k) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    })
}

/// A JSON object per line, with the usual key spellings.
pub fn json(line: &str) -> Option<Parts> {
    if !line.starts_with('{') {
        return None;
    }
    let serde_json::Value::Object(mut obj) = serde_json::from_str(line).ok()? else {
        return None;
    };
    // Nested `service: {name: ..}` (ECS) flattens to `service.name`.
    if let Some(serde_json::Value::Object(svc)) = obj.get("service")
        && let Some(serde_json::Value::String(n)) = svc.get("name")
    {
        let n = n.clone();
        obj.insert("service.name".into(), serde_json::Value::String(n));
        obj.remove("service");
    }
    const TS: [&str; 6] = ["ts", "timestamp", "@timestamp", "time", "t", "ts_ms"];
    const LEVEL: [&str; 6] = [
        "level",
        "lvl",
        "severity",
        "log.level",
        "levelname",
        "loglevel",
    ];
    const MSG: [&str; 6] = ["message", "msg", "log", "text", "error", "event"];
    const SERVICE: [&str; 5] = ["service", "service.name", "app", "application", "component"];
    let ts_ms = TS.iter().find_map(|k| match obj.get(*k) {
        Some(serde_json::Value::Number(n)) => n.as_f64().map(time::epoch),
        Some(serde_json::Value::String(s)) => time::iso_prefix(s).map(|x| x.0),
        _ => None,
    });
    let level = LEVEL.iter().find_map(|k| match obj.get(*k) {
        Some(serde_json::Value::String(s)) => Level::parse(s),
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(level_number),
        _ => None,
    });
    let message = first_str(&obj, &MSG).unwrap_or_else(|| line.to_owned());
    let service = first_str(&obj, &SERVICE);
    let skip: Vec<&str> = TS
        .iter()
        .chain(&LEVEL)
        .chain(&MSG)
        .chain(&SERVICE)
        .copied()
        .collect();
    let mut fields = BTreeMap::new();
    for (k, v) in obj {
        if skip.contains(&k.as_str()) {
            continue;
        }
        let v = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => continue,
            other => other.to_string(),
        };
        fields.insert(k, v);
    }
    Some(Parts {
        ts_ms,
        level,
        service,
        message,
        fields,
    })
}

/// Numeric levels: pino/bunyan (10..60) and syslog severities (0..7).
fn level_number(n: u64) -> Option<Level> {
    Some(match n {
        0..=2 => Level::Fatal,
        3 => Level::Error,
        4 => Level::Warn,
        5 | 6 => Level::Info,
        7 => Level::Debug,
        10 => Level::Trace,
        20 => Level::Debug,
        30 => Level::Info,
        40 => Level::Warn,
        50 => Level::Error,
        60 => Level::Fatal,
        _ => return None,
    })
}

/// `key=value` pairs; values may be double-quoted with `\"` escapes.
pub fn logfmt_pairs(line: &str) -> Option<Vec<(&str, String)>> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len()
            && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'-' | b'@'))
        {
            i += 1;
        }
        if i == ks || b.get(i) != Some(&b'=') {
            return None;
        }
        let key = &line[ks..i];
        i += 1;
        let value = if b.get(i) == Some(&b'"') {
            i += 1;
            let mut v = String::new();
            let mut closed = false;
            let mut s = i;
            while i < b.len() {
                match b[i] {
                    b'\\' if i + 1 < b.len() => {
                        v.push_str(&line[s..i]);
                        i += 1;
                        s = i;
                        i += 1;
                    }
                    b'"' => {
                        v.push_str(&line[s..i]);
                        i += 1;
                        closed = true;
                        break;
                    }
                    _ => i += 1,
                }
            }
            if !closed {
                return None;
            }
            v
        } else {
            let s = i;
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            line[s..i].to_owned()
        };
        out.push((key, value));
    }
    (out.len() >= 2).then_some(out)
}

pub fn logfmt(line: &str) -> Option<Parts> {
    let pairs = logfmt_pairs(line)?;
    let mut p = Parts::default();
    let mut message = None;
    for (k, v) in pairs {
        match k {
            "ts" | "time" | "timestamp" | "t" => {
                p.ts_ms = time::iso_prefix(&v)
                    .map(|x| x.0)
                    .or_else(|| v.parse::<f64>().ok().map(time::epoch));
                if p.ts_ms.is_none() {
                    p.fields.insert(k.to_owned(), v);
                }
            }
            "level" | "lvl" | "severity" => p.level = Level::parse(&v),
            "msg" | "message" => message = Some(v),
            "service" | "app" | "svc" => p.service = Some(v),
            _ => {
                p.fields.insert(k.to_owned(), v);
            }
        }
    }
    p.message = message.unwrap_or_else(|| line.to_owned());
    Some(p)
}

fn syslog_severity(pri: u32) -> Level {
    level_number(u64::from(pri % 8)).unwrap_or(Level::Info)
}

/// `<PRI>` at the start: (pri, bytes used).
fn pri(line: &str) -> Option<(u32, usize)> {
    let b = line.as_bytes();
    if b.first() != Some(&b'<') {
        return None;
    }
    let end = b.iter().take(5).position(|&c| c == b'>')?;
    let v: u32 = line.get(1..end)?.parse().ok()?;
    (v <= 191).then_some((v, end + 1))
}

/// `tag[pid]: message` or `tag: message` after the host.
fn tag_and_message(rest: &str, p: &mut Parts) {
    let tag_end = rest.find([':', '[', ' ']).unwrap_or(rest.len());
    let tag = &rest[..tag_end];
    let mut after = &rest[tag_end..];
    if let Some(r) = after.strip_prefix('[')
        && let Some(close) = r.find(']')
    {
        p.fields.insert("pid".into(), r[..close].to_owned());
        after = &r[close + 1..];
    }
    if let Some(msg) = after.strip_prefix(": ").or_else(|| after.strip_prefix(':')) {
        if !tag.is_empty() {
            p.service = Some(tag.to_owned());
        }
        p.message = msg.to_owned();
    } else {
        p.message = rest.to_owned();
    }
}

/// RFC 3164 (BSD): `[<PRI>]Mmm dd hh:mm:ss host tag[pid]: message`.
pub fn syslog3164(line: &str, now_ms: i64) -> Option<Parts> {
    let (pri, at) = pri(line).map_or((None, 0), |(p, a)| (Some(p), a));
    let rest = &line[at..];
    let (ts, used) = time::bsd_prefix(rest, now_ms)?;
    let rest = rest[used..].trim_start();
    let (host, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut p = Parts {
        ts_ms: Some(ts),
        level: pri.map(syslog_severity),
        ..Parts::default()
    };
    p.fields.insert("host".into(), host.to_owned());
    tag_and_message(rest, &mut p);
    Some(p)
}

/// RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG`.
pub fn syslog5424(line: &str) -> Option<Parts> {
    let (pri, at) = pri(line)?;
    let rest = line[at..].strip_prefix("1 ")?;
    let mut it = rest.splitn(6, ' ');
    let (ts, host, app, procid, msgid) =
        (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    let mut rest = it.next().unwrap_or("");
    let mut p = Parts {
        ts_ms: if ts == "-" {
            None
        } else {
            Some(time::iso_prefix(ts)?.0)
        },
        level: Some(syslog_severity(pri)),
        ..Parts::default()
    };
    if app != "-" {
        p.service = Some(app.to_owned());
    }
    for (k, v) in [("host", host), ("pid", procid), ("msgid", msgid)] {
        if v != "-" {
            p.fields.insert(k.into(), v.to_owned());
        }
    }
    // Structured data: `-` or one or more `[id k="v" ...]`.
    if let Some(r) = rest.strip_prefix('-') {
        rest = r;
    } else {
        while rest.starts_with('[') {
            let mut i = 1;
            let b = rest.as_bytes();
            let mut in_quote = false;
            while i < b.len() {
                match b[i] {
                    b'\\' if in_quote => i += 1,
                    b'"' => in_quote = !in_quote,
                    b']' if !in_quote => break,
                    _ => {}
                }
                i += 1;
            }
            let element = &rest[1..i.min(rest.len())];
            let (id, params) = element.split_once(' ').unwrap_or((element, ""));
            if let Some(pairs) = logfmt_pairs(params).or_else(|| {
                // A single pair is fine inside structured data.
                let (k, v) = params.split_once('=')?;
                Some(vec![(k, v.trim_matches('"').to_owned())])
            }) {
                for (k, v) in pairs {
                    p.fields.insert(format!("{id}.{k}"), v);
                }
            }
            rest = rest.get(i + 1..).unwrap_or("");
        }
    }
    let msg = rest.trim_start();
    p.message = msg.strip_prefix('\u{feff}').unwrap_or(msg).to_owned();
    Some(p)
}

/// Common / combined access log:
/// `host ident user [10/Oct/2000:13:55:36 -0700] "GET /x HTTP/1.0" 200 2326 "ref" "agent"`.
pub fn access(line: &str) -> Option<Parts> {
    let mut it = line.splitn(4, ' ');
    let (client, ident, user, rest) = (it.next()?, it.next()?, it.next()?, it.next()?);
    let rest = rest.strip_prefix('[')?;
    let (stamp, rest) = rest.split_once("] \"")?;
    let ts = time::clf(stamp)?;
    let (request, rest) = rest.split_once("\" ")?;
    let mut tail = rest.splitn(3, ' ');
    let status: u16 = tail.next()?.parse().ok()?;
    let bytes = tail.next().unwrap_or("-");
    let extra = tail.next().unwrap_or("");
    let mut p = Parts {
        ts_ms: Some(ts),
        level: Some(match status {
            500.. => Level::Error,
            400..=499 => Level::Warn,
            _ => Level::Info,
        }),
        message: format!("\"{request}\" {status} {bytes}"),
        ..Parts::default()
    };
    let f = &mut p.fields;
    f.insert("client".into(), client.to_owned());
    if ident != "-" {
        f.insert("ident".into(), ident.to_owned());
    }
    if user != "-" {
        f.insert("user".into(), user.to_owned());
    }
    let mut req = request.splitn(3, ' ');
    if let (Some(m), Some(path)) = (req.next(), req.next()) {
        f.insert("method".into(), m.to_owned());
        f.insert("path".into(), path.to_owned());
    }
    f.insert("status".into(), status.to_string());
    if bytes != "-" {
        f.insert("bytes".into(), bytes.to_owned());
    }
    // Combined: "referer" "user-agent".
    let quoted: Vec<&str> = extra.split('"').collect();
    if quoted.len() >= 4 {
        f.insert("referer".into(), quoted[1].to_owned());
        f.insert("user_agent".into(), quoted[3].to_owned());
    }
    Some(p)
}

fn level_token(tok: &str) -> Option<Level> {
    let t = tok
        .trim_start_matches(['[', '(', '<'])
        .trim_end_matches([']', ')', '>', ':', ',']);
    if t.len() < 3 || t.len() > 11 || !t.bytes().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    // Only spellings that look like a level label, not words in a sentence.
    let upper = t.bytes().all(|c| c.is_ascii_uppercase());
    let bracketed = tok.starts_with(['[', '(', '<']) || tok.ends_with(':');
    if upper || bracketed || t == "info" || t == "warn" || t == "error" || t == "debug" {
        Level::parse(t)
    } else {
        None
    }
}

/// Free text with a leading timestamp (ISO, optionally in brackets) and/or
/// a level label (`ERROR`, `[warn]`, `E:`), then the message.
pub fn text(line: &str) -> Option<Parts> {
    let mut rest = line;
    let mut p = Parts::default();
    let bracket = rest.starts_with('[');
    let inner = if bracket { &rest[1..] } else { rest };
    if let Some((ts, used)) = time::iso_prefix(inner) {
        let after = &inner[used..];
        let after = if bracket {
            after.strip_prefix(']').unwrap_or(after)
        } else {
            after
        };
        p.ts_ms = Some(ts);
        rest = after.trim_start();
    }
    // The level is within the next two tokens (`[main] ERROR ...`).
    let mut cursor = rest;
    for _ in 0..2 {
        let (tok, after) = cursor.split_once(' ').unwrap_or((cursor, ""));
        if let Some(l) = level_token(tok) {
            p.level = Some(l);
            let skipped = &rest[..rest.len() - cursor.len()];
            if !skipped.trim().is_empty() {
                p.fields.insert("context".into(), skipped.trim().to_owned());
            }
            rest = after.trim_start();
            break;
        }
        if !tok.starts_with('[') {
            break;
        }
        cursor = after.trim_start();
    }
    if p.ts_ms.is_none() && p.level.is_none() {
        return None;
    }
    p.message = rest.strip_prefix("- ").unwrap_or(rest).to_owned();
    Some(p)
}

/// The level a line without one most likely has, from its words.
pub fn infer_level(message: &str) -> Level {
    let lower = message.to_ascii_lowercase();
    const FATAL: [&str; 3] = ["fatal", "panic", "critical"];
    const ERROR: [&str; 12] = [
        "error",
        "exception",
        "fail",
        "refused",
        "denied",
        "timed out",
        "timeout",
        "unable to",
        "cannot ",
        "could not",
        "killed",
        "unreachable",
    ];
    if FATAL.iter().any(|w| lower.contains(w)) {
        Level::Fatal
    } else if ERROR.iter().any(|w| lower.contains(w)) {
        Level::Error
    } else if lower.contains("warn") {
        Level::Warn
    } else {
        Level::Info
    }
}
