//! The rca stage's run-time state shared with the API: the knowledge base
//! (built-in + user file + entries stored at run time), the dependency graph
//! (configured + learned), the stores, and learning from feedback.

use std::collections::BTreeMap;
use std::sync::{Mutex, RwLock};

use state::Store;
use state::keys::Id;
use state::model::diagnosis::{Feedback, ServiceObs};
use state::model::{Anomaly, FixOutcome};
use state::trees::fix_stats::FixStats;
use state::trees::rca::RcaTrees;

use super::kb::{CauseDef, KbError, KnowledgeBase, Position};
use super::topology::{CoOccurrence, Topology};
use crate::triage::correlate::CorrelateConfig;

/// Learned edges need this many joint episodes and this confidence.
pub const LEARN_MIN_SUPPORT: u64 = 3;
pub const LEARN_MIN_CONFIDENCE: f64 = 0.3;

#[derive(Clone, Debug, Default)]
pub struct RcaSettings {
    /// Configured dependencies: service → the services it calls.
    pub dependencies: BTreeMap<String, Vec<String>>,
    /// Configured component kinds (`database`, `cache`, ...).
    pub kinds: BTreeMap<String, String>,
    /// The user's causes file (TOML), if any.
    pub user_causes: Option<String>,
    pub correlate: CorrelateConfig,
    /// A fix tried on a target this recently (ms) is not proposed again.
    pub fix_cooldown_ms: i64,
    pub thompson: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RcaError {
    #[error(transparent)]
    Kb(#[from] KbError),
    #[error(transparent)]
    Store(#[from] state::StoreError),
    #[error("{0}")]
    Invalid(String),
}

pub struct RcaShared {
    pub settings: RcaSettings,
    pub kb: RwLock<KnowledgeBase>,
    pub topology: RwLock<Topology>,
    configured: Topology,
    cooc: Mutex<CoOccurrence>,
    pub trees: RcaTrees,
    pub fix_stats: FixStats,
    pub store: Store,
    /// Bumped whenever what a diagnosis or plan depends on besides the
    /// incident's own signals changes (feedback, causes, fix outcomes).
    epoch: std::sync::atomic::AtomicU64,
}

fn configured(settings: &RcaSettings) -> Topology {
    let mut t = Topology::from_config(
        settings
            .dependencies
            .iter()
            .map(|(s, d)| (s.as_str(), d.as_slice())),
    );
    for (s, k) in &settings.kinds {
        t.set_kind(s, k);
    }
    t
}

impl RcaShared {
    pub fn load(store: &Store, settings: RcaSettings) -> Result<RcaShared, RcaError> {
        let trees = RcaTrees::open(store)?;
        let fix_stats = FixStats::open(store)?;
        let mut kb = KnowledgeBase::from_toml(super::kb::BUILTIN, settings.user_causes.as_deref())?;
        for v in trees.kb_entries()? {
            // An entry that no longer validates is skipped, not fatal: the
            // built-in base must always load.
            match serde_json::from_value::<CauseDef>(v) {
                Ok(def) => {
                    if let Err(e) = kb.upsert(def) {
                        tracing::warn!(error = %e, "stored cause skipped");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "stored cause unreadable"),
            }
        }
        let cooc: CoOccurrence = trees
            .state_doc("cooccurrence")?
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let configured = configured(&settings);
        let mut topo = configured.clone();
        topo.merge_learned(cooc.edges(LEARN_MIN_SUPPORT, LEARN_MIN_CONFIDENCE));
        Ok(RcaShared {
            settings,
            kb: RwLock::new(kb),
            topology: RwLock::new(topo),
            configured,
            cooc: Mutex::new(cooc),
            trees,
            fix_stats,
            store: store.clone(),
            epoch: Default::default(),
        })
    }

    /// Something learned that can change diagnoses or plans.
    pub fn learned(&self) {
        self.epoch
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Changes every time [`Self::learned`] is called.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn kb(&self) -> std::sync::RwLockReadGuard<'_, KnowledgeBase> {
        self.kb.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn topology(&self) -> std::sync::RwLockReadGuard<'_, Topology> {
        self.topology.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Add or replace a cause (validated), persisted.
    pub fn upsert_cause(&self, def: CauseDef) -> Result<(), RcaError> {
        self.learned();
        let value = serde_json::to_value(&def).map_err(|e| RcaError::Invalid(e.to_string()))?;
        self.kb
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .upsert(def.clone())?;
        self.trees.put_kb_entry(&def.id, &value)?;
        Ok(())
    }

    /// Learn from an episode: a new incident's services, or a service joining.
    pub fn learn(
        &self,
        existing: &[(String, i64)],
        joined: Option<(&str, i64)>,
    ) -> Result<(), RcaError> {
        let mut c = self.cooc.lock().unwrap_or_else(|p| p.into_inner());
        match joined {
            Some(j) => c.observe_join(existing, j),
            None => c.observe(existing),
        }
        let mut topo = self.configured.clone();
        topo.merge_learned(c.edges(LEARN_MIN_SUPPORT, LEARN_MIN_CONFIDENCE));
        let doc = serde_json::to_value(&*c).map_err(|e| RcaError::Invalid(e.to_string()))?;
        drop(c);
        *self.topology.write().unwrap_or_else(|p| p.into_inner()) = topo;
        self.trees.put_state_doc("cooccurrence", &doc)?;
        Ok(())
    }

    /// Apply an operator's feedback on incident `id`; returns what changed.
    pub fn feedback(&self, id: Id, mut fb: Feedback) -> Result<Vec<String>, RcaError> {
        self.learned();
        let inc = self
            .store
            .incidents()
            .get(id)?
            .ok_or_else(|| RcaError::Invalid(format!("no incident with id {id}")))?;
        let result = self.trees.result(id)?.unwrap_or_default();
        let top = result.diagnosis.hypotheses.first().cloned();
        let mut changes = Vec::new();
        fb.ts_ms = state::now_ms();
        if let Some(cause) = &fb.confirmed_cause {
            let existing = self.kb().get(cause).map(|c| c.def.clone());
            match existing {
                Some(mut def) => {
                    def.weight = (def.weight * 1.15).min(3.0);
                    changes.push(format!("cause {cause}: weight raised to {:.2}", def.weight));
                    // A confirmation against the diagnosis weakens the cause that won.
                    let other = top
                        .as_ref()
                        .filter(|t| t.cause_id != *cause)
                        .and_then(|t| self.kb().get(&t.cause_id).map(|c| c.def.clone()));
                    if let Some(mut other) = other {
                        other.weight = (other.weight * 0.9).max(0.2);
                        changes.push(format!(
                            "cause {}: weight lowered to {:.2}",
                            other.id, other.weight
                        ));
                        self.upsert_cause(other)?;
                    }
                    self.upsert_cause(def)?;
                }
                None => {
                    let mut evidence: Vec<String> =
                        inc.signatures.iter().map(|s| format!("sig:{s}")).collect();
                    let svc = fb.service.clone().unwrap_or_else(|| inc.service.clone());
                    if let Some(o) = result.observations.iter().find(|o| o.service == svc) {
                        for s in &o.signals {
                            if !s.key.starts_with("cat:") && !evidence.contains(&s.key) {
                                evidence.push(s.key.clone());
                            }
                        }
                    }
                    if evidence.is_empty() {
                        evidence.push(format!("cat:{}", inc.category));
                    }
                    let def = CauseDef {
                        id: cause.clone(),
                        name: fb.cause_name.clone().unwrap_or_else(|| cause.clone()),
                        category: inc.category.clone(),
                        description: format!("learned from incident {id}: {}", inc.title),
                        position: Position::Any,
                        kinds: vec![],
                        evidence,
                        symptoms: vec![],
                        against: vec![],
                        fixes: vec![],
                        weight: 1.0,
                        pattern_weights: Default::default(),
                        source: "learned".into(),
                    };
                    changes.push(format!("cause {cause}: learned from this incident"));
                    self.upsert_cause(def)?;
                }
            }
        }
        // Read the cause first: the read guard must be gone before writing.
        let fp_def = top
            .as_ref()
            .filter(|_| fb.false_positive)
            .and_then(|t| self.kb().get(&t.cause_id).map(|c| c.def.clone()));
        if let (Some(t), Some(mut def)) = (&top, fp_def) {
            for p in &t.matched {
                let w = def.pattern_weights.entry(p.clone()).or_insert(1.0);
                *w = (*w * 0.8).max(0.1);
                changes.push(format!(
                    "cause {}: evidence {p} weight lowered to {:.2}",
                    def.id, *w
                ));
            }
            self.upsert_cause(def)?;
        }
        if let (Some(fix), Some(worked)) = (&fb.fix, fb.fix_worked) {
            let cause = fb
                .confirmed_cause
                .clone()
                .or(top.as_ref().map(|t| t.cause_id.clone()));
            let target = fb
                .service
                .clone()
                .or(top.as_ref().map(|t| t.service.clone()))
                .unwrap_or_else(|| inc.service.clone());
            self.fix_stats.record(&FixOutcome {
                incident_id: id.to_string(),
                cause_id: cause,
                fix: fix.clone(),
                target,
                success: worked,
                // An operator's report is the verification until recovery verifies itself.
                verified: true,
                ts_ms: fb.ts_ms,
                detail: "operator feedback".into(),
            })?;
            changes.push(format!(
                "fix {fix}: outcome recorded ({})",
                if worked { "worked" } else { "failed" }
            ));
        }
        self.trees.add_feedback(id, &fb)?;
        Ok(changes)
    }
}

/// Fold one anomaly into the per-service observations.
pub fn observe_anomaly(obs: &mut Vec<ServiceObs>, a: &Anomaly) {
    let i = match obs.iter().position(|o| o.service == a.service) {
        Some(i) => i,
        None => {
            obs.push(ServiceObs::new(&a.service));
            obs.len() - 1
        }
    };
    let o = &mut obs[i];
    o.signal(
        format!("cat:{}", a.category.to_ascii_lowercase()),
        1.0,
        a.ts_ms,
    );
    match &a.signature {
        Some(sig) => o.signal(format!("sig:{sig}"), 1.0, a.ts_ms),
        None => {
            for e in &a.evidence {
                let d = e.detail.to_ascii_lowercase();
                let dir = if d.contains("below") || d.contains("down") || d.contains("drop") {
                    "down"
                } else {
                    "up"
                };
                o.signal(format!("metric:{}:{dir}", e.signal), a.score, a.ts_ms);
            }
        }
    }
    let kind = a.kind.to_ascii_lowercase();
    if kind == "deploy" || kind == "config" {
        o.signal(format!("kind:{kind}"), 1.0, a.ts_ms);
    }
    o.line(&a.summary);
}
