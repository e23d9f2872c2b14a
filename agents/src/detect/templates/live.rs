//! Templates in the live pipeline: the miner plus what the store keeps of
//! each template (first/last seen, per-service counts, levels), and the set
//! of templates changed since the last save, so detect writes only those.

use std::collections::{BTreeMap, HashMap, HashSet};

use state::model::{Level, LogEvent};
use state::trees::templates::{ServiceCount, StoredTemplate};

use super::miner::{Miner, MinerConfig, Slot, Template};

#[derive(Clone, Debug)]
struct Meta {
    first_seen_ms: i64,
    last_seen_ms: i64,
    first_level: Level,
    max_level: Level,
    services: BTreeMap<String, ServiceCount>,
}

/// What mining one event found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub id: u64,
    /// The line created a new template.
    pub new: bool,
}

pub struct LiveTemplates {
    miner: Miner,
    meta: HashMap<u64, Meta>,
    dirty: HashSet<u64>,
    removed: Vec<u64>,
}

impl LiveTemplates {
    pub fn new(cfg: MinerConfig) -> LiveTemplates {
        LiveTemplates {
            miner: Miner::new(cfg),
            meta: HashMap::new(),
            dirty: HashSet::new(),
            removed: Vec::new(),
        }
    }

    /// Continue from stored templates: same ids, aliases and counts.
    pub fn restore(cfg: MinerConfig, stored: Vec<StoredTemplate>) -> LiveTemplates {
        let mut meta = HashMap::new();
        let mut templates = Vec::new();
        let mut aliases = Vec::new();
        for t in stored {
            meta.insert(
                t.id,
                Meta {
                    first_seen_ms: t.first_seen_ms,
                    last_seen_ms: t.last_seen_ms,
                    first_level: t.first_level,
                    max_level: t.max_level,
                    services: t.services,
                },
            );
            aliases.extend(t.aliases.iter().map(|a| (*a, t.id)));
            templates.push(Template {
                id: t.id,
                slots: t
                    .slots
                    .into_iter()
                    .map(|s| s.map_or(Slot::Any, Slot::Lit))
                    .collect(),
                shown: t.shown,
                count: t.count,
                aliases: t.aliases,
            });
        }
        LiveTemplates {
            miner: Miner::restore(cfg, templates, aliases),
            meta,
            dirty: HashSet::new(),
            removed: Vec::new(),
        }
    }

    pub fn miner(&self) -> &Miner {
        &self.miner
    }

    /// Mine one log event (its first line).
    pub fn observe(&mut self, ev: &LogEvent) -> Seen {
        let first_line = ev.message.split('\n').next().unwrap_or("");
        let obs = self.miner.add(first_line);
        if obs.id == super::miner::UNMINED {
            return Seen {
                id: obs.id,
                new: false,
            };
        }
        for (from, into) in &obs.merged {
            if let Some(gone) = self.meta.remove(from) {
                match self.meta.get_mut(into) {
                    None => {
                        self.meta.insert(*into, gone);
                    }
                    Some(m) => {
                        m.first_seen_ms = m.first_seen_ms.min(gone.first_seen_ms);
                        m.last_seen_ms = m.last_seen_ms.max(gone.last_seen_ms);
                        m.max_level = m.max_level.max(gone.max_level);
                        for (svc, c) in gone.services {
                            m.services
                                .entry(svc)
                                .or_insert_with(|| ServiceCount::new(c.first_seen_ms))
                                .absorb(&c);
                        }
                    }
                }
            }
            self.dirty.remove(from);
            self.removed.push(*from);
        }
        let m = self.meta.entry(obs.id).or_insert_with(|| Meta {
            first_seen_ms: ev.ts_ms,
            last_seen_ms: ev.ts_ms,
            first_level: ev.level,
            max_level: ev.level,
            services: BTreeMap::new(),
        });
        m.first_seen_ms = m.first_seen_ms.min(ev.ts_ms);
        m.last_seen_ms = m.last_seen_ms.max(ev.ts_ms);
        m.max_level = m.max_level.max(ev.level);
        match m.services.get_mut(ev.service.as_str()) {
            Some(s) => s.add(ev.ts_ms, 1),
            None => {
                let mut s = ServiceCount::new(ev.ts_ms);
                s.add(ev.ts_ms, 1);
                m.services.insert(ev.service.clone(), s);
            }
        }
        self.dirty.insert(obs.id);
        Seen {
            id: obs.id,
            new: obs.created,
        }
    }

