//! Messages of the recovery stage, and the events it reports.

use std::sync::Arc;

use ractor::RpcReplyPort;
use serde::Serialize;
use state::keys::Id;
use state::model::{FixOutcome, FixPlan};
use state::trees::RecoveryIntent;

use super::exec::ExecReport;
use super::guard::Page;
use super::verify::Verdict;

#[derive(Debug)]
pub enum RecoveryMsg {
    /// A ranked plan for an incident (from fix selection or the API).
    Plan(FixPlan),
    /// An operator approves the action awaiting approval.
    Approve {
        id: Id,
        reply: RpcReplyPort<Result<RecoveryIntent, String>>,
    },
    /// An operator resets the storm breaker (and the target breakers).
    ResetBreaker { reply: RpcReplyPort<()> },
    /// The guardrail state, for `GET /actions`.
    GuardState {
        reply: RpcReplyPort<serde_json::Value>,
    },
    /// A chaos experiment's abort condition is hit (or cleared).
    ChaosAbort(bool),
    /// Internal: an executor task finished step `step` of intent `id`.
    Executed {
        id: Id,
        step: usize,
        report: ExecReport,
    },
    /// Internal: a verification task finished.
    Verified {
        id: Id,
        step: usize,
        verdict: Verdict,
    },
    /// Internal: continue intent `id` from its recorded phase.
    Resume(Id),
    /// Internal: expire approvals that waited too long.
    Tick,
}

/// What the recovery stage tells the rest of the system (notify, fix
/// selection's statistics).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RecoveryEvent {
    /// An action waits for `POST /actions/{action_id}/approve`.
    AwaitingApproval {
        action_id: Id,
        incident_id: String,
        fix: String,
        target: String,
        expires_ms: i64,
    },
    /// An action ran (before verification).
    Applied {
        action_id: Id,
        incident_id: String,
        fix: String,
        target: String,
        detail: String,
    },
    /// The outcome of one fix; only `verified` ones count for statistics.
    Outcome(FixOutcome),
    /// The plan is exhausted (or automation halted): humans must act.
    Escalated {
        action_id: Id,
        incident_id: String,
        reason: String,
    },
    /// A breaker opened: a human is paged (once).
    Paged(Page),
}

/// Receives every [`RecoveryEvent`]; must not block.
pub type EventSink = Arc<dyn Fn(RecoveryEvent) + Send + Sync>;
