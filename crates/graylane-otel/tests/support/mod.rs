//! What the test binaries share: the lanes, the in-memory span exporter behind the global
//! tracing subscriber (graylane-testkit's), and readers for spans and counters.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use graylane_core::{Lane, LaneSet, Propagator};
use graylane_testkit::otel::Spans;
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::InMemoryMetricExporter;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::trace::SpanData;

pub(crate) use graylane_testkit::otel::metrics;

pub(crate) fn gray() -> Lane {
    Lane::new("gray").unwrap()
}

pub(crate) fn propagator() -> Propagator {
    Propagator::new(LaneSet::new([gray()]))
}

/// The test binary's span exporter, installed on first use.
pub(crate) fn spans() -> &'static Spans {
    graylane_testkit::otel::spans(propagator)
}

/// The finished spans named `name`.
pub(crate) fn finished(name: &str) -> Vec<SpanData> {
    spans()
        .finished()
        .into_iter()
        .filter(|s| s.name == name)
        .collect()
}

/// The finished spans of graylane's layers for `service`.
pub(crate) fn finished_of(service: &str) -> Vec<SpanData> {
    spans()
        .finished()
        .into_iter()
        .filter(|s| {
            attr(s, "graylane.service")
                .first()
                .is_some_and(|v| v.as_str() == service)
        })
        .collect()
}

/// Every value of attribute `key` on `span`.
pub(crate) fn attr<'a>(span: &'a SpanData, key: &str) -> Vec<&'a opentelemetry::Value> {
    span.attributes
        .iter()
        .filter(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
        .collect()
}

/// The sum of the last export's points of the counter or gauge `name` that carry `matching`.
pub(crate) fn counter(exporter: &InMemoryMetricExporter, name: &str, matching: &[KeyValue]) -> u64 {
    let all = exporter.get_finished_metrics().unwrap();
    let Some(last) = all.last() else { return 0 };
    let mut total = 0;
    for metric in last.scope_metrics().flat_map(|s| s.metrics()) {
        if metric.name() != name {
            continue;
        }
        let points: Vec<(Vec<&KeyValue>, u64)> = match metric.data() {
            AggregatedMetrics::U64(MetricData::Sum(sum)) => sum
                .data_points()
                .map(|p| (p.attributes().collect(), p.value()))
                .collect(),
            AggregatedMetrics::U64(MetricData::Gauge(gauge)) => gauge
                .data_points()
                .map(|p| (p.attributes().collect(), p.value()))
                .collect(),
            _ => Vec::new(),
        };
        for (attrs, value) in points {
            if matching.iter().all(|m| attrs.contains(&m)) {
                total += value;
            }
        }
    }
    total
}
