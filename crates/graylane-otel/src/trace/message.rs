//! Spans and trace context for messages: [`consumer_span`] continues a trace from a consumed
//! message's headers, [`inject_current`] writes the current one into a produced message's.

use graylane_core::{LaneContext, Propagator};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::propagation::{Extractor, Injector, TextMapCompositePropagator};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::processor::start_own;
use crate::propagation::with_lane_context;

/// A consumer span for one message: the trace continues from the message's headers (read
/// through `carrier`), and the span carries the message's lane. Instrument the handler with it.
///
/// The `tracing` span is named `graylane.consumer`; its `otel.name` field, `{topic} process`,
/// is the name the OTel span is exported under.
pub fn consumer_span(
    otel: &TextMapCompositePropagator,
    carrier: &dyn Extractor,
    ctx: LaneContext,
    propagator: &Propagator,
    service: &str,
    topic: &str,
) -> tracing::Span {
    let parent = otel.extract(carrier);
    let span = tracing::info_span!(
        "graylane.consumer",
        otel.name = %format_args!("{topic} process"),
        otel.kind = "consumer",
        gray.lane = ctx.lane().as_str(),
        gray.served = ctx.served().as_str(),
        graylane.spec_revision = ctx.revision(),
        graylane.service = service,
        messaging.destination.name = topic,
    );
    let _ = span.set_parent(with_lane_context(&parent, ctx, propagator));
    start_own(&span);
    span
}

/// Writes the current span's trace context, baggage and lane through `carrier` (e.g. the
/// headers of a Kafka record being produced).
pub fn inject_current(
    otel: &TextMapCompositePropagator,
    propagator: &Propagator,
    carrier: &mut dyn Injector,
) {
    let cx = with_lane_context(
        &tracing::Span::current().context(),
        LaneContext::current(),
        propagator,
    );
    otel.inject_context(&cx, carrier);
}
