//! Raw log lines in the formats services actually write: JSON lines,
//! logfmt, syslog (RFC 3164 and 5424), common/combined access logs, and free
//! text with a leading timestamp and level. Pure: `POST /ingest/logs/raw`
//! calls [`parse_body`].
//!
//! Nothing is dropped: a line in no known format is kept as free text, an
//! invalid UTF-8 sequence is replaced (U+FFFD), and a line longer than
//! `max_line_bytes` is cut with a `…[truncated N bytes]` marker. Stack
//! trace lines (indented, `Caused by:`, `... N more`, an exception name
//! after an error) are joined to the line they belong to.

pub mod formats;
pub mod time;

use state::model::{Level, LogEvent};

pub use formats::{Format, Parts};

/// Settings of the raw parser.
#[derive(Clone, Debug)]
pub struct RawOptions {
    /// Service for lines that do not name one.
    pub default_service: String,
    /// Longer lines (and joined stack traces) are truncated with a marker.
    pub max_line_bytes: usize,
    /// At most this many continuation lines are joined to one entry.
    pub max_joined_lines: usize,
}

impl Default for RawOptions {
    fn default() -> Self {
        Self {
            default_service: "unknown".into(),
            max_line_bytes: 16 * 1024,
            max_joined_lines: 200,
        }
    }
}

/// Read one line (no newline) as whichever format fits.
pub fn parse_line(line: &str, now_ms: i64, opts: &RawOptions) -> (LogEvent, Format) {
    let (parts, format) = detect(line, now_ms);
    let level_inferred = parts.level.is_none();
    let level = parts
        .level
        .unwrap_or_else(|| formats::infer_level(&parts.message));
    let mut fields = parts.fields;
    fields.insert("log.format".into(), format.as_str().into());
    if level_inferred {
        fields.insert("log.level_inferred".into(), "true".into());
    }
    let event = LogEvent {
        ts_ms: parts.ts_ms.unwrap_or(now_ms),
        service: parts
            .service
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| opts.default_service.clone()),
        level,
        message: parts.message,
        fields,
    };
    (event, format)
}

fn detect(line: &str, now_ms: i64) -> (Parts, Format) {
    let first = line.as_bytes().first().copied().unwrap_or(b' ');
    if first == b'{'
        && let Some(p) = formats::json(line)
    {
        return (p, Format::Json);
    }
    if first == b'<' {
        if let Some(p) = formats::syslog5424(line) {
            return (p, Format::Syslog5424);
        }
        if let Some(p) = formats::syslog3164(line, now_ms) {
            return (p, Format::Syslog3164);
        }
    }
    if first.is_ascii_alphabetic()
        && let Some(p) = formats::syslog3164(line, now_ms)
    {
        return (p, Format::Syslog3164);
    }
    if line.contains(" [")
        && let Some(p) = formats::access(line)
    {
        return (p, Format::Access);
    }
    if line.contains('=')
        && let Some(p) = formats::logfmt(line)
    {
        return (p, Format::Logfmt);
    }
    if let Some(p) = formats::text(line) {
        return (p, Format::Text);
    }
    (
        Parts {
            message: line.to_owned(),
            ..Parts::default()
        },
        Format::Plain,
    )
}

/// Is `line` the continuation of the entry before it (a stack trace)?
fn is_continuation(line: &str, prev: &LogEvent) -> bool {
    if line.starts_with([' ', '\t']) {
        return true;
    }
    if line.starts_with("Caused by:") || line.starts_with("... ") || line.starts_with("Traceback (")
    {
        return true;
    }
    // `java.lang.IllegalStateException: x` or `ValueError: x` right after
    // an error line or inside a trace.
    let head = line.split([':', ' ']).next().unwrap_or("");
    let exception_name = (head.ends_with("Exception") || head.ends_with("Error"))
        && head
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'$'));
    exception_name && (prev.level >= Level::Warn || prev.message.contains('\n'))
}

/// Cut `s` to at most `max` bytes on a char boundary, with a marker.
pub fn truncate(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let dropped = s.len() - cut;
    s.truncate(cut);
    s.push_str(&format!("…[truncated {dropped} bytes]"));
    true
}

