//! W3C trace context in and out of [`TraceCarrier`]s, so that one
//! incident's whole life, across actors and restarts, is one trace.

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use state::model::TraceCarrier;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The carrier for `span`: its OpenTelemetry context when exporting is on,
/// otherwise a fresh random trace id, so every incident carries a trace.
pub fn carrier_of(span: &tracing::Span) -> TraceCarrier {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        return TraceCarrier {
            traceparent: format!(
                "00-{}-{}-{:02x}",
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags().to_u8()
            ),
            tracestate: None,
        };
    }
    let trace: u128 = rand::random::<u128>().max(1);
    let span_id: u64 = rand::random::<u64>().max(1);
    TraceCarrier {
        traceparent: format!("00-{trace:032x}-{span_id:016x}-01"),
        tracestate: None,
    }
}

/// Parse a `traceparent` into a remote span context.
pub fn span_context(carrier: &TraceCarrier) -> Option<SpanContext> {
    let mut parts = carrier.traceparent.split('-');
    let (_v, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let sc = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags),
        true,
        TraceState::NONE,
    );
    sc.is_valid().then_some(sc)
}

/// Make `span` a child of the trace in `carrier` (no-op without one).
pub fn attach(span: &tracing::Span, carrier: &TraceCarrier) {
    if let Some(sc) = span_context(carrier) {
        let _ = span.set_parent(Context::new().with_remote_span_context(sc));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_carriers_hold_a_valid_traceparent() {
        let c = carrier_of(&tracing::Span::none());
        assert!(c.trace_id().is_some(), "{c:?}");
        let sc = span_context(&c).unwrap();
        assert_eq!(sc.trace_id().to_string(), c.trace_id().unwrap());
        assert!(span_context(&TraceCarrier::default()).is_none());
    }
}
