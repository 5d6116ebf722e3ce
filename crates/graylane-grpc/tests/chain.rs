//! A real 3-hop chain on loopback: HTTP (axum edge) -> gRPC (tonic) -> HTTP (axum).
//!
//! - `gray` has versions of `orders` and `ledger`: the lane arrives at the last hop.
//! - `blue` has a version of `ledger` only: `orders` serves it from base (fallback) and `ledger`
//!   serves it from blue again (re-entry).
//!
//! The gRPC handler calls `ledger` from a spawned task. The gRPC service is
//! `graylane_grpc::unary::unary_fn` over `graylane_testkit::grpc::Text`, a one-string prost
//! message, so no protoc is needed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use bytes::Bytes;
use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, current_lane, task};
use graylane_grpc::unary::{ServiceName, unary_fn};
use graylane_grpc::{LaneRequestExt, status_from_error};
use graylane_http::{
    BoxError, LaneLayer, LaneRouterLayer, LaneSwitch, PropagateLaneLayer, RequestLane,
};
use graylane_testkit::grpc::Text;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};

const SPEC: &str = r#"
services: [{ name: gateway }, { name: orders }, { name: ledger }]
lanes:
  - { name: gray, version: v2, services: [orders, ledger] }
  - { name: blue, version: v3, services: [ledger] }
coloring:
  rules:
    - { name: pick-gray, lane: gray, match: { header: { name: x-pick, exact: gray } } }
    - { name: pick-blue, lane: blue, match: { header: { name: x-pick, exact: blue } } }
"#;

