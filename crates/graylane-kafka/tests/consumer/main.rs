//! Lane-aware consumers on each broker (librdkafka's mock cluster, and the real Apache Kafka
//! that `GRAYLANE_KAFKA_BROKERS` names: see `graylane_testkit::kafka`): a ledger of every
//! produced message proves none is lost, none is handled by the wrong lane, and duplicates
//! happen only in a crashed consumer's uncommitted window.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graylane_core::{Lane, LaneContext, LaneFutureExt, LaneSet, Propagator};
use graylane_kafka::{ConsumerHandle, LaneConsumer, LaneProducer, Timing};
use graylane_testkit::kafka::{Flavor, TestBroker};
use graylane_testkit::services::unique;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;

mod forget;
mod kill;
mod outage;
mod replay;

const PARTITIONS: i32 = 4;

fn gray() -> Lane {
    Lane::new("gray").unwrap()
}

fn propagator() -> Propagator {
    Propagator::new(LaneSet::new([gray()]))
}

/// Fast liveness for tests: a crashed lane consumer is replaced within 0.8 s.
fn timing() -> Timing {
    Timing::default()
        .lease(Duration::from_millis(100), Duration::from_millis(600))
        .grace(Duration::from_millis(200))
}

/// Who handled a message: the consumer's name, and the lane context its handler saw.
#[derive(Clone, Debug)]
struct Entry {
    consumer: String,
    lane: Lane,
    served: Lane,
}

#[derive(Clone, Default)]
struct Ledger(Arc<Mutex<HashMap<u64, Vec<Entry>>>>);

impl Ledger {
    fn record(&self, id: u64, consumer: &str) {
        let ctx = LaneContext::current();
        self.0.lock().unwrap().entry(id).or_default().push(Entry {
            consumer: consumer.to_owned(),
            lane: ctx.lane(),
            served: ctx.served(),
        });
    }

    /// A record handled in another process, with the lanes its handler saw.
    fn record_as(&self, id: u64, consumer: &str, lane: Lane, served: Lane) {
        self.0.lock().unwrap().entry(id).or_default().push(Entry {
            consumer: consumer.to_owned(),
            lane,
            served,
        });
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn snapshot(&self) -> HashMap<u64, Vec<Entry>> {
        self.0.lock().unwrap().clone()
    }
}

struct World {
    broker: TestBroker,
    topic: String,
    control: String,
    group: String,
    ledger: Ledger,
    producer: LaneProducer,
    sent: Arc<AtomicUsize>,
    /// What a base consumer's handler takes per lane record it handles (fallback), on top of
    /// its `work`: a slow replay.
    fallback_work: Duration,
}

fn lane_of_id(id: u64) -> Lane {
    if id.is_multiple_of(3) {
        gray()
    } else {
        Lane::BASE
    }
}

impl World {
    fn new(broker: TestBroker, name: &str) -> World {
        let name = unique(name);
        let topic = format!("{name}-events");
        let control = format!("{name}-control");
        broker.create_topic(&topic, PARTITIONS).unwrap();
        broker.create_control_topic(&control).unwrap();
        let producer = LaneProducer::new(broker.client_config().create().unwrap(), propagator());
        World {
            broker,
            topic,
            control,
            group: format!("{name}-fulfillment"),
            ledger: Ledger::default(),
            producer,
            sent: Arc::default(),
            fallback_work: Duration::ZERO,
        }
    }

    async fn consumer(&self, name: &str, lane: Lane) -> ConsumerHandle {
        self.consumer_with(name, lane, timing()).await
    }

    async fn consumer_with(&self, name: &str, lane: Lane, timing: Timing) -> ConsumerHandle {
        self.consumer_on(
            name,
            lane,
            timing,
            self.broker.client_config(),
            Duration::ZERO,
        )
        .await
    }

