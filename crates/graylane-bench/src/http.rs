//! `http`: the same axum handler behind a real hyper client on loopback, without graylane and
//! with the graylane server layer (mesh) and client layer, gray traffic.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use graylane_core::{Lane, LaneContext, LaneFutureExt, LaneSet, Propagator};
use graylane_http::{LaneLayer, PropagateLaneLayer};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};

use crate::Args;
use crate::load::{Comparison, WITHOUT_WITH, side_by_side};

async fn handler() -> &'static str {
    "ok"
}

/// Serves `app` on an ephemeral loopback port.
pub(crate) async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A hyper client with `TCP_NODELAY`.
pub(crate) fn client() -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

async fn get_ok<S>(svc: S, uri: String) -> Result<(), String>
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>>,
    S::Error: std::fmt::Display,
{
    let req = http::Request::get(uri)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let res = svc.oneshot(req).await.map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("status {}", res.status()));
    }
    res.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok(())
}

pub(crate) async fn run(args: &Args) -> Comparison {
    let gray = Lane::from_static("gray");
    let propagator = Propagator::new(LaneSet::new([gray]));
    let plain = serve(Router::new().route("/", get(handler))).await;
    let laned = serve(
        Router::new()
            .route("/", get(handler))
            .layer(LaneLayer::mesh(propagator.clone())),
    )
    .await;

    let plain_client = client();
    let laned_client = ServiceBuilder::new()
        .layer(PropagateLaneLayer::new(propagator))
        .service(client());
    let ctx = LaneContext::new(gray);
    side_by_side(
        "http",
        WITHOUT_WITH,
        args.rounds,
        args.requests,
        args.concurrency,
        move || get_ok(plain_client.clone(), format!("http://{plain}/")),
        move || get_ok(laned_client.clone(), format!("http://{laned}/")).with_lane(ctx),
    )
    .await
}
