//! Token masking: the variable parts of a token (numbers, IPs, hex, UUIDs,
//! times, durations, paths, URLs) are replaced by `<*>`, so that
//! `10.0.0.7:5432` and `10.0.0.9:5432` mask to the same thing.
//!
//! Hand-written byte scanning, no regex: this runs on every token of every
//! line and is most of the miner's cost.

/// The placeholder written in place of a variable part.
pub const WILDCARD: &str = "<*>";

/// What masking did to a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Masked {
    /// Nothing variable: the token is its own mask.
    Literal,
    /// Some parts replaced (`ssh2` → `ssh<*>`, `(uid=0)` → `(uid=<*>)`).
    Partial,
    /// The whole token is variable (`<*>`).
    Full,
}

fn is_runchar(b: u8) -> bool {
    b.is_ascii_hexdigit() || matches!(b, b'.' | b':' | b'-')
}

fn is_open(b: u8) -> bool {
    matches!(b, b'[' | b'(' | b'{' | b'<' | b'\'' | b'"' | b'=')
}

fn is_close(b: u8) -> bool {
    matches!(
        b,
        b']' | b')' | b'}' | b'>' | b'\'' | b'"' | b',' | b';' | b':' | b'.'
    )
}

/// A host name: dot-separated labels of letters, digits and hyphens,
/// ending in a lowercase alphabetic label that is a common top-level domain,
/// or a two-letter country code or any label after a digit-holding name of
/// three or more labels (so `org.apache.Foo`, `org.apache.hadoop` and
/// `workerEnv.init()` stay words).
fn is_hostname(core: &[u8]) -> bool {
    if core.len() < 5
        || !core
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
    {
        return false;
    }
    let labels: Vec<&[u8]> = core.split(|&c| c == b'.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return false;
    }
    let Some(tld) = labels.last() else {
        return false;
    };
    if !(2..=6).contains(&tld.len()) || !tld.iter().all(u8::is_ascii_lowercase) {
        return false;
    }
    const TLDS: [&[u8]; 14] = [
        b"com", b"net", b"org", b"edu", b"gov", b"io", b"uk", b"de", b"cn", b"jp", b"ru", b"fr",
        b"info", b"local",
    ];
    TLDS.contains(tld)
        || (labels.len() >= 3 && (tld.len() == 2 || core.iter().any(u8::is_ascii_digit)))
}