    /// A consumer with client settings of its own, whose handler takes `work` per record.
    async fn consumer_on(
        &self,
        name: &str,
        lane: Lane,
        timing: Timing,
        config: rdkafka::ClientConfig,
        work: Duration,
    ) -> ConsumerHandle {
        let ledger = self.ledger.clone();
        let name = name.to_owned();
        let fallback_work = self.fallback_work;
        LaneConsumer::builder(config, propagator(), &self.group)
            .lane(lane)
            .topic(&self.topic)
            .control_topic(&self.control)
            .timing(timing)
            .spawn(move |m| {
                let ledger = ledger.clone();
                let name = name.clone();
                // The synchronous part of the handler is in the message's lane too.
                let sync_lane = LaneContext::current().lane();
                async move {
                    assert_eq!(LaneContext::current().lane(), sync_lane);
                    let ctx = LaneContext::current();
                    let fallback = ctx.served().is_base() && !ctx.lane().is_base();
                    let work = if fallback { work + fallback_work } else { work };
                    if !work.is_zero() {
                        tokio::time::sleep(work).await;
                    }
                    let id: u64 = m.payload_view::<str>().unwrap().unwrap().parse().unwrap();
                    ledger.record(id, &name);
                }
            })
            .await
            .unwrap()
    }

    /// Sends messages `from..to`, a third of them gray, spread over `over`.
    async fn produce(&self, from: u64, to: u64, over: Duration) {
        let pause = over / u32::try_from(to - from).unwrap().max(1);
        for id in from..to {
            let record_id = id.to_string();
            let send = self.producer.send(
                FutureRecord::to(&self.topic)
                    .key(&record_id)
                    .payload(&record_id),
                Duration::from_secs(5),
            );
            let lane = lane_of_id(id);
            let sent = if lane.is_base() {
                send.await
            } else {
                send.with_lane(LaneContext::new(lane)).await
            };
            sent.map_err(|(e, _)| e).unwrap();
            self.sent.fetch_add(1, Ordering::Relaxed);
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }

    async fn wait_for(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.ledger.len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Checks the ledger for `0..n`: nothing lost; base messages only by base consumers in
    /// base; gray messages in gray, by a gray consumer or by base (served base); every
    /// duplicate involves one of `may_duplicate`. Returns the number of duplicates.
    fn audit(&self, n: u64, may_duplicate: &[&str]) -> usize {
        let ledger = self.ledger.snapshot();
        let mut duplicates = 0;
        for id in 0..n {
            let lane = lane_of_id(id);
            let entries = ledger
                .get(&id)
                .unwrap_or_else(|| panic!("message {id} ({lane}) lost"));
            for e in entries {
                assert_eq!(
                    e.lane, lane,
                    "message {id} handled in the wrong lane: {e:?}"
                );
                let by_base = e.consumer.starts_with("base");
                assert_eq!(
                    e.served,
                    if by_base { Lane::BASE } else { gray() },
                    "message {id}: {e:?}"
                );
                if lane.is_base() {
                    assert!(by_base, "base message {id} handled by {}", e.consumer);
                }
            }
            if entries.len() > 1 {
                assert!(
                    entries
                        .iter()
                        .any(|e| may_duplicate.contains(&e.consumer.as_str())),
                    "message {id} handled {} times outside a crash window: {entries:?}",
                    entries.len()
                );
                duplicates += entries.len() - 1;
            }
        }
        assert_eq!(ledger.len() as u64, n, "unexpected ids");
        duplicates
    }
}

async fn until(what: &str, within: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

/// Waits until the base consumers share the partitions: a rebalance among them is not what
/// these tests are about.
async fn settled(bases: &[&ConsumerHandle]) {
    until("base consumers settled", Duration::from_secs(10), || {
        bases.iter().all(|b| b.stats().partitions > 0)
            && bases.iter().map(|b| b.stats().partitions).sum::<u64>() == PARTITIONS as u64
    })
    .await;
}

fn grants(bases: &[&ConsumerHandle]) -> u64 {
    bases.iter().map(|b| b.stats().grants).sum()
}

fn releases(bases: &[&ConsumerHandle]) -> u64 {
    bases.iter().map(|b| b.stats().releases).sum()
}

graylane_testkit::kafka_tests!(
    without_a_lane_consumer_base_handles_lane_messages_in_their_lane,
    steady_state_isolation_across_partitions_and_base_consumers,
    lane_consumer_joins_leaves_crashes_and_returns_without_loss,
    handlers_get_the_whole_record,
);

graylane_testkit::kafka_tests!(a_lane_consumer_reading_from_the_end_starts_at_its_grant);

/// A lane consumer configured with `auto.offset.reset=latest` (librdkafka's own default, and
/// common in production configs) still starts at the offset base granted it: base lags, grants
/// at its own position, and the records between that and the partition's end are the lane's.
async fn a_lane_consumer_reading_from_the_end_starts_at_its_grant(broker: TestBroker) {
    let w = World::new(broker, "latest");
    // A slow base: 5 ms a record, so it lags behind the producer.
    let base = w
        .consumer_on(
            "base-1",
            Lane::BASE,
            timing(),
            w.broker.client_config(),
            Duration::from_millis(5),
        )
        .await;
    until("base has its partitions", Duration::from_secs(30), || {
        base.stats().partitions == PARTITIONS as u64
    })
    .await;
    w.produce(0, 600, Duration::ZERO).await;
    let mut latest = w.broker.client_config();
    latest.set("auto.offset.reset", "latest");
    let g = w
        .consumer_on("gray-1", gray(), timing(), latest, Duration::ZERO)
        .await;
    w.wait_for(600, Duration::from_secs(30)).await;
    assert_eq!(w.audit(600, &[]), 0);
    let (gs, bs) = (g.stop().await.unwrap(), base.stop().await.unwrap());
    assert!(bs.grants >= PARTITIONS as u64, "gray was granted: {bs:?}");
    assert!(
        gs.processed > 0,
        "gray handled its lane after the grant: {gs:?}"
    );
}

/// The control topic's leader goes away for 12 s (the second broker of a mock cluster, the
/// data topic's partitions staying on the first): base keeps handling what it can decide, and
/// once the control topic is back, every record produced during and after the outage is handled
/// — the consumer is not ended by the control path's errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_topic_outage_pauses_base_and_it_resumes() {
    use graylane_testkit::kafka::MockBroker;
    use rdkafka::mocking::MockCoordinator;

    let w = World::new(TestBroker::from(MockBroker::start(2).unwrap()), "outage");
    let cluster = w.broker.as_mock().unwrap().cluster();
    for p in 0..PARTITIONS {
        cluster.partition_leader(&w.topic, p, Some(1)).unwrap();
    }
    cluster.partition_leader(&w.control, 0, Some(2)).unwrap();
    for g in [w.group.clone(), format!("{}.lane.gray", w.group)] {
        cluster.coordinator(MockCoordinator::Group(g), 1).unwrap();
    }
    let base = w.consumer("base-1", Lane::BASE).await;
    let gray_1 = w.consumer("gray-1", gray()).await;
    until("gray granted", Duration::from_secs(10), || {
        grants(&[&base]) >= PARTITIONS as u64
    })
    .await;
    w.produce(0, 60, Duration::ZERO).await;
    w.wait_for(60, Duration::from_secs(10)).await;

    // The control topic goes away: the gray consumer's lease lapses (its heartbeats fail), and
    // base cannot write the release; it retries until the control topic is back.
    cluster.broker_down(2).unwrap();
    w.produce(60, 120, Duration::from_millis(1500)).await;
    // Longer than a control write may take (10 s): writes fail, not only wait.
    tokio::time::sleep(Duration::from_secs(11)).await;
    cluster.broker_up(2).unwrap();
    w.produce(120, 180, Duration::ZERO).await;
    w.wait_for(180, Duration::from_secs(30)).await;
    // The gray consumer may have handled records its lease still covered: at least once.
    let duplicates = w.audit(180, &["gray-1"]);
    let stats = base.stats();
    assert!(
        stats.retries > 0,
        "the outage was seen and retried: {stats:?}"
    );
    gray_1.stop().await.unwrap();
    base.stop().await.expect("base was not ended by the outage");
    eprintln!("control outage: base {stats:?}, duplicates={duplicates}");
}

graylane_testkit::kafka_tests!(a_mirror_record_without_a_known_lane_is_never_base_traffic);

/// A mirror copy whose lane the consumers' spec lacks, or that has no lane at all: even under
/// the old rule (`UnknownLanes::Base`) base never handles it, and counts it.
async fn a_mirror_record_without_a_known_lane_is_never_base_traffic(broker: TestBroker) {
    use graylane_kafka::UnknownLanes;
    use rdkafka::message::{Header, OwnedHeaders};

    let w = World::new(broker, "mirrorless");
    for id in 0..12u64 {
        let id_s = id.to_string();
        let mut record = FutureRecord::to(&w.topic).key(&id_s).payload(&id_s);
        let headers = match id % 4 {
            0 => Some(
                OwnedHeaders::new()
                    .insert(Header {
                        key: "x-gray-lane",
                        value: Some("shadow"),
                    })
                    .insert(Header {
                        key: "x-gray-mirror",
                        value: Some("1"),
                    }),
            ),
            1 => Some(OwnedHeaders::new().insert(Header {
                key: "x-gray-mirror",
                value: Some("1"),
            })),
            _ => None,
        };
        if let Some(h) = headers {
            record = record.headers(h);
        }
        w.producer
            .inner()
            .send(record, Duration::from_secs(5))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handled = seen.clone();
    let consumer =
        LaneConsumer::builder(w.broker.client_config(), propagator(), unique("mirrorless"))
            .topic(&w.topic)
            .control_topic(&w.control)
            .timing(timing())
            .unknown_lanes(UnknownLanes::Base)
            .spawn(move |m| {
                let id: u64 = m.payload_view::<str>().unwrap().unwrap().parse().unwrap();
                handled.lock().unwrap().push(id);
                std::future::ready(())
            })
            .await
            .unwrap();
    until("every record decided", Duration::from_secs(30), || {
        consumer.stats().unknown == 6 && seen.lock().unwrap().len() == 6
    })
    .await;
    let stats = consumer.stop().await.unwrap();
    assert_eq!((stats.processed, stats.unknown), (6, 6));
    let mut got = seen.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, [2, 3, 6, 7, 10, 11], "only the plain base records");
}

graylane_testkit::kafka_tests!(records_of_a_lane_the_consumer_does_not_know_never_reach_base_data);

/// A producer whose spec has a lane `blue` the consumers' spec lacks (a rollout, a typo): by
/// default nobody handles those records (base counts them); a quarantine lane handles them in
/// that lane's context; `Base` is the old rule, on request.
async fn records_of_a_lane_the_consumer_does_not_know_never_reach_base_data(broker: TestBroker) {
    use graylane_kafka::UnknownLanes;
    use rdkafka::message::{Header, OwnedHeaders};

    let w = World::new(broker, "unknown");
    for id in 0..30u64 {
        let id_s = id.to_string();
        let mut record = FutureRecord::to(&w.topic).key(&id_s).payload(&id_s);
        if id % 3 == 0 {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: "x-gray-lane",
                value: Some(if id % 2 == 0 { "blue" } else { "Bl;ue" }),
            }));
        }
        w.producer
            .inner()
            .send(record, Duration::from_secs(5))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let run = |policy: UnknownLanes, group: String| {
        let seen = seen.clone();
        LaneConsumer::builder(w.broker.client_config(), propagator(), group)
            .topic(&w.topic)
            .control_topic(&w.control)
            .timing(timing())
            .unknown_lanes(policy)
            .spawn(move |m| {
                let id: u64 = m.payload_view::<str>().unwrap().unwrap().parse().unwrap();
                seen.lock()
                    .unwrap()
                    .push((id, LaneContext::current().lane()));
                std::future::ready(())
            })
    };
    let handled = |n: usize| {
        let seen = seen.clone();
        async move {
            until("records handled", Duration::from_secs(30), || {
                seen.lock().unwrap().len() >= n
            })
            .await;
            std::mem::take(&mut *seen.lock().unwrap())
        }
    };

