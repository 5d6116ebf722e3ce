//! OpenTelemetry for gray-release lanes.
//!
//! - [`LanePropagator`] / [`composite`]: the lane as a `TextMapPropagator` that composes with W3C
//!   trace context and baggage; [`lane_context`] / [`with_lane_context`] bridge the OTel
//!   `Context`'s baggage and graylane's `LaneContext`, so a lane set on either side is seen on
//!   the other.
//! - [`LaneSpanProcessor`]: every span the SDK starts carries `gray.lane` (and `gray.served`,
//!   `gray.mirror`), application spans included.
//! - [`LaneTraceLayer`] ([`trace`]): the server and client spans of a hop, with trace context
//!   and the lane in and out; over `http::Request` services and, with the `reqwest` feature,
//!   `reqwest::Client` and reqwest-middleware chains (module `reqwest`).
//! - [`LaneMetrics`]: per-lane request counts and latency, fallbacks, mirror copies, stripped
//!   headers, rejected tokens, malformed lanes and data-lane refusals through the OTel metrics
//!   API; [`prometheus`] (feature `prometheus`) renders them for a `/metrics` endpoint.
//!
//! Wiring it into an existing OTel setup is in `docs/observability.md`.

#![forbid(unsafe_code)]

mod metrics;
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub mod prometheus;
mod propagation;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
pub mod trace;

pub use metrics::{AuditCounts, ConsumerCounts, Kind, LaneMetrics};
pub use propagation::{
    LanePropagator, composite, current_context, lane_context, with_lane_context,
};
pub use trace::{
    HeaderCarrier, HeaderReader, LaneSpanProcessor, LaneTrace, LaneTraceLayer, consumer_span,
    inject_current,
};

/// The response future of [`LaneTrace`].
#[deprecated(note = "renamed to graylane_otel::trace::future::ResponseFuture")]
pub type TraceFuture<F> = trace::future::ResponseFuture<F>;

#[cfg(test)]
mod tests {
    use std::any::TypeId;

    #[test]
    #[allow(deprecated)]
    fn the_old_future_name_still_names_the_future() {
        assert_eq!(
            TypeId::of::<crate::TraceFuture<()>>(),
            TypeId::of::<crate::trace::future::ResponseFuture<()>>()
        );
    }
}
