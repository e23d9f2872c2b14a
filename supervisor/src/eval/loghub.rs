//! `supervisor eval loghub`: template mining on the Loghub 2k samples.
//!
//! For every `<System>/<System>_2k.log` under `--data` with its
//! `<System>_2k.log_structured.csv` ground truth, the header of each line is
//! split off with the system's Loghub log format (`loghub_formats.toml`),
//! the message is mined by a fresh [`Miner`] with default settings (the same
//! for every system), and each line's template id is resolved through the
//! recorded aliases after the last line. Figures:
//!
//! - grouping accuracy, exactly as Loghub's `evaluator.py` `get_accuracy`:
//!   the lines of a mined template count as correct only if they all carry
//!   one ground-truth event id and are all the lines of that event;
//! - parsing accuracy: share of lines whose mined template text equals the
//!   ground-truth template after normalising (runs of whitespace → one
//!   space, adjacent `<*>` → one `<*>`, trimmed).
//!
//! `--throughput N` also mines the messages of all systems repeated to N
//! lines on one thread and prints lines per second (header splitting not
//! timed; run it from a release build).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use agents::detect::templates::{Miner, MinerConfig, WILDCARD};
use anyhow::{Context, bail};
use regex::Regex;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory holding the data set.
    #[arg(long)]
    pub data: std::path::PathBuf,
    /// Print the figures as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also measure mining throughput over the messages repeated to this
    /// many lines (single thread).
    #[arg(long)]
    pub throughput: Option<usize>,
    /// Print, per system, the ground-truth events that were not grouped
    /// exactly, with the templates their lines went to.
    #[arg(long)]
    pub explain: bool,
}

const FORMATS: &str = include_str!("loghub_formats.toml");

#[derive(Deserialize)]
struct Formats {
    formats: HashMap<String, String>,
}

/// Loghub's `generate_logformat_regex`: `<Field>` → a lazy named group,
/// spaces → `\s+`, anchored.
pub fn format_regex(format: &str) -> anyhow::Result<Regex> {
    let field = Regex::new(r"<([^<>]+)>")?;
    let mut re = String::from("^");
    let mut last = 0;
    for m in field.captures_iter(format) {
        let (Some(all), Some(name)) = (m.get(0), m.get(1)) else {
            continue;
        };
        re.push_str(&spaces(&format[last..all.start()]));
        re.push_str(&format!("(?P<{}>.*?)", name.as_str()));
        last = all.end();
    }
    re.push_str(&spaces(&format[last..]));
    re.push('$');
    Regex::new(&re).with_context(|| format!("log format {format:?}"))
}

fn spaces(s: &str) -> String {
    let sp = Regex::new(" +").map(|r| r.replace_all(s, r"\s+").into_owned());
    sp.unwrap_or_else(|_| s.to_owned())
}

/// One ground-truth row.
struct Truth {
    event: String,
    template: String,
}

/// A minimal RFC 4180 reader (quoted fields, doubled quotes, CRLF).
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

fn read_truth(path: &Path) -> anyhow::Result<Vec<Truth>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let rows = parse_csv(&text);
    let Some((header, body)) = rows.split_first() else {
        bail!("{} is empty", path.display());
    };
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{} has no {name} column", path.display()))
    };
    let (ev, tp) = (col("EventId")?, col("EventTemplate")?);
    body.iter()
        .map(|r| match (r.get(ev), r.get(tp)) {
            (Some(e), Some(t)) => Ok(Truth {
                event: e.clone(),
                template: t.clone(),
            }),
            _ => bail!("{}: short row", path.display()),
        })
        .collect()
}

/// Grouping accuracy as Loghub's evaluator computes it.
pub fn grouping_accuracy(truth: &[&str], parsed: &[u64]) -> f64 {
    let mut truth_size: HashMap<&str, usize> = HashMap::new();
    for t in truth {
        *truth_size.entry(t).or_default() += 1;
    }
    let mut groups: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, p) in parsed.iter().enumerate() {
        groups.entry(*p).or_default().push(i);
    }
    let mut correct = 0usize;
    for lines in groups.values() {
        let first = truth[lines[0]];
        if lines.iter().all(|&i| truth[i] == first) && truth_size.get(first) == Some(&lines.len()) {
            correct += lines.len();
        }
    }
    if truth.is_empty() {
        0.0
    } else {
        correct as f64 / truth.len() as f64
    }
}

