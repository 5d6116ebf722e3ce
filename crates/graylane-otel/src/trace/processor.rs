//! [`LaneSpanProcessor`]: the lane on every span the SDK starts, and the flag graylane's own
//! spans raise so that the processor leaves them alone.

use std::cell::Cell;
use std::time::Duration;

use graylane_core::{LaneContext, Propagator};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::propagation::lane_context;

/// Puts `gray.lane` (and `gray.served`, `gray.mirror`) on every span the SDK starts —
/// application spans included — from graylane's lane in scope when the span starts, or else
/// from the lane in the parent context's baggage. graylane's own spans carry the lane as
/// fields and are skipped; a span of yours that records a `gray.lane` field itself gets the
/// attribute twice.
///
/// ```
/// use graylane_core::{Lane, LaneSet, Propagator};
/// use graylane_otel::LaneSpanProcessor;
///
/// let propagator = Propagator::new(LaneSet::new([Lane::new("gray")?]));
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
///     .with_span_processor(LaneSpanProcessor::new(propagator))
///     .build();
/// # drop(provider);
/// # Ok::<(), graylane_core::LaneError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LaneSpanProcessor {
    propagator: Propagator,
}

impl LaneSpanProcessor {
    /// A processor reading baggage with `propagator`'s lanes and wire names.
    pub fn new(propagator: Propagator) -> LaneSpanProcessor {
        LaneSpanProcessor { propagator }
    }
}

impl SpanProcessor for LaneSpanProcessor {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, parent: &Context) {
        use opentelemetry::trace::Span as _;
        // graylane's own spans carry the lane as fields already.
        if STARTING_OWN.get() {
            return;
        }
        let ctx = LaneContext::try_current()
            .filter(|c| !c.lane().is_base() || c.is_mirror())
            .unwrap_or_else(|| lane_context(parent, &self.propagator));
        span.set_attribute(KeyValue::new("gray.lane", ctx.lane().as_str()));
        if ctx.is_fallback() {
            span.set_attribute(KeyValue::new("gray.served", ctx.served().as_str()));
        }
        if ctx.is_mirror() {
            span.set_attribute(KeyValue::new("gray.mirror", true));
        }
    }

    fn on_end(&self, _span: SpanData) {}

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

thread_local! {
    /// Set while graylane starts one of its own spans (which carry the lane as fields).
    static STARTING_OWN: Cell<bool> = const { Cell::new(false) };
}

/// Starts `span`'s OTel span now (instead of at its first enter) and returns its context,
/// telling [`LaneSpanProcessor`] that the span carries the lane already.
pub(super) fn start_own(span: &tracing::Span) -> Context {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            STARTING_OWN.set(false);
        }
    }
    STARTING_OWN.set(true);
    let _reset = Reset;
    span.context()
}
