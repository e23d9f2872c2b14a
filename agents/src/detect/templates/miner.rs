//! The online miner: a fixed-depth parse tree in the style of Drain, with
//! an explicit generalisation rule instead of a similarity threshold.
//!
//! A line is split on whitespace and each token masked ([`super::mask`]).
//! The tree's first level is the token count and the next `prefix_tokens`
//! levels are the first masked tokens, as in Drain: lines of different
//! length, or starting differently, never share a template. Inside a leaf a
//! line joins the template whose every slot equals its masked token or is a
//! wildcard.
//!
//! A line that joins no template starts a new one. Templates generalise when
//! evidence says a position is a variable: once `merge_after` templates of a
//! leaf differ from each other in exactly one position (and agree on every
//! other), they merge into one template with a wildcard there. The oldest id
//! survives and the others are recorded as its aliases, so an id handed out
//! earlier always resolves ([`Miner::resolve`]). Why not Drain's similarity
//! threshold: a threshold merges `Too many authentication failures for root`
//! with `... for admin` (6 of 7 tokens equal) although they are different
//! events, and must be tuned per system; counting distinct values at one
//! position needs no tuning and only merges once a value has been seen to
//! vary.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

use super::mask::{Masked, WILDCARD, mask_token};

/// Miner settings; the same for every log source.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MinerConfig {
    /// Leading tokens that select the leaf (Drain's depth minus two). They
    /// are assumed to be constants and never generalised.
    pub prefix_tokens: usize,
    /// Distinct values at one position, with all else equal, after which
    /// the position becomes a wildcard.
    pub merge_after: usize,
    /// Tokens mined per line; the rest of a longer line is ignored.
    pub max_tokens: usize,
}

impl Default for MinerConfig {
    fn default() -> Self {
        Self {
            prefix_tokens: 2,
            merge_after: 4,
            max_tokens: 128,
        }
    }
}

/// One position of a template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Slot {
    /// Every line had this masked token here.
    Lit(String),
    /// Lines differed here.
    Any,
}

/// A mined template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub id: u64,
    pub slots: Vec<Slot>,
    /// Per position, the original token when every line had the same one
    /// (shown instead of a partial mask: `ssh2` rather than `ssh<*>`).
    pub shown: Vec<Option<String>>,
    /// Lines that matched it (including those of merged templates).
    pub count: u64,
    /// Ids merged into this one.
    pub aliases: Vec<u64>,
}

impl Template {
    /// The template as text, `<*>` for each variable part.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for (i, slot) in self.slots.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            match slot {
                Slot::Any => s.push_str(WILDCARD),
                Slot::Lit(m) if m == WILDCARD => s.push_str(WILDCARD),
                Slot::Lit(m) => match self.shown.get(i) {
                    Some(Some(orig)) => s.push_str(orig),
                    _ => s.push_str(m),
                },
            }
        }
        s
    }
}

/// What adding a line did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    /// The template the line belongs to now.
    pub id: u64,
    /// The template was created by this line.
    pub created: bool,
    /// Merges this line caused: `(merged id, surviving id)`.
    pub merged: Vec<(u64, u64)>,
}

/// FxHash (rustc's hasher): the leaf keys are short strings hashed per line.
#[derive(Default)]
struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// The online template miner.
#[derive(Default)]
pub struct Miner {
    cfg: MinerConfig,
    /// Leaf key → live template ids.
    leaves: FxMap<u64, Vec<u64>>,
    /// Live templates by id.
    templates: FxMap<u64, Template>,
    /// Merged id → surviving id.
    alias: FxMap<u64, u64>,
    next_id: u64,
    // Scratch buffers reused across lines.
    buf: String,
    spans: Vec<(usize, usize, Masked)>,
    originals: Vec<(usize, usize)>,
}

impl Miner {
    pub fn new(cfg: MinerConfig) -> Miner {
        Miner {
            cfg: MinerConfig {
                merge_after: cfg.merge_after.max(2),
                max_tokens: cfg.max_tokens.max(1),
                ..cfg
            },
            next_id: 1,
            ..Miner::default()
        }
    }

