//! Mirror comparison on real servers: the primary's responses and the mirror's, compared field
//! by field — identical responses, a changed field, a changed status, noise learned from base
//! copies, the body cap, redaction, the in-flight bound, route templates — and the structural
//! proof that a mirror never holds up the primary.

use std::sync::Mutex;

use graylane_http::MirrorReport;
use graylane_http::mirror::compare::CompareConfig;
use tokio::sync::Semaphore;

use super::*;

const COMPARE_SPEC: &str = r#"
services: [{ name: quotes }]
lanes:
  - { name: shadow, version: v2, services: [quotes] }
  - { name: baseline, mirror: true }
"#;

/// How a quote service answers, by the lane of the request.
#[derive(Clone)]
struct Quotes {
    /// The mirror's version (on `shadow`): its shipping, and its status.
    v2_shipping: &'static str,
    v2_status: http::StatusCode,
    /// The status on `baseline`, the noise lane.
    baseline_status: http::StatusCode,
    /// Requests the handler holds until the test adds permits (none held: `None`).
    barrier: Option<Arc<Semaphore>>,
    /// The lanes the handler saw, mirror mark and all.
    seen: Arc<Mutex<Vec<(String, bool)>>>,
    /// Extra body bytes (for the cap).
    padding: usize,
}

impl Quotes {
    fn new(v2_shipping: &'static str) -> Quotes {
        Quotes {
            v2_shipping,
            v2_status: http::StatusCode::OK,
            baseline_status: http::StatusCode::OK,
            barrier: None,
            seen: Arc::default(),
            padding: 0,
        }
    }
}

/// `POST /quote` and `POST /orders/{id}` (any path, really): v1 on base and `baseline`, v2
/// on `shadow`; each answer has a fresh `quote_id` and `quoted_at`, and a `token` that differs
/// every time. Behind a mesh lane layer.
fn quote_server(q: Quotes) -> Router {
    quote_routes(q).layer(mesh())
}

fn mesh() -> LaneLayer {
    LaneLayer::mesh(LaneSpec::from_yaml_str(COMPARE_SPEC).unwrap().propagator())
}

fn quote_routes(q: Quotes) -> Router {
    let handler = move |RequestLane(ctx): RequestLane, body: String| {
        let q = q.clone();
        async move {
            if let Some(b) = &q.barrier {
                b.acquire().await.unwrap().forget();
            }
            q.seen
                .lock()
                .unwrap()
                .push((ctx.lane().to_string(), ctx.is_mirror()));
            let v2 = ctx.lane().as_str() == "shadow";
            let quoted_at = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let json = serde_json::json!({
                "item": body,
                "price": 1299,
                "shipping": if v2 { q.v2_shipping } else { "standard" },
                "quote_id": format!("{:016x}", fastrand::u64(..)),
                "quoted_at": quoted_at.to_string(),
                "token": format!("{:08x}", fastrand::u32(..)),
                "padding": "x".repeat(q.padding),
            });
            let status = match ctx.lane().as_str() {
                "shadow" => q.v2_status,
                "baseline" => q.baseline_status,
                _ => http::StatusCode::OK,
            };
            (
                status,
                [("content-type", "application/json")],
                json.to_string(),
            )
        }
    };
    Router::new()
        .route("/quote", post(handler.clone()))
        .route("/orders/{id}", post(handler.clone()))
        .fallback(post(handler))
}

/// A primary (v1) and a mirror target (v1 and v2 by lane), the mirror comparing at 100%,
/// inside the primary's lane layer.
async fn compared(
    target: Quotes,
    primary: Quotes,
    mirror: impl FnOnce(MirrorConfig) -> MirrorConfig,
    compare: CompareConfig,
) -> (SocketAddr, MirrorLayer<HttpClient>) {
    let spec = LaneSpec::from_yaml_str(COMPARE_SPEC).unwrap();
    let target = serve(quote_server(target)).await;
    let config = MirrorConfig::new(
        format!("http://{target}").parse().unwrap(),
        Lane::new("shadow").unwrap(),
    )
    .compare(compare);
    let layer = MirrorLayer::new(http_client(), spec.propagator(), mirror(config));
    let app = quote_routes(primary)
        .layer(
            ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |e: BoxError| async move {
                        (http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                    },
                ))
                .layer(layer.clone()),
        )
        .layer(mesh());
    (serve(app).await, layer)
}