    // Skip: the 20 plain records are handled, the 10 refused ones are not, and are counted.
    let skip = run(UnknownLanes::default(), unique("skip")).await.unwrap();
    let got = handled(20).await;
    until("every record decided", Duration::from_secs(30), || {
        skip.stats().unknown == 10
    })
    .await;
    let stats = skip.stop().await.unwrap();
    assert_eq!(stats.processed, 20);
    assert!(
        got.iter().all(|(id, lane)| id % 3 != 0 && lane.is_base()),
        "{got:?}"
    );

    // A quarantine lane: handled by base in gray's context (no gray consumer runs).
    let quarantine = run(UnknownLanes::Lane(gray()), unique("quarantine"))
        .await
        .unwrap();
    let got = handled(30).await;
    let stats = quarantine.stop().await.unwrap();
    assert_eq!((stats.fallback, stats.unknown), (10, 10));
    for (id, lane) in got {
        assert_eq!(
            lane,
            if id % 3 == 0 { gray() } else { Lane::BASE },
            "record {id}"
        );
    }

    // Base, on request.
    let base = run(UnknownLanes::Base, unique("as_base")).await.unwrap();
    let got = handled(30).await;
    base.stop().await.unwrap();
    assert!(got.iter().all(|(_, lane)| lane.is_base()));

