//! The lane through OpenTelemetry: propagation composed with W3C trace context and baggage,
//! span attributes, and metrics counted exactly (the SDK's in-memory exporters).

mod support;

use std::collections::HashMap;
use std::convert::Infallible;

use graylane_core::{Lane, LaneContext, LaneFutureExt};
use graylane_http::LaneLayer;
use graylane_otel::{LaneMetrics, LaneTraceLayer, composite, lane_context, with_lane_context};
use opentelemetry::KeyValue;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::propagation::TextMapPropagator;
use proptest::strategy::Strategy as _;
use tower::{Layer, ServiceExt, service_fn};

use support::{attr, counter, finished, finished_of, gray, metrics, propagator, spans};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn lane_trace_context_and_other_baggage_travel_together() {
    let p = composite(propagator());
    let cx = p.extract(&headers(&[
        ("traceparent", TRACEPARENT),
        ("x-gray-lane", "gray"),
        ("baggage", "team=checkout"),
    ]));
    assert_eq!(lane_context(&cx, &propagator()).lane(), "gray");
    let mut out = HashMap::new();
    p.inject_context(&cx, &mut out);
    assert_eq!(out["traceparent"], TRACEPARENT);
    assert_eq!(out["x-gray-lane"], "gray");
    let baggage = &out["baggage"];
    assert!(
        baggage.contains("gray.lane=gray") && baggage.contains("team=checkout"),
        "{baggage}"
    );
}

#[test]
fn baggage_alone_delivers_the_lane() {
    let p = composite(propagator());
    let cx = p.extract(&headers(&[("baggage", "gray.lane=gray")]));
    assert_eq!(lane_context(&cx, &propagator()).lane(), "gray");
    let mut out = HashMap::new();
    p.inject_context(&cx, &mut out);
    assert_eq!(out["x-gray-lane"], "gray");
}

#[test]
fn unknown_or_forged_lanes_in_baggage_do_not_pass() {
    let p = composite(propagator());
    for bad in ["gray.lane=blue", "gray.lane=Gr%3Bay", "gray.lane=base"] {
        let cx = p.extract(&headers(&[("baggage", &format!("{bad},team=checkout"))]));
        assert!(lane_context(&cx, &propagator()).lane().is_base(), "{bad}");
        assert!(cx.baggage().get("gray.lane").is_none(), "{bad} removed");
        assert_eq!(
            cx.baggage().get("team").map(|v| v.as_str()),
            Some("checkout")
        );
        let mut out = HashMap::new();
        p.inject_context(&cx, &mut out);
        assert!(!out.contains_key("x-gray-lane"), "{bad}");
        assert!(!out["baggage"].contains("gray.lane"), "{bad}");
    }
}

#[test]
fn the_bridge_goes_both_ways() {
    let p = propagator();
    // graylane -> OTel.
    let cx = with_lane_context(
        &opentelemetry::Context::new(),
        LaneContext::new(gray()).with_mirror(true),
        &p,
    );
    assert_eq!(
        cx.baggage().get("gray.lane").map(|v| v.as_str()),
        Some("gray")
    );
    assert_eq!(
        cx.baggage().get("gray.mirror").map(|v| v.as_str()),
        Some("1")
    );
    // OTel -> graylane.
    let ctx = lane_context(&cx, &p);
    assert_eq!(ctx.lane(), "gray");
    assert!(ctx.is_mirror());
    // Back to base removes the members.
    let cx = with_lane_context(&cx, LaneContext::base(), &p);
    assert!(cx.baggage().is_empty());
    // A lane attached in graylane alone is injected too.
    let mut out = HashMap::new();
    LaneContext::new(gray()).scope(|| {
        composite(p.clone()).inject_context(&opentelemetry::Context::new(), &mut out);
    });
    assert_eq!(out["x-gray-lane"], "gray");
}

