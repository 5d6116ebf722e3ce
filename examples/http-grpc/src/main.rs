//! graylane across HTTP and gRPC, on loopback, in one process:
//!
//! ```text
//! client ──HTTP──► gateway (axum, edge) ──gRPC──► orders v1 | orders v2 (gray)
//!                                                   └──HTTP──► inventory v1 (no gray version)
//! ```
//!
//! The edge colors `x-user-group: beta` gray, strips forged lane headers and accepts signed
//! tokens. `orders` is routed per lane with a `LaneSwitch` over two tonic channels; `inventory`
//! has no gray version, so gray requests fall back to v1 there and keep their lane.
//!
//! `cargo run -p http-grpc`

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use bytes::Bytes;
use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, Propagator, task};
use graylane_grpc::unary::{ServiceName, UnaryClient, unary_fn};
use graylane_grpc::{LaneRequestExt, status_from_error};
use graylane_http::{
    BoxError, LaneLayer, LaneRouterLayer, LaneSwitch, PropagateLane, PropagateLaneLayer,
    RequestLane,
};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};

const SPEC: &str = r#"
services: [{ name: gateway }, { name: orders }, { name: inventory }]
lanes: [{ name: gray, version: v2, services: [orders] }]
coloring:
  rules: [{ name: beta, lane: gray, match: { header: { name: x-user-group, exact: beta } } }]
trust:
  token: { key: "example key, not a secret", key_env: GRAYLANE_EXAMPLE_KEY }
"#;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

#[derive(Clone, PartialEq, prost::Message)]
struct Order {
    #[prost(string, tag = "1")]
    item: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Receipt {
    #[prost(string, tag = "1")]
    path: String,
}

async fn serve_http(app: Router) -> Result<SocketAddr, BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// `orders`, a unary gRPC method served through `unary_fn` (no protoc).
#[derive(Clone)]
struct Orders {
    version: &'static str,
    propagator: Propagator,
    inventory: LaneRouterLayer,
}

/// The gRPC service name of [`Orders`], for `unary_fn`.
struct OrdersName;

impl ServiceName for OrdersName {
    const NAME: &'static str = "shop.Orders";
}

impl Orders {
    /// `shop.Orders/Place`.
    async fn place(
        self,
        req: tonic::Request<Order>,
    ) -> Result<tonic::Response<Receipt>, tonic::Status> {
        let ctx = req.lane_context();
        let inventory = ServiceBuilder::new()
            .layer(self.inventory.clone())
            .layer(PropagateLaneLayer::new(self.propagator.clone()))
            .service(Client::builder(TokioExecutor::new()).build_http());
        // `task::spawn` keeps the lane; plain `tokio::spawn` would not.
        let reserved = task::spawn(async move {
            let req =
                http::Request::get("http://inventory/reserve").body(Full::new(Bytes::new()))?;
            let body = inventory.oneshot(req).await?.into_body().collect().await?;
            Ok::<_, BoxError>(String::from_utf8(body.to_bytes().to_vec())?)
        })
        .await
        .map_err(|e| tonic::Status::internal(e.to_string()))?
        .map_err(status_from_error)?;
        Ok(tonic::Response::new(Receipt {
            path: format!(
                "orders {} (lane {}, served {}) -> {reserved}",
                self.version,
                ctx.lane(),
                ctx.served()
            ),
        }))
    }
}

async fn serve_orders(orders: Orders, serving: Lane) -> Result<SocketAddr, BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tonic::transport::Server::builder()
        .layer(LaneLayer::mesh(orders.propagator.clone()).serving(serving))
        .add_service(unary_fn::<OrdersName, _, _, _, _>(move |req| {
            orders.clone().place(req)
        }))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    Ok(addr)
}

/// What the gateway calls orders with: the lane on every call, and the lane's version of
/// orders (fallback to base) picked by a switch over one channel per version.
type OrdersTransport = PropagateLane<LaneSwitch<tonic::transport::Channel>>;

#[derive(Clone)]
struct Gateway {
    orders: UnaryClient<OrdersTransport>,
}

async fn checkout(State(mut g): State<Gateway>, RequestLane(ctx): RequestLane) -> String {
    let order = Order {
        item: "book".into(),
    };
    match g
        .orders
        .call::<Order, Receipt>("/shop.Orders/Place", order)
        .await
    {
        Ok(receipt) => format!(
            "gateway (lane {}) -> {}",
            ctx.lane(),
            receipt.into_inner().path
        ),
        Err(status) => format!("gateway (lane {}) -> error {status}", ctx.lane()),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let spec = LaneSpec::from_yaml_str(SPEC)?;
    // Once per process: one propagator (one set of counters) and the edge built on it.
    let compiled = spec.compile()?;
    let propagator = compiled.propagator().clone();
    let gray = Lane::new("gray")?;

    let inventory_app = Router::new()
        .route(
            "/reserve",
            get(|RequestLane(ctx): RequestLane| async move {
                format!(
                    "inventory v1 (lane {}, served {})",
                    ctx.lane(),
                    ctx.served()
                )
            }),
        )
        .layer(LaneLayer::mesh(propagator.clone()));
    let inventory_addr = serve_http(inventory_app).await?;
    let inventory = LaneRouterLayer::builder(&spec, "inventory")
        .base(format!("http://{inventory_addr}").parse()?)
        .build()?;

    let orders = |version| Orders {
        version,
        propagator: propagator.clone(),
        inventory: inventory.clone(),
    };
    let v1 = serve_orders(orders("v1"), Lane::BASE).await?;
    let v2 = serve_orders(orders("v2"), gray).await?;
    let channel = |addr: SocketAddr| async move {
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await
    };
    let switch = LaneSwitch::builder(&spec, "orders")
        .base(channel(v1).await?)
        .lane(gray, channel(v2).await?)
        .build()?;

    let gateway_app = Router::new()
        .route("/checkout", get(checkout))
        .with_state(Gateway {
            orders: UnaryClient::new(
                ServiceBuilder::new()
                    .layer(PropagateLaneLayer::new(propagator.clone()))
                    .service(switch.clone()),
            ),
        })
        .layer(LaneLayer::edge(compiled.edge().clone()));
    let gateway = serve_http(gateway_app).await?;

    let key = spec
        .trust
        .token
        .as_ref()
        .ok_or("no token settings")?
        .load_key()?;
    let token = key.mint(gray, SystemTime::now() + Duration::from_secs(300));
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    println!("gateway on http://{gateway}/checkout\n");
    for (who, header) in [
        ("an ordinary user", None),
        ("a beta user", Some(("x-user-group", "beta".to_owned()))),
        (
            "a client forging the lane header",
            Some(("x-gray-lane", "gray".to_owned())),
        ),
        (
            "a tester with a signed token",
            Some(("x-gray-lane-token", token)),
        ),
    ] {
        let mut req = http::Request::get(format!("http://{gateway}/checkout"));
        if let Some((name, value)) = &header {
            req = req.header(*name, value.as_str());
        }
        let res = client.request(req.body(Full::new(Bytes::new()))?).await?;
        let lane = res.headers().get("x-gray-lane").cloned();
        let body = res.into_body().collect().await?.to_bytes();
        println!(
            "{who}:\n  x-gray-lane: {lane:?}\n  {}\n",
            String::from_utf8_lossy(&body)
        );
    }
    let stats = switch.stats();
    println!(
        "orders routing (requested, served, requests): {:?}",
        stats.routes
    );
    println!("inventory fallbacks: {}", inventory.stats().fallbacks());
    Ok(())
}
