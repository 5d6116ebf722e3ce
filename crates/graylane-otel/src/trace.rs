//! Spans: a span processor that puts the lane on every span, and a tower layer that opens the
//! server and client spans of a hop (trace context in, trace context out) and records metrics.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};
use std::time::{Duration, Instant};

use graylane_core::{LaneContext, Propagator};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::{Kind, LaneMetrics};
use crate::propagation::{composite, lane_context, with_lane_context};

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
    static STARTING_OWN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Starts `span`'s OTel span now (instead of at its first enter) and returns its context,
/// telling [`LaneSpanProcessor`] that the span carries the lane already.
fn start_own(span: &tracing::Span) -> Context {
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

/// `http::HeaderMap` as an OTel carrier.
pub struct HeaderCarrier<'a>(pub &'a mut HeaderMap);

impl fmt::Debug for HeaderCarrier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderCarrier").finish_non_exhaustive()
    }
}

impl Injector for HeaderCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// `http::HeaderMap` as a read-only OTel carrier.
#[derive(Debug)]
pub struct HeaderReader<'a>(pub &'a HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct Config {
    kind: Kind,
    service: Arc<str>,
    propagator: Propagator,
    otel: TextMapCompositePropagator,
    metrics: Option<LaneMetrics>,
}

/// Opens a span per request, carrying the lane, and records per-lane metrics.
///
/// - [`server`](Self::server): continues the trace from the request's `traceparent` and
///   `baggage`; put it *inside* graylane's `LaneLayer` so the span knows the lane that layer
///   decided (and the served lane after a fallback).
/// - [`client`](Self::client): a child span of the current one; writes `traceparent`,
///   `baggage` (with the lane) and the lane header on the outgoing request.
///
/// Spans are `tracing` spans (`graylane.server`, `graylane.client`) with `otel.kind`,
/// `gray.lane`, `gray.served`, `graylane.service`, `http.request.method`, `url.path` and
/// `http.response.status_code`; with `tracing-opentelemetry` they are exported as OTel spans.
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
                otel: composite(propagator.clone()),
                propagator,
                metrics: None,
            }),
        }
    }

    /// Also records every request in `metrics`.
    #[must_use]
    pub fn metrics(self, metrics: LaneMetrics) -> LaneTraceLayer {
        let c = &self.config;
        LaneTraceLayer {
            config: Arc::new(Config {
                kind: c.kind,
                service: c.service.clone(),
                propagator: c.propagator.clone(),
                otel: composite(c.propagator.clone()),
                metrics: Some(metrics),
            }),
        }
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LaneTrace<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = TraceFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let config = &self.config;
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let (span, ctx) = match config.kind {
            Kind::Server => {
                let parent = config.otel.extract(&HeaderReader(req.headers()));
                let ctx = req
                    .extensions()
                    .get::<LaneContext>()
                    .copied()
                    .unwrap_or_else(|| lane_context(&parent, &config.propagator));
                let span = tracing::info_span!(
                    "graylane.server",
                    otel.name = %format_args!("{method} {path}"),
                    otel.kind = "server",
                    gray.lane = ctx.lane().as_str(),
                    gray.served = ctx.served().as_str(),
                    graylane.service = &*config.service,
                    http.request.method = %method,
                    url.path = %path,
                    http.response.status_code = tracing::field::Empty,
                );
                // The lane the layer decided, not whatever the client put in baggage.
                let _ = span.set_parent(with_lane_context(&parent, ctx, &config.propagator));
                start_own(&span);
                (span, ctx)
            }
            _ => {
                let ctx = LaneContext::current();
                let span = tracing::info_span!(
                    "graylane.client",
                    otel.name = %format_args!("{method} {path}"),
                    otel.kind = "client",
                    gray.lane = ctx.lane().as_str(),
                    gray.served = tracing::field::Empty,
                    graylane.service = &*config.service,
                    http.request.method = %method,
                    url.path = %path,
                    http.response.status_code = tracing::field::Empty,
                );
                let cx = with_lane_context(&start_own(&span), ctx, &config.propagator);
                config
                    .otel
                    .inject_context(&cx, &mut HeaderCarrier(req.headers_mut()));
                (span, ctx)
            }
        };
        let future = span.in_scope(|| self.inner.call(req));
        TraceFuture {
            inner: future.instrument(span),
            started: Instant::now(),
            ctx,
            config: self.config.clone(),
        }
    }
}

pin_project! {
    /// Response future of [`LaneTrace`].
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct TraceFuture<F> {
        #[pin]
        inner: tracing::instrument::Instrumented<F>,
        started: Instant,
        ctx: LaneContext,
        config: Arc<Config>,
    }
}

impl<F> fmt::Debug for TraceFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceFuture").finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for TraceFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let result = ready!(this.inner.as_mut().poll(cx));
        let status = result.as_ref().ok().map(|r| r.status());
        if let Some(status) = status {
            this.inner
                .span()
                .record("http.response.status_code", status.as_u16());
        }
        // 5xx and transport errors are errors; a gRPC status travels in trailers and is the
        // application's to report.
        let error = status.is_none_or(|s| s.is_server_error());
        if let Some(metrics) = &this.config.metrics {
            metrics.record(this.config.kind, *this.ctx, this.started.elapsed(), error);
        }
        Poll::Ready(result)
    }
}

/// A consumer span for one message: the trace continues from the message's headers (read
/// through `carrier`), and the span carries the message's lane. Instrument the handler with it.
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
