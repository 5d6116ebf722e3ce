//! Per-lane metrics through the OpenTelemetry metrics API.
//!
//! | instrument | kind | attributes |
//! |---|---|---|
//! | `graylane.requests` | counter | `graylane.service`, `graylane.kind` (`server`, `client`, `consumer`), `gray.lane`, `gray.served`, `gray.mirror`, `graylane.outcome` (`ok`, `error`) |
//! | `graylane.request.duration` | histogram, s | the same |
//! | `graylane.fallbacks` | counter | `graylane.service`, `gray.lane` — work of a lane served by base |
//! | `graylane.lane_headers.stripped` | observable counter | — lane marks from untrusted clients, stripped at the edge |
//! | `graylane.tokens.rejected` | observable counter | `graylane.reason` (`token_forged`, `token_expired`, `token_malformed`) |
//! | `graylane.lane_values.rejected` | observable counter | `graylane.reason` (`malformed`, `oversized`, `unknown`) |
//! | `graylane.mirror.copies` | observable counter | `graylane.result` (`sent`, `failed`, `skipped`) |
//! | `graylane.mirror.compared` | observable counter | `graylane.route` (method and path template, or `other`), `graylane.result` (`identical`, `status`, `header`, `body`, `skipped`) |
//! | `graylane.data.refusals` | observable counter | `graylane.store` (e.g. `redis`) |
//! | `graylane.spec.revision` | observable gauge | — the live lane spec's revision in force |
//! | `graylane.spec.changes` | observable counter | `graylane.outcome` (`applied`, `invalid`, `needs_restart`) |
//! | `graylane.consumer.records` | observable counter | `gray.lane` (the consumer's lane), `graylane.instance`, `graylane.handled` (`own`, `fallback`, `replayed`, `skipped`) |
//! | `graylane.consumer.handovers` | observable counter | `gray.lane`, `graylane.instance`, `graylane.handover` (`grant`, `release`) — partitions base handed to a lane and took back |
//! | `graylane.consumer.partitions` | observable gauge | `gray.lane`, `graylane.instance`, `graylane.share` (`assigned`, `granted`) |
//! | `graylane.audit.runs` | observable counter | — leak audits run |
//! | `graylane.audit.findings` | observable gauge | `graylane.finding` (e.g. `leaks`, `lost`) — the latest audit's |
//!
//! A request recorded with a peer ([`LaneMetrics::record_to`], or `LaneTraceLayer::client(..)
//! .peer(..)`) also carries `graylane.peer`: the service a client called, the topic a consumer
//! read or a producer wrote — what draws the edges between services.

mod consumers;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use graylane_core::stats::Rejection;
use graylane_core::{LaneContext, Propagator};
use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::{KeyValue, StringValue};

pub use consumers::{AuditCounts, ConsumerCounts};

/// What a unit of work was, for [`LaneMetrics::record`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A request this service served.
    Server,
    /// A request this service sent.
    Client,
    /// A message this service consumed.
    Consumer,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Client => "client",
            Kind::Consumer => "consumer",
        }
    }
}

/// The lane instruments of one service. Cheap to clone; clones share the instruments.
///
/// ```
/// use graylane_core::{Lane, LaneContext};
/// use graylane_otel::{Kind, LaneMetrics};
/// use opentelemetry::metrics::MeterProvider as _;
///
/// let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
/// let metrics = LaneMetrics::new(&provider.meter("graylane"), "orders");
/// let gray = LaneContext::new(Lane::new("gray")?);
/// metrics.record(Kind::Server, gray, std::time::Duration::from_millis(3), false);
/// # Ok::<(), graylane_core::LaneError>(())
/// ```
#[derive(Clone, Debug)]
pub struct LaneMetrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    meter: Meter,
    service: KeyValue,
    requests: Counter<u64>,
    duration: Histogram<f64>,
    fallbacks: Counter<u64>,
    /// Observable instruments stay registered while these live.
    observers: Mutex<Vec<Box<dyn std::any::Any + Send + Sync>>>,
}