    /// A miner continuing from saved templates and aliases.
    pub fn restore(
        cfg: MinerConfig,
        templates: impl IntoIterator<Item = Template>,
        aliases: impl IntoIterator<Item = (u64, u64)>,
    ) -> Miner {
        let mut m = Miner::new(cfg);
        for t in templates {
            m.next_id = m.next_id.max(t.id + 1);
            let key = m.key_of_slots(&t.slots);
            m.leaves.entry(key).or_default().push(t.id);
            m.templates.insert(t.id, t);
        }
        for (from, to) in aliases {
            m.next_id = m.next_id.max(from + 1);
            m.alias.insert(from, to);
        }
        m
    }

    pub fn config(&self) -> &MinerConfig {
        &self.cfg
    }

    /// The live template an id (possibly merged away) stands for now.
    pub fn resolve(&self, id: u64) -> u64 {
        let mut id = id;
        // Aliases always point at a live id, but follow a chain defensively.
        for _ in 0..64 {
            match self.alias.get(&id) {
                Some(&to) => id = to,
                None => break,
            }
        }
        id
    }

    pub fn get(&self, id: u64) -> Option<&Template> {
        self.templates.get(&self.resolve(id))
    }

    /// Live templates, in no particular order.
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        self.templates.values()
    }

    /// Every recorded alias, `(merged id, surviving id)`.
    pub fn aliases(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.alias.iter().map(|(&a, &b)| (a, b))
    }

    fn key_of_slots(&self, slots: &[Slot]) -> u64 {
        let mut h = Fx::default();
        h.write_usize(slots.len());
        for s in slots.iter().take(self.cfg.prefix_tokens) {
            match s {
                Slot::Lit(m) => h.write(m.as_bytes()),
                Slot::Any => h.write(WILDCARD.as_bytes()),
            }
            h.write_u8(0xff);
        }
        h.finish()
    }

    /// Mine one line (a message, without its timestamp/level header).
    pub fn add(&mut self, line: &str) -> Observation {
        self.buf.clear();
        self.spans.clear();
        self.originals.clear();
        let base = line.as_ptr() as usize;
        for tok in line.split_ascii_whitespace() {
            let start = self.buf.len();
            let kind = mask_token(tok, &mut self.buf);
            let off = tok.as_ptr() as usize - base;
            let end = off + tok.len();
            if let Some(prev) = self.spans.last().copied() {
                // A list of values (`blk_1 blk_2 blk_3`) is one variable:
                // a repeated masked token folds into the one before.
                if kind != Masked::Literal
                    && prev.2 != Masked::Literal
                    && self.buf[prev.0..prev.1] == self.buf[start..]
                {
                    self.buf.truncate(start);
                    if let Some(o) = self.originals.last_mut() {
                        o.1 = end;
                    }
                    continue;
                }
                // Month and weekday names before a number are part of a
                // date: `Fri Jun 17 20:55:07 2005` is one variable.
                if kind == Masked::Full
                    && prev.2 == Masked::Literal
                    && is_calendar_word(&self.buf[prev.0..prev.1])
                {
                    let mut from = (prev.0, off);
                    while let (Some(&(s0, e0, k0)), Some(&(o0, _))) =
                        (self.spans.last(), self.originals.last())
                    {
                        if k0 != Masked::Literal || !is_calendar_word(&self.buf[s0..e0]) {
                            break;
                        }
                        from = (s0, o0);
                        self.spans.pop();
                        self.originals.pop();
                    }
                    self.buf.truncate(from.0);
                    self.buf.push_str(WILDCARD);
                    self.spans.push((from.0, self.buf.len(), Masked::Full));
                    self.originals.push((from.1, end));
                    continue;
                }
            }
            if self.spans.len() == self.cfg.max_tokens {
                self.buf.truncate(start);
                break;
            }
            self.spans.push((start, self.buf.len(), kind));
            self.originals.push((off, end));
        }
        let n = self.spans.len();
        let mut h = Fx::default();
        h.write_usize(n);
        for &(s, e, _) in self.spans.iter().take(self.cfg.prefix_tokens) {
            h.write(&self.buf.as_bytes()[s..e]);
            h.write_u8(0xff);
        }
        let key = h.finish();

        if let Some(ids) = self.leaves.get(&key) {
            for &id in ids {
                let Some(t) = self.templates.get_mut(&id) else {
                    continue;
                };
                if t.slots.len() != n {
                    continue;
                }
                let buf = &self.buf;
                let prefix = self.cfg.prefix_tokens;
                // A fully masked slot is a variable already: any token fits.
                let fits =
                    t.slots
                        .iter()
                        .zip(&self.spans)
                        .enumerate()
                        .all(|(i, (slot, &(s, e, _)))| match slot {
                            Slot::Any => true,
                            Slot::Lit(m) => {
                                m.as_str() == &buf[s..e] || (i >= prefix && m == WILDCARD)
                            }
                        });
                if fits {
                    t.count += 1;
                    for (i, shown) in t.shown.iter_mut().enumerate() {
                        if let Some(orig) = shown {
                            let (s, e) = self.originals[i];
                            if orig.as_str() != &line[s..e] {
                                *shown = None;
                            }
                        }
                    }
                    return Observation {
                        id,
                        created: false,
                        merged: Vec::new(),
                    };
                }
            }
        }

        let id = self.next_id;
        self.next_id += 1;
        let slots: Vec<Slot> = self
            .spans
            .iter()
            .map(|&(s, e, _)| Slot::Lit(self.buf[s..e].to_owned()))
            .collect();
        let shown = self
            .spans
            .iter()
            .zip(&self.originals)
            .map(|(&(_, _, kind), &(s, e))| {
                (kind == Masked::Partial).then(|| line[s..e].to_owned())
            })
            .collect();
        self.templates.insert(
            id,
            Template {
                id,
                slots,
                shown,
                count: 1,
                aliases: Vec::new(),
            },
        );
        self.leaves.entry(key).or_default().push(id);
        let mut obs = Observation {
            id,
            created: true,
            merged: Vec::new(),
        };
        while let Some(survivor) = self.generalise(key, obs.id, &mut obs.merged) {
            obs.id = survivor;
        }
        obs
    }

    /// If `merge_after` templates of the leaf (with `id`) differ only at
    /// one position, merge them; returns the surviving id.
    fn generalise(&mut self, key: u64, id: u64, merged: &mut Vec<(u64, u64)>) -> Option<u64> {
        let ids = self.leaves.get(&key)?.clone();
        let me = self.templates.get(&id)?;
        let n = me.slots.len();
        for p in self.cfg.prefix_tokens..n {
            if me.slots[p] == Slot::Any {
                continue;
            }
            let group: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|&o| {
                    o == id
                        || self.templates.get(&o).is_some_and(|t| {
                            t.slots.len() == n
                                && t.slots[p] != Slot::Any
                                && t.slots
                                    .iter()
                                    .zip(&me.slots)
                                    .enumerate()
                                    .all(|(q, (a, b))| q == p || a == b)
                        })
                })
                .collect();
            // A fully masked value is already known to be a variable.
            let needed = if group.iter().any(|o| {
                self.templates
                    .get(o)
                    .is_some_and(|t| t.slots[p] == Slot::Lit(WILDCARD.to_owned()))
            }) {
                2
            } else {
                self.cfg.merge_after
            };
            if group.len() < needed {
                continue;
            }
            let survivor = *group.iter().min()?;
            let mut acc = self.templates.remove(&survivor)?;
            acc.slots[p] = Slot::Any;
            for &o in group.iter().filter(|&&o| o != survivor) {
                let Some(t) = self.templates.remove(&o) else {
                    continue;
                };
                acc.count += t.count;
                for (mine, theirs) in acc.shown.iter_mut().zip(&t.shown) {
                    if mine != theirs {
                        *mine = None;
                    }
                }
                for a in t.aliases.iter().copied().chain([o]) {
                    self.alias.insert(a, survivor);
                    acc.aliases.push(a);
                }
                merged.push((o, survivor));
            }
            acc.shown[p] = None;
            self.templates.insert(survivor, acc);
            if let Some(leaf) = self.leaves.get_mut(&key) {
                leaf.retain(|o| *o == survivor || !group.contains(o));
            }
            return Some(survivor);
        }
        None
    }
}

