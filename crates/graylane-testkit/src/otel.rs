//! In-memory OpenTelemetry exporters, wired the way a service wires graylane's parts: spans
//! through `tracing` and `tracing-opentelemetry` with graylane's `LaneSpanProcessor` (every span
//! carries its lane), metrics through a periodic reader.

use std::sync::OnceLock;

use graylane_core::Propagator;
use graylane_otel::LaneSpanProcessor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

/// The process's span exporter: the tracing subscriber is global, so one per test binary.
#[derive(Debug)]
pub struct Spans {
    provider: SdkTracerProvider,
    exporter: InMemorySpanExporter,
}

/// Installs, on first call, the global tracing subscriber that exports every span to memory
/// with its lane attributes (read with `propagator`), and returns it; later calls return the
/// same one. Tests tell their spans apart by trace id or name.
///
/// # Panics
///
/// If another global tracing subscriber was installed first.
pub fn spans(propagator: impl FnOnce() -> Propagator) -> &'static Spans {
    static SPANS: OnceLock<Spans> = OnceLock::new();
    SPANS.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(LaneSpanProcessor::new(propagator()))
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("graylane-test")));
        tracing::subscriber::set_global_default(subscriber)
            .expect("graylane_testkit::otel::spans installs the global tracing subscriber");
        Spans { provider, exporter }
    })
}

impl Spans {
    /// Every span finished so far (after a flush).
    pub fn finished(&self) -> Vec<SpanData> {
        let _ = self.provider.force_flush();
        self.exporter.get_finished_spans().unwrap_or_default()
    }

    /// The tracer provider, for tests that build tracers of their own.
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }
}

/// A meter provider exporting to memory: read with `provider.force_flush()` and
/// `exporter.get_finished_metrics()`.
pub fn metrics() -> (SdkMeterProvider, InMemoryMetricExporter) {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    (provider, exporter)
}
