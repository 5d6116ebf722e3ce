//! [`LaneTraceLayer`] and [`LaneTrace`]: the server or client span of one hop, with the trace
//! context taken from or written into the request, and the hop recorded in the lane metrics.

use std::fmt;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use graylane_core::{LaneContext, Propagator};
use http::{Request, Response};
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use tower_layer::Layer;
use tower_service::Service;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::carrier::{HeaderCarrier, HeaderReader};
use super::future::ResponseFuture;
use super::hop::HopRequest;
use super::processor::start_own;
use crate::metrics::{Kind, LaneMetrics};
use crate::propagation::{composite, lane_context, with_lane_context};

/// What every [`LaneTrace`] made by one layer shares.
pub(crate) struct Config {
    kind: Kind,
    service: Arc<str>,
    /// The service a client layer calls, for edges in the metrics and `peer.service`.
    peer: Option<Arc<str>>,
    propagator: Propagator,
    otel: TextMapCompositePropagator,
    metrics: Option<LaneMetrics>,
}

impl Config {
    /// Opens the hop's span for `req`. A server span continues the trace in `req`'s headers
    /// and carries the lane a graylane layer decided; a client span is a child of the current
    /// span and writes its trace context, baggage (with the lane) and the lane header on `req`.
    fn open(&self, req: &mut impl HopRequest) -> (tracing::Span, LaneContext) {
        let method = req.method().clone();
        let path = req.path().to_owned();
        match self.kind {
            Kind::Server => {
                let parent = self.otel.extract(&HeaderReader(req.headers()));
                let ctx = req
                    .decided_lane()
                    .unwrap_or_else(|| lane_context(&parent, &self.propagator));
                let span = tracing::info_span!(
                    "graylane.server",
                    otel.name = %format_args!("{method} {path}"),
                    otel.kind = "server",
                    otel.status_code = tracing::field::Empty,
                    gray.lane = ctx.lane().as_str(),
                    gray.served = ctx.served().as_str(),
                    graylane.spec_revision = ctx.revision(),
                    graylane.service = &*self.service,
                    http.request.method = %method,
                    url.path = %path,
                    http.response.status_code = tracing::field::Empty,
                );
                // The lane the layer decided, not whatever the client put in baggage.
                let _ = span.set_parent(with_lane_context(&parent, ctx, &self.propagator));
                start_own(&span);
                (span, ctx)
            }
            _ => {
                let ctx = LaneContext::current();
                let span = tracing::info_span!(
                    "graylane.client",
                    otel.name = %format_args!("{method} {path}"),
                    otel.kind = "client",
                    otel.status_code = tracing::field::Empty,
                    gray.lane = ctx.lane().as_str(),
                    gray.served = tracing::field::Empty,
                    graylane.spec_revision = ctx.revision(),
                    graylane.service = &*self.service,
                    peer.service = self.peer.as_deref(),
                    http.request.method = %method,
                    url.path = %path,
                    http.response.status_code = tracing::field::Empty,
                );
                let cx = with_lane_context(&start_own(&span), ctx, &self.propagator);
                self.otel
                    .inject_context(&cx, &mut HeaderCarrier(req.headers_mut()));
                (span, ctx)
            }
        }
    }

    /// Records one finished hop in the layer's metrics, if it has any.
    pub(crate) fn record(&self, ctx: LaneContext, elapsed: Duration, error: bool) {
        match (&self.metrics, &self.peer) {
            (Some(metrics), Some(peer)) => {
                metrics.record_to(self.kind, peer.clone(), ctx, elapsed, error);
            }
            (Some(metrics), None) => metrics.record(self.kind, ctx, elapsed, error),
            (None, _) => {}
        }
    }
}

/// One traced hop, whatever the request type: opens the span, hands `req` to `send` inside it
/// (a service's `call` may do work before its future is first polled) and returns the future
/// that records the outcome.
fn traced<R: HopRequest, F>(
    config: &Arc<Config>,
    mut req: R,
    send: impl FnOnce(R) -> F,
) -> ResponseFuture<F> {
    let (span, ctx) = config.open(&mut req);
    let future = span.in_scope(|| send(req));
    ResponseFuture::new(future, span, ctx, config.clone())
}