/// Append the mask of `tok` to `out` and say what was masked.
pub fn mask_token(tok: &str, out: &mut String) -> Masked {
    let b = tok.as_bytes();
    // `key=value`: the key is a constant, only the value is masked.
    if let Some(eq) = b.iter().position(|&c| c == b'=')
        && eq > 0
        && eq + 1 < b.len()
        && b[..eq]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
    {
        out.push_str(&tok[..=eq]);
        return match mask_token(&tok[eq + 1..], out) {
            Masked::Literal => Masked::Literal,
            _ => Masked::Partial,
        };
    }
    // An empty bracketed value (`()`, `[]`, `''`) is a value that happens
    // to be empty: it masks like a filled one.
    if let [o, c] = b
        && matches!(
            (o, c),
            (b'(', b')')
                | (b'[', b']')
                | (b'{', b'}')
                | (b'\'', b'\'')
                | (b'"', b'"')
                | (b'<', b'>')
        )
    {
        out.push(char::from(*o));
        out.push_str(WILDCARD);
        out.push(char::from(*c));
        return Masked::Partial;
    }
    // Paths and URLs: the core (without surrounding punctuation) is variable.
    let mut s = 0;
    while s < b.len() && is_open(b[s]) {
        s += 1;
    }
    let mut e = b.len();
    while e > s && is_close(b[e - 1]) {
        e -= 1;
    }
    let core = &b[s..e];
    let is_path = core.len() > 1
        && (core[0] == b'/' || core.starts_with(b"./") || core.starts_with(b"~/"))
        && core[1..].iter().any(|&c| c != b'/');
    let is_url = core.windows(3).any(|w| w == b"://");
    if is_path || is_url || is_hostname(core) {
        // Only when the token starts at the path (`/var/x`, `'/udev/x'`); a
        // path after a key (`dir=/x`) keeps the key.
        out.push_str(&tok[..s]);
        out.push_str(WILDCARD);
        out.push_str(&tok[e..]);
        return if s == 0 && e == b.len() {
            Masked::Full
        } else {
            Masked::Partial
        };
    }
    if !b.iter().any(u8::is_ascii_digit) {
        out.push_str(tok);
        return Masked::Literal;
    }
    // Replace maximal runs of number-ish characters that hold a digit.
    let start_len = out.len();
    let mut i = 0;
    let mut masked_any = false;
    let mut literal_any = false;
    while i < b.len() {
        if !is_runchar(b[i]) {
            // Copy a run of other characters (may be multi-byte UTF-8).
            let j = b[i..]
                .iter()
                .position(|&c| is_runchar(c))
                .map_or(b.len(), |p| i + p);
            out.push_str(&tok[i..j]);
            literal_any = true;
            i = j;
            continue;
        }
        let mut j = i;
        // `0x1f`: the `x` belongs to the number.
        if b[i] == b'0'
            && b.len() > i + 2
            && matches!(b[i + 1], b'x' | b'X')
            && b[i + 2].is_ascii_hexdigit()
        {
            j = i + 2;
        }
        while j < b.len() && is_runchar(b[j]) {
            j += 1;
        }
        // A run glued to letters on its left (`ssh2`, `workers2`) only
        // masks its digits onwards; hex letters before the first digit stay.
        let mut rs = i;
        if i > 0 && b[i - 1].is_ascii_alphabetic() {
            while rs < j && !b[rs].is_ascii_digit() {
                rs += 1;
            }
        }
        // Trailing separators are punctuation, not part of the value.
        let mut re = j;
        while re > rs && matches!(b[re - 1], b'.' | b':' | b'-') {
            re -= 1;
        }
        if b[rs..re].iter().any(u8::is_ascii_digit) {
            out.push_str(&tok[i..rs]);
            out.push_str(WILDCARD);
            out.push_str(&tok[re..j]);
            masked_any = true;
            if rs > i || re < j {
                literal_any = true;
            }
        } else {
            out.push_str(&tok[i..j]);
            literal_any = true;
        }
        i = j;
    }
    match (masked_any, literal_any) {
        (false, _) => Masked::Literal,
        (true, false) => Masked::Full,
        (true, true) => {
            // A unit right after a number is a duration: `30s`, `1.5ms`.
            let tail = &out[start_len..];
            if let Some(unit) = tail.strip_prefix(WILDCARD)
                && matches!(
                    unit,
                    "ns" | "us" | "µs" | "ms" | "s" | "m" | "h" | "d" | "sec" | "secs"
                )
            {
                out.truncate(start_len);
                out.push_str(WILDCARD);
                return Masked::Full;
            }
            Masked::Partial
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(t: &str) -> (String, Masked) {
        let mut s = String::new();
        let k = mask_token(t, &mut s);
        (s, k)
    }

    #[test]
    fn masks_numbers_ips_hex_uuids_times_durations_paths() {
        for t in [
            "42",
            "-17",
            "3.14",
            "10.0.0.7:5432",
            "fe80::1",
            "0x1f",
            "deadbeef01",
            "550e8400-e29b-41d4-a716-446655440000",
            "06:55:46",
            "30s",
            "1.5ms",
            "/var/lib/postgres/data",
            "https://example.com/x",
        ] {
            assert_eq!(m(t), ("<*>".into(), Masked::Full), "{t}");
        }
    }

    #[test]
    fn keeps_words_and_masks_only_the_variable_part_of_mixed_tokens() {
        assert_eq!(m("refused"), ("refused".into(), Masked::Literal));
        assert_eq!(m("deadlock"), ("deadlock".into(), Masked::Literal));
        assert_eq!(m("error:"), ("error:".into(), Masked::Literal));
        assert_eq!(m("ssh2").0, "ssh<*>");
        assert_eq!(m("(uid=0)").0, "(uid=<*>)");
        assert_eq!(m("[173.234.31.186]").0, "[<*>]");
        assert_eq!(m("rhost=218.188.2.4").0, "rhost=<*>");
        assert_eq!(m("blk_-6952295868487656571").0, "blk_<*>");
        assert_eq!(m("10.0.0.7:5432,").0, "<*>,");
        assert_eq!(m("'/udev/sda1'").0, "'<*>'");
        assert_eq!(m("sshd[24200]:").0, "sshd[<*>]:");
        assert_eq!(m("héllo9").0, "héllo<*>");
        assert_eq!(m("(adsl-63-197-98-106.dsl.mtry01.pacbell.net)").0, "(<*>)");
        assert_eq!(m("ns.example.com").0, "<*>");
        assert_eq!(m("zummit.com").0, "<*>");
        assert_eq!(m("biblioteka.wsi.edu.pl").0, "<*>");
        assert_eq!(m("org.apache.hadoop").0, "org.apache.hadoop");
        assert_eq!(m("()").0, "(<*>)");
        assert_eq!(
            m("rhost=ec2-52-80-34-196.cn-north-1.compute.amazonaws.com.cn").0,
            "rhost=<*>"
        );
        assert_eq!(m("user=root"), ("user=root".into(), Masked::Literal));
        assert_eq!(
            m("org.apache.hadoop.Server"),
            ("org.apache.hadoop.Server".into(), Masked::Literal)
        );
        assert_eq!(m("workerEnv.init()").0, "workerEnv.init()");
    }
}
