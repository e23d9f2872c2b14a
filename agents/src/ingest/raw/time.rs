//! Timestamp prefixes in the usual forms, parsed by hand (no allocation):
//! ISO 8601 / RFC 3339 (`2024-05-01T12:34:56.789Z`, `2024-05-01 12:34:56,789`,
//! offsets), BSD syslog (`Oct 11 22:14:15`, the year taken from the arrival
//! time) and the access-log form (`10/Oct/2000:13:55:36 -0700`).

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil year of an epoch-millisecond time.
pub fn year_of(ms: i64) -> i64 {
    let days = ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(m <= 2)
}

fn num(b: &[u8], at: usize, len: usize) -> Option<u32> {
    let s = b.get(at..at + len)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

pub fn month(s: &[u8]) -> Option<u32> {
    const M: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let s = s.get(..3)?;
    let l = [
        s[0].to_ascii_lowercase(),
        s[1].to_ascii_lowercase(),
        s[2].to_ascii_lowercase(),
    ];
    M.iter().position(|m| **m == l).map(|i| i as u32 + 1)
}

fn valid(mo: u32, d: u32, h: u32, mi: u32, s: u32) -> bool {
    (1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && s <= 60
}

/// Fraction and zone after the seconds: returns (millis, offset seconds,
/// bytes used).
fn frac_and_zone(b: &[u8], mut i: usize) -> (i64, i64, usize) {
    let start = i;
    let mut ms = 0i64;
    if i < b.len() && (b[i] == b'.' || b[i] == b',') && b.get(i + 1).is_some_and(u8::is_ascii_digit)
    {
        i += 1;
        let mut scale = 100;
        while i < b.len() && b[i].is_ascii_digit() {
            ms += i64::from(b[i] - b'0') * scale;
            scale /= 10;
            i += 1;
        }
    }
    let mut off = 0i64;
    let zone_at = if b.get(i) == Some(&b' ') && matches!(b.get(i + 1), Some(b'+' | b'-' | b'Z')) {
        i + 1
    } else {
        i
    };
    match b.get(zone_at) {
        Some(b'Z') => i = zone_at + 1,
        Some(&sign @ (b'+' | b'-')) => {
            let hh = num(b, zone_at + 1, 2);
            let (mm, used) = if b.get(zone_at + 3) == Some(&b':') {
                (num(b, zone_at + 4, 2), 6)
            } else {
                (num(b, zone_at + 3, 2), 5)
            };
            if let (Some(hh), Some(mm)) = (hh, mm) {
                off = i64::from(hh * 3600 + mm * 60);
                if sign == b'-' {
                    off = -off;
                }
                i = zone_at + used;
            }
        }
        _ => {}
    }
    (ms, off, i - start)
}

/// An ISO 8601 timestamp at the start of `s`: (epoch ms, bytes used).
pub fn iso_prefix(s: &str) -> Option<(i64, usize)> {
    let b = s.as_bytes();
    let (y, mo, d) = (num(b, 0, 4)?, num(b, 5, 2)?, num(b, 8, 2)?);
    if !(b.get(4) == Some(&b'-')
        && b.get(7) == Some(&b'-')
        && matches!(b.get(10), Some(b'T' | b' ')))
    {
        return None;
    }
    let (h, mi, sec) = (num(b, 11, 2)?, num(b, 14, 2)?, num(b, 17, 2)?);
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') || !valid(mo, d, h, mi, sec) {
        return None;
    }
    let (ms, off, used) = frac_and_zone(b, 19);
    let secs =
        days_from_civil(i64::from(y), mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - off;
    Some((secs * 1000 + ms, 19 + used))
}

/// A BSD syslog timestamp (`Oct 11 22:14:15`, `Oct  1 02:04:05`).
pub fn bsd_prefix(s: &str, now_ms: i64) -> Option<(i64, usize)> {
    let b = s.as_bytes();
    let mo = month(b)?;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let (d, at) = match (b.get(4), b.get(5)) {
        (Some(b' '), _) => (num(b, 5, 1)?, 6),
        _ => (num(b, 4, 2)?, 6),
    };
    if b.get(at) != Some(&b' ') {
        return None;
    }
    let (h, mi, sec) = (num(b, at + 1, 2)?, num(b, at + 4, 2)?, num(b, at + 7, 2)?);
    if b.get(at + 3) != Some(&b':') || b.get(at + 6) != Some(&b':') || !valid(mo, d, h, mi, sec) {
        return None;
    }
    let (ms, _, used) = frac_and_zone(b, at + 9);
    let year = year_of(now_ms);
    let mut t =
        (days_from_civil(year, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + sec)) * 1000 + ms;
    // A December line arriving in January belongs to last year.
    if t > now_ms + 2 * 86_400_000 {
        t = (days_from_civil(year - 1, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + sec))
            * 1000
            + ms;
    }
    Some((t, at + 9 + used))
}

/// The access-log form `10/Oct/2000:13:55:36 -0700` (the whole of `s`).
pub fn clf(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let d = num(b, 0, 2)?;
    let mo = month(b.get(3..6)?)?;
    let y = num(b, 7, 4)?;
    let (h, mi, sec) = (num(b, 12, 2)?, num(b, 15, 2)?, num(b, 18, 2)?);
    if b.get(2) != Some(&b'/')
        || b.get(6) != Some(&b'/')
        || b.get(11) != Some(&b':')
        || !valid(mo, d, h, mi, sec)
    {
        return None;
    }
    let (ms, off, _) = frac_and_zone(b, 20);
    let secs =
        days_from_civil(i64::from(y), mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - off;
    Some(secs * 1000 + ms)
}

/// Epoch seconds or milliseconds given as a number.
pub fn epoch(v: f64) -> i64 {
    // Below ~1e11 it is seconds (1e11 s is year 5138; 1e11 ms is 1973).
    if v.abs() < 1e11 {
        (v * 1000.0) as i64
    } else {
        v as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_forms() {
        let base = 1_714_566_896_000; // 2024-05-01T12:34:56Z
        assert_eq!(iso_prefix("2024-05-01T12:34:56Z x"), Some((base, 20)));
        assert_eq!(
            iso_prefix("2024-05-01 12:34:56,789 ERROR"),
            Some((base + 789, 23))
        );
        assert_eq!(
            iso_prefix("2024-05-01T14:34:56.5+02:00"),
            Some((base + 500, 27))
        );
        assert_eq!(
            iso_prefix("2024-05-01T12:34:56.123456Z").map(|x| x.0),
            Some(base + 123)
        );
        assert_eq!(iso_prefix("2024-13-01T12:34:56Z"), None);
        assert_eq!(iso_prefix("hello"), None);
    }

    #[test]
    fn bsd_and_clf_forms() {
        let now = 1_714_566_896_000;
        assert_eq!(bsd_prefix("May  1 12:34:56 host", now), Some((now, 15)));
        assert_eq!(bsd_prefix("May 01 12:34:56 host", now), Some((now, 15)));
        // December seen in May is this year; in January, last year.
        let jan = days_from_civil(2025, 1, 2) * 86_400_000;
        let (t, _) = bsd_prefix("Dec 31 23:00:00 x", jan).unwrap();
        assert_eq!(year_of(t), 2024);
        assert_eq!(clf("01/May/2024:14:34:56 +0200"), Some(now));
        assert_eq!(year_of(now), 2024);
        assert_eq!(epoch(1_714_566_896.0), now);
        assert_eq!(epoch(1_714_566_896_000.0), now);
    }
}
