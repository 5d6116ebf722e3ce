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
mod policies;
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
