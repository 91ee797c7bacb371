//! Exporting the spans over OTLP (the `otlp` feature): a tracer provider that batches spans to
//! an OpenTelemetry collector over HTTP (protobuf), and the `tracing` layer that feeds it, with
//! the OpenTelemetry crates' versions matched to the framework's.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tracing_subscriber::layer::SubscriberExt as _;
//! use tracing_subscriber::util::SubscriberInitExt as _;
//!
//! // OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318), OTEL_EXPORTER_OTLP_HEADERS...
//! let traces = erp_events::otlp::OtlpTraces::from_env("purchase-service")?;
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer())
//!     .with(traces.layer())
//!     .init();
//! // ... run the application, then:
//! traces.shutdown();
//! # Ok(()) }
//! ```

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{ExporterBuildError, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

/// Spans batched to an OTLP collector. Keep it until the application stops, then
/// [`OtlpTraces::shutdown`] sends what is left.
#[derive(Debug)]
pub struct OtlpTraces {
    provider: SdkTracerProvider,
}

impl OtlpTraces {
    /// Exports as the `OTEL_EXPORTER_OTLP_*` variables say (endpoint, headers, timeout), for
    /// the service `service_name`.
    pub fn from_env(service_name: &str) -> Result<Self, ExporterBuildError> {
        Self::with(service_name, SpanExporter::builder().with_http().build()?)
    }

    /// Exports to `endpoint`, the collector's full traces URL (e.g.
    /// `http://collector:4318/v1/traces`).
    pub fn to_endpoint(service_name: &str, endpoint: &str) -> Result<Self, ExporterBuildError> {
        let exporter = SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .build()?;
        Self::with(service_name, exporter)
    }

    fn with(service_name: &str, exporter: SpanExporter) -> Result<Self, ExporterBuildError> {
        let resource = Resource::builder()
            .with_service_name(service_name.to_owned())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(OtlpTraces { provider })
    }

    /// The `tracing` layer that turns the application's spans into exported ones.
    pub fn layer<S>(&self) -> OpenTelemetryLayer<S, SdkTracer>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("erp-events"))
    }

    /// Sends the spans still batched and stops exporting (blocks until the collector answered
    /// or the export timed out).
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "the last spans were not exported");
        }
    }
}
