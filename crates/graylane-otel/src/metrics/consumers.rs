//! What Kafka lane consumers and leak audits report: counts a process reads from its own
//! parts (`graylane_kafka::ConsumerHandle::stats`, an audit's result) at each collection.

use graylane_core::Lane;
use opentelemetry::KeyValue;

use super::LaneMetrics;

/// One lane consumer's counts, for [`LaneMetrics::observe_consumers`]: from
/// `graylane_kafka::ConsumerHandle::stats`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerCounts {
    /// The lane the consumer runs in (base takes over lanes without a live consumer).
    pub lane: Lane,
    /// The consumer's instance id in the control topic.
    pub instance: String,
    /// Records of its own lane handled.
    pub own: u64,
    /// Records of other lanes handled because their lane had no live consumer (base).
    pub fallback: u64,
    /// Of `fallback`, those handled while re-reading a released gap.
    pub replayed: u64,
    /// Records left to another lane's consumer or to base.
    pub skipped: u64,
    /// Partitions handed to a lane (base).
    pub grants: u64,
    /// Partitions taken back from a lane (base).
    pub releases: u64,
    /// Partitions assigned to it now.
    pub partitions: u64,
    /// Of those, the ones a lane owns now: a lane consumer with any owns its lane's records
    /// there; base's are the ones it handed away.
    pub granted: u64,
    /// Records whose lane mark was refused (unknown to the consumer's lanes, or malformed),
    /// handled as its policy for unknown lanes says (base).
    pub unknown: u64,
    /// Broker or control-topic calls that failed and were retried.
    pub retries: u64,
    /// Replays a previous owner started that this consumer took over (base).
    pub resumed: u64,
    /// Silent instances whose control records it tombstoned (base).
    pub forgotten: u64,
}

impl ConsumerCounts {
    /// Zero counts for the consumer `instance` of `lane`.
    pub fn new(lane: Lane, instance: impl Into<String>) -> ConsumerCounts {
        ConsumerCounts {
            lane,
            instance: instance.into(),
            own: 0,
            fallback: 0,
            replayed: 0,
            skipped: 0,
            grants: 0,
            releases: 0,
            partitions: 0,
            granted: 0,
            unknown: 0,
            retries: 0,
            resumed: 0,
            forgotten: 0,
        }
    }
}

/// The latest leak audit's result, for [`LaneMetrics::observe_audit`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditCounts {
    /// Audits run so far.
    pub runs: u64,
    /// The latest audit's findings by name (e.g. `leaks`, `lost`); all zero when clean.
    pub findings: Vec<(&'static str, u64)>,
}

impl AuditCounts {
    /// `runs` audits so far, the latest with `findings`.
    pub fn new(runs: u64, findings: Vec<(&'static str, u64)>) -> AuditCounts {
        AuditCounts { runs, findings }
    }
}

impl LaneMetrics {
    /// Reports Kafka lane consumers: `consumers` returns every consumer this process has run
    /// (keep a stopped one's final counts in the list: counters never go down).
    pub fn observe_consumers(
        &self,
        consumers: impl Fn() -> Vec<ConsumerCounts> + Send + Sync + 'static,
    ) -> &Self {
        let consumers = std::sync::Arc::new(consumers);
        let service = self.inner.service.clone();
        let who = move |c: &ConsumerCounts, key: &'static str, value: &'static str| {
            [
                service.clone(),
                KeyValue::new("gray.lane", c.lane.as_str()),
                KeyValue::new("graylane.instance", c.instance.clone()),
                KeyValue::new(key, value),
            ]
        };
        let (list, label) = (consumers.clone(), who.clone());
        let records = self
            .inner
            .meter
            .u64_observable_counter("graylane.consumer.records")
            .with_description("Records a lane consumer handled, by how (own lane or fallback)")
            .with_callback(move |observer| {
                for c in list() {
                    for (handled, n) in [
                        ("own", c.own),
                        ("fallback", c.fallback),
                        ("replayed", c.replayed),
                        ("skipped", c.skipped),
                    ] {
                        observer.observe(n, &label(&c, "graylane.handled", handled));
                    }
                }
            })
            .build();
        self.keep(records);
        let (list, label) = (consumers.clone(), who.clone());
        let handovers = self
            .inner
            .meter
            .u64_observable_counter("graylane.consumer.handovers")
            .with_description("Partitions base handed to a lane's consumer and took back")
            .with_callback(move |observer| {
                for c in list() {
                    observer.observe(c.grants, &label(&c, "graylane.handover", "grant"));
                    observer.observe(c.releases, &label(&c, "graylane.handover", "release"));
                }
            })
            .build();
        self.keep(handovers);
        let (list, label) = (consumers.clone(), who.clone());
        let events = self
            .inner
            .meter
            .u64_observable_counter("graylane.consumer.events")
            .with_description(
                "What a lane consumer met besides records: refused lane marks, retried calls, \
                 replays taken over, silent instances forgotten",
            )
            .with_callback(move |observer| {
                for c in list() {
                    for (event, n) in [
                        ("unknown_lane", c.unknown),
                        ("retry", c.retries),
                        ("replay_resumed", c.resumed),
                        ("forgotten", c.forgotten),
                    ] {
                        observer.observe(n, &label(&c, "graylane.event", event));
                    }
                }
            })
            .build();
        self.keep(events);
        let partitions = self
            .inner
            .meter
            .u64_observable_gauge("graylane.consumer.partitions")
            .with_description("Partitions a lane consumer holds, and of them those a lane owns")
            .with_callback(move |observer| {
                for c in consumers() {
                    observer.observe(c.partitions, &who(&c, "graylane.share", "assigned"));
                    observer.observe(c.granted, &who(&c, "graylane.share", "granted"));
                }
            })
            .build();
        self.keep(partitions);
        self
    }

    /// Reports the latest leak audit: `latest` returns how many have run and what the last
    /// one found (e.g. the shop's audit, or `graylane audit` run by a job).
    pub fn observe_audit(&self, latest: impl Fn() -> AuditCounts + Send + Sync + 'static) -> &Self {
        let latest = std::sync::Arc::new(latest);
        let (service, runs_latest) = (self.inner.service.clone(), latest.clone());
        let runs_service = service.clone();
        let runs = self
            .inner
            .meter
            .u64_observable_counter("graylane.audit.runs")
            .with_description("Leak audits run")
            .with_callback(move |observer| {
                observer.observe(runs_latest().runs, std::slice::from_ref(&runs_service));
            })
            .build();
        self.keep(runs);
        let findings = self
            .inner
            .meter
            .u64_observable_gauge("graylane.audit.findings")
            .with_description("What the latest leak audit found, by finding (zero: clean)")
            .with_callback(move |observer| {
                for (finding, n) in latest().findings {
                    observer.observe(
                        n,
                        &[service.clone(), KeyValue::new("graylane.finding", finding)],
                    );
                }
            })
            .build();
        self.keep(findings);
        self
    }
}