async fn quote(addr: SocketAddr, path: &str, request_id: &str) -> serde_json::Value {
    quote_on(addr, path, request_id, None).await
}

async fn quote_on(
    addr: SocketAddr,
    path: &str,
    request_id: &str,
    lane: Option<&str>,
) -> serde_json::Value {
    let mut req =
        http::Request::post(format!("http://{addr}{path}")).header("x-request-id", request_id);
    if let Some(lane) = lane {
        req = req.header("x-gray-lane", lane);
    }
    let req = req.body(Full::new(Bytes::from_static(b"book"))).unwrap();
    let res = http_client().request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

/// The report once `n` comparisons (compared or skipped) are in.
async fn settled(layer: &MirrorLayer<HttpClient>, n: u64) -> MirrorReport {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let report = layer.report();
        let done: u64 = report.routes.iter().map(|r| r.compared + r.skipped).sum();
        if done >= n || Instant::now() > deadline {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn base_only() -> CompareConfig {
    // quote_id, quoted_at and token differ every time: without noise learning they count.
    CompareConfig::new()
        .route("POST /quote", &["quote_id", "quoted_at", "token"])
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_responses_are_counted_identical() {
    let (addr, layer) = compared(
        Quotes::new("standard"),
        Quotes::new("standard"),
        |c| c,
        base_only(),
    )
    .await;
    for i in 0..5 {
        quote(addr, "/quote", &format!("r{i}")).await;
    }
    let report = settled(&layer, 5).await;
    let route = report.route("POST /quote").expect("the route is counted");
    assert_eq!((route.compared, route.identical), (5, 5), "{report:?}");
    assert!(report.samples.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_field_is_a_body_difference_and_noise_is_learned() {
    let compare = CompareConfig::new()
        .noise(Lane::new("baseline").unwrap(), 0.0, 3)
        .redact("token")
        .sample_interval(Duration::ZERO);
    let target = Quotes::new("express");
    let seen = target.seen.clone();
    let (addr, layer) = compared(target, Quotes::new("standard"), |c| c, compare).await;
    for i in 0..6 {
        // One at a time, so that the warm-up is over before the later ones are sent.
        quote(addr, "/quote", &format!("r{i}")).await;
        settled(&layer, i + 1).await;
    }
    let report = settled(&layer, 6).await;
    let route = report.route("POST /quote").unwrap();
    assert_eq!(
        (route.compared, route.different_body, route.identical),
        (6, 6, 0),
        "{report:?}"
    );
    assert_eq!(route.noise_copies, 3, "the warm-up's three, then none (0%)");
    assert_eq!(route.noise, ["quote_id", "quoted_at", "token"]);
    assert_eq!(route.fields, [("shipping".to_owned(), 6)].into());
    let sample = report.samples.last().unwrap();
    assert_eq!(sample.request_id.as_deref(), Some("r5"));
    assert_eq!(sample.fields.len(), 1, "only shipping: {sample:?}");
    let field = &sample.fields[0];
    assert_eq!(
        (
            field.part,
            field.path.as_str(),
            field.primary.as_str(),
            field.mirror.as_str()
        ),
        ("body", "shipping", "\"standard\"", "\"express\"")
    );
    // The noise copies ran on the noise lane as mirror copies; the copies on shadow.
    let seen = seen.lock().unwrap().clone();
    let on = |lane: &str| seen.iter().filter(|(l, m)| l == lane && *m).count();
    assert_eq!(
        (on("shadow"), on("baseline"), seen.len()),
        (6, 3, 9),
        "{seen:?}"
    );
    assert_eq!(layer.stats().noise_sent, 3);
    // The JSON a dashboard reads.
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["routes"][0]["route"], "POST /quote");
    assert_eq!(json["routes"][0]["different_body"], 6);
    assert_eq!(json["samples"][5]["fields"][0]["path"], "shipping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_on_a_lane_are_mirrored_not_compared() {
    let target = Quotes::new("express");
    let seen = target.seen.clone();
    let (addr, layer) = compared(target, Quotes::new("express"), |c| c, base_only()).await;
    let answer = quote_on(addr, "/quote", "r1", Some("shadow")).await;
    assert_eq!(
        answer["shipping"], "express",
        "the primary ran the lane's code"
    );
    quote(addr, "/quote", "r2").await;
    let report = settled(&layer, 1).await;
    let route = report.route("POST /quote").unwrap();
    assert_eq!(
        (route.compared, route.different_body),
        (1, 1),
        "r2 only: {report:?}"
    );
    assert_eq!(report.samples[0].request_id.as_deref(), Some("r2"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.lock().unwrap().len(), 2, "both were mirrored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noise_copy_that_failed_teaches_nothing() {
    // The noise copy lands where `baseline` answers 503: had its body been learned, every
    // field would be noise and the shipping change hidden.
    let mut target = Quotes::new("express");
    target.baseline_status = http::StatusCode::SERVICE_UNAVAILABLE;
    let seen = target.seen.clone();
    let compare = CompareConfig::new()
        .noise(Lane::new("baseline").unwrap(), 100.0, 1)
        .route("POST /quote", &["quote_id", "quoted_at", "token"])
        .unwrap();
    let (addr, layer) = compared(target, Quotes::new("standard"), |c| c, compare).await;
    quote(addr, "/quote", "r1").await;
    let report = settled(&layer, 1).await;
    let route = report.route("POST /quote").unwrap();
    assert_eq!(
        (route.noise_copies, route.different_body),
        (1, 1),
        "{report:?}"
    );
    assert!(
        route.noise.is_empty(),
        "{report:?} {:?}",
        seen.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_status_counts_as_a_status_difference() {
    let mut target = Quotes::new("standard");
    target.v2_status = http::StatusCode::SERVICE_UNAVAILABLE;
    let (addr, layer) = compared(target, Quotes::new("standard"), |c| c, base_only()).await;
    quote(addr, "/quote", "r1").await;
    let report = settled(&layer, 1).await;
    let route = report.route("POST /quote").unwrap();
    assert_eq!(
        (route.compared, route.different_status),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(report.samples[0].fields[0].path, "(status)");
    assert_eq!(report.samples[0].fields[0].mirror, "503");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_beyond_the_cap_are_skipped() {
    let mut big = Quotes::new("express");
    big.padding = 2048;
    let (addr, layer) = compared(
        Quotes::new("express"),
        big,
        |c| c,
        base_only().max_body_bytes(1024),
    )
    .await;
    quote(addr, "/quote", "r1").await;
    let report = settled(&layer, 1).await;
    let route = report.route("POST /quote").unwrap();
    assert_eq!((route.compared, route.skipped), (0, 1), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_keep_no_redacted_value() {
    // Nothing is ignored: token and the ids differ, and token is redacted.
    let compare = CompareConfig::new().redact("TOKEN");
    let (addr, layer) = compared(
        Quotes::new("standard"),
        Quotes::new("standard"),
        |c| c,
        compare,
    )
    .await;
    let answer = quote(addr, "/quote", "r1").await;
    let report = settled(&layer, 1).await;
    let fields = &report.samples[0].fields;
    let token = fields
        .iter()
        .find(|f| f.path == "token")
        .expect("token differs");
    assert_eq!(
        (token.primary.as_str(), token.mirror.as_str()),
        ("[redacted]", "[redacted]")
    );
    let quote_id = fields
        .iter()
        .find(|f| f.path == "quote_id")
        .expect("quote_id differs");
    assert_eq!(
        quote_id.primary,
        answer["quote_id"].to_string(),
        "what is not redacted is kept"
    );
    let token = answer["token"].as_str().unwrap();
    assert!(!report.to_json().contains(token), "{}", report.to_json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_never_holds_up_the_primary() {
    // The mirror's handler waits on a barrier the test lifts only once every primary response,
    // body and all, is in the client's hands: were the primary waiting on the mirror, it could
    // never arrive. Comparisons complete after the barrier is lifted.
    let barrier = Arc::new(Semaphore::new(0));
    let mut target = Quotes::new("express");
    target.barrier = Some(barrier.clone());
    let (addr, layer) = compared(target, Quotes::new("standard"), |c| c, base_only()).await;
    for i in 0..3 {
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            quote(addr, "/quote", &format!("r{i}")),
        )
        .await
        .expect("the primary answered while its mirror was held");
        assert_eq!(answer["shipping"], "standard");
    }
    assert_eq!(
        settled(&layer, 0)
            .await
            .routes
            .iter()
            .map(|r| r.compared)
            .sum::<u64>(),
        0
    );
    barrier.add_permits(3);
    let report = settled(&layer, 3).await;
    assert_eq!(
        report.route("POST /quote").unwrap().different_body,
        3,
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comparisons_in_flight_are_bounded() {
    let barrier = Arc::new(Semaphore::new(0));
    let mut target = Quotes::new("express");
    target.barrier = Some(barrier.clone());
    let (addr, layer) = compared(
        target,
        Quotes::new("standard"),
        |c| c.max_in_flight(2),
        base_only(),
    )
    .await;
    for i in 0..5 {
        quote(addr, "/quote", &format!("r{i}")).await;
    }
    assert_eq!(
        layer.stats().skipped_busy,
        3,
        "two held, three not mirrored"
    );
    barrier.add_permits(2);
    let report = settled(&layer, 2).await;
    assert_eq!(report.route("POST /quote").unwrap().compared, 2);
    // The slots are free again.
    barrier.add_permits(1);
    quote(addr, "/quote", "r5").await;
    assert_eq!(
        settled(&layer, 3)
            .await
            .route("POST /quote")
            .unwrap()
            .compared,
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_takes_one_sample_per_interval() {
    let compare = base_only().sample_interval(Duration::from_secs(3600));
    let (addr, layer) = compared(
        Quotes::new("express"),
        Quotes::new("standard"),
        |c| c,
        compare,
    )
    .await;
    for i in 0..5 {
        quote(addr, "/quote", &format!("r{i}")).await;
    }
    let report = settled(&layer, 5).await;
    assert_eq!(
        report.route("POST /quote").unwrap().different_body,
        5,
        "{report:?}"
    );
    assert_eq!(
        report.samples.len(),
        1,
        "counted every time, sampled once: {report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_are_templates_and_bounded() {
    let compare = CompareConfig::new().max_routes(2);
    let (addr, layer) = compared(
        Quotes::new("express"),
        Quotes::new("standard"),
        |c| c,
        compare,
    )
    .await;
    // A route takes one of the slots when its first comparison ends, and comparisons end in
    // any order: each is awaited before the next request, so the first two routes sent are
    // the two kept.
    for (n, path) in (1..).zip([
        "/orders/41",
        "/orders/42",
        "/quote",
        "/carts/a1b2c3d4e5",
        "/users/alice",
    ]) {
        quote(addr, path, "r").await;
        settled(&layer, n).await;
    }
    let report = layer.report();
    let routes: Vec<(&str, u64)> = report
        .routes
        .iter()
        .map(|r| (r.route.as_str(), r.compared))
        .collect();
    assert_eq!(
        routes,
        [("POST /orders/{id}", 2), ("POST /quote", 1), ("other", 2)],
        "{report:?}"
    );
}
