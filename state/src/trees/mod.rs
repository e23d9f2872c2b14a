//! One typed tree per file. Each names its single writer stage.

pub mod cursors;
pub mod incidents;
pub mod meta;
pub mod templates;
pub mod wal;

pub use cursors::Cursors;
pub use incidents::{IncidentFilter, IncidentRecord, Incidents};
pub use meta::Meta;
pub use wal::Wal;
