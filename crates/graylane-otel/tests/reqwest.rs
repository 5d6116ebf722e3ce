//! reqwest clients traced by `LaneTraceLayer`, against a real axum server on a loopback port:
//! what the server receives (trace context, baggage, lane header) and what the client span and
//! the metrics record — through tower (`reqwest::Client` as a service) and through a
//! reqwest-middleware chain.

mod support;

use std::net::SocketAddr;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use graylane_core::{LaneContext, LaneFutureExt};
use graylane_otel::{LaneMetrics, LaneTraceLayer};
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use opentelemetry_sdk::trace::SpanData;
use tower::{ServiceBuilder, ServiceExt};

use support::{attr, counter, finished_of, gray, metrics, propagator, spans};

/// What the server saw of one request.
#[derive(Debug)]
struct Seen {
    traceparent: String,
    baggage: String,
    lane: String,
}

impl Seen {
    /// The body of `/echo`: the three headers, one a line.
    fn parse(body: &str) -> Seen {
        let mut lines = body.lines().map(str::to_owned);
        let mut next = || lines.next().unwrap_or_default();
        Seen {
            traceparent: next(),
            baggage: next(),
            lane: next(),
        }
    }
}

async fn serve() -> SocketAddr {
    fn header(headers: &HeaderMap, name: &str) -> String {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
    let app = Router::new()
        .route(
            "/echo",
            get(|headers: HeaderMap| async move {
                ["traceparent", "baggage", "x-gray-lane"]
                    .map(|name| header(&headers, name))
                    .join("\n")
            }),
        )
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "down") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A `LaneTraceLayer::client` for `service`, recording into fresh in-memory metrics.
fn layer(service: &'static str) -> (LaneTraceLayer, Calls) {
    let (provider, exporter) = metrics();
    let lane_metrics = LaneMetrics::new(&provider.meter("graylane"), service);
    let layer = LaneTraceLayer::client(service, propagator()).metrics(lane_metrics);
    (
        layer,
        Calls {
            service,
            provider,
            exporter,
        },
    )
}

/// The client requests one layer counted.
struct Calls {
    service: &'static str,
    provider: SdkMeterProvider,
    exporter: InMemoryMetricExporter,
}

impl Calls {
    /// Gray-lane client requests counted with `outcome` (`ok`, `error`).
    fn count(&self, outcome: &'static str) -> u64 {
        self.provider.force_flush().unwrap();
        counter(
            &self.exporter,
            "graylane.requests",
            &[
                KeyValue::new("graylane.service", self.service),
                KeyValue::new("graylane.kind", "client"),
                KeyValue::new("gray.lane", "gray"),
                KeyValue::new("graylane.outcome", outcome),
            ],
        )
    }
}

/// GET `url` in the gray lane, through `layer` over a `reqwest::Client` as a tower service.
async fn get_in_gray(layer: LaneTraceLayer, url: String) -> reqwest::Result<reqwest::Response> {
    let client = reqwest::Client::new();
    let traced = ServiceBuilder::new().layer(layer).service(client.clone());
    let req = client.get(url).build()?;
    traced
        .oneshot(req)
        .with_lane(LaneContext::new(gray()))
        .await
}

/// The one client span `service` finished.
fn client_span(service: &str) -> SpanData {
    let spans = finished_of(service);
    assert_eq!(spans.len(), 1, "{spans:?}");
    spans.into_iter().next().unwrap()
}

/// The server got the client span's trace context, the lane in baggage and the lane header.
fn assert_propagated(seen: &Seen, span: &SpanData) {
    let context = &span.span_context;
    assert_eq!(
        seen.traceparent,
        format!("00-{}-{}-01", context.trace_id(), context.span_id()),
        "{seen:?}"
    );
    assert_eq!(seen.baggage, "gray.lane=gray", "{seen:?}");
    assert_eq!(seen.lane, "gray", "{seen:?}");
}

/// The recorded status code, which the semantic conventions want as an int.
fn status_code(span: &SpanData) -> Option<i64> {
    match attr(span, "http.response.status_code")[..] {
        [opentelemetry::Value::I64(code)] => Some(*code),
        [] => None,
        ref other => panic!("{other:?}"),
    }
}

fn assert_error(span: &SpanData) {
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
}

fn lane_of(span: &SpanData) -> Vec<String> {
    attr(span, "gray.lane")
        .iter()
        .map(|v| v.as_str().into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reqwest_client_sends_trace_context_baggage_and_the_lane() {
    spans();
    let addr = serve().await;
    let (layer, calls) = layer("checkout-tower");
    let res = get_in_gray(layer, format!("http://{addr}/echo"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = Seen::parse(&res.text().await.unwrap());

    let span = client_span("checkout-tower");
    assert_propagated(&seen, &span);
    assert_eq!(span.name, "GET /echo");
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(lane_of(&span), ["gray"]);
    assert_eq!(status_code(&span), Some(200));
    assert_eq!(span.status, Status::Unset);
    assert_eq!((calls.count("ok"), calls.count("error")), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_is_an_error() {
    spans();
    let addr = serve().await;
    let (layer, calls) = layer("checkout-5xx");
    let res = get_in_gray(layer, format!("http://{addr}/fail"))
        .await
        .unwrap();
    assert_eq!(res.status(), 500);

    let span = client_span("checkout-5xx");
    assert_eq!(status_code(&span), Some(500));
    assert_error(&span);
    assert_eq!(lane_of(&span), ["gray"]);
    assert_eq!((calls.count("ok"), calls.count("error")), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_error_is_an_error() {
    spans();
    // A port nothing listens on any more.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (layer, calls) = layer("checkout-refused");
    let err = get_in_gray(layer, format!("http://{addr}/echo"))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");

    let span = client_span("checkout-refused");
    assert_eq!(status_code(&span), None);
    assert_error(&span);
    assert_eq!((calls.count("ok"), calls.count("error")), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reqwest_middleware_chain_does_the_same() {
    spans();
    let addr = serve().await;
    let (layer, calls) = layer("checkout-middleware");
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(layer)
        .build();
    let url = format!("http://{addr}/echo");
    let res = client
        .get(&url)
        .send()
        .with_lane(LaneContext::new(gray()))
        .await
        .unwrap();
    let seen = Seen::parse(&res.text().await.unwrap());

    let span = client_span("checkout-middleware");
    assert_propagated(&seen, &span);
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(lane_of(&span), ["gray"]);
    assert_eq!(status_code(&span), Some(200));
    assert_eq!(calls.count("ok"), 1);

    let res = client
        .get(format!("http://{addr}/fail"))
        .send()
        .with_lane(LaneContext::new(gray()))
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    let failed: Vec<SpanData> = finished_of("checkout-middleware")
        .into_iter()
        .filter(|s| s.name == "GET /fail")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_error(&failed[0]);
    assert_eq!(calls.count("error"), 1);
}