fn is_calendar_word(w: &str) -> bool {
    const WORDS: [&str; 19] = [
        "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    WORDS.contains(&w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &Miner, id: u64) -> String {
        m.get(id).map(Template::text).unwrap_or_default()
    }

    #[test]
    fn masked_variables_share_a_template_from_the_first_line() {
        let mut m = Miner::new(MinerConfig::default());
        let a = m.add("connection to 10.0.0.7:5432 refused");
        let b = m.add("connection to 10.0.0.9:5432 refused");
        assert!(a.created && !b.created);
        assert_eq!(a.id, b.id);
        assert_eq!(text(&m, a.id), "connection to <*> refused");
        assert_eq!(m.get(a.id).unwrap().count, 2);
    }

    #[test]
    fn different_lengths_and_prefixes_never_share() {
        let mut m = Miner::new(MinerConfig::default());
        let a = m.add("cupsd startup succeeded").id;
        let b = m.add("cupsd shutdown succeeded").id;
        let c = m.add("syslogd startup succeeded").id;
        let d = m.add("cupsd startup succeeded again").id;
        let ids = [a, b, c, d];
        for (i, x) in ids.iter().enumerate() {
            assert!(!ids[i + 1..].contains(x));
        }
    }

    #[test]
    fn a_word_position_generalises_after_enough_distinct_values_with_aliases() {
        let mut m = Miner::new(MinerConfig::default());
        let first = m.add("Invalid user webmaster from 1.2.3.4").id;
        let second = m.add("Invalid user test from 1.2.3.5").id;
        assert_ne!(first, second, "two values are not yet a variable");
        m.add("Invalid user oracle from 1.2.3.6");
        let last = m.add("Invalid user admin from 1.2.3.7");
        assert_eq!(last.id, first, "the oldest id survives");
        assert_eq!(last.merged.len(), 3);
        assert_eq!(m.resolve(second), first);
        assert_eq!(text(&m, second), "Invalid user <*> from <*>");
        assert_eq!(m.get(first).unwrap().count, 4);
        // New values now join without creating anything.
        let next = m.add("Invalid user zzz from 9.9.9.9");
        assert!(!next.created);
        assert_eq!(next.id, first);
    }

    #[test]
    fn value_lists_and_dates_are_one_variable() {
        let mut m = Miner::new(MinerConfig::default());
        let a = m.add("ask 10.0.0.1:50010 to delete blk_1").id;
        let b = m.add("ask 10.0.0.2:50010 to delete blk_2 blk_3 blk_4").id;
        assert_eq!(a, b);
        let c = m
            .add("connection from 1.2.3.4 () at Fri Jun 17 20:55:07 2005")
            .id;
        let d = m
            .add("connection from 1.2.3.5 (a.b.example.com) at Sat Jul 2 01:02:03 2005")
            .id;
        assert_eq!(m.resolve(c), m.resolve(d));
        assert_eq!(text(&m, c), "connection from <*> (<*>) at <*>");
    }

    #[test]
    fn a_word_where_numbers_were_is_still_the_variable() {
        let mut m = Miner::new(MinerConfig::default());
        let a = m.add("Failed none for invalid user 123 from 1.2.3.4").id;
        let b = m.add("Failed none for invalid user admin from 1.2.3.4").id;
        assert_eq!(m.resolve(a), m.resolve(b));
    }

    #[test]
    fn two_values_stay_two_events() {
        let mut m = Miner::new(MinerConfig::default());
        let root = m.add("Disconnecting: Too many authentication failures for root [preauth]");
        let admin = m.add("Disconnecting: Too many authentication failures for admin [preauth]");
        assert_ne!(m.resolve(root.id), m.resolve(admin.id));
    }

    #[test]
    fn shows_original_tokens_that_never_varied() {
        let mut m = Miner::new(MinerConfig::default());
        let a = m
            .add("Failed password for root from 1.2.3.4 port 22 ssh2")
            .id;
        m.add("Failed password for root from 1.2.3.9 port 4022 ssh2");
        assert_eq!(
            text(&m, a),
            "Failed password for root from <*> port <*> ssh2"
        );
    }

    #[test]
    fn restore_keeps_ids_aliases_and_matching() {
        let mut m = Miner::new(MinerConfig::default());
        for u in ["a", "b", "c", "d"] {
            m.add(&format!("session closed for user {u}"));
        }
        let kept: Vec<Template> = m.templates().cloned().collect();
        let aliases: Vec<(u64, u64)> = m.aliases().collect();
        let mut r = Miner::restore(MinerConfig::default(), kept, aliases);
        let o = r.add("session closed for user e");
        assert!(!o.created);
        assert_eq!(r.resolve(2), o.id);
        assert_eq!(r.add("something else entirely").id, 5);
    }
}
