//! reqwest support (feature `reqwest`).
//!
//! `reqwest::Client` is a `tower::Service<reqwest::Request>`, so the same
//! [`PropagateLaneLayer`](crate::PropagateLaneLayer) serves it:
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use graylane_core::{LaneSet, Propagator};
//! use graylane_http::PropagateLaneLayer;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! let client = reqwest::Client::new();
//! let svc = ServiceBuilder::new()
//!     .layer(PropagateLaneLayer::new(Propagator::new(LaneSet::base_only())))
//!     .service(client.clone());
//! let req = client.get("http://127.0.0.1:8080/").build()?;
//! let res = svc.oneshot(req).await?;
//! # let _ = res; Ok(()) }
//! ```
//!
//! Code that calls `RequestBuilder::send` directly adds the current lane to one request with
//! [`LaneRequestBuilderExt::with_current_lane`].
//!
//! This carries the lane only. For the lane *and* the trace context (a client span,
//! `traceparent`, baggage), use `graylane_otel::LaneTraceLayer::client` over the same client
//! instead, with graylane-otel's `reqwest` feature (or `reqwest-middleware`, for code that
//! calls `send`); it writes the lane header too.

use graylane_core::{LaneContext, Propagator};
use http::HeaderMap;

use crate::client::OutboundRequest;

impl OutboundRequest for reqwest::Request {
    fn headers_mut(&mut self) -> &mut HeaderMap {
        reqwest::Request::headers_mut(self)
    }
}

/// Adds the current lane to a `reqwest::RequestBuilder`.
pub trait LaneRequestBuilderExt {
    /// The builder with the current lane's header and baggage entry added.
    #[must_use]
    fn with_current_lane(self, propagator: &Propagator) -> Self;
}

impl LaneRequestBuilderExt for reqwest::RequestBuilder {
    fn with_current_lane(self, propagator: &Propagator) -> Self {
        let mut headers = HeaderMap::new();
        propagator.inject(&LaneContext::current(), &mut headers);
        if headers.is_empty() {
            self
        } else {
            self.headers(headers)
        }
    }
}
