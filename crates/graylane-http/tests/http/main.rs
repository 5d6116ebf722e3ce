//! Real axum servers on ephemeral loopback ports, real hyper-util and reqwest clients.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use bytes::Bytes;
use graylane_core::spec::LaneSpec;
use graylane_core::trust::TokenKey;
use graylane_core::{Lane, LaneContext, LaneFutureExt, Rejection, current_lane, task};
use graylane_http::{
    BoxError, LaneLayer, LaneRouterLayer, MirrorConfig, MirrorLayer, PropagateLaneLayer,
    RequestLane, Routed,
};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};

mod compare;
mod live;

const SPEC: &str = r#"
services: [{ name: gateway }, { name: inventory }, { name: orders }]
lanes:
  - { name: gray, version: v2, services: [orders] }
  - { name: shadow, version: v2, services: [orders] }
coloring:
  rules:
    - { name: beta, lane: gray, match: { header: { name: x-user-group, exact: beta } } }
trust:
  token: { key: "http integration test key", key_env: GRAYLANE_HTTP_TEST_UNSET }
"#;

fn spec() -> LaneSpec {
    LaneSpec::from_yaml_str(SPEC).unwrap()
}

fn gray() -> Lane {
    Lane::new("gray").unwrap()
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// GET `uri` through `svc`; the body as a string.
async fn get_text<S>(svc: S, uri: &str) -> Result<(http::Response<()>, String), BoxError>
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>>,
    S::Error: Into<BoxError>,
{
    let req = http::Request::get(uri).body(Full::new(Bytes::new()))?;
    let res = svc.oneshot(req).await.map_err(Into::into)?;
    let (parts, body) = res.into_parts();
    let text = String::from_utf8(body.collect().await?.to_bytes().to_vec())?;
    Ok((http::Response::from_parts(parts, ()), text))
}

/// A leaf service: answers `name@version lane=<lane> served=<served> spawned=<lane in a spawned task>`.
fn leaf(spec: &LaneSpec, name: &'static str, lane: Lane) -> Router {
    let version = if lane.is_base() { "v1" } else { "v2" };
    Router::new()
        .route(
            "/",
            get(move |RequestLane(ctx): RequestLane| async move {
                let spawned = task::spawn(async { current_lane() }).await.unwrap();
                format!(
                    "{name}@{version} lane={} served={} spawned={spawned}",
                    ctx.lane(),
                    ctx.served()
                )
            }),
        )
        .layer(LaneLayer::mesh(spec.propagator()).serving(lane))
}

#[derive(Clone)]
struct Next {
    client: HttpClient,
    spec: LaneSpec,
    router: LaneRouterLayer,
}

/// A middle service: records itself, then calls the next service through the lane router.
fn middle(spec: &LaneSpec, name: &'static str, lane: Lane, next: Next) -> Router {
    let version = if lane.is_base() { "v1" } else { "v2" };
    Router::new()
        .route(
            "/",
            get(
                move |State(next): State<Next>, RequestLane(ctx): RequestLane| async move {
                    let client = ServiceBuilder::new()
                        .layer(next.router.clone())
                        .layer(PropagateLaneLayer::new(next.spec.propagator()))
                        .service(next.client.clone());
                    // Call from a spawned task: the lane must survive the spawn too.
                    let downstream = task::spawn(async move {
                        get_text(client, "http://placeholder/")
                            .await
                            .map(|(_, t)| t)
                    })
                    .await
                    .unwrap();
                    let here = format!(
                        "{name}@{version} lane={} served={}",
                        ctx.lane(),
                        ctx.served()
                    );
                    match downstream {
                        Ok(text) => (http::StatusCode::OK, format!("{here} -> {text}")),
                        Err(e) => (
                            http::StatusCode::SERVICE_UNAVAILABLE,
                            format!("{here} -> error: {e}"),
                        ),
                    }
                },
            ),
        )
        .with_state(next)
        .layer(LaneLayer::mesh(spec.propagator()).serving(lane))
}

struct Topology {
    gateway: SocketAddr,
    inventory_router: LaneRouterLayer,
    orders_router: LaneRouterLayer,
}

/// gateway (edge) -> inventory (base only) -> orders (base and gray).
async fn topology(strict_inventory: bool) -> Topology {
    let spec = spec();
    let orders_v1 = serve(leaf(&spec, "orders", Lane::BASE)).await;
    let orders_v2 = serve(leaf(&spec, "orders", gray())).await;
    let orders_router = LaneRouterLayer::builder(&spec, "orders")
        .base(format!("http://{orders_v1}").parse().unwrap())
        .lane(gray(), format!("http://{orders_v2}").parse().unwrap())
        .lane(
            Lane::new("shadow").unwrap(),
            format!("http://{orders_v2}").parse().unwrap(),
        )
        .build()
        .unwrap();
    let inventory = serve(middle(
        &spec,
        "inventory",
        Lane::BASE,
        Next {
            client: http_client(),
            spec: spec.clone(),
            router: orders_router.clone(),
        },
    ))
    .await;
    let inventory_router = LaneRouterLayer::builder(&spec, "inventory")
        .base(format!("http://{inventory}").parse().unwrap())
        .strict(strict_inventory)
        .build()
        .unwrap();
    let gateway_app = middle(
        &spec,
        "gateway",
        Lane::BASE,
        Next {
            client: http_client(),
            spec: spec.clone(),
            router: inventory_router.clone(),
        },
    )
    // The edge replaces the mesh layer's decision: it runs first.
    .layer(LaneLayer::edge(spec.edge().unwrap()));
    Topology {
        gateway: serve(gateway_app).await,
        inventory_router,
        orders_router,
    }
}

fn token(lane: Lane, ttl: i64) -> String {
    let key = TokenKey::new(b"http integration test key").unwrap();
    let at = if ttl >= 0 {
        SystemTime::now() + Duration::from_secs(ttl as u64)
    } else {
        SystemTime::now() - Duration::from_secs((-ttl) as u64)
    };
    key.mint(lane, at)
}

async fn call_gateway(
    addr: SocketAddr,
    headers: &[(&str, &str)],
) -> (http::StatusCode, String, String) {
    let mut req = http::Request::get(format!("http://{addr}/"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = http_client()
        .request(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let marked = res.headers()["x-gray-lane"].to_str().unwrap().to_owned();
    let body =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, marked, body)
}

const BASE_PATH: &str = "gateway@v1 lane=base served=base -> inventory@v1 lane=base served=base -> orders@v1 lane=base served=base spawned=base";
const GRAY_PATH: &str = "gateway@v1 lane=gray served=base -> inventory@v1 lane=gray served=base -> orders@v2 lane=gray served=gray spawned=gray";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_trust_coloring_fallback_and_reentry() {
    let t = topology(false).await;
    type Case = (&'static str, Vec<(&'static str, String)>, &'static str);
    let cases: Vec<Case> = vec![
        ("plain", vec![], BASE_PATH),
        (
            "beta header",
            vec![("x-user-group", "beta".into())],
            GRAY_PATH,
        ),
        (
            "forged lane header",
            vec![("x-gray-lane", "gray".into())],
            BASE_PATH,
        ),
        (
            "forged baggage",
            vec![("baggage", "gray.lane=gray".into())],
            BASE_PATH,
        ),
        (
            "valid token",
            vec![("x-gray-lane-token", token(gray(), 600))],
            GRAY_PATH,
        ),
        (
            "expired token",
            vec![("x-gray-lane-token", token(gray(), -5))],
            BASE_PATH,
        ),
        (
            "forged token",
            vec![(
                "x-gray-lane-token",
                token(gray(), 600).replace("gray", "base"),
            )],
            BASE_PATH,
        ),
        (
            "malformed token",
            vec![("x-gray-lane-token", "v1.gray.nonsense".into())],
            BASE_PATH,
        ),
    ];
    for (what, headers, want) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, marked, body) = call_gateway(t.gateway, &headers).await;
        assert_eq!(status, 200, "{what}: {body}");
        assert_eq!(body, *want, "{what}");
        let lane = if want.contains("lane=gray") {
            "gray"
        } else {
            "base"
        };
        assert_eq!(marked, lane, "{what}: the edge marks the response");
    }
    // inventory has no gray version: its router fell back for both gray requests; orders has.
    assert_eq!(t.inventory_router.stats().fallbacks(), 2);
    assert_eq!(t.orders_router.stats().fallbacks(), 0);
    assert!(
        t.orders_router
            .stats()
            .routes
            .contains(&(gray(), gray(), 2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_counts_what_it_refuses() {
    let spec = spec();
    let edge = spec.edge().unwrap();
    let app = Router::new()
        .route(
            "/",
            get(|RequestLane(ctx): RequestLane| async move { ctx.lane().to_string() }),
        )
        .layer(LaneLayer::edge(edge.clone()));
    let addr = serve(app).await;
    for headers in [
        vec![("x-gray-lane", "gray".to_owned())],
        vec![("x-gray-lane-token", token(gray(), -5))],
        vec![(
            "x-gray-lane-token",
            token(gray(), 600).replace("gray", "base"),
        )],
        vec![("x-gray-lane-token", "garbage".to_owned())],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, marked, body) = call_gateway(addr, &headers).await;
        assert_eq!(
            (status.as_u16(), marked.as_str(), body.as_str()),
            (200, "base", "base")
        );
    }
    let stats = edge.stats();
    assert_eq!(stats.get(Rejection::Untrusted), 1);
    assert_eq!(stats.get(Rejection::TokenExpired), 1);
    assert_eq!(stats.get(Rejection::TokenForged), 1);
    assert_eq!(stats.get(Rejection::TokenMalformed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_routing_returns_a_clear_error() {
    let t = topology(true).await;
    let (status, _, body) = call_gateway(t.gateway, &[("x-user-group", "beta")]).await;
    assert_eq!(status, 503);
    assert!(
        body.ends_with("error: service inventory has no version in lane gray (strict lane routing: no fallback to base)"),
        "{body}"
    );
    assert_eq!(t.inventory_router.stats().refused, 1);
    // Base still flows.
    let (status, _, body) = call_gateway(t.gateway, &[]).await;
    assert_eq!((status.as_u16(), body.as_str()), (200, BASE_PATH));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_interleaved_requests_never_mix() {
    let t = topology(false).await;
    let n = 2000;
    let concurrency = 64;
    let next = Arc::new(AtomicUsize::new(0));
    let mismatches = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (next, mismatches, gateway) = (next.clone(), mismatches.clone(), t.gateway);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let tok = token(gray(), 600);
                let (headers, want): (Vec<(&str, &str)>, &str) = match i % 4 {
                    0 => (vec![("x-user-group", "beta")], GRAY_PATH),
                    1 => (vec![("x-gray-lane", "gray")], BASE_PATH),
                    2 => (vec![("x-gray-lane-token", tok.as_str())], GRAY_PATH),
                    _ => (vec![], BASE_PATH),
                };
                let (status, _, body) = call_gateway(gateway, &headers).await;
                if status != 200 || body != want {
                    mismatches.fetch_add(1, Ordering::Relaxed);
                    eprintln!("request {i}: {status} {body}");
                }
            }
        }));
    }
    tokio::time::timeout(Duration::from_secs(120), async {
        for w in workers {
            w.await.unwrap();
        }
    })
    .await
    .expect("the load finishes in time");
    assert_eq!(mismatches.load(Ordering::Relaxed), 0);
    let routes = t.orders_router.stats().routes;
    assert!(
        routes.contains(&(gray(), gray(), (n / 2) as u64)),
        "{routes:?}"
    );
    assert!(
        routes.contains(&(Lane::BASE, Lane::BASE, (n / 2) as u64)),
        "{routes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_clients_carry_the_lane() {
    use graylane_http::reqwest::LaneRequestBuilderExt;
    let spec = spec();
    let echo = Router::new().route(
        "/",
        get(|headers: HeaderMap| async move {
            format!(
                "{:?} {:?}",
                headers
                    .get("x-gray-lane")
                    .map(|v| v.to_str().unwrap().to_owned()),
                headers
                    .get("baggage")
                    .map(|v| v.to_str().unwrap().to_owned())
            )
        }),
    );
    let addr = serve(echo).await;
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/");

    let layered = ServiceBuilder::new()
        .layer(PropagateLaneLayer::new(spec.propagator()))
        .service(client.clone());
    let req = client
        .get(&url)
        .header("baggage", "user=7")
        .build()
        .unwrap();
    let text = async { layered.oneshot(req).await.unwrap().text().await.unwrap() }
        .with_lane(LaneContext::new(gray()))
        .await;
    assert_eq!(text, r#"Some("gray") Some("user=7,gray.lane=gray")"#);

    let propagator = spec.propagator();
    let text = async {
        client
            .get(&url)
            .with_current_lane(&propagator)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
    .with_lane(LaneContext::new(gray()))
    .await;
    assert_eq!(text, r#"Some("gray") Some("gray.lane=gray")"#);

    // Outside any lane nothing is added.
    let text = client
        .get(&url)
        .with_current_lane(&propagator)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "None None");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_extension_reaches_the_caller() {
    let spec = spec();
    let v1 = serve(leaf(&spec, "orders", Lane::BASE)).await;
    let v2 = serve(leaf(&spec, "orders", gray())).await;
    let router = LaneRouterLayer::builder(&spec, "orders")
        .base(format!("http://{v1}").parse().unwrap())
        .lane(gray(), format!("http://{v2}").parse().unwrap())
        .lane(
            Lane::new("shadow").unwrap(),
            format!("http://{v2}").parse().unwrap(),
        )
        .build()
        .unwrap();
    let client = ServiceBuilder::new()
        .layer(router)
        .layer(PropagateLaneLayer::new(spec.propagator()))
        .service(http_client());
    let (res, text) = async { get_text(client, "http://ignored/").await.unwrap() }
        .with_lane(LaneContext::new(gray()))
        .await;
    assert_eq!(text, "orders@v2 lane=gray served=gray spawned=gray");
    let routed = res.extensions().get::<Routed>().unwrap();
    assert_eq!((routed.requested(), routed.served()), (gray(), gray()));
}

/// What the mirror target saw: lane header, mirror header, body.
type Seen = (Option<String>, Option<String>, String);

/// A mirror target that records what it receives, optionally slow or failing.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<std::sync::Mutex<Vec<Seen>>>,
}

fn mirror_target(recorder: Recorder, delay: Duration) -> Router {
    Router::new()
        .route(
            "/orders",
            post(
                move |State(r): State<Recorder>, headers: HeaderMap, body: String| async move {
                    tokio::time::sleep(delay).await;
                    let h = |k: &str| headers.get(k).map(|v| v.to_str().unwrap().to_owned());
                    r.seen
                        .lock()
                        .unwrap()
                        .push((h("x-gray-lane"), h("x-gray-mirror"), body));
                    "mirror"
                },
            ),
        )
        .with_state(recorder)
}

/// The primary: `orders` base, with a mirror layer in front.
async fn primary_with_mirror(
    target: SocketAddr,
    config: impl FnOnce(MirrorConfig) -> MirrorConfig,
) -> (SocketAddr, MirrorLayer<HttpClient>) {
    let spec = spec();
    let shadow = Lane::new("shadow").unwrap();
    let layer = MirrorLayer::new(
        http_client(),
        spec.propagator(),
        config(MirrorConfig::new(
            format!("http://{target}").parse().unwrap(),
            shadow,
        )),
    );
    let app = Router::new()
        .route(
            "/orders",
            post(|RequestLane(ctx): RequestLane, body: String| async move {
                format!(
                    "primary lane={} mirror={} body={body}",
                    ctx.lane(),
                    ctx.is_mirror()
                )
            }),
        )
        .layer(LaneLayer::mesh(spec.propagator()))
        .layer(
            ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |e: BoxError| async move {
                        (http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                    },
                ))
                .layer(layer.clone()),
        );
    (serve(app).await, layer)
}

async fn post_order(addr: SocketAddr, lane: Option<&str>) -> (Duration, String) {
    let mut req = http::Request::post(format!("http://{addr}/orders"));
    if let Some(lane) = lane {
        req = req.header("x-gray-lane", lane);
    }
    let started = Instant::now();
    let res = http_client()
        .request(
            req.body(Full::new(Bytes::from_static(b"{\"sku\":1}")))
                .unwrap(),
        )
        .await
        .unwrap();
    let body =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (started.elapsed(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_copy_is_marked_and_on_the_shadow_lane() {
    let recorder = Recorder::default();
    let target = serve(mirror_target(recorder.clone(), Duration::ZERO)).await;
    let (primary, layer) = primary_with_mirror(target, |c| c).await;
    for lane in [None, Some("gray")] {
        let (_, body) = post_order(primary, lane).await;
        let want = format!(
            "primary lane={} mirror=false body={{\"sku\":1}}",
            lane.unwrap_or("base")
        );
        assert_eq!(body, want);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while layer.stats().sent < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seen = recorder.seen.lock().unwrap().clone();
    let copy = (
        Some("shadow".to_owned()),
        Some("1".to_owned()),
        "{\"sku\":1}".to_owned(),
    );
    assert_eq!(
        seen,
        vec![copy.clone(), copy],
        "copies of base and gray both land on shadow"
    );
    assert_eq!(layer.stats().sent, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_never_lands_as_base_where_its_lane_is_unknown() {
    // The target's spec has no `shadow` lane: the copy's lane is refused, its mirror mark kept,
    // and the layer answers 421 instead of serving it as base (whose writes are production).
    let recorder = Recorder::default();
    let unaware = graylane_core::Propagator::new(graylane_core::LaneSet::new([gray()]));
    let target = serve(
        mirror_target(recorder.clone(), Duration::ZERO).layer(LaneLayer::mesh(unaware.clone())),
    )
    .await;
    let (primary, layer) = primary_with_mirror(target, |c| c).await;
    let (_, body) = post_order(primary, None).await;
    assert_eq!(body, "primary lane=base mirror=false body={\"sku\":1}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while layer.stats().sent + layer.stats().failed < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(layer.stats().sent, 1, "the copy was answered");
    assert!(
        recorder.seen.lock().unwrap().is_empty(),
        "and never handled"
    );
    assert_eq!(unaware.stats().get(Rejection::Unknown), 1);
}

#[test]
#[should_panic(expected = "mirror shadow lane is base")]
fn a_mirror_on_base_is_refused_when_the_layer_is_built() {
    let _ = MirrorLayer::new(
        http_client(),
        spec().propagator(),
        MirrorConfig::new("http://127.0.0.1:1".parse().unwrap(), Lane::BASE),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_failing_mirrors_do_not_hold_the_primary() {
    // Baseline latency without any mirror in the path.
    let recorder = Recorder::default();
    let fast_target = serve(mirror_target(recorder.clone(), Duration::ZERO)).await;
    let (no_mirror, _) = primary_with_mirror(fast_target, |c| c.percent(0.0)).await;
    let mut baseline = Duration::ZERO;
    for _ in 0..20 {
        baseline = baseline.max(post_order(no_mirror, None).await.0);
    }

    // A mirror that takes 2 s per copy, with room for 4 copies in flight.
    let slow_target = serve(mirror_target(Recorder::default(), Duration::from_secs(2))).await;
    let (slow, slow_layer) = primary_with_mirror(slow_target, |c| {
        c.max_in_flight(4).timeout(Duration::from_secs(10))
    })
    .await;
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let (took, body) = post_order(slow, None).await;
        assert!(body.starts_with("primary lane=base"), "{body}");
        worst = worst.max(took);
    }
    // Measured bound: the primary never waits for the mirror (the copy takes 2 s).
    assert!(
        worst < baseline + Duration::from_millis(250),
        "slow mirror: worst primary {worst:?}, baseline worst {baseline:?}"
    );
    let stats = slow_layer.stats();
    assert_eq!(stats.skipped_busy, 16, "{stats:?}");

    // A mirror that refuses connections.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (failing, failing_layer) = primary_with_mirror(closed, |c| c).await;
    for _ in 0..5 {
        let (_, body) = post_order(failing, Some("gray")).await;
        assert!(body.starts_with("primary lane=gray"), "{body}");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while failing_layer.stats().failed < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(failing_layer.stats().failed, 5);
    eprintln!("mirror bound: baseline worst {baseline:?}, slow-mirror worst {worst:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_cap_are_not_mirrored() {
    let recorder = Recorder::default();
    let target = serve(mirror_target(recorder.clone(), Duration::ZERO)).await;
    let (primary, layer) = primary_with_mirror(target, |c| c.max_body_bytes(4)).await;
    let (_, body) = post_order(primary, None).await;
    assert_eq!(body, "primary lane=base mirror=false body={\"sku\":1}");
    assert_eq!(layer.stats().skipped_body, 1);
    assert_eq!(layer.stats().sent + layer.stats().failed, 0);
}

/// A route added after `.layer(..)` is not covered by the layer: `RequestLane` says so instead
/// of answering base, and `Option<RequestLane>` lets a handler serve both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_lane_without_the_layer_is_refused() {
    let app = Router::new()
        .route(
            "/covered",
            get(|RequestLane(ctx): RequestLane| async move { ctx.lane().to_string() }),
        )
        .layer(LaneLayer::mesh(spec().propagator()))
        .route(
            "/uncovered",
            get(|RequestLane(ctx): RequestLane| async move { ctx.lane().to_string() }),
        )
        .route(
            "/optional",
            get(|lane: Option<RequestLane>| async move {
                lane.map_or("no layer".to_owned(), |RequestLane(ctx)| {
                    ctx.lane().to_string()
                })
            }),
        );
    let addr = serve(app).await;
    let client = http_client();
    let get = |path: &str| {
        let request = http::Request::get(format!("http://{addr}{path}"))
            .header("x-gray-lane", "gray")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = client.request(request);
        async move {
            let response = response.await.unwrap();
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    assert_eq!(get("/covered").await, (200, "gray".to_owned()));
    let (status, body) = get("/uncovered").await;
    assert_eq!(status, 500);
    assert!(body.contains("needs graylane's LaneLayer"), "{body}");
    assert_eq!(get("/optional").await, (200, "no layer".to_owned()));
}
