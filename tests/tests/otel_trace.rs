//! One trace across HTTP -> gRPC -> Kafka -> consumer, every span in the request's lane — also
//! when the lane travels only in W3C baggage. Real servers on loopback, each Kafka broker (the
//! mock and a real one, see `graylane_testkit::kafka`), the OpenTelemetry SDK's in-memory span
//! exporter.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use bytes::Bytes;
use graylane::http::LaneLayer;
use graylane::{Lane, LaneContext, LaneSet, Propagator};
use graylane_grpc::unary::{ServiceName, unary_fn};
use graylane_kafka::{LaneConsumer, LaneProducer};
use graylane_otel::{LaneTraceLayer, composite, consumer_span, inject_current};
use graylane_testkit::grpc::Text;
use graylane_testkit::kafka::TestBroker;
use graylane_testkit::otel::spans;
use graylane_testkit::services::unique;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_sdk::trace::SpanData;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use tokio::sync::mpsc;
use tower::ServiceBuilder;
use tracing::Instrument;

fn propagator() -> Propagator {
    Propagator::new(LaneSet::new([Lane::new("gray").unwrap()]))
}

/// Service B: a unary gRPC method (no protoc) that publishes the order to Kafka with the trace
/// context and the lane in the record's headers.
#[derive(Clone)]
struct Orders {
    producer: LaneProducer,
    topic: String,
}

/// The gRPC service name of [`Orders`], for `unary_fn`.
struct OrdersName;

impl ServiceName for OrdersName {
    const NAME: &'static str = "e2e.Orders";
}

impl Orders {
    /// `e2e.Orders/Publish`.
    async fn publish(
        self,
        req: tonic::Request<Text>,
    ) -> Result<tonic::Response<Text>, tonic::Status> {
        let order = req.into_inner();
        // The trace context goes into the record's headers; the lane is stamped by
        // LaneProducer as well.
        let mut carrier = HashMap::new();
        inject_current(&composite(propagator()), &propagator(), &mut carrier);
        let headers = carrier.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
            h.insert(Header {
                key: k,
                value: Some(v),
            })
        });
        self.producer
            .send(
                FutureRecord::to(&self.topic)
                    .key(&order.text)
                    .payload(&order.text)
                    .headers(headers),
                Duration::from_secs(5),
            )
            .await
            .map_err(|(e, _)| tonic::Status::internal(e.to_string()))?;
        Ok(tonic::Response::new(order))
    }
}

async fn serve_orders(orders: Orders) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .layer(LaneLayer::mesh(propagator()))
        .layer(LaneTraceLayer::server("orders", propagator()))
        .add_service(unary_fn::<OrdersName, _, _, _, _>(move |req| {
            orders.clone().publish(req)
        }))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    addr
}

/// Service A (HTTP): calls B over gRPC.
async fn checkout(State(channel): State<tonic::transport::Channel>) -> String {
    let svc = ServiceBuilder::new()
        .layer(LaneTraceLayer::client("gateway", propagator()))
        .service(channel);
    let mut grpc = tonic::client::Grpc::new(svc);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/e2e.Orders/Publish");
    let codec = tonic_prost::ProstCodec::<Text, Text>::default();
    let id = format!("order-{}", LaneContext::current().lane());
    grpc.unary(tonic::Request::new(Text::new(id)), path, codec)
        .await
        .unwrap()
        .into_inner()
        .text
}