    // A quarantine lane must be a configured one.
    let blue = Lane::new("blue").unwrap();
    assert!(run(UnknownLanes::Lane(blue), unique("bad")).await.is_err());
}

graylane_testkit::kafka_tests!(a_control_topic_that_is_not_compacted_is_refused);

/// With `cleanup.policy=delete` (a broker's default for a topic created without settings), or
/// `compact,delete` with a finite retention, the grants would be deleted after the retention
/// time: where the broker describes the topic's settings, the consumer refuses to start. The mock does not; there it starts.
async fn a_control_topic_that_is_not_compacted_is_refused(broker: TestBroker) {
    let name = unique("deleting");
    let topic = format!("{name}-events");
    broker.create_topic(&topic, 1).unwrap();
    // The broker's default (delete), and compact with a finite retention: both delete grants.
    for (i, settings) in [&[][..], &[("cleanup.policy", "compact,delete")][..]]
        .into_iter()
        .enumerate()
    {
        let control = format!("{name}-control{i}");
        broker.create_topic_with(&control, 1, settings).unwrap();
        let started = Instant::now();
        let spawned = LaneConsumer::builder(broker.client_config(), propagator(), &name)
            .topic(&topic)
            .control_topic(&control)
            .spawn(|_| std::future::ready(()))
            .await;
        if broker.is_real() {
            let err = spawned.expect_err("refused").to_string();
            assert!(
                err.contains("cleanup.policy=") && err.contains("compact"),
                "{err}"
            );
        } else {
            spawned.unwrap().stop().await.unwrap();
            // At most one unanswered DescribeConfigs (2 s), then on as before.
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{:?}",
                started.elapsed()
            );
        }
    }
}

