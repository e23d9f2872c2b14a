//! Logs and traces: `tracing` to the terminal (text) or as JSON lines, and
//! spans over OTLP when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; `OTEL_EXPORTER_OTLP_PROTOCOL`
//! picks `grpc` or `http/protobuf` (default), `OTEL_SERVICE_NAME` names us.
//! Logs go to stderr; stdout carries only the listening address.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Flushes spans when dropped or shut down.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flush and stop the exporter. Errors (no collector listening) are
    /// logged, not returned: losing spans must not fail a shutdown.
    pub fn shutdown(mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            tracing::debug!(error = %e, "span exporter shutdown");
        }
    }
}

fn otlp_endpoint_set() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()))
}

fn otlp_provider() -> anyhow::Result<SdkTracerProvider> {
    let protocol = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or_default();
    let exporter = if protocol == "grpc" {
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()?
    } else {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()?
    };
    let service =
        std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "selfheal-supervisor".into());
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .build())
}

/// Install the global subscriber. `RUST_LOG` filters (default `info`);
/// ractor's own per-actor spans are kept at warn so they don't flood the
/// exporter.
pub fn init(format: LogFormat) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive("ractor=warn".parse()?)
        .add_directive("sled=warn".parse()?);
    let provider = if otlp_endpoint_set() {
        Some(otlp_provider()?)
    } else {
        None
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("selfheal")));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init()?,
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()?,
    }
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        tracing::info!("exporting spans over OTLP");
    }
    Ok(Telemetry { provider })
}
