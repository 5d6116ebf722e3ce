//! What the lane costs an OpenTelemetry setup: the propagator in a composite next to W3C trace
//! context and baggage, and the `gray.lane` attribute the span processor adds.
//!
//! `cargo bench -p graylane-otel --bench otel`. Each pair is "without graylane" vs. "with": the
//! same work, so the difference is graylane's. Figures in `docs/benchmarks.md`.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use graylane_core::{Lane, LaneContext, LaneSet, Propagator};
use graylane_otel::{LaneSpanProcessor, composite};
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::{Tracer, TracerProvider as _};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::SdkTracerProvider;

fn propagator() -> Propagator {
    Propagator::new(LaneSet::new([Lane::new("gray").unwrap()]))
}

fn inbound() -> HashMap<String, String> {
    [
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("baggage", "userId=alice,gray.lane=gray"),
        ("x-gray-lane", "gray"),
        ("content-type", "application/json"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn propagation(c: &mut Criterion) {
    let plain = TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]);
    let laned = composite(propagator());
    let headers = inbound();
    let mut group = c.benchmark_group("propagation");
    for (name, p) in [("trace+baggage", &plain), ("trace+baggage+lane", &laned)] {
        group.bench_function(format!("{name}/extract+inject"), |b| {
            b.iter(|| {
                let cx = p.extract(black_box(&headers));
                let mut out = HashMap::with_capacity(4);
                p.inject_context(&cx, &mut out);
                black_box(out)
            })
        });
    }
    group.finish();
}

fn spans(c: &mut Criterion) {
    // No exporter: what is measured is starting and ending a span with its attributes.
    let plain = SdkTracerProvider::builder().build();
    let laned = SdkTracerProvider::builder()
        .with_span_processor(LaneSpanProcessor::new(propagator()))
        .build();
    let ctx = LaneContext::new(Lane::new("gray").unwrap());
    let mut group = c.benchmark_group("span");
    for (name, provider) in [("sdk", &plain), ("sdk+gray.lane", &laned)] {
        let tracer = provider.tracer("bench");
        group.bench_function(format!("{name}/start+end"), |b| {
            b.iter(|| {
                ctx.scope(|| {
                    let span = tracer.start(black_box("work"));
                    drop(black_box(span));
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, propagation, spans);
criterion_main!(benches);