graylane_testkit::kafka_tests!(the_consumer_group_protocol_of_kip_848_works_too);

/// `group.protocol=consumer` (KIP-848: the broker assigns, incrementally): librdkafka rejects
/// the `partition.assignment.strategy` graylane sets for the classic protocol, so graylane
/// leaves it out there; the handover works the same.
async fn the_consumer_group_protocol_of_kip_848_works_too(broker: TestBroker) {
    let w = World::new(broker, "kip848");
    let mut config = w.broker.client_config();
    // The classic protocol's session settings are the broker's business under KIP-848.
    config
        .remove("session.timeout.ms")
        .remove("heartbeat.interval.ms")
        .set("group.protocol", "consumer");
    let consumer = |name: &'static str, lane: Lane| {
        w.consumer_on(name, lane, timing(), config.clone(), Duration::ZERO)
    };
    let base = consumer("base-1", Lane::BASE).await;
    until("base has its partitions", Duration::from_secs(30), || {
        base.stats().partitions == PARTITIONS as u64
    })
    .await;
    let g = consumer("gray-1", gray()).await;
    until("gray ready", Duration::from_secs(30), || {
        g.stats().granted == PARTITIONS as u64 && g.stats().partitions == PARTITIONS as u64
    })
    .await;
    w.produce(0, 90, Duration::ZERO).await;
    w.wait_for(90, Duration::from_secs(30)).await;
    let gs = g.stop().await.unwrap();
    until("released", Duration::from_secs(30), || {
        base.stats().granted == 0
    })
    .await;
    w.produce(90, 120, Duration::ZERO).await;
    w.wait_for(120, Duration::from_secs(30)).await;
    assert_eq!(w.audit(120, &[]), 0);
    let bs = base.stop().await.unwrap();
    assert_eq!((gs.processed, bs.fallback), (30, 10));
}