/// The record's headers as an OTel carrier.
fn header_map(m: &rdkafka::message::OwnedMessage) -> HashMap<String, String> {
    m.headers()
        .map(|h| {
            h.iter()
                .filter_map(|h| {
                    Some((h.key.to_owned(), String::from_utf8(h.value?.to_vec()).ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn trace_spans(trace_id: &str) -> Vec<SpanData> {
    spans(propagator)
        .finished()
        .into_iter()
        .filter(|s| s.span_context.trace_id().to_string() == trace_id)
        .collect()
}

fn lane_of(span: &SpanData) -> Vec<String> {
    span.attributes
        .iter()
        .filter(|kv| kv.key.as_str() == "gray.lane")
        .map(|kv| kv.value.as_str().into_owned())
        .collect()
}

/// Runs one checkout through every hop and returns its spans. The trace id is `trace_id` with
/// its last digit set by the broker, so that runs on different brokers in one process (one span
/// exporter) stay apart.
async fn one_trace(
    broker: TestBroker,
    lane_headers: &[(&str, &str)],
    trace_id: &str,
) -> Vec<SpanData> {
    spans(propagator);
    let trace_id = &format!("{}{}", &trace_id[..31], broker.flavor() as u8);
    let topic = unique("orders");
    let control = unique("control");
    let group = unique("fulfillment");
    broker.create_topic(&topic, 2).unwrap();
    broker.create_control_topic(&control).unwrap();
    let producer = LaneProducer::new(broker.client_config().create().unwrap(), propagator());
    let orders = serve_orders(Orders {
        producer,
        topic: topic.clone(),
    })
    .await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{orders}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let gateway = Router::new()
        .route("/checkout", get(checkout))
        .with_state(channel)
        .layer(LaneTraceLayer::server("gateway", propagator()))
        .layer(LaneLayer::mesh(propagator()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, gateway).await });

    // fulfillment: base (grants partitions) and gray consumers; the handler continues the trace.
    let (done, mut handled) = mpsc::unbounded_channel();
    let consumer = |lane: Lane| {
        let done = done.clone();
        let topic = topic.clone();
        LaneConsumer::builder(broker.client_config(), propagator(), &group)
            .lane(lane)
            .topic(topic.clone())
            .control_topic(&control)
            .spawn(move |m| {
                let ctx = LaneContext::current();
                let span = consumer_span(
                    &composite(propagator()),
                    &header_map(&m),
                    ctx,
                    &propagator(),
                    "fulfillment",
                    &topic,
                );
                let done = done.clone();
                async move {
                    // Application code, with a span of its own.
                    tracing::info_span!("fulfill").in_scope(|| {});
                    done.send(ctx.lane()).unwrap();
                }
                .instrument(span)
            })
    };
    let base = consumer(Lane::BASE).await.unwrap();
    let gray = consumer(Lane::new("gray").unwrap()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while base.stats().grants < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the gray consumer was granted its partitions");

    let mut req = http::Request::get(format!("http://{gateway_addr}/checkout"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"));
    for (k, v) in lane_headers {
        req = req.header(*k, *v);
    }
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let res = client
        .request(req.body(Full::default()).unwrap())
        .await
        .unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"order-gray");
    let lane = tokio::time::timeout(Duration::from_secs(10), handled.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lane, "gray");
    let gray_stats = gray.stop().await.unwrap();
    assert_eq!(gray_stats.processed, 1, "the gray consumer handled it");
    base.stop().await.unwrap();
    trace_spans(trace_id)
}

fn check(spans: &[SpanData]) {
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    // gateway server + gateway client + orders server + consumer + the application's span.
    assert_eq!(spans.len(), 5, "{names:?}");
    for expected in ["GET /checkout", "POST /e2e.Orders/Publish", "fulfill"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert!(names.iter().any(|n| n.ends_with(" process")), "{names:?}");
    for span in spans {
        assert_eq!(
            lane_of(span),
            ["gray"],
            "{}: {:?}",
            span.name,
            span.attributes
        );
    }
}

graylane_testkit::kafka_tests!(
    one_trace_in_the_lane_across_http_grpc_kafka_and_a_consumer,
    baggage_alone_carries_the_lane_end_to_end,
);

async fn one_trace_in_the_lane_across_http_grpc_kafka_and_a_consumer(broker: TestBroker) {
    check(
        &one_trace(
            broker,
            &[("x-gray-lane", "gray")],
            "4bf92f3577b34da6a3ce929d0e0e4736",
        )
        .await,
    );
}

async fn baggage_alone_carries_the_lane_end_to_end(broker: TestBroker) {
    check(
        &one_trace(
            broker,
            &[("baggage", "gray.lane=gray")],
            "5cf92f3577b34da6a3ce929d0e0e4737",
        )
        .await,
    );
}
