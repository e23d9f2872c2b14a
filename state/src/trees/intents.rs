//! `recovery_intents` (action id → versioned intent). Writer: the recovery
//! stage. An intent is written and flushed *before* a fix is executed, so
//! a restarted executor knows what was under way: a step recorded as
//! `executing` may have run, so it is verified and never run again.

use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::codec::{decode_json, encode_json};
use crate::keys::{Id, key_u64};
use crate::model::FixPlan;

/// Where one intent stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum IntentPhase {
    /// Step `step` is about to be decided by the guardrails.
    Pending,
    /// Step `step` waits for `POST /actions/{id}/approve` until `expires_ms`.
    AwaitingApproval { expires_ms: i64 },
    /// Step `step` was started at `started_ms`; it may have run.
    Executing { started_ms: i64 },
    /// Step `step` ran; its verification is under way.
    Verifying { since_ms: i64 },
    /// Finished: `verified`, `escalated`, `dry_run`, `halted`, `expired`...
    Done { result: String },
}

/// What happened to one step of the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub step: usize,
    pub fix: String,
    pub target: String,
    /// `verified`, `failed`, `skipped`, `dry_run`, `interrupted`...
    pub result: String,
    pub detail: String,
    pub ts_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecoveryIntent {
    pub id: Id,
    pub plan: FixPlan,
    /// Index into `plan.steps` of the step under way.
    pub step: usize,
    pub phase: IntentPhase,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[serde(default)]
    pub results: Vec<StepResult>,
}

impl RecoveryIntent {
    pub fn is_done(&self) -> bool {
        matches!(self.phase, IntentPhase::Done { .. })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "version")]
enum IntentRecord {
    #[serde(rename = "1")]
    V1(RecoveryIntent),
}

pub(crate) fn decode(b: &[u8]) -> Result<RecoveryIntent, StoreError> {
    match decode_json::<IntentRecord>("recovery_intents", b)? {
        IntentRecord::V1(i) => Ok(i),
    }
}

#[derive(Clone)]
pub struct Intents {
    pub(crate) tree: sled::Tree,
}

impl Intents {
    pub fn open(tree: sled::Tree) -> Self {
        Self { tree }
    }

    /// Write (insert or replace) and flush: durable before the caller acts.
    pub fn put_durable(&self, i: &RecoveryIntent) -> Result<(), StoreError> {
        self.tree
            .insert(i.id.key(), encode_json(&IntentRecord::V1(i.clone()))?)?;
        self.tree.flush()?;
        Ok(())
    }

    pub fn get(&self, id: Id) -> Result<Option<RecoveryIntent>, StoreError> {
        self.tree.get(id.key())?.map(|v| decode(&v)).transpose()
    }

    /// Intents not yet done, oldest first.
    pub fn unfinished(&self) -> Result<Vec<RecoveryIntent>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tree.iter() {
            let i = decode(&kv?.1)?;
            if !i.is_done() {
                out.push(i);
            }
        }
        Ok(out)
    }

    /// Newest first, at most `limit`.
    pub fn recent(&self, limit: usize) -> Result<Vec<RecoveryIntent>, StoreError> {
        self.tree
            .iter()
            .rev()
            .take(limit)
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    pub fn for_incident(&self, incident_id: &str) -> Result<Vec<RecoveryIntent>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tree.iter() {
            let i = decode(&kv?.1)?;
            if i.plan.incident_id == incident_id {
                out.push(i);
            }
        }
        Ok(out)
    }

    /// Largest id stored (0 if none), to seed the id generator.
    pub fn max_id(&self) -> Result<u64, StoreError> {
        Ok(self
            .tree
            .last()?
            .and_then(|(k, _)| key_u64(&k))
            .unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_roundtrip_and_unfinished_skips_done() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let t = Intents::open(db.open_tree("recovery_intents").unwrap());
        let plan = FixPlan {
            incident_id: "x".into(),
            cause_id: None,
            service: "api".into(),
            steps: vec![],
            trace: Default::default(),
        };
        let mut a = RecoveryIntent {
            id: Id(1),
            plan: plan.clone(),
            step: 0,
            phase: IntentPhase::Executing { started_ms: 5 },
            created_ms: 1,
            updated_ms: 1,
            results: vec![],
        };
        t.put_durable(&a).unwrap();
        let mut b = a.clone();
        b.id = Id(2);
        b.phase = IntentPhase::Done {
            result: "verified".into(),
        };
        t.put_durable(&b).unwrap();
        assert_eq!(t.get(Id(1)).unwrap(), Some(a.clone()));
        assert_eq!(t.unfinished().unwrap(), vec![a.clone()]);
        assert_eq!(t.max_id().unwrap(), 2);
        a.phase = IntentPhase::Pending;
        t.put_durable(&a).unwrap();
        assert_eq!(t.for_incident("x").unwrap().len(), 2);
    }
}
