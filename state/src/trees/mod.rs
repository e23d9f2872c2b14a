//! One typed tree per file. Each names its single writer stage.

pub mod cursors;
pub mod fix_stats;
pub mod incidents;
pub mod meta;
pub mod rca;
pub mod templates;
pub mod wal;

pub use cursors::Cursors;
pub use incidents::{IncidentFilter, IncidentRecord, Incidents};
pub use meta::Meta;
pub use wal::Wal;
pub mod audit;
pub mod intents;
pub use audit::{Audit, AuditDraft, AuditEntry, Tampered};
pub use intents::{IntentPhase, Intents, RecoveryIntent, StepResult};
pub mod deliveries;
pub use deliveries::{Deliveries, Delivery};
pub mod anomalies;
pub mod detector_state;