    /// The stored form of a live template.
    pub fn stored(&self, id: u64) -> Option<StoredTemplate> {
        let t = self.miner.get(id)?;
        let m = self.meta.get(&t.id)?;
        Some(StoredTemplate {
            id: t.id,
            text: t.text(),
            slots: t
                .slots
                .iter()
                .map(|s| match s {
                    Slot::Lit(x) => Some(x.clone()),
                    Slot::Any => None,
                })
                .collect(),
            shown: t.shown.clone(),
            count: t.count,
            aliases: t.aliases.clone(),
            first_seen_ms: m.first_seen_ms,
            last_seen_ms: m.last_seen_ms,
            first_level: m.first_level,
            max_level: m.max_level,
            services: m.services.clone(),
        })
    }

    /// Templates changed and ids merged away since the last call.
    pub fn take_changes(&mut self) -> (Vec<StoredTemplate>, Vec<u64>) {
        let mut ids: Vec<u64> = self.dirty.drain().collect();
        ids.sort_unstable();
        let upserts = ids.into_iter().filter_map(|id| self.stored(id)).collect();
        (upserts, std::mem::take(&mut self.removed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(service: &str, ts: i64, level: Level, msg: &str) -> LogEvent {
        LogEvent {
            ts_ms: ts,
            service: service.into(),
            level,
            message: msg.into(),
            fields: Default::default(),
        }
    }

    #[test]
    fn counts_per_service_merges_and_restores_with_the_same_ids() {
        let mut live = LiveTemplates::new(MinerConfig::default());
        let a = live.observe(&ev(
            "api",
            10,
            Level::Error,
            "connection to 10.0.0.1:5432 refused\n  at x",
        ));
        let b = live.observe(&ev(
            "web",
            20,
            Level::Warn,
            "connection to 10.0.0.2:5432 refused",
        ));
        assert!(a.new && !b.new && a.id == b.id);
        for (i, u) in ["a", "b", "c", "d"].iter().enumerate() {
            live.observe(&ev(
                "api",
                30 + i as i64,
                Level::Info,
                &format!("session closed for user {u}"),
            ));
        }
        let (ups, removed) = live.take_changes();
        assert_eq!(
            removed.len(),
            2,
            "the second and third user templates merged into the first"
        );
        let conn = ups.iter().find(|t| t.id == a.id).unwrap();
        assert_eq!(conn.text, "connection to <*> refused");
        assert_eq!(
            (conn.services["api"].count, conn.services["web"].count),
            (1, 1)
        );
        assert_eq!(
            (conn.first_seen_ms, conn.last_seen_ms, conn.first_level),
            (10, 20, Level::Error)
        );
        let sess = ups
            .iter()
            .find(|t| t.text == "session closed for user <*>")
            .unwrap();
        assert_eq!(sess.services["api"].count, 4);
        assert_eq!(
            sess.services["api"].per_minute,
            vec![(0, 4)],
            "all in minute 0"
        );
        assert_eq!(sess.aliases.len(), 2);
        assert!(live.take_changes().0.is_empty(), "nothing changed since");

        let mut back = LiveTemplates::restore(MinerConfig::default(), ups.clone());
        let again = back.observe(&ev(
            "api",
            99,
            Level::Error,
            "connection to 10.9.9.9:5432 refused",
        ));
        assert_eq!(
            again,
            Seen {
                id: a.id,
                new: false
            }
        );
        assert_eq!(back.miner().resolve(removed[0]), sess.id);
        let fresh = back.observe(&ev("api", 100, Level::Info, "brand new line"));
        assert!(
            fresh.new
                && ups
                    .iter()
                    .all(|t| t.id != fresh.id && !t.aliases.contains(&fresh.id))
        );
    }
}