graylane_testkit::kafka_tests!(stock: out_of_the_box_a_lane_consumer_takes_over_and_hands_back);

/// What users get with no tuning: graylane's default `Timing`, and on the stock broker Apache
/// Kafka's own group settings (a 3 s initial rebalance delay, a 45 s session) with clients that
/// set only the bootstrap address. A gray consumer joins, takes its lane's records, stops
/// gracefully, and base takes them back: nothing lost, nothing twice.
async fn out_of_the_box_a_lane_consumer_takes_over_and_hands_back(broker: TestBroker) {
    let on = broker.flavor().as_str();
    let w = World::new(broker, "defaults");
    let base = w
        .consumer_with("base-1", Lane::BASE, Timing::default())
        .await;
    until("base has its partitions", Duration::from_secs(30), || {
        base.stats().partitions == PARTITIONS as u64
    })
    .await;
    w.produce(0, 30, Duration::ZERO).await;

    let joining = Instant::now();
    let g = w.consumer_with("gray-1", gray(), Timing::default()).await;
    until("gray granted", Duration::from_secs(30), || {
        grants(&[&base]) >= PARTITIONS as u64
    })
    .await;
    let granted = joining.elapsed();
    w.produce(30, 60, Duration::ZERO).await;
    until("gray handled its lane", Duration::from_secs(30), || {
        g.stats().processed == 10
    })
    .await;
    // Granted is not consuming: the lane group forms on its own clock (on a stock broker,
    // after the initial rebalance delay).
    let handling = joining.elapsed();

    let stopping = Instant::now();
    let gs = g.stop().await.unwrap();
    until("released", Duration::from_secs(30), || {
        releases(&[&base]) >= PARTITIONS as u64
    })
    .await;
    let released = stopping.elapsed();
    w.produce(60, 90, Duration::ZERO).await;
    w.wait_for(90, Duration::from_secs(30)).await;
    assert_eq!(w.audit(90, &[]), 0, "no duplicates without a crash");
    let bs = base.stop().await.unwrap();
    eprintln!(
        "defaults on {on}: join_to_granted={granted:?} join_to_handled={handling:?} \
         stop_to_released={released:?}"
    );
    assert_eq!(gs.processed, 10, "the gray records sent while it ran");
    assert_eq!(
        bs.fallback, 20,
        "gray records before it joined and after it left"
    );
}

