//! `kafka-scale`: what the control topic costs at scale — 64 partitions, 8 lanes, 3 instances
//! per lane (24 lane consumers and a base consumer, default `Timing`, in this process) — on a
//! fresh control topic, and on one pre-filled with `--hours` (default a week) of the default
//! heartbeat cadence of 24 instances, as a topic that has lived that long holds it: each wrote
//! its hold record (its share of the partitions), then heartbeats, and all stopped at once
//! without tombstones (a crash of the whole fleet). The instances that then start are new
//! ones, as after a restart.
//!
//! Figures: the records per second written to the control topic in steady state, and what a
//! start reads — the records from the topic's start to its end and the time to read them —
//! plus the time from a base consumer's start to its first records handled. The cost must grow
//! with what changed (lanes × partitions), not with uptime: on the pre-filled topic, with
//! the recommended settings (`CONTROL_TOPIC_SETTINGS`: compacted, hourly segments), a start
//! reads about the last hour's heartbeats, not the week's.
//!
//! Not a CI step: on a real broker (`GRAYLANE_KAFKA_BROKERS`) the pre-fill writes 58 million
//! records (about 5 GB before compaction). On the mock, which never compacts, `--hours`
//! defaults to 1.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use graylane_core::{Lane, LaneSet, Propagator};
use graylane_kafka::{ConsumerHandle, LaneConsumer, Timing};
use graylane_testkit::kafka::TestBroker;
use graylane_testkit::services::unique;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const PARTITIONS: i32 = 64;
const LANES: usize = 8;
const INSTANCES: usize = 3;
/// The default heartbeat cadence: four a second per instance.
const HEARTBEATS_PER_HOUR: u64 = 4 * 3600;
/// A control record as the pre-fill writes it takes about this much of a segment (key, value
/// and the record's framing): one hour's heartbeats of the 24 instances make one segment.
const RECORD_BYTES: u64 = 90;

/// The figures of one control topic.
pub(crate) struct Scale {
    pub(crate) label: &'static str,
    /// Records in the control topic before the consumers start (the pre-fill).
    pub(crate) prefilled: u64,
    /// From the base consumer's start to every lane's partitions granted.
    pub(crate) granted: Duration,
    /// From the base consumer's start to a record on each partition handled.
    pub(crate) first_handled: Duration,
    /// Records written to the control topic per second, in steady state.
    pub(crate) records_per_s: f64,
    /// What a start reads: records from the topic's start to its end, and the time taken.
    pub(crate) start_read: u64,
    pub(crate) start_read_time: Duration,
}

pub(crate) async fn run(hours: Option<u64>) -> Result<Vec<Scale>, String> {
    let broker = TestBroker::from_env();
    let hours = hours.unwrap_or(if broker.is_real() { 168 } else { 1 });
    eprintln!(
        "kafka-scale: {} broker {}; {PARTITIONS} partitions × {LANES} lanes × {INSTANCES} instances; pre-fill {hours} h",
        broker.flavor().as_str(),
        broker.bootstrap()
    );
    let fresh = measure(&broker, "fresh", 0).await?;
    report(&fresh);
    let lived = measure(&broker, "lived", hours).await?;
    report(&lived);
    Ok(vec![fresh, lived])
}