fn lane(s: &str) -> Lane {
    Lane::new(s).unwrap()
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

async fn serve_http(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The last hop: reports what it sees, including from a spawned task.
fn ledger(spec: &LaneSpec, serving: Lane, version: &'static str) -> Router {
    Router::new()
        .route(
            "/",
            get(move |RequestLane(ctx): RequestLane| async move {
                let spawned = task::spawn(async { current_lane() }).await.unwrap();
                format!(
                    "ledger@{version} lane={} served={} spawned={spawned}",
                    ctx.lane(),
                    ctx.served()
                )
            }),
        )
        .layer(LaneLayer::mesh(spec.propagator()).serving(serving))
}

/// The middle hop: a unary gRPC method `demo.Orders/Place` that calls `ledger` over HTTP.
#[derive(Clone)]
struct Orders {
    version: &'static str,
    ledger: HttpClient,
    ledger_router: LaneRouterLayer,
    spec: LaneSpec,
}

/// The service name for [`unary_fn`].
struct OrdersName;

impl ServiceName for OrdersName {
    const NAME: &'static str = "demo.Orders";
}

impl Orders {
    async fn place(
        self,
        req: tonic::Request<Text>,
    ) -> Result<tonic::Response<Text>, tonic::Status> {
        let ctx = req.lane_context();
        let client = ServiceBuilder::new()
            .layer(self.ledger_router.clone())
            .layer(PropagateLaneLayer::new(self.spec.propagator()))
            .service(self.ledger.clone());
        // The downstream call runs in a spawned task: the lane must cross the spawn.
        let downstream = task::spawn(async move {
            let req = http::Request::get("http://ledger/").body(Full::new(Bytes::new()))?;
            let res = client.oneshot(req).await?;
            let body = res.into_body().collect().await?.to_bytes();
            Ok::<_, BoxError>(String::from_utf8(body.to_vec())?)
        })
        .await
        .map_err(|e| tonic::Status::internal(e.to_string()))?
        .map_err(status_from_error)?;
        Ok(tonic::Response::new(Text::new(format!(
            "orders@{} lane={} served={} -> {downstream}",
            self.version,
            ctx.lane(),
            ctx.served()
        ))))
    }
}

async fn serve_grpc(spec: &LaneSpec, orders: Orders, serving: Lane) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .layer(LaneLayer::mesh(spec.propagator()).serving(serving))
        .add_service(unary_fn::<OrdersName, _, _, _, _>(move |req| {
            orders.clone().place(req)
        }))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(async move { server.await.unwrap() });
    addr
}

async fn channel(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[derive(Clone)]
struct Gateway {
    orders: LaneSwitch<tonic::transport::Channel>,
    spec: LaneSpec,
}

/// The first hop: the edge, calling `orders` over gRPC.
fn gateway(spec: &LaneSpec, state: Gateway) -> Router {
    Router::new()
        .route(
            "/",
            get(
                |State(g): State<Gateway>, RequestLane(ctx): RequestLane| async move {
                    let svc = ServiceBuilder::new()
                        .layer(PropagateLaneLayer::new(g.spec.propagator()))
                        .service(g.orders.clone());
                    let mut grpc = tonic::client::Grpc::new(svc);
                    let here = format!("gateway lane={} served={}", ctx.lane(), ctx.served());
                    let answer = async {
                        grpc.ready()
                            .await
                            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
                        let path = http::uri::PathAndQuery::from_static("/demo.Orders/Place");
                        let codec = tonic_prost::ProstCodec::<Text, Text>::default();
                        grpc.unary(tonic::Request::new(Text::new("1")), path, codec)
                            .await
                    }
                    .await;
                    match answer {
                        Ok(res) => (
                            http::StatusCode::OK,
                            format!("{here} -> {}", res.into_inner().text),
                        ),
                        Err(status) => (
                            http::StatusCode::BAD_GATEWAY,
                            format!("{here} -> {:?}: {}", status.code(), status.message()),
                        ),
                    }
                },
            ),
        )
        .with_state(state)
        .layer(LaneLayer::edge(spec.edge().unwrap()))
}

/// Starts everything; returns the gateway's address and the orders switch.
async fn topology(strict_orders: bool) -> (SocketAddr, LaneSwitch<tonic::transport::Channel>) {
    let spec = LaneSpec::from_yaml_str(SPEC).unwrap();
    let ledger_v1 = serve_http(ledger(&spec, Lane::BASE, "v1")).await;
    let ledger_v2 = serve_http(ledger(&spec, lane("gray"), "v2")).await;
    let ledger_v3 = serve_http(ledger(&spec, lane("blue"), "v3")).await;
    let ledger_router = LaneRouterLayer::builder(&spec, "ledger")
        .base(format!("http://{ledger_v1}").parse().unwrap())
        .lane(lane("gray"), format!("http://{ledger_v2}").parse().unwrap())
        .lane(lane("blue"), format!("http://{ledger_v3}").parse().unwrap())
        .build()
        .unwrap();
    let orders = |version| Orders {
        version,
        ledger: Client::builder(TokioExecutor::new()).build_http(),
        ledger_router: ledger_router.clone(),
        spec: spec.clone(),
    };
    let orders_v1 = serve_grpc(&spec, orders("v1"), Lane::BASE).await;
    let orders_v2 = serve_grpc(&spec, orders("v2"), lane("gray")).await;
    let switch = LaneSwitch::builder(&spec, "orders")
        .base(channel(orders_v1).await)
        .lane(lane("gray"), channel(orders_v2).await)
        .strict(strict_orders)
        .build()
        .unwrap();
    let gw = gateway(
        &spec,
        Gateway {
            orders: switch.clone(),
            spec: spec.clone(),
        },
    );
    (serve_http(gw).await, switch)
}

async fn call(gateway: SocketAddr, pick: Option<&str>) -> (u16, String) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::get(format!("http://{gateway}/"));
    if let Some(pick) = pick {
        req = req.header("x-pick", pick);
    }
    let res = client
        .request(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

const BASE: &str = "gateway lane=base served=base -> orders@v1 lane=base served=base -> ledger@v1 lane=base served=base spawned=base";
const GRAY: &str = "gateway lane=gray served=base -> orders@v2 lane=gray served=gray -> ledger@v2 lane=gray served=gray spawned=gray";
const BLUE: &str = "gateway lane=blue served=base -> orders@v1 lane=blue served=base -> ledger@v3 lane=blue served=blue spawned=blue";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lane_crosses_http_grpc_http_with_fallback_and_reentry() {
    let (gw, switch) = topology(false).await;
    assert_eq!(call(gw, None).await, (200, BASE.to_owned()));
    assert_eq!(call(gw, Some("gray")).await, (200, GRAY.to_owned()));
    assert_eq!(call(gw, Some("blue")).await, (200, BLUE.to_owned()));
    let stats = switch.stats();
    assert_eq!(stats.fallbacks(), 1, "{stats:?}");
    assert!(stats.routes.contains(&(lane("blue"), Lane::BASE, 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_grpc_routing_fails_with_unavailable() {
    let (gw, switch) = topology(true).await;
    let (status, body) = call(gw, Some("blue")).await;
    assert_eq!(status, 502);
    assert!(
        body.starts_with("gateway lane=blue served=base -> "),
        "{body}"
    );
    assert!(
        body.contains("service orders has no version in lane blue"),
        "{body}"
    );
    assert_eq!(switch.stats().refused, 1);
    assert_eq!(call(gw, Some("gray")).await, (200, GRAY.to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interleaved_lanes_across_grpc_never_mix() {
    let (gw, _) = topology(false).await;
    let n = 900;
    let next = Arc::new(AtomicUsize::new(0));
    let bad = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let (next, bad) = (next.clone(), bad.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let (pick, want) = match i % 3 {
                        0 => (None, BASE),
                        1 => (Some("gray"), GRAY),
                        _ => (Some("blue"), BLUE),
                    };
                    let got = call(gw, pick).await;
                    if got != (200, want.to_owned()) {
                        bad.fetch_add(1, Ordering::Relaxed);
                        eprintln!("request {i}: {got:?}");
                    }
                }
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(120), async {
        for w in workers {
            w.await.unwrap();
        }
    })
    .await
    .expect("the load finishes in time");
    assert_eq!(bad.load(Ordering::Relaxed), 0);
}