/// The template normalisation used for parsing accuracy.
pub fn normalise(template: &str) -> String {
    let mut s = template.split_whitespace().collect::<Vec<_>>().join(" ");
    let double = format!("{WILDCARD}{WILDCARD}");
    while s.contains(&double) {
        s = s.replace(&double, WILDCARD);
    }
    s
}

struct SystemRun {
    name: String,
    contents: Vec<String>,
    grouping: f64,
    parsing: f64,
    templates: usize,
    truth_templates: usize,
    header_misses: usize,
    /// Ground-truth events not grouped exactly: (event, truth template, mined templates).
    misgrouped: Vec<(String, String, Vec<String>)>,
}

fn run_system(dir: &Path, name: &str, formats: &Formats) -> anyhow::Result<SystemRun> {
    let log = dir.join(format!("{name}_2k.log"));
    let raw = std::fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
    let text = String::from_utf8_lossy(&raw);
    let truth = read_truth(&dir.join(format!("{name}_2k.log_structured.csv")))?;
    let re = formats
        .formats
        .get(name)
        .map(|f| format_regex(f))
        .transpose()?;
    let mut contents = Vec::new();
    let mut header_misses = 0;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let content = re
            .as_ref()
            .and_then(|r| r.captures(line.trim()))
            .and_then(|c| c.name("Content").map(|m| m.as_str().to_owned()));
        if content.is_none() {
            header_misses += 1;
        }
        contents.push(content.unwrap_or_else(|| line.to_owned()));
    }
    if contents.len() != truth.len() {
        bail!(
            "{name}: {} log lines but {} ground-truth rows",
            contents.len(),
            truth.len()
        );
    }
    let mut miner = Miner::new(MinerConfig::default());
    let ids: Vec<u64> = contents.iter().map(|c| miner.add(c.trim()).id).collect();
    let parsed: Vec<u64> = ids.iter().map(|&i| miner.resolve(i)).collect();
    let truth_ids: Vec<&str> = truth.iter().map(|t| t.event.as_str()).collect();
    let grouping = grouping_accuracy(&truth_ids, &parsed);
    let mut texts: HashMap<u64, String> = HashMap::new();
    let mut same = 0usize;
    for (p, t) in parsed.iter().zip(&truth) {
        let mined = texts.entry(*p).or_insert_with(|| {
            miner
                .get(*p)
                .map(|t| normalise(&t.text()))
                .unwrap_or_default()
        });
        if *mined == normalise(&t.template) {
            same += 1;
        }
    }
    let mut by_event: HashMap<&str, Vec<u64>> = HashMap::new();
    let mut by_parsed: HashMap<u64, Vec<&str>> = HashMap::new();
    for (p, t) in parsed.iter().zip(&truth_ids) {
        by_event.entry(t).or_default().push(*p);
        by_parsed.entry(*p).or_default().push(t);
    }
    let mut misgrouped = Vec::new();
    for (ev, ps) in &by_event {
        let mut ps = ps.clone();
        ps.sort_unstable();
        ps.dedup();
        let exact = ps.len() == 1
            && by_parsed
                .get(&ps[0])
                .is_some_and(|ts| ts.iter().all(|t| t == ev));
        if !exact {
            let tpl = truth
                .iter()
                .find(|t| t.event == *ev)
                .map(|t| t.template.clone())
                .unwrap_or_default();
            let mined = ps
                .iter()
                .map(|p| {
                    format!(
                        "{} [{} lines]",
                        texts.get(p).cloned().unwrap_or_default(),
                        by_parsed.get(p).map_or(0, Vec::len)
                    )
                })
                .collect();
            misgrouped.push((ev.to_string(), tpl, mined));
        }
    }
    misgrouped.sort();
    let mut truth_set: Vec<&str> = truth_ids.clone();
    truth_set.sort_unstable();
    truth_set.dedup();
    Ok(SystemRun {
        name: name.to_owned(),
        grouping,
        parsing: same as f64 / truth.len().max(1) as f64,
        templates: miner.templates().count(),
        truth_templates: truth_set.len(),
        header_misses,
        contents,
        misgrouped,
    })
}