/// Opens a span per request, carrying the lane, and records per-lane metrics.
///
/// - [`server`](Self::server): continues the trace from the request's `traceparent` and
///   `baggage`; put it *inside* graylane's `LaneLayer` so the span knows the lane that layer
///   decided (and the served lane after a fallback).
/// - [`client`](Self::client): a child span of the current one; writes `traceparent`,
///   `baggage` (with the lane) and the lane header on the outgoing request. It wraps any
///   `tower::Service<http::Request<B>>` (hyper, tonic channels) and, with the `reqwest`
///   feature, `reqwest::Client` (see `graylane_otel::reqwest`).
///
/// # Span names
///
/// The spans are `tracing` spans named `graylane.server` and `graylane.client` — the names a
/// `tracing` subscriber (a fmt layer, an `EnvFilter` directive) sees. With
/// `tracing-opentelemetry` they are exported as OTel spans named after their `otel.name`
/// field, `{METHOD} {path}` (e.g. `GET /orders/7`), of the kind in `otel.kind` (`server`,
/// `client`).
///
/// Their fields, exported as attributes: `gray.lane`, `gray.served`, `graylane.spec_revision`,
/// `graylane.service`, `peer.service` (a client's [`peer`](Self::peer)),
/// `http.request.method`, `url.path` and `http.response.status_code`. A 5xx response, a gRPC
/// server error in the response headers (a trailers-only reply; see OTel's server codes) or a
/// transport error also sets the OTel span status to error (`otel.status_code`).
#[derive(Clone)]
pub struct LaneTraceLayer {
    config: Arc<Config>,
}

impl fmt::Debug for LaneTraceLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneTraceLayer")
            .field("kind", &self.config.kind)
            .field("service", &self.config.service)
            .finish_non_exhaustive()
    }
}

impl LaneTraceLayer {
    /// Server spans for `service`.
    pub fn server(service: impl Into<Arc<str>>, propagator: Propagator) -> LaneTraceLayer {
        LaneTraceLayer::new(Kind::Server, service.into(), propagator)
    }

    /// Client spans for calls made by `service`.
    pub fn client(service: impl Into<Arc<str>>, propagator: Propagator) -> LaneTraceLayer {
        LaneTraceLayer::new(Kind::Client, service.into(), propagator)
    }

    fn new(kind: Kind, service: Arc<str>, propagator: Propagator) -> LaneTraceLayer {
        LaneTraceLayer {
            config: Arc::new(Config {
                kind,
                service,
                peer: None,
                otel: composite(propagator.clone()),
                propagator,
                metrics: None,
            }),
        }
    }

    /// This layer with `metrics` and `peer` (the composite propagator is not `Clone`).
    fn with(&self, metrics: Option<LaneMetrics>, peer: Option<Arc<str>>) -> LaneTraceLayer {
        let c = &self.config;
        LaneTraceLayer {
            config: Arc::new(Config {
                kind: c.kind,
                service: c.service.clone(),
                peer,
                propagator: c.propagator.clone(),
                otel: composite(c.propagator.clone()),
                metrics,
            }),
        }
    }

    /// Also records every request in `metrics`.
    #[must_use]
    pub fn metrics(self, metrics: LaneMetrics) -> LaneTraceLayer {
        self.with(Some(metrics), self.config.peer.clone())
    }

    /// The service a client layer calls: the span's `peer.service`, and `graylane.peer` on
    /// its metrics, which is what draws the edge between the two services in the lane view.
    ///
    /// ```
    /// use graylane_core::{Lane, LaneSet, Propagator};
    /// use graylane_otel::LaneTraceLayer;
    ///
    /// let propagator = Propagator::new(LaneSet::new([Lane::new("gray")?]));
    /// let calls = LaneTraceLayer::client("gateway", propagator).peer("orders");
    /// # let _ = calls;
    /// # Ok::<(), graylane_core::LaneError>(())
    /// ```
    #[must_use]
    pub fn peer(self, peer: impl Into<Arc<str>>) -> LaneTraceLayer {
        self.with(self.config.metrics.clone(), Some(peer.into()))
    }

    /// One hop traced by this layer, with `send` doing the call (for callers that are not
    /// tower services, such as a reqwest-middleware chain).
    #[cfg(feature = "reqwest-middleware")]
    pub(crate) fn hop<R: HopRequest, F>(
        &self,
        req: R,
        send: impl FnOnce(R) -> F,
    ) -> ResponseFuture<F> {
        traced(&self.config, req, send)
    }
}

impl<S> Layer<S> for LaneTraceLayer {
    type Service = LaneTrace<S>;

    fn layer(&self, inner: S) -> LaneTrace<S> {
        LaneTrace {
            inner,
            config: self.config.clone(),
        }
    }
}

/// Middleware of [`LaneTraceLayer`].
#[derive(Clone)]
pub struct LaneTrace<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> fmt::Debug for LaneTrace<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneTrace")
            .field("kind", &self.config.kind)
            .finish_non_exhaustive()
    }
}

impl<S> LaneTrace<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// `req` through the inner service, traced: the `call` of every request type.
    pub(crate) fn call_traced<R>(&mut self, req: R) -> ResponseFuture<S::Future>
    where
        R: HopRequest,
        S: Service<R>,
    {
        let inner = &mut self.inner;
        traced(&self.config, req, |req| inner.call(req))
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LaneTrace<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<super::body::ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        self.call_traced(req)
    }
}
