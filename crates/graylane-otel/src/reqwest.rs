//! reqwest support (feature `reqwest`): lane and trace context on every call, in one step.
//!
//! `reqwest::Client` is a `tower::Service<reqwest::Request>`, and [`LaneTrace`] serves it: each
//! call gets a client span (a child of the current span), and the request goes out with
//! `traceparent`, `baggage` (with the lane) and the lane header. The span records the status
//! code, a 5xx or a transport error sets its status to error, and
//! [`LaneTraceLayer::metrics`](crate::LaneTraceLayer::metrics) counts the call. No
//! `PropagateLaneLayer` is needed under it.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use graylane_core::{Lane, LaneSet, Propagator};
//! use graylane_otel::{LaneMetrics, LaneTraceLayer};
//! use opentelemetry::metrics::MeterProvider as _;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # let propagator = Propagator::new(LaneSet::new([Lane::new("gray")?]));
//! # let meter_provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
//! # let metrics = LaneMetrics::new(&meter_provider.meter("graylane"), "orders");
//! let client = reqwest::Client::new();
//! let traced = ServiceBuilder::new()
//!     .layer(LaneTraceLayer::client("orders", propagator.clone()).metrics(metrics.clone()))
//!     .service(client.clone());
//! let res = traced.oneshot(client.get("http://inventory:8080/stock/7").build()?).await?;
//! # let _ = res; Ok(()) }
//! ```
//!
//! Code that calls `RequestBuilder::send` goes through a reqwest-middleware chain instead
//! (feature `reqwest-middleware`): [`LaneTraceLayer`](crate::LaneTraceLayer) is also a
//! `reqwest_middleware::Middleware`, doing the same.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use graylane_core::{Lane, LaneSet, Propagator};
//! use graylane_otel::LaneTraceLayer;
//!
//! # let propagator = Propagator::new(LaneSet::new([Lane::new("gray")?]));
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(LaneTraceLayer::client("orders", propagator))
//!     .build();
//! let res = client.get("http://inventory:8080/stock/7").send().await?;
//! # let _ = res; Ok(()) }
//! ```
//!
//! # Overrides existing headers
//!
//! The span's context is what goes on the wire. When there is a trace, baggage or a lane to
//! write, a `traceparent`, `baggage` or lane header already on the request is replaced: the
//! baggage sent is the current OTel context's, with the current lane in it, so a member to
//! send belongs in the OTel context rather than in a header. (`PropagateLaneLayer` alone keeps
//! a lane header set by hand.)

use std::task::{Context, Poll};

use graylane_core::LaneContext;
use http::{HeaderMap, Method, StatusCode};
use tower_service::Service;

use crate::LaneTrace;
use crate::trace::future::ResponseFuture;
use crate::trace::{HopRequest, HopResponse, Outcome};

impl HopRequest for reqwest::Request {
    fn method(&self) -> &Method {
        reqwest::Request::method(self)
    }
    fn path(&self) -> &str {
        self.url().path()
    }
    fn headers(&self) -> &HeaderMap {
        reqwest::Request::headers(self)
    }
    fn headers_mut(&mut self) -> &mut HeaderMap {
        reqwest::Request::headers_mut(self)
    }
    fn decided_lane(&self) -> Option<LaneContext> {
        // A reqwest request is always outgoing: no graylane server layer decided its lane.
        None
    }
}

impl HopResponse for reqwest::Response {
    type Traced = reqwest::Response;
    fn status(&self) -> StatusCode {
        reqwest::Response::status(self)
    }
    fn headers(&self) -> &http::HeaderMap {
        reqwest::Response::headers(self)
    }
    fn traced(self, outcome: Outcome) -> reqwest::Response {
        // Recorded now: reqwest reads no gRPC trailers.
        drop(outcome);
        self
    }
}

impl<S> Service<reqwest::Request> for LaneTrace<S>
where
    S: Service<reqwest::Request, Response = reqwest::Response>,
{
    type Response = reqwest::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().poll_ready(cx)
    }

    fn call(&mut self, req: reqwest::Request) -> Self::Future {
        self.call_traced(req)
    }
}

#[cfg(feature = "reqwest-middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest-middleware")))]
#[async_trait::async_trait]
impl reqwest_middleware::Middleware for crate::LaneTraceLayer {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        self.hop(req, |req| next.run(req, extensions)).await
    }
}