#[test]
fn application_spans_get_the_lane_once() {
    spans();
    LaneContext::new(gray()).scope(|| {
        tracing::info_span!("app.gray-work").in_scope(|| {});
    });
    tracing::info_span!("app.base-work").in_scope(|| {});
    let one = |name: &str| {
        let found = finished(name);
        assert_eq!(found.len(), 1, "{name}");
        attr(&found[0], "gray.lane")
            .iter()
            .map(|v| v.as_str().into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(one("app.gray-work"), ["gray"]);
    assert_eq!(one("app.base-work"), ["base"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_exactly_what_was_sent_per_lane() {
    spans();
    let (provider, exporter) = metrics();
    let lane_metrics = LaneMetrics::new(&provider.meter("graylane"), "inventory");
    let edge = graylane_core::Edge::new(propagator(), graylane_core::coloring::Rules::default());
    lane_metrics.observe_propagator(edge.propagator());
    // inventory has no gray version: it serves base, so gray requests are fallbacks.
    let service = LaneLayer::mesh(propagator()).serving(Lane::BASE).layer(
        LaneTraceLayer::server("inventory", propagator())
            .metrics(lane_metrics.clone())
            .layer(service_fn(|req: http::Request<()>| async move {
                let status = if req.uri().path() == "/fail" {
                    500
                } else {
                    200
                };
                Ok::<_, Infallible>(http::Response::builder().status(status).body(()).unwrap())
            })),
    );
    let send = |path: &'static str, lane: Option<&'static str>| {
        let service = service.clone();
        async move {
            let mut req = http::Request::get(path);
            if let Some(lane) = lane {
                req = req.header("baggage", format!("gray.lane={lane}"));
            }
            service.oneshot(req.body(()).unwrap()).await.unwrap()
        }
    };
    for _ in 0..7 {
        send("/ok", None).await;
    }
    for _ in 0..5 {
        send("/ok", Some("gray")).await;
    }
    send("/fail", Some("gray")).await;
    for _ in 0..3 {
        send("/ok", Some("blue")).await; // not a lane: base, and counted as rejected
    }
    provider.force_flush().unwrap();
    let service = KeyValue::new("graylane.service", "inventory");
    let lane = |l: &'static str| KeyValue::new("gray.lane", l);
    let served_base = KeyValue::new("gray.served", "base");
    assert_eq!(
        counter(
            &exporter,
            "graylane.requests",
            &[service.clone(), lane("base")]
        ),
        10
    );
    assert_eq!(
        counter(
            &exporter,
            "graylane.requests",
            &[service.clone(), lane("gray"), served_base]
        ),
        6
    );
    assert_eq!(
        counter(
            &exporter,
            "graylane.requests",
            &[lane("gray"), KeyValue::new("graylane.outcome", "error")]
        ),
        1
    );
    assert_eq!(
        counter(&exporter, "graylane.fallbacks", &[service, lane("gray")]),
        6
    );
    // The rejection counters belong to the propagator given to observe_propagator: here the
    // edge's, which saw nothing; the mesh layer's own propagator counted the 3 unknown lanes.
    assert_eq!(counter(&exporter, "graylane.lane_values.rejected", &[]), 0);
    // One server span per request, named after the route, with the lane exactly once.
    let server_spans = finished_of("inventory");
    assert_eq!(server_spans.len(), 16);
    assert!(
        server_spans
            .iter()
            .all(|s| s.name == "GET /ok" || s.name == "GET /fail")
    );
    assert!(server_spans.iter().all(|s| attr(s, "gray.lane").len() == 1));
    let gray_fallbacks = server_spans
        .iter()
        .filter(|s| {
            attr(s, "gray.lane")[0].as_str() == "gray"
                && attr(s, "gray.served")
                    .first()
                    .is_some_and(|v| v.as_str() == "base")
        })
        .count();
    assert_eq!(gray_fallbacks, 6);
}

#[test]
fn rejections_tokens_and_stripped_headers_are_reported() {
    let (provider, exporter) = metrics();
    let lane_metrics = LaneMetrics::new(&provider.meter("graylane"), "gateway");
    let spec = graylane_core::spec::LaneSpec::from_yaml_str(
        "lanes: [{name: gray}]\ntrust: {token: {key: \"a test key of enough length\"}}\n",
    )
    .unwrap();
    let edge = spec.edge().unwrap();
    lane_metrics
        .observe_propagator(edge.propagator())
        .observe_mirror(|| (4, 1, 2))
        .observe_mirror_comparison(|| {
            vec![
                ("POST /quote".into(), "identical", 5),
                ("POST /quote".into(), "body", 7),
                ("other".into(), "body", 1),
            ]
        })
        .observe_refusals("redis", || 3);
    let admit = |pairs: &[(&str, &str)]| {
        let mut req = graylane_core::coloring::SimpleRequest::new("/");
        for (k, v) in pairs {
            req = req.header(k, v);
        }
        edge.admit(&mut req);
    };
    admit(&[("x-gray-lane", "gray")]); // stripped
    admit(&[("x-gray-lane", "gray"), ("baggage", "gray.lane=gray")]); // stripped (one request)
    admit(&[("x-gray-lane-token", "v1.gray.1.deadbeef")]); // forged or malformed
    provider.force_flush().unwrap();
    assert_eq!(counter(&exporter, "graylane.lane_headers.stripped", &[]), 2);
    assert_eq!(counter(&exporter, "graylane.tokens.rejected", &[]), 1);
    let result = |r: &'static str| KeyValue::new("graylane.result", r);
    assert_eq!(
        counter(&exporter, "graylane.mirror.copies", &[result("sent")]),
        4
    );
    assert_eq!(
        counter(&exporter, "graylane.mirror.copies", &[result("failed")]),
        1
    );
    assert_eq!(
        counter(&exporter, "graylane.mirror.copies", &[result("skipped")]),
        2
    );
    let route = |r: &'static str| KeyValue::new("graylane.route", r);
    assert_eq!(
        counter(
            &exporter,
            "graylane.mirror.compared",
            &[route("POST /quote"), result("body")]
        ),
        7
    );
    assert_eq!(
        counter(
            &exporter,
            "graylane.mirror.compared",
            &[route("other"), result("body")]
        ),
        1
    );
    assert_eq!(
        counter(
            &exporter,
            "graylane.data.refusals",
            &[KeyValue::new("graylane.store", "redis")]
        ),
        3
    );
}

#[test]
fn every_baggage_line_is_read_through_otel() {
    // A lane on the second `baggage` line: the lane propagator reads every line, as a proxy
    // joining them would pass them on, and the OTel baggage then says the same.
    let mut h = http::HeaderMap::new();
    h.append("baggage", http::HeaderValue::from_static("team=checkout"));
    h.append("baggage", http::HeaderValue::from_static("gray.lane=gray"));
    let reader = graylane_otel::HeaderReader(&h);
    assert_eq!(
        opentelemetry::propagation::Extractor::get_all(&reader, "baggage"),
        Some(vec!["team=checkout", "gray.lane=gray"])
    );
    let cx = composite(propagator()).extract(&reader);
    assert_eq!(lane_context(&cx, &propagator()).lane(), "gray");
    assert_eq!(
        cx.baggage().get("gray.lane").map(|v| v.as_str()),
        Some("gray")
    );
}

/// What the stock OTel baggage propagator makes of `baggage` (and nothing else).
fn stock_baggage(baggage: &str) -> opentelemetry::Context {
    opentelemetry_sdk::propagation::BaggagePropagator::new()
        .extract(&headers(&[("baggage", baggage)]))
}

#[test]
fn no_spelling_of_the_lane_key_passes_the_edge() {
    let edge = graylane_core::Edge::new(propagator(), graylane_core::coloring::Rules::default());
    for member in [
        "gray%2Elane=gray",
        "gray%2elane=gray",
        "%67ray.lane=gray",
        "%20gray.lane=gray",
        "gray.lane%09=gray",
        "gray.lane%C2%A0=gray",
        "gray%2Emirror=1",
    ] {
        let baggage = format!("team=checkout,{member}");
        // The stock propagator reads a lane mark in it...
        let before = stock_baggage(&baggage);
        assert!(
            before.baggage().get("gray.lane").is_some()
                || before.baggage().get("gray.mirror").is_some(),
            "{member}"
        );
        // ...so the edge strips it, and nothing downstream reads one.
        let mut req = graylane_core::coloring::SimpleRequest::new("/").header("baggage", &baggage);
        let admitted = edge.admit(&mut req);
        assert!(admitted.context().lane().is_base(), "{member}");
        assert!(admitted.stripped(), "{member}");
        let left = graylane_core::Extractor::get(&req, "baggage")
            .map(|v| std::str::from_utf8(v).unwrap().to_owned())
            .unwrap_or_default();
        assert_eq!(left, "team=checkout", "{member}");
        let after = stock_baggage(&left);
        assert!(after.baggage().get("gray.lane").is_none(), "{member}");
        assert!(after.baggage().get("gray.mirror").is_none(), "{member}");
        let mut out = HashMap::new();
        composite(propagator()).inject_context(&after, &mut out);
        assert!(!out.contains_key("x-gray-lane"), "{member}");
    }
}

#[test]
fn a_mirror_mark_reads_alike_in_otel_and_graylane() {
    // graylane reads `gray.mirror=true` as a mirror copy: so must the bridge, or the next hop
    // gets the lane without the mirror mark and takes the copy for live traffic.
    let p = composite(propagator());
    let cx = p.extract(&headers(&[("baggage", "gray.lane=gray,gray.mirror=true")]));
    let ctx = lane_context(&cx, &propagator());
    assert!(ctx.is_mirror());
    let mut out = HashMap::new();
    p.inject_context(&cx, &mut out);
    assert_eq!(out.get("x-gray-mirror").map(String::as_str), Some("1"));
}

proptest::proptest! {
    /// graylane and the stock propagator agree on the lane in any baggage built from the
    /// pieces that decoding and trimming play on (values without a second `=`, which OTel
    /// cuts off), and after the edge the stock propagator finds no lane mark in it.
    #[test]
    fn graylane_reads_baggage_as_the_stock_propagator_does(
        members in proptest::collection::vec((key(), value(), proptest::option::of(";p=1")), 0..6)
    ) {
        let baggage = members
            .iter()
            .map(|(k, v, props)| format!("{k}={v}{}", props.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(",");
        let lanes = propagator();
        let ours = lanes.extract(&headers(&[("baggage", &baggage)]));
        let theirs = lane_context(&stock_baggage(&baggage), &lanes);
        proptest::prop_assert_eq!(ours.lane(), theirs.lane(), "{}", baggage);
        proptest::prop_assert_eq!(ours.is_mirror(), theirs.is_mirror(), "{}", baggage);

        let edge = graylane_core::Edge::new(propagator(), graylane_core::coloring::Rules::default());
        let mut req = graylane_core::coloring::SimpleRequest::new("/").header("baggage", &baggage);
        edge.admit(&mut req);
        let left = graylane_core::Extractor::get(&req, "baggage")
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        let after = stock_baggage(&left);
        proptest::prop_assert!(after.baggage().get("gray.lane").is_none(), "{} -> {}", baggage, left);
        proptest::prop_assert!(after.baggage().get("gray.mirror").is_none(), "{} -> {}", baggage, left);
    }
}

/// A baggage key near `gray.lane` / `gray.mirror`: spelled with escapes, padded with
/// whitespace (ASCII, escaped, Unicode), or off by a little.
fn key() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::sample::select;
    const PAD: &[&str] = &[
        "",
        "",
        " ",
        "%20",
        "%09",
        "%C2%A0",
        "%E2%80%83",
        "+",
        "%ff",
        "x",
        "%",
    ];
    (
        select(PAD),
        select(&["gray", "%67ray", "gr%61y", "%67%72%61%79", "Gray", "grey"][..]),
        select(&[".", ".", "%2E", "%2e", "%2", "_"][..]),
        select(&["lane", "lane", "mirror", "l%61ne", "%6Dirror", "lanes"][..]),
        select(PAD),
    )
        .prop_map(|(a, b, c, d, e)| format!("{a}{b}{c}{d}{e}"))
}

fn value() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::sample::select;
    const PIECES: &[&str] = &[
        "gray", "gray", "base", "blue", "1", "true", " ", "%20", "%67", "%C2%A0", "%ff", "%3B",
    ];
    proptest::collection::vec(select(PIECES), 0..4).prop_map(|v| v.concat())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_spans_carry_the_spec_revision_that_decided_the_lane() {
    use graylane_core::live::LiveSpec;
    use graylane_core::spec::LaneSpec;

    spans();
    let spec = |lane: &str| {
        LaneSpec::from_yaml_str(&format!(
            "lanes: [{{name: gray}}, {{name: blue}}]\n\
             coloring: {{rules: [{{lane: {lane}, match: {{header: {{name: x-user-group, exact: beta}}}}}}]}}"
        ))
        .unwrap()
    };
    let live = LiveSpec::new(spec("gray")).unwrap();
    let service = LaneLayer::live_edge(live.clone()).layer(
        LaneTraceLayer::server("revisions", live.propagator().clone()).layer(service_fn(
            |_: http::Request<()>| async { Ok::<_, Infallible>(http::Response::new(())) },
        )),
    );
    let beta = || {
        http::Request::get("/")
            .header("x-user-group", "beta")
            .body(())
            .unwrap()
    };
    service.clone().oneshot(beta()).await.unwrap();
    live.apply(spec("blue")).unwrap();
    service.oneshot(beta()).await.unwrap();
    let seen: Vec<(String, String)> = finished_of("revisions")
        .iter()
        .map(|s| {
            let one = |key| {
                attr(s, key)
                    .first()
                    .map(|v| v.as_str().into_owned())
                    .unwrap()
            };
            (one("gray.lane"), one("graylane.spec_revision"))
        })
        .collect();
    let want = |l: &str, r: &str| (l.to_owned(), r.to_owned());
    assert_eq!(seen, [want("gray", "1"), want("blue", "2")]);
}

#[test]
fn live_spec_changes_are_reported_by_outcome() {
    use graylane_core::live::LiveSpec;
    use graylane_core::spec::LaneSpec;

    let (provider, exporter) = metrics();
    let lane_metrics = LaneMetrics::new(&provider.meter("graylane"), "gateway");
    let live =
        LiveSpec::new(LaneSpec::from_yaml_str("lanes: [{name: gray}, {name: blue}]").unwrap())
            .unwrap();
    lane_metrics.observe_spec(&live);
    live.apply(LaneSpec::from_yaml_str("lanes: [{name: gray}]").unwrap())
        .unwrap();
    let mut invalid = LaneSpec::from_yaml_str("lanes: [{name: gray}]").unwrap();
    invalid.lanes[0].services.push("nope".into());
    live.apply(invalid).unwrap_err();
    live.apply(LaneSpec::from_yaml_str("lanes: [{name: gray}, {name: green}]").unwrap())
        .unwrap_err();
    provider.force_flush().unwrap();
    let outcome = |o: &'static str| [KeyValue::new("graylane.outcome", o)];
    assert_eq!(counter(&exporter, "graylane.spec.revision", &[]), 2);
    assert_eq!(
        counter(&exporter, "graylane.spec.changes", &outcome("applied")),
        1
    );
    assert_eq!(
        counter(&exporter, "graylane.spec.changes", &outcome("invalid")),
        1
    );
    assert_eq!(
        counter(
            &exporter,
            "graylane.spec.changes",
            &outcome("needs_restart")
        ),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_server_error_answered_in_the_headers_counts_as_an_error() {
    let (provider, exporter) = metrics();
    let lane_metrics = LaneMetrics::new(&provider.meter("graylane"), "grpc-orders");
    let service = LaneLayer::mesh(propagator()).layer(
        LaneTraceLayer::server("grpc-orders", propagator())
            .metrics(lane_metrics)
            .layer(service_fn(|req: http::Request<()>| async move {
                // What tonic answers: a failed call as a trailers-only reply (HTTP 200 with
                // `grpc-status` in the headers), a good one with `grpc-status: 0` (here in the
                // headers too, as a proxy may join them).
                let path = req.uri().path();
                let res = if path.ends_with("/Fail") {
                    tonic::Status::internal("boom").into_http::<()>()
                } else if path.ends_with("/Find") {
                    // The caller's error, as a 404 is: not the service's.
                    tonic::Status::not_found("no such order").into_http::<()>()
                } else {
                    let mut ok = http::Response::new(());
                    ok.headers_mut()
                        .insert("grpc-status", http::HeaderValue::from_static("0"));
                    ok
                };
                Ok::<_, Infallible>(res)
            })),
    );
    for path in [
        "/shop.Orders/Fail",
        "/shop.Orders/Place",
        "/shop.Orders/Place",
    ] {
        let req = http::Request::post(path)
            .header("x-gray-lane", "gray")
            .body(())
            .unwrap();
        let res = service.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 200);
    }
    provider.force_flush().unwrap();
    let outcome = |o: &'static str| [KeyValue::new("graylane.outcome", o)];
    assert_eq!(
        counter(&exporter, "graylane.requests", &outcome("error")),
        1
    );
    assert_eq!(counter(&exporter, "graylane.requests", &outcome("ok")), 2);
}

/// A gRPC reply streamed as `frames`: a message, then (unless `None`) trailers with
/// `grpc-status`.
#[derive(Default)]
struct Streamed(std::collections::VecDeque<http_body::Frame<bytes::Bytes>>);

impl http_body::Body for Streamed {
    type Data = bytes::Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Infallible>>> {
        std::task::Poll::Ready(self.0.pop_front().map(Ok))
    }
}

fn streamed(status: Option<&'static str>) -> http::Response<Streamed> {
    let mut frames = std::collections::VecDeque::from([http_body::Frame::data(
        bytes::Bytes::from_static(b"\0\0\0\0\0"),
    )]);
    if let Some(status) = status {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static(status));
        frames.push_back(http_body::Frame::trailers(trailers));
    }
    let mut res = http::Response::new(Streamed(frames));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    res
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_status_in_the_trailers_counts_once_the_body_has_them() {
    use http_body_util::BodyExt;
    let (provider, exporter) = metrics();
    let lane_metrics = LaneMetrics::new(&provider.meter("graylane"), "grpc-stream");
    let service = LaneLayer::mesh(propagator()).layer(
        LaneTraceLayer::server("grpc-stream", propagator())
            .metrics(lane_metrics)
            .layer(service_fn(|req: http::Request<()>| async move {
                // A streaming call that fails after a message: its status is in the trailers.
                let res = match req.uri().path() {
                    "/shop.Orders/Watch" => streamed(Some("13")),
                    "/shop.Orders/NotFound" => streamed(Some("5")),
                    "/shop.Orders/CutShort" => streamed(None),
                    _ => streamed(Some("0")),
                };
                Ok::<_, Infallible>(res)
            })),
    );
    let outcome = |o: &'static str| [KeyValue::new("graylane.outcome", o)];
    let call = |path: &'static str| {
        let service = service.clone();
        async move {
            let req = http::Request::post(path)
                .header("x-gray-lane", "gray")
                .body(())
                .unwrap();
            service.oneshot(req).await.unwrap()
        }
    };
    // Nothing is counted before the trailers come.
    let failing = call("/shop.Orders/Watch").await;
    provider.force_flush().unwrap();
    assert_eq!(
        counter(&exporter, "graylane.requests", &outcome("error")),
        0
    );
    let collected = failing.into_body().collect().await.unwrap();
    assert!(collected.trailers().is_some());
    for path in [
        "/shop.Orders/List",
        "/shop.Orders/NotFound",
        "/shop.Orders/CutShort",
    ] {
        call(path).await.into_body().collect().await.unwrap();
    }
    // Dropped unread: counted as it stands (no error seen).
    drop(call("/shop.Orders/List").await);
    provider.force_flush().unwrap();
    // INTERNAL in the trailers, and a reply that ended without them: errors. NOT_FOUND is the
    // caller's.
    assert_eq!(
        counter(&exporter, "graylane.requests", &outcome("error")),
        2
    );
    assert_eq!(counter(&exporter, "graylane.requests", &outcome("ok")), 3);
}

#[tokio::test]
async fn a_client_names_its_peer_and_consumers_and_audits_are_reported() {
    spans();
    let (provider, exporter) = metrics();
    let meter = provider.meter("graylane");
    let calls = LaneTraceLayer::client("gateway", propagator())
        .peer("orders")
        .metrics(LaneMetrics::new(&meter, "gateway"))
        .layer(service_fn(|_req: http::Request<()>| async {
            Ok::<_, Infallible>(http::Response::new(()))
        }));
    for _ in 0..3 {
        let req = http::Request::get("/place").body(()).unwrap();
        calls
            .clone()
            .oneshot(req)
            .with_lane(LaneContext::new(gray()))
            .await
            .unwrap();
    }
    let consumers = LaneMetrics::new(&meter, "fulfillment");
    consumers
        .observe_consumers(|| {
            let mut base = graylane_otel::ConsumerCounts::new(Lane::BASE, "b-1");
            (base.own, base.fallback, base.grants, base.partitions) = (9, 4, 2, 4);
            (base.unknown, base.retries, base.resumed, base.forgotten) = (5, 3, 1, 7);
            let mut lane = graylane_otel::ConsumerCounts::new(gray(), "g-1");
            (lane.own, lane.partitions, lane.granted) = (6, 4, 4);
            vec![base, lane]
        })
        .observe_audit(|| graylane_otel::AuditCounts::new(2, vec![("leaks", 0), ("lost", 1)]));
    provider.force_flush().unwrap();
    let peer = KeyValue::new("graylane.peer", "orders");
    let client = KeyValue::new("graylane.kind", "client");
    assert_eq!(
        counter(
            &exporter,
            "graylane.requests",
            &[peer, client, KeyValue::new("gray.lane", "gray")]
        ),
        3
    );
    let handled = |lane: &'static str, how: &'static str| {
        counter(
            &exporter,
            "graylane.consumer.records",
            &[
                KeyValue::new("gray.lane", lane),
                KeyValue::new("graylane.handled", how),
            ],
        )
    };
    assert_eq!(
        (handled("base", "own"), handled("base", "fallback")),
        (9, 4)
    );
    assert_eq!(handled("gray", "own"), 6);
    let grant = KeyValue::new("graylane.handover", "grant");
    assert_eq!(
        counter(&exporter, "graylane.consumer.handovers", &[grant]),
        2
    );
    let event = |event: &'static str| {
        counter(
            &exporter,
            "graylane.consumer.events",
            &[
                KeyValue::new("gray.lane", "base"),
                KeyValue::new("graylane.event", event),
            ],
        )
    };
    assert_eq!(
        [
            event("unknown_lane"),
            event("retry"),
            event("replay_resumed"),
            event("forgotten")
        ],
        [5, 3, 1, 7]
    );
    let granted = KeyValue::new("graylane.share", "granted");
    let instance = KeyValue::new("graylane.instance", "g-1");
    assert_eq!(
        counter(
            &exporter,
            "graylane.consumer.partitions",
            &[granted, instance]
        ),
        4
    );
    assert_eq!(counter(&exporter, "graylane.audit.runs", &[]), 2);
    let lost = KeyValue::new("graylane.finding", "lost");
    assert_eq!(counter(&exporter, "graylane.audit.findings", &[lost]), 1);
    // The client span names its peer (spans reach the exporter as they close).
    let named = |s: &opentelemetry_sdk::trace::SpanData| {
        attr(s, "peer.service")
            .first()
            .is_some_and(|v| v.as_str() == "orders")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while finished_of("gateway").iter().filter(|s| named(s)).count() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "three client spans with peer.service"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