fn report(s: &Scale) {
    eprintln!(
        "kafka-scale {}: prefilled={} granted_ms={} first_handled_ms={} control_records_per_s={:.1} start_read={} start_read_ms={}",
        s.label,
        s.prefilled,
        s.granted.as_millis(),
        s.first_handled.as_millis(),
        s.records_per_s,
        s.start_read,
        s.start_read_time.as_millis()
    );
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn measure(broker: &TestBroker, label: &'static str, hours: u64) -> Result<Scale, String> {
    let topic = unique("scale_events");
    let control = unique("scale_ctl");
    let group = unique("scale");
    broker.create_topic(&topic, PARTITIONS).map_err(err)?;
    let instances: Vec<(Lane, String)> = lanes()
        .flat_map(|lane| (0..INSTANCES).map(move |i| (lane, format!("old-{lane}-{i}"))))
        .collect();
    let prefilled = if hours == 0 {
        broker.create_control_topic(&control).map_err(err)?;
        0
    } else {
        // Hourly segments, as `segment.ms=3600000` rolls them over a week: here the records
        // come in minutes, so the segments roll by size at one hour's worth.
        let hour = HEARTBEATS_PER_HOUR * instances.len() as u64 * RECORD_BYTES;
        let segment = hour.to_string();
        broker
            .create_topic_with(
                &control,
                1,
                &[
                    ("cleanup.policy", "compact"),
                    ("segment.ms", "3600000"),
                    ("segment.bytes", &segment),
                ],
            )
            .map_err(err)?;
        let started = Instant::now();
        let n = prefill(broker, &topic, &control, &group, &instances, hours)?;
        eprintln!(
            "kafka-scale {label}: pre-filled {n} records in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        if broker.is_real() {
            await_compaction(broker, &control, n).await?;
        }
        n
    };

    let handled = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let base = consumer(broker, &topic, &control, &group, Lane::BASE, &handled).await?;
    produce_one_each(broker, &topic)?;
    until(&format!("{label}: a record per partition handled"), || {
        handled.load(Ordering::Relaxed) >= PARTITIONS as u64
    })
    .await?;
    let first_handled = started.elapsed();
    // All at once, as a fleet's pods start: each start reads the control topic.
    let lane_consumers = join_all(
        lanes()
            .flat_map(|lane| [lane; INSTANCES])
            .map(|lane| consumer(broker, &topic, &control, &group, lane, &handled)),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let all = (LANES as u64) * PARTITIONS as u64;
    until(&format!("{label}: every lane granted"), || {
        base.stats().granted == all
    })
    .await?;
    let granted = started.elapsed();

    // Steady state: nothing changes hands; what is written is heartbeats (and barriers).
    let window = Duration::from_secs(10);
    let before = high_watermark(broker, &control)?;
    tokio::time::sleep(window).await;
    let after = high_watermark(broker, &control)?;
    let records_per_s = (after - before) as f64 / window.as_secs_f64();

    let read_started = Instant::now();
    let start_read = read_all(broker, &control)?;
    let start_read_time = read_started.elapsed();

    for c in lane_consumers {
        c.stop().await.map_err(err)?;
    }
    base.stop().await.map_err(err)?;
    Ok(Scale {
        label,
        prefilled,
        granted,
        first_handled,
        records_per_s,
        start_read,
        start_read_time,
    })
}

fn lanes() -> impl Iterator<Item = Lane> {
    const NAMES: [&str; LANES] = ["l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7"];
    NAMES.into_iter().map(Lane::from_static)
}

fn propagator() -> Propagator {
    Propagator::new(LaneSet::new(lanes()))
}

async fn consumer(
    broker: &TestBroker,
    topic: &str,
    control: &str,
    group: &str,
    lane: Lane,
    handled: &Arc<AtomicU64>,
) -> Result<ConsumerHandle, String> {
    let handled = handled.clone();
    LaneConsumer::builder(broker.client_config(), propagator(), group)
        .lane(lane)
        .topic(topic)
        .control_topic(control)
        .timing(Timing::default())
        .spawn(move |_m| {
            handled.fetch_add(1, Ordering::Relaxed);
            std::future::ready(())
        })
        .await
        .map_err(err)
}

/// Writes the hold records of `instances`, then `hours` of their heartbeats, in log order.
fn prefill(
    broker: &TestBroker,
    topic: &str,
    control: &str,
    group: &str,
    instances: &[(Lane, String)],
    hours: u64,
) -> Result<u64, String> {
    let mut config = broker.client_config();
    config
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000");
    let producer: ThreadedProducer<DefaultProducerContext> = config.create().map_err(err)?;
    let keys: Vec<String> = instances
        .iter()
        .map(|(lane, name)| format!("{group}/hb/{lane}/{name}"))
        .collect();
    // Each instance's share of the partitions, as its group gave them.
    let holds: Vec<(String, String)> = instances
        .iter()
        .enumerate()
        .map(|(i, (lane, name))| {
            let mine: Vec<String> = (0..PARTITIONS)
                .filter(|p| *p as usize % INSTANCES == i % INSTANCES)
                .map(|p| p.to_string())
                .collect();
            (
                format!("{group}/hold/{lane}/{name}"),
                format!("{}:{}", topic, mine.join(",")),
            )
        })
        .collect();
    let firsts = holds.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let heartbeats = (0..hours * HEARTBEATS_PER_HOUR)
        .flat_map(|_| keys.iter().map(|k| (k.as_str(), "live 2000")));
    let mut n = 0u64;
    for (key, value) in firsts.chain(heartbeats) {
        let mut record = BaseRecord::to(control).partition(0).key(key).payload(value);
        // A full queue hands the record back: let deliveries drain it, and send again.
        while let Err((_, back)) = producer.send(record) {
            record = back;
            producer.poll(Duration::from_millis(5));
        }
        n += 1;
    }
    producer.flush(Duration::from_secs(300)).map_err(err)?;
    Ok(n)
}

/// Waits (up to 10 minutes) until the log cleaner has compacted the pre-filled topic's closed
/// segments: a start then reads about one segment's records.
async fn await_compaction(broker: &TestBroker, control: &str, written: u64) -> Result<(), String> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    let one_hour = HEARTBEATS_PER_HOUR * (LANES * INSTANCES) as u64;
    loop {
        let left = read_all(broker, control)?;
        eprintln!(
            "kafka-scale: after {:.0} s, a start reads {left} of the {written} records",
            started.elapsed().as_secs_f64()
        );
        if left <= 2 * one_hour || Instant::now() > deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

fn produce_one_each(broker: &TestBroker, topic: &str) -> Result<(), String> {
    let producer: ThreadedProducer<DefaultProducerContext> =
        broker.client_config().create().map_err(err)?;
    for p in 0..PARTITIONS {
        producer
            .send(BaseRecord::to(topic).partition(p).key("k").payload("v"))
            .map_err(|(e, _)| err(e))?;
    }
    producer.flush(Duration::from_secs(30)).map_err(err)
}

fn reader(broker: &TestBroker) -> Result<BaseConsumer, String> {
    let mut config: ClientConfig = broker.client_config();
    config
        .set("group.id", unique("scale_reader"))
        .set("enable.auto.commit", "false");
    config.create().map_err(err)
}

fn high_watermark(broker: &TestBroker, control: &str) -> Result<i64, String> {
    reader(broker)?
        .fetch_watermarks(control, 0, Duration::from_secs(10))
        .map(|(_, high)| high)
        .map_err(err)
}

/// Reads the control topic from its start to its end, as a consumer's start does; the
/// records read.
fn read_all(broker: &TestBroker, control: &str) -> Result<u64, String> {
    let reader = reader(broker)?;
    let (_, high) = reader
        .fetch_watermarks(control, 0, Duration::from_secs(10))
        .map_err(err)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(control, 0, Offset::Beginning)
        .map_err(err)?;
    reader.assign(&tpl).map_err(err)?;
    let (mut read, mut next) = (0u64, 0i64);
    let deadline = Instant::now() + Duration::from_secs(600);
    while next < high {
        if Instant::now() > deadline {
            return Err(format!("read {read} records of {control} in 10 minutes"));
        }
        if let Some(m) = reader.poll(Duration::from_millis(100)) {
            let m = m.map_err(err)?;
            read += 1;
            next = rdkafka::message::Message::offset(&m) + 1;
        }
    }
    Ok(read)
}

async fn until(what: &str, mut done: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !done() {
        if Instant::now() > deadline {
            return Err(format!("{what}: not within 180 s"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