/// One run of the chaos scenario: a gray consumer joins mid-stream, leaves gracefully, comes
/// back, is killed, comes back and leaves, while messages keep flowing. Returns the number
/// of duplicates (all in the killed consumer's window) and the switch times.
async fn chaos(flavor: Flavor, run: usize) -> (usize, Duration, Duration) {
    let broker = TestBroker::get(flavor).expect("the broker the test runs on");
    let w = Arc::new(World::new(broker, &format!("chaos{run}")));
    let b1 = w.consumer("base-1", Lane::BASE).await;
    let b2 = w.consumer("base-2", Lane::BASE).await;
    settled(&[&b1, &b2]).await;
    let total = 450;
    let producer = {
        let w = w.clone();
        tokio::spawn(async move { w.produce(0, total, Duration::from_millis(2000)).await })
    };
    let bases = [&b1, &b2];

    tokio::time::sleep(Duration::from_millis(200)).await;
    let g1 = w.consumer("gray-1", gray()).await;
    until("gray-1 granted", Duration::from_secs(5), || {
        grants(&bases) >= 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = releases(&bases);
    let stopping = Instant::now();
    g1.stop().await.unwrap();
    until(
        "released after a graceful stop",
        Duration::from_secs(5),
        || releases(&bases) >= before + 4,
    )
    .await;
    let graceful = stopping.elapsed();

    tokio::time::sleep(Duration::from_millis(200)).await;
    // Counted before spawning: base may grant while `spawn` is still returning.
    let before = grants(&bases);
    let g2 = w.consumer("gray-2", gray()).await;
    until("gray-2 granted", Duration::from_secs(5), || {
        grants(&bases) >= before + 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = releases(&bases);
    g2.kill();
    let crash = until("released after a crash", Duration::from_secs(5), || {
        releases(&bases) >= before + 4
    })
    .await;

    let before = grants(&bases);
    let g3 = w.consumer("gray-3", gray()).await;
    until("gray-3 granted", Duration::from_secs(5), || {
        grants(&bases) >= before + 4
    })
    .await;
    producer.await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    g3.stop().await.unwrap();

    w.wait_for(total as usize, Duration::from_secs(20)).await;
    // Let any replay finish before counting duplicates.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let duplicates = w.audit(total, &["gray-2"]);
    let (s1, s2) = (b1.stop().await.unwrap(), b2.stop().await.unwrap());
    eprintln!(
        "chaos run {run}: base retries {} {}",
        s1.retries, s2.retries
    );
    (duplicates, graceful, crash)
}

async fn without_a_lane_consumer_base_handles_lane_messages_in_their_lane(broker: TestBroker) {
    let w = World::new(broker, "fallback");
    let base = w.consumer("base-1", Lane::BASE).await;
    w.produce(0, 90, Duration::ZERO).await;
    w.wait_for(90, Duration::from_secs(20)).await;
    assert_eq!(w.audit(90, &[]), 0);
    let stats = base.stop().await.unwrap();
    assert_eq!(stats.processed, 60);
    assert_eq!(stats.fallback, 30, "gray messages handled by base, in gray");
    assert_eq!(stats.grants, 0);
}

async fn steady_state_isolation_across_partitions_and_base_consumers(broker: TestBroker) {
    let w = World::new(broker, "steady");
    let b1 = w.consumer("base-1", Lane::BASE).await;
    let b2 = w.consumer("base-2", Lane::BASE).await;
    settled(&[&b1, &b2]).await;
    let g = w.consumer("gray-1", gray()).await;
    until("every partition granted", Duration::from_secs(10), || {
        grants(&[&b1, &b2]) >= PARTITIONS as u64
    })
    .await;
    w.produce(0, 300, Duration::ZERO).await;
    w.wait_for(300, Duration::from_secs(20)).await;
    assert_eq!(w.audit(300, &[]), 0);
    let gs = g.stop().await.unwrap();
    let (s1, s2) = (b1.stop().await.unwrap(), b2.stop().await.unwrap());
    assert_eq!(gs.processed, 100, "every gray message by the gray consumer");
    assert_eq!(s1.fallback + s2.fallback, 0, "base handled no gray message");
    assert_eq!(s1.processed + s2.processed, 200);
    assert!(
        s1.processed > 0 && s2.processed > 0,
        "both base consumers worked"
    );
}

/// 20 runs on the mock, 4 on a real broker (`GRAYLANE_CHAOS_RUNS=20` for the full ledger there).
async fn lane_consumer_joins_leaves_crashes_and_returns_without_loss(broker: TestBroker) {
    let flavor = broker.flavor();
    drop(broker);
    let runs: usize = std::env::var("GRAYLANE_CHAOS_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if flavor == Flavor::Mock { 20 } else { 4 });
    let mut worst = (0, Duration::ZERO, Duration::ZERO);
    // Four at a time, each on its own broker: the runs are mostly waiting.
    let mut next = 0;
    while next < runs {
        let batch: Vec<_> = (next..runs.min(next + 4))
            .map(|run| tokio::spawn(async move { (run, chaos(flavor, run).await) }))
            .collect();
        next += batch.len();
        for run in batch {
            let (run, (dups, graceful, crash)) = run.await.unwrap();
            eprintln!(
                "chaos run {run}: duplicates={dups} graceful_switch={graceful:?} crash_switch={crash:?}"
            );
            worst = (worst.0.max(dups), worst.1.max(graceful), worst.2.max(crash));
        }
    }
    eprintln!(
        "chaos worst of {runs}: duplicates={} graceful_switch={:?} crash_switch={:?}",
        worst.0, worst.1, worst.2
    );
    // The switch bounds stated in docs/kafka-lanes.md, with these test timings.
    assert!(
        worst.1 < Duration::from_millis(1000),
        "graceful switch {:?}",
        worst.1
    );
    assert!(
        worst.2 < Duration::from_millis(2000),
        "crash switch {:?}",
        worst.2
    );
}

/// What a handler gets is the record as `BorrowedMessage::detach` would give it: key, payload,
/// topic, partition, offset, timestamp and every header (the consumer builds it itself, to read
/// the headers once).
async fn handlers_get_the_whole_record(broker: TestBroker) {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};

    let world = World::new(broker, "whole");
    let records = [
        (Some("k1"), "no headers", None, Lane::BASE),
        (None, "gray, no key", None, gray()),
        (
            Some("k3"),
            "gray with a header of its own",
            Some(("trace", "t-1")),
            gray(),
        ),
        (
            Some("k4"),
            "base with a header",
            Some(("trace", "t-2")),
            Lane::BASE,
        ),
    ];
    for (i, (key, payload, header, lane)) in records.iter().enumerate() {
        let mut record = FutureRecord::to(&world.topic)
            .payload(*payload)
            .partition(i as i32 % PARTITIONS)
            .timestamp(1_700_000_000_000 + i as i64);
        if let Some(key) = key {
            record = record.key(*key);
        }
        if let Some((k, v)) = header {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: k,
                value: Some(*v),
            }));
        }
        world
            .producer
            .send(record, Duration::from_secs(5))
            .with_lane(LaneContext::new(*lane))
            .await
            .unwrap();
    }

    type Seen = (
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        String,
        i32,
        i64,
        String,
        Vec<(String, Vec<u8>)>,
    );
    fn seen(m: &OwnedMessage) -> Seen {
        let headers = m.headers().map_or_else(Vec::new, |h| {
            h.iter()
                .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                .collect()
        });
        (
            m.key().map(<[u8]>::to_vec),
            m.payload().map(<[u8]>::to_vec),
            m.topic().to_owned(),
            m.partition(),
            m.offset(),
            format!("{:?}", m.timestamp()),
            headers,
        )
    }

    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let base = LaneConsumer::builder(world.broker.client_config(), propagator(), &world.group)
        .topic(&world.topic)
        .control_topic(&world.control)
        .timing(timing())
        .spawn(move |m| {
            sink.lock().unwrap().push(seen(&m));
            std::future::ready(())
        })
        .await
        .unwrap();
    until("every record handled", Duration::from_secs(20), || {
        got.lock().unwrap().len() == records.len()
    })
    .await;
    base.stop().await.unwrap();

    let plain: StreamConsumer = world
        .broker
        .client_config()
        .set("group.id", unique("whole_plain"))
        .create()
        .unwrap();
    // Assigned, not subscribed: no group to join (on a busy machine a join can take longer
    // than the wait below), every partition from its start.
    let metadata = plain
        .fetch_metadata(Some(&world.topic), Duration::from_secs(10))
        .unwrap();
    let mut partitions = rdkafka::TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        partitions
            .add_partition_offset(&world.topic, p.id(), rdkafka::Offset::Beginning)
            .unwrap();
    }
    plain.assign(&partitions).unwrap();
    let mut want = Vec::new();
    while want.len() < records.len() {
        let m = tokio::time::timeout(Duration::from_secs(20), plain.recv())
            .await
            .expect("the plain consumer reads every record")
            .unwrap();
        want.push(seen(&m.detach()));
    }
    let mut got = got.lock().unwrap().clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // The stamped records carry the lane on top of their own headers.
    assert!(got.iter().any(|s| s.6.len() == 3 && s.6[0].0 == "trace"));
}
