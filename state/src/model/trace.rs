//! W3C trace context carried inside messages and records, so that an
//! incident's whole life is one trace.

use serde::{Deserialize, Serialize};

/// A W3C `traceparent` (and optional `tracestate`), as text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceCarrier {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub traceparent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

impl TraceCarrier {
    pub fn is_empty(&self) -> bool {
        self.traceparent.is_empty()
    }

    /// The 32-hex-digit trace id, if the carrier holds a valid traceparent.
    pub fn trace_id(&self) -> Option<&str> {
        let mut parts = self.traceparent.split('-');
        let _version = parts.next()?;
        let id = parts.next()?;
        (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
    }
}
