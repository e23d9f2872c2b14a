//! The domain model: what flows between stages and what is stored.

pub mod anomaly;
pub mod classification;
pub mod diagnosis;
pub mod event;
pub mod incident;
pub mod plan;
pub mod trace;

pub use anomaly::{Anomaly, Evidence};
pub use classification::{Classification, SignatureHit};
pub use event::{Event, Level, LogEvent, MetricSample, WalBatch};
pub use incident::{Incident, IncidentStatus, Severity, TimelineEntry, TransitionError};
pub use plan::{FixOutcome, FixPlan, Layer, PlannedFix, Risk};
pub use trace::TraceCarrier;
