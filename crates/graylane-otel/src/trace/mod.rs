//! Spans that carry the lane.
//!
//! - [`LaneSpanProcessor`]: `gray.lane` on every span the SDK starts, application spans
//!   included;
//! - [`LaneTraceLayer`] / [`LaneTrace`] / [`future::ResponseFuture`]: the server or client span
//!   of an HTTP or gRPC hop — trace context in, trace context out — and its metrics; over
//!   `http::Request` services and, with the `reqwest` feature, `reqwest::Client`
//!   (`graylane_otel::reqwest`); [`body::ResponseBody`], the response body that holds a gRPC
//!   reply's outcome until its trailers say it;
//! - [`consumer_span`] / [`inject_current`]: the same for messages (Kafka records);
//! - [`HeaderCarrier`] / [`HeaderReader`]: `http::HeaderMap` as an OTel carrier.
//!
//! A client layer writes the lane on every outgoing request, with the trace context of its
//! span when a `tracing-opentelemetry` subscriber is installed:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use graylane_core::{Lane, LaneContext, LaneFutureExt, LaneSet, Propagator};
//! use graylane_otel::LaneTraceLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! let gray = Lane::new("gray")?;
//! let client = ServiceBuilder::new()
//!     .layer(LaneTraceLayer::client("checkout", Propagator::new(LaneSet::new([gray]))))
//!     .service(service_fn(|req: http::Request<()>| async move {
//!         // Stands in for an HTTP client: answers with what would go on the wire.
//!         let sent = req.headers().clone();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(sent))
//!     }));
//! let res = async { client.oneshot(http::Request::new(())).await }
//!     .with_lane(LaneContext::new(gray))
//!     .await?;
//! // The body as the inner service answered it (`ResponseBody` waits for gRPC trailers).
//! let sent = res.body().get_ref();
//! assert_eq!(sent["x-gray-lane"], "gray");
//! assert_eq!(sent["baggage"], "gray.lane=gray");
//! # Ok(()) }
//! ```

pub mod body;
mod carrier;
pub mod future;
mod hop;
mod layer;
mod message;
mod processor;

#[cfg(feature = "reqwest")]
pub(crate) use hop::{HopRequest, HopResponse, Outcome};

pub use carrier::{HeaderCarrier, HeaderReader};
pub use layer::{LaneTrace, LaneTraceLayer};
pub use message::{consumer_span, inject_current};
pub use processor::LaneSpanProcessor;
