//! The control topic does not grow with uptime: a lane consumer that stops tombstones its
//! heartbeat and hold records, and base tombstones those of instances that went silent (a
//! crash, or a topic that has lived through many of them), so that compaction drops them and
//! later starts do not read them.

use std::collections::HashMap as Map;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use super::*;

/// Instances that lived and crashed before this run, and heartbeats each left behind.
const OLD_INSTANCES: usize = 24;
const HEARTBEATS_EACH: usize = 400;

/// The last value of every key on the control topic (`None`: a tombstone), read from its start.
fn last_values(w: &World) -> Map<String, Option<String>> {
    let mut config = w.broker.client_config();
    config
        .set("group.id", unique("control-reader"))
        .set("enable.auto.commit", "false");
    let reader: BaseConsumer = config.create().unwrap();
    let (_, high) = reader
        .fetch_watermarks(&w.control, 0, Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&w.control, 0, Offset::Beginning)
        .unwrap();
    reader.assign(&tpl).unwrap();
    let mut last = Map::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut next = 0;
    while next < high {
        assert!(
            Instant::now() < deadline,
            "control topic read to {next} of {high}"
        );
        if let Some(m) = reader.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            let key = m.key_view::<str>().unwrap().unwrap().to_owned();
            let value = m.payload_view::<str>().map(|v| v.unwrap().to_owned());
            last.insert(key, value);
            next = m.offset() + 1;
        }
    }
    last
}

/// Keys of lane instances' heartbeat and hold records whose last value is not a tombstone.
fn remembered(w: &World) -> Vec<String> {
    let mut keys: Vec<String> = last_values(w)
        .into_iter()
        .filter(|(k, v)| (k.contains("/hb/") || k.contains("/hold/")) && v.is_some())
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    keys
}

async fn a_stopped_lane_consumer_leaves_no_records_behind(broker: TestBroker) {
    let w = World::new(broker, "tombstones");
    let base = w.consumer("base-1", Lane::BASE).await;
    let g = w.consumer("gray-1", gray()).await;
    until("gray granted", Duration::from_secs(30), || {
        g.stats().partitions == PARTITIONS as u64 && g.stats().granted == PARTITIONS as u64
    })
    .await;
    assert_eq!(remembered(&w).len(), 2, "its heartbeat and hold records");
    w.produce(0, 30, Duration::ZERO).await;
    w.wait_for(30, Duration::from_secs(30)).await;
    g.stop().await.unwrap();
    assert_eq!(remembered(&w), Vec::<String>::new());
    w.produce(30, 60, Duration::ZERO).await;
    w.wait_for(60, Duration::from_secs(30)).await;
    assert_eq!(w.audit(60, &[]), 0);
    base.stop().await.unwrap();
}

async fn base_forgets_instances_that_went_silent(broker: TestBroker) {
    let w = World::new(broker, "forget");
    // A control topic that lived: instances that heartbeat for a while, held partitions and
    // crashed, never saying `stop`.
    let producer: ThreadedProducer<DefaultProducerContext> =
        w.broker.client_config().create().unwrap();
    for n in 0..HEARTBEATS_EACH {
        for i in 0..OLD_INSTANCES {
            let key = format!("{}/hb/gray/old-{i}", w.group);
            let value = if n == 0 {
                format!("events:{}", i % PARTITIONS as usize)
            } else {
                "live 600".to_owned()
            };
            let key = if n == 0 {
                format!("{}/hold/gray/old-{i}", w.group)
            } else {
                key
            };
            let mut record = BaseRecord::to(&w.control)
                .partition(0)
                .key(&key)
                .payload(&value);
            while let Err((e, back)) = producer.send(record) {
                record = back;
                assert!(
                    matches!(
                        e,
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull
                        )
                    ),
                    "{e}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    drop(producer);
    assert_eq!(remembered(&w).len(), 2 * OLD_INSTANCES);

    let starting = Instant::now();
    let base = w.consumer("base-1", Lane::BASE).await;
    w.produce(0, 60, Duration::ZERO).await;
    w.wait_for(60, Duration::from_secs(30)).await;
    let handled = starting.elapsed();
    assert_eq!(w.audit(60, &[]), 0);
    // Silent for FORGET_AFTER leases (10 × 0.8 s here) from when base read them.
    until(
        "the silent instances forgotten",
        Duration::from_secs(40),
        || base.stats().forgotten >= OLD_INSTANCES as u64,
    )
    .await;
    let forgotten = starting.elapsed();
    until(
        "their tombstones read back",
        Duration::from_secs(10),
        || remembered(&w).is_empty(),
    )
    .await;
    eprintln!(
        "{} old records: 60 records handled {} ms after base started; {} instances forgotten after {} ms",
        OLD_INSTANCES * HEARTBEATS_EACH,
        handled.as_millis(),
        OLD_INSTANCES,
        forgotten.as_millis()
    );
    // A lane that comes now is granted and handles its lane as usual.
    let g = w.consumer("gray-1", gray()).await;
    until("gray granted", Duration::from_secs(30), || {
        g.stats().granted == PARTITIONS as u64
    })
    .await;
    w.produce(60, 120, Duration::ZERO).await;
    w.wait_for(120, Duration::from_secs(30)).await;
    let gs = g.stop().await.unwrap();
    assert!(gs.processed > 0, "{gs:?}");
    assert_eq!(w.audit(120, &[]), 0);
    base.stop().await.unwrap();
}

graylane_testkit::kafka_tests!(
    a_stopped_lane_consumer_leaves_no_records_behind,
    base_forgets_instances_that_went_silent,
);
