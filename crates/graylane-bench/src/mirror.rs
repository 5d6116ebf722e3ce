//! `mirror`: the same JSON handler behind graylane's server layer and a `MirrorLayer` copying
//! 10% of requests to a mirror on loopback, with the copies' responses discarded vs. compared
//! with the primary's (and noise copies learning what differs between two runs of base).
//! What is measured is the primary's cost of comparing: the copies run in both variants.

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use graylane_core::Lane;
use graylane_core::spec::LaneSpec;
use graylane_http::{CompareConfig, LaneLayer, MirrorConfig, MirrorLayer, RequestLane};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::ServiceExt;

use crate::Args;
use crate::http::{client, serve};
use crate::load::{Comparison, side_by_side};

/// The share of requests mirrored, in percent.
const MIRROR_PERCENT: f64 = 10.0;

const SPEC: &str = "
services: [{ name: quotes }]
lanes:
  - { name: gray, version: v2, services: [quotes] }
  - { name: baseline, mirror: true }
";

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A quote: v2 (on `gray`) ships express; every quote has a fresh id.
async fn quote(RequestLane(ctx): RequestLane, item: String) -> impl axum::response::IntoResponse {
    let shipping = if ctx.lane().as_str() == "gray" {
        "express"
    } else {
        "standard"
    };
    let body = serde_json::json!({
        "item": item,
        "price": "12.99",
        "shipping": shipping,
        "quote_id": format!("q-{:016x}", fastrand::u64(..)),
    });
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

/// `POST /{variant}/quote` behind `mirror`: one route per variant.
fn mirrored(mirror: MirrorLayer<HttpClient>) -> axum::routing::MethodRouter {
    post(quote).layer(
        tower::ServiceBuilder::new()
            .layer(axum::error_handling::HandleErrorLayer::new(
                |e: graylane_http::BoxError| async move {
                    (http::StatusCode::BAD_GATEWAY, e.to_string())
                },
            ))
            .layer(mirror),
    )
}

async fn post_quote(client: HttpClient, uri: String) -> Result<(), String> {
    let req = http::Request::post(uri)
        .body(Full::new(Bytes::from_static(b"book")))
        .map_err(|e| e.to_string())?;
    let res = client.oneshot(req).await.map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("status {}", res.status()));
    }
    res.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok(())
}

pub(crate) async fn run(args: &Args) -> (Comparison, u64) {
    let spec = LaneSpec::from_yaml_str(SPEC).expect("the bench's spec");
    let target = serve(
        Router::new()
            .route("/{variant}/quote", post(quote))
            .layer(LaneLayer::mesh(spec.propagator())),
    )
    .await;
    let config = || {
        MirrorConfig::new(
            format!("http://{target}").parse().expect("a target uri"),
            Lane::from_static("gray"),
        )
        .percent(MIRROR_PERCENT)
    };
    let discarding = MirrorLayer::new(client(), spec.propagator(), config());
    let comparing = MirrorLayer::new(
        client(),
        spec.propagator(),
        config().compare(CompareConfig::new().noise(Lane::from_static("baseline"), 10.0, 10)),
    );
    // Both variants behind one listener, called by one client: they share the connections,
    // the server's tasks and the target, so that the ratio measures comparing and nothing of
    // where a variant's sockets and tasks happened to land (two listeners and two clients
    // made a per-process bias of a few percent either way, comparing a variant with itself).
    let primary = serve(
        Router::new()
            .route("/off/quote", mirrored(discarding))
            .route("/on/quote", mirrored(comparing.clone()))
            .layer(LaneLayer::mesh(spec.propagator())),
    )
    .await;
    let client = client();
    let other = client.clone();
    let comparison = side_by_side(
        "mirror",
        ["comparison off", "comparison on "],
        args.rounds,
        args.requests,
        args.concurrency,
        move || post_quote(client.clone(), format!("http://{primary}/off/quote")),
        move || post_quote(other.clone(), format!("http://{primary}/on/quote")),
    )
    .await;
    let report = comparing.report();
    let route = report.route("POST /on/quote");
    let (n, different) = route.map_or((0, 0), |r| (r.compared, r.different_body));
    println!(
        "mirror comparisons: {n} compared, {different} with a different body, noise learned: {:?}, noise copies {}, busy skips {}",
        route.map(|r| r.noise.clone()).unwrap_or_default(),
        comparing.stats().noise_sent,
        comparing.stats().skipped_busy
    );
    (comparison, n)
}