fn systems(data: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(data).with_context(|| format!("reading {}", data.display()))?;
    for e in entries {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let dir = e.path();
        if dir.join(format!("{name}_2k.log")).is_file()
            && dir.join(format!("{name}_2k.log_structured.csv")).is_file()
        {
            out.push((dir, name));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    if out.is_empty() {
        bail!(
            "no <System>/<System>_2k.log with its _structured.csv under {}",
            data.display()
        );
    }
    Ok(out)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let formats: Formats = toml::from_str(FORMATS).context("built-in loghub formats")?;
    let mut runs = Vec::new();
    for (dir, name) in systems(&args.data)? {
        runs.push(run_system(&dir, &name, &formats)?);
    }
    let n = runs.len() as f64;
    let avg_ga = runs.iter().map(|r| r.grouping).sum::<f64>() / n;
    let avg_pa = runs.iter().map(|r| r.parsing).sum::<f64>() / n;
    let throughput = args.throughput.map(|target| {
        let all: Vec<&str> = runs
            .iter()
            .flat_map(|r| r.contents.iter().map(|c| c.trim()))
            .collect();
        let mut miner = Miner::new(MinerConfig::default());
        let start = Instant::now();
        let mut sink = 0u64;
        for i in 0..target.max(1) {
            sink = sink.wrapping_add(miner.add(all[i % all.len()]).id);
        }
        let secs = start.elapsed().as_secs_f64();
        std::hint::black_box(sink);
        (target, secs, target as f64 / secs)
    });
    let cfg = MinerConfig::default();
    if args.json {
        let systems: serde_json::Map<String, serde_json::Value> = runs
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    json!({
                        "grouping_accuracy": r.grouping,
                        "parsing_accuracy": r.parsing,
                        "templates": r.templates,
                        "truth_templates": r.truth_templates,
                        "lines": r.contents.len(),
                        "header_misses": r.header_misses,
                    }),
                )
            })
            .collect();
        let mut out = json!({
            "systems": systems,
            "average_grouping_accuracy": avg_ga,
            "average_parsing_accuracy": avg_pa,
            "miner": cfg,
        });
        if let Some((lines, secs, lps)) = throughput {
            out["throughput"] = json!({"lines": lines, "seconds": secs, "lines_per_second": lps});
        }
        println!("{out}");
        return Ok(());
    }
    println!(
        "Loghub template mining (miner settings for every system: prefix_tokens={}, merge_after={}, max_tokens={})",
        cfg.prefix_tokens, cfg.merge_after, cfg.max_tokens
    );
    println!(
        "GA = grouping accuracy as Loghub's evaluator.py; PA = template text equal after normalising whitespace and adjacent <*>"
    );
    println!(
        "{:<12} {:>8} {:>8} {:>10} {:>8} {:>8}",
        "system", "GA", "PA", "templates", "truth", "no-hdr"
    );
    for r in &runs {
        println!(
            "{:<12} {:>8.4} {:>8.4} {:>10} {:>8} {:>8}",
            r.name, r.grouping, r.parsing, r.templates, r.truth_templates, r.header_misses
        );
    }
    println!("{:<12} {:>8.4} {:>8.4}", "average", avg_ga, avg_pa);
    if args.explain {
        for r in &runs {
            for (ev, tpl, mined) in &r.misgrouped {
                println!("{} {ev} {tpl:?}", r.name);
                for m in mined {
                    println!("    -> {m}");
                }
            }
        }
    }
    if let Some((lines, secs, lps)) = throughput {
        println!(
            "throughput: {lines} messages (the samples repeated) mined on one thread in {secs:.3} s = {lps:.0} lines/s"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_accuracy_counts_only_exact_groups() {
        // Truth: A A B B; parsed: 1 1 2 3 → A correct (2 lines), B split.
        assert_eq!(grouping_accuracy(&["A", "A", "B", "B"], &[1, 1, 2, 3]), 0.5);
        // Parsed merges A and B → nothing correct.
        assert_eq!(grouping_accuracy(&["A", "A", "B"], &[1, 1, 1]), 0.0);
        assert_eq!(grouping_accuracy(&["A", "B"], &[7, 8]), 1.0);
    }

    #[test]
    fn csv_handles_quotes_and_commas() {
        let rows = parse_csv("a,b\n1,\"x, \"\"y\"\"\"\n");
        assert_eq!(rows, vec![vec!["a", "b"], vec!["1", "x, \"y\""]]);
    }

    #[test]
    fn loghub_format_splits_header_from_content() {
        let re = format_regex("<Month> <Date> <Time> <Level> <Component>(\\[<PID>\\])?: <Content>")
            .unwrap();
        let c = re
            .captures("Jun 14 15:16:02 combo sshd(pam_unix)[19937]: check pass; user unknown")
            .unwrap();
        assert_eq!(&c["Content"], "check pass; user unknown");
        assert_eq!(normalise("a  <*><*> b "), "a <*> b");
    }
}
