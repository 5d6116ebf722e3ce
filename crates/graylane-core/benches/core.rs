//! One hop of lane propagation, and coloring over a realistic rule set.
//!
//! `cargo bench -p graylane-core --bench core`. Target: one extract + inject <= 200 ns.
//!
//! Measured 2026-11-22 on the 2-core CI machine (medians; details in `docs/benchmarks.md`):
//!
//! | benchmark                         | median |
//! |-----------------------------------|--------|
//! | hop/extract+inject (graylane)     | 185 ns |
//! | hop/copy one header (baseline)    |  66 ns |
//! | hop/extract only                  |  52 ns |
//! | hop/inject only                   | 135 ns |
//! | coloring/8 rules, full walk       | 296 ns |
//! | coloring/8 rules, first matches   |  33 ns |
//! | context/attach+current+detach     |  16 ns |
//! | context/poll ready future with_lane | 13 ns |

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use graylane_core::coloring::{RuleSet, Rules, SimpleRequest};
use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext, LaneFutureExt, LaneSet, Propagator};
use http::{HeaderMap, HeaderName, HeaderValue};

fn inbound_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("host", "orders.shop.svc.cluster.local"),
        ("user-agent", "shop-gateway/1.0"),
        ("accept", "application/json"),
        ("content-type", "application/json"),
        ("x-request-id", "4bf92f3577b34da6a3ce929d0e0e4736"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("baggage", "userId=alice,gray.lane=gray"),
        ("x-gray-lane", "gray"),
    ] {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    h
}

/// An outbound request's headers as a client builds them. Built fresh per iteration (a clone
/// would have no spare room, and every insert would pay for growing it).
fn outbound_headers() -> HeaderMap {
    let mut h = HeaderMap::with_capacity(16);
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("accept", HeaderValue::from_static("application/json"));
    h
}

fn hop(c: &mut Criterion) {
    let gray = Lane::new("gray").unwrap();
    let propagator = Propagator::new(LaneSet::new([gray, Lane::new("blue").unwrap()]));
    let inbound = inbound_headers();
    let lane_header = HeaderName::from_static("x-gray-lane");

    let mut g = c.benchmark_group("hop");
    g.bench_function("extract+inject (graylane)", |b| {
        b.iter_batched_ref(
            outbound_headers,
            |out| {
                let ctx = propagator.extract(black_box(&inbound));
                propagator.inject(&ctx, out);
            },
            BatchSize::SmallInput,
        )
    });
    // What a hand-rolled copy of one header costs: the floor graylane is measured against.
    g.bench_function("copy one header (baseline)", |b| {
        b.iter_batched_ref(
            outbound_headers,
            |out| {
                if let Some(v) = black_box(&inbound).get(&lane_header) {
                    out.insert(lane_header.clone(), v.clone());
                }
            },
            BatchSize::SmallInput,
        )
    });
    let ctx = LaneContext::new(gray);
    g.bench_function("inject only", |b| {
        b.iter_batched_ref(
            outbound_headers,
            |out| propagator.inject(black_box(&ctx), out),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("extract only", |b| {
        b.iter(|| propagator.extract(black_box(&inbound)))
    });
    g.finish();
}

const RULES: &str = r#"
services: [{ name: web }]
lanes: [{ name: gray, services: [web] }, { name: blue, services: [web] }]
coloring:
  rules:
    - { name: beta-group, lane: gray, match: { header: { name: x-user-group, exact: beta } } }
    - { name: canary-agent, lane: blue, match: { header: { name: user-agent, prefix: "canary/" } } }
    - { name: eu-regions, lane: gray, match: { header: { name: x-region, regex: "eu-(west|north)-[0-9]+" } } }
    - { name: optin-cookie, lane: gray, match: { cookie: { name: lane-optin, exact: "yes" } } }
    - { name: query-flag, lane: gray, match: { query: { name: gray, exact: "1" } } }
    - name: api-beta
      lane: blue
      match: { all: [ { path_prefix: /api/v2/ }, { header: { name: x-tier, exact: gold } } ] }
    - { name: sticky-10, lane: gray, match: { sticky: { percent: 10, by: { header: x-user-id } } } }
    - { name: random-1, lane: blue, match: { random: 1 } }
"#;

fn coloring(c: &mut Criterion) {
    let spec = LaneSpec::from_yaml_str(RULES).unwrap();
    let rules = Rules::new(spec.rule_set().unwrap());
    let _: &RuleSet = &rules.load();
    // A typical request that walks the whole list (no early match).
    let req = SimpleRequest::new("/api/v1/orders?page=2")
        .header("user-agent", "Mozilla/5.0")
        .header("x-region", "us-east-1")
        .header("cookie", "sid=abc123; theme=dark")
        .header("x-user-id", "user-12345");
    let mut g = c.benchmark_group("coloring");
    g.bench_function("8 rules, full walk", |b| {
        b.iter(|| rules.lane_for(black_box(&req)))
    });
    let beta = SimpleRequest::new("/").header("x-user-group", "beta");
    g.bench_function("8 rules, first matches", |b| {
        b.iter(|| rules.lane_for(black_box(&beta)))
    });
    g.finish();
}

fn context(c: &mut Criterion) {
    let ctx = LaneContext::new(Lane::new("gray").unwrap());
    let mut g = c.benchmark_group("context");
    g.bench_function("attach+current+detach", |b| {
        b.iter(|| {
            let _g = black_box(ctx).attach();
            black_box(LaneContext::current())
        })
    });
    let waker = std::task::Waker::noop();
    g.bench_function("poll ready future with_lane", |b| {
        b.iter(|| {
            let mut fut = std::pin::pin!(std::future::ready(1u8).with_lane(ctx));
            fut.as_mut()
                .poll(&mut std::task::Context::from_waker(waker))
        })
    });
    g.finish();
}

criterion_group!(benches, hop, coloring, context);
criterion_main!(benches);