/// Parse a whole body: one entry per line, stack traces joined.
pub fn parse_body(body: &[u8], now_ms: i64, opts: &RawOptions) -> Vec<LogEvent> {
    let mut out: Vec<LogEvent> = Vec::new();
    let mut joined = 0usize;
    for raw in body.split(|&b| b == b'\n') {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut line = String::from_utf8_lossy(raw).into_owned();
        if let Some(prev) = out.last_mut()
            && is_continuation(&line, prev)
        {
            joined += 1;
            let full = prev.message.len() >= opts.max_line_bytes;
            if joined <= opts.max_joined_lines && !full {
                prev.message.push('\n');
                prev.message.push_str(line.trim_end());
                if truncate(&mut prev.message, opts.max_line_bytes) {
                    prev.fields.insert("log.truncated".into(), "true".into());
                }
            } else {
                let skipped = prev
                    .fields
                    .entry("log.lines_skipped".into())
                    .or_insert_with(|| "0".into());
                let n: u64 = skipped.parse().unwrap_or(0);
                *skipped = (n + 1).to_string();
            }
            continue;
        }
        joined = 0;
        let truncated = truncate(&mut line, opts.max_line_bytes);
        let (mut ev, _) = parse_line(&line, now_ms, opts);
        if truncated {
            ev.fields.insert("log.truncated".into(), "true".into());
        }
        out.push(ev);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_714_566_896_000; // 2024-05-01T12:34:56Z

    fn one(line: &str) -> (LogEvent, Format) {
        parse_line(line, NOW, &RawOptions::default())
    }

    #[test]
    fn json_lines_with_usual_keys_and_nested_service() {
        let (e, f) = one(
            r#"{"@timestamp":"2024-05-01T12:34:56.250Z","level":"ERROR","service":{"name":"checkout"},"message":"payment failed","order_id":42,"retry":true}"#,
        );
        assert_eq!(f, Format::Json);
        assert_eq!((e.ts_ms, e.level), (NOW + 250, Level::Error));
        assert_eq!(e.service, "checkout");
        assert_eq!(e.message, "payment failed");
        assert_eq!(e.fields["order_id"], "42");
        assert_eq!(e.fields["retry"], "true");
        let (e, _) = one(r#"{"time":1714566896,"level":50,"msg":"db down","app":"api"}"#);
        assert_eq!(
            (e.ts_ms, e.level, e.service.as_str()),
            (NOW, Level::Error, "api")
        );
        // Broken JSON is still accepted, as free text.
        let (e, f) = one(r#"{"level":"error","msg":"cut off"#);
        assert_eq!(f, Format::Plain);
        assert!(e.message.contains("cut off"));
    }

    #[test]
    fn logfmt_with_quoted_values() {
        let (e, f) = one(
            r#"ts=2024-05-01T12:34:56Z level=warn service=billing msg="slow query \"select 1\"" duration=1.2s db=main"#,
        );
        assert_eq!(f, Format::Logfmt);
        assert_eq!((e.ts_ms, e.level), (NOW, Level::Warn));
        assert_eq!(e.service, "billing");
        assert_eq!(e.message, r#"slow query "select 1""#);
        assert_eq!(e.fields["duration"], "1.2s");
    }

    #[test]
    fn syslog_rfc3164_with_and_without_pri() {
        let (e, f) = one(
            "<34>May  1 12:34:56 mymachine su[231]: 'su root' failed for lonvick on /dev/pts/8",
        );
        assert_eq!(f, Format::Syslog3164);
        assert_eq!((e.ts_ms, e.level), (NOW, Level::Fatal));
        assert_eq!(e.service, "su");
        assert_eq!(e.fields["host"], "mymachine");
        assert_eq!(e.fields["pid"], "231");
        assert_eq!(e.message, "'su root' failed for lonvick on /dev/pts/8");
        let (e, f) =
            one("May 01 12:34:56 db1 postgres[99]: FATAL:  too many connections for role \"app\"");
        assert_eq!(f, Format::Syslog3164);
        assert_eq!(e.service, "postgres");
        assert_eq!(e.level, Level::Fatal, "inferred from the words");
        assert_eq!(e.fields["log.level_inferred"], "true");
    }

    #[test]
    fn syslog_rfc5424_with_structured_data() {
        let (e, f) = one(
            "<165>1 2024-05-01T12:34:56.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] \u{feff}An application event log entry",
        );
        assert_eq!(f, Format::Syslog5424);
        assert_eq!((e.ts_ms, e.level), (NOW + 3, Level::Info));
        assert_eq!(e.service, "evntslog");
        assert_eq!(e.fields["exampleSDID@32473.eventSource"], "Application");
        assert_eq!(e.fields["msgid"], "ID47");
        assert_eq!(e.message, "An application event log entry");
        let (e, _) = one("<11>1 - host app 12 - - disk failure");
        assert_eq!((e.ts_ms, e.level), (NOW, Level::Error));
        assert_eq!(e.message, "disk failure");
    }

    #[test]
    fn access_logs_common_and_combined() {
        let (e, f) = one(
            r#"127.0.0.1 - frank [01/May/2024:14:34:56 +0200] "GET /apache_pb.gif HTTP/1.0" 200 2326"#,
        );
        assert_eq!(f, Format::Access);
        assert_eq!((e.ts_ms, e.level), (NOW, Level::Info));
        assert_eq!(e.fields["user"], "frank");
        assert_eq!(e.fields["path"], "/apache_pb.gif");
        let (e, _) = one(
            r#"10.1.2.3 - - [01/May/2024:12:34:56 +0000] "POST /api/orders HTTP/1.1" 502 173 "https://shop.example/" "Mozilla/5.0 (X11)""#,
        );
        assert_eq!(e.level, Level::Error);
        assert_eq!(e.fields["status"], "502");
        assert_eq!(e.fields["user_agent"], "Mozilla/5.0 (X11)");
        assert_eq!(e.message, r#""POST /api/orders HTTP/1.1" 502 173"#);
    }

    #[test]
    fn free_text_with_leading_timestamp_and_level() {
        let (e, f) = one(
            "2024-05-01 12:34:56,789 ERROR [main] c.e.Pool - Connection is not available, request timed out after 30000ms",
        );
        assert_eq!(f, Format::Text);
        assert_eq!((e.ts_ms, e.level), (NOW + 789, Level::Error));
        assert_eq!(
            e.message,
            "[main] c.e.Pool - Connection is not available, request timed out after 30000ms"
        );
        let (e, _) = one("[2024-05-01T12:34:56Z] [warn] disk 91% full");
        assert_eq!(
            (e.ts_ms, e.level, e.message.as_str()),
            (NOW, Level::Warn, "disk 91% full")
        );
        let (e, _) = one("2024-05-01T12:34:56Z [worker-3] WARN retrying");
        assert_eq!((e.level, e.message.as_str()), (Level::Warn, "retrying"));
        assert_eq!(e.fields["context"], "[worker-3]");
        let (e, f) = one("ERROR: relation \"users\" does not exist");
        assert_eq!((f, e.level), (Format::Text, Level::Error));
        assert_eq!(e.ts_ms, NOW);
    }

    #[test]
    fn unmatched_lines_are_kept_as_plain_text() {
        let (e, f) = one("something happened here");
        assert_eq!(
            (f, e.level, e.service.as_str()),
            (Format::Plain, Level::Info, "unknown")
        );
        assert_eq!(e.message, "something happened here");
    }

    #[test]
    fn stack_traces_join_their_first_line() {
        let body = b"2024-05-01 12:34:56 ERROR request failed\n\
java.lang.IllegalStateException: pool closed\n\
\tat com.example.Pool.get(Pool.java:42)\n\
\tat com.example.Api.handle(Api.java:7)\n\
Caused by: java.net.ConnectException: Connection refused\n\
\t... 12 more\n\
2024-05-01 12:34:57 INFO next request\n\
2024-05-01 12:34:58 ERROR handler crashed\n\
Traceback (most recent call last):\n\
\x20\x20File \"app.py\", line 3, in <module>\n\
ValueError: bad\n";
        let ev = parse_body(body, NOW, &RawOptions::default());
        assert_eq!(ev.len(), 3, "{ev:#?}");
        assert!(
            ev[0]
                .message
                .starts_with("request failed\njava.lang.IllegalStateException")
        );
        assert!(ev[0].message.ends_with("... 12 more"));
        assert_eq!(ev[1].message, "next request");
        assert!(ev[2].message.starts_with("handler crashed\nTraceback"));
        assert!(ev[2].message.ends_with("ValueError: bad"));
    }

    #[test]
    fn invalid_utf8_is_replaced_and_long_lines_truncated() {
        let mut body = b"2024-05-01T12:34:56Z ERROR bad byte \xff\xfe here\n".to_vec();
        body.extend(std::iter::repeat_n(b'x', 100));
        body.push(b'\n');
        let opts = RawOptions {
            max_line_bytes: 40,
            ..RawOptions::default()
        };
        let ev = parse_body(&body, NOW, &opts);
        assert_eq!(ev.len(), 2);
        assert!(ev[0].message.contains('\u{fffd}'), "{}", ev[0].message);
        assert!(ev[1].message.starts_with(&"x".repeat(40)));
        assert!(ev[1].message.ends_with("…[truncated 60 bytes]"));
        assert_eq!(ev[1].fields["log.truncated"], "true");
        // A cut inside a multi-byte char backs off to its start.
        let mut s = "ééé".to_string();
        assert!(truncate(&mut s, 3));
        assert!(s.starts_with('é') && !s.starts_with("éé"));
    }

    #[test]
    fn crlf_and_blank_lines() {
        let ev = parse_body(
            b"a=1 b=2\r\n\r\n\n  \nplain\r\n",
            NOW,
            &RawOptions::default(),
        );
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1].message, "plain");
    }
}