impl LaneMetrics {
    /// Instruments on `meter` for the service `service`.
    pub fn new(meter: &Meter, service: impl Into<String>) -> LaneMetrics {
        let requests = meter
            .u64_counter("graylane.requests")
            .with_description("Requests and messages, by lane requested and lane served")
            .build();
        let duration = meter
            .f64_histogram("graylane.request.duration")
            .with_unit("s")
            .with_description("Time to serve a request or handle a message, by lane")
            .with_boundaries(vec![
                0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
            .build();
        let fallbacks = meter
            .u64_counter("graylane.fallbacks")
            .with_description(
                "Work of a lane served by base because the service has no version in the lane",
            )
            .build();
        LaneMetrics {
            inner: Arc::new(Inner {
                meter: meter.clone(),
                service: KeyValue::new("graylane.service", service.into()),
                requests,
                duration,
                fallbacks,
                observers: Mutex::default(),
            }),
        }
    }

    /// Records one request or message in `ctx`'s lane that took `elapsed`.
    pub fn record(&self, kind: Kind, ctx: LaneContext, elapsed: Duration, error: bool) {
        self.record_hop(kind, None, ctx, elapsed, error);
    }

    /// As [`record`](Self::record), exchanged with `peer`: the service a client request
    /// went to, the topic a message was read from or written to. The lane view draws its
    /// edges from these; keep `peer` to names you deploy (the attribute's values are its
    /// series).
    pub fn record_to(
        &self,
        kind: Kind,
        peer: impl Into<StringValue>,
        ctx: LaneContext,
        elapsed: Duration,
        error: bool,
    ) {
        self.record_hop(kind, Some(peer.into()), ctx, elapsed, error);
    }

    fn record_hop(
        &self,
        kind: Kind,
        peer: Option<StringValue>,
        ctx: LaneContext,
        elapsed: Duration,
        error: bool,
    ) {
        let inner = &self.inner;
        let [a, b, c, d, e, f] = [
            inner.service.clone(),
            KeyValue::new("graylane.kind", kind.as_str()),
            KeyValue::new("gray.lane", ctx.lane().as_str()),
            KeyValue::new("gray.served", ctx.served().as_str()),
            KeyValue::new("gray.mirror", ctx.is_mirror()),
            KeyValue::new("graylane.outcome", if error { "error" } else { "ok" }),
        ];
        // On the stack either way: this runs for every request.
        let add = |attributes: &[KeyValue]| {
            inner.requests.add(1, attributes);
            inner.duration.record(elapsed.as_secs_f64(), attributes);
        };
        match peer {
            None => add(&[a, b, c, d, e, f]),
            Some(peer) => add(&[a, b, c, d, e, f, KeyValue::new("graylane.peer", peer)]),
        }
        if kind != Kind::Client && ctx.is_fallback() {
            inner.fallbacks.add(
                1,
                &[
                    inner.service.clone(),
                    KeyValue::new("gray.lane", ctx.lane().as_str()),
                ],
            );
        }
    }

    fn keep(&self, observer: impl std::any::Any + Send + Sync) {
        self.inner
            .observers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::new(observer));
    }

    /// Reports `propagator`'s rejection counters: stripped lane headers, rejected tokens and
    /// rejected lane values. Use the edge's propagator (`Edge::propagator`) at the edge.
    pub fn observe_propagator(&self, propagator: &Propagator) -> &Self {
        let groups: [(&'static str, &'static str, &'static [Rejection]); 3] = [
            (
                "graylane.lane_headers.stripped",
                "Lane marks from untrusted clients, stripped at the edge",
                &[Rejection::Untrusted],
            ),
            (
                "graylane.tokens.rejected",
                "Lane tokens rejected (forged, expired, malformed)",
                &[
                    Rejection::TokenForged,
                    Rejection::TokenExpired,
                    Rejection::TokenMalformed,
                ],
            ),
            (
                "graylane.lane_values.rejected",
                "Lane values read as base (malformed, oversized, not a configured lane)",
                &[
                    Rejection::Malformed,
                    Rejection::Oversized,
                    Rejection::Unknown,
                ],
            ),
        ];
        for (name, description, kinds) in groups {
            let propagator = propagator.clone();
            let service = self.inner.service.clone();
            let counter = self
                .inner
                .meter
                .u64_observable_counter(name)
                .with_description(description)
                .with_callback(move |observer| {
                    let stats = propagator.stats();
                    for &kind in kinds {
                        let mut attributes = vec![service.clone()];
                        if kinds.len() > 1 {
                            attributes.push(KeyValue::new("graylane.reason", kind.as_str()));
                        }
                        observer.observe(stats.get(kind), &attributes);
                    }
                })
                .build();
            self.keep(counter);
        }
        self
    }

    /// Reports a mirror's copies: `stats` returns `(sent, failed, skipped)` (e.g. from
    /// `MirrorLayer::stats`).
    pub fn observe_mirror(
        &self,
        stats: impl Fn() -> (u64, u64, u64) + Send + Sync + 'static,
    ) -> &Self {
        let service = self.inner.service.clone();
        let counter = self
            .inner
            .meter
            .u64_observable_counter("graylane.mirror.copies")
            .with_description("Mirror copies of live traffic sent to a shadow lane")
            .with_callback(move |observer| {
                let (sent, failed, skipped) = stats();
                for (result, n) in [("sent", sent), ("failed", failed), ("skipped", skipped)] {
                    observer.observe(
                        n,
                        &[service.clone(), KeyValue::new("graylane.result", result)],
                    );
                }
            })
            .build();
        self.keep(counter);
        self
    }

    /// Reports a mirror's comparisons: `counts` returns `(route, result, count)` for each route
    /// and result (e.g. from `MirrorLayer::report`, each route's `results()`). Routes are
    /// templates and bounded by the mirror, so the attribute stays bounded.
    pub fn observe_mirror_comparison(
        &self,
        counts: impl Fn() -> Vec<(String, &'static str, u64)> + Send + Sync + 'static,
    ) -> &Self {
        let service = self.inner.service.clone();
        let counter = self
            .inner
            .meter
            .u64_observable_counter("graylane.mirror.compared")
            .with_description(
                "Mirrored requests whose responses were compared with production's, by result",
            )
            .with_callback(move |observer| {
                for (route, result, n) in counts() {
                    observer.observe(
                        n,
                        &[
                            service.clone(),
                            KeyValue::new("graylane.route", route),
                            KeyValue::new("graylane.result", result),
                        ],
                    );
                }
            })
            .build();
        self.keep(counter);
        self
    }

    /// Reports a live spec: its revision in force, and its changes by outcome (an invalid new
    /// file or one that needs a restart raises its count; alert on it).
    pub fn observe_spec(&self, live: &graylane_core::live::LiveSpec) -> &Self {
        let service = self.inner.service.clone();
        let (gauge_live, counter_live) = (live.clone(), live.clone());
        let gauge_service = service.clone();
        let gauge = self
            .inner
            .meter
            .u64_observable_gauge("graylane.spec.revision")
            .with_description("The revision of the live lane spec in force")
            .with_callback(move |observer| {
                observer.observe(
                    gauge_live.stats().revision,
                    std::slice::from_ref(&gauge_service),
                );
            })
            .build();
        self.keep(gauge);
        let counter = self
            .inner
            .meter
            .u64_observable_counter("graylane.spec.changes")
            .with_description("Changes of the live lane spec, by outcome")
            .with_callback(move |observer| {
                let stats = counter_live.stats();
                for (outcome, n) in [
                    ("applied", stats.applied),
                    ("invalid", stats.invalid),
                    ("needs_restart", stats.refused),
                ] {
                    observer.observe(
                        n,
                        &[service.clone(), KeyValue::new("graylane.outcome", outcome)],
                    );
                }
            })
            .build();
        self.keep(counter);
        self
    }

    /// Reports a data store's refusals (e.g. `LaneRedis::refused`: commands refused in a lane).
    pub fn observe_refusals(
        &self,
        store: &'static str,
        refused: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> &Self {
        let service = self.inner.service.clone();
        let counter = self
            .inner
            .meter
            .u64_observable_counter("graylane.data.refusals")
            .with_description("Data-lane operations refused because they could not be made safe")
            .with_callback(move |observer| {
                observer.observe(
                    refused(),
                    &[service.clone(), KeyValue::new("graylane.store", store)],
                );
            })
            .build();
        self.keep(counter);
        self
    }
}
