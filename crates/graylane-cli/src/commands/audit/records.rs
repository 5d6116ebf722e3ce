//! Kafka: every record of a topic, read up to the high watermarks at the time of the audit.

use graylane_core::Lane;
use graylane_core::spec::LaneSpec;

use super::Report;
use crate::{Fail, bad_input};

/// Every record of `topic` (all partitions, from the start to the high watermarks at the time of
/// the audit) whose key or value contains the marker: in the lane when the record carries the
/// lane (header or baggage, as consumers read it), a leak otherwise — base consumers would
/// handle it as base, and write base data.
pub(super) fn search(
    spec: &LaneSpec,
    lane: Lane,
    brokers: &str,
    topic: &str,
    marker: &str,
    report: &mut Report,
) -> Result<(), Fail> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use std::time::{Duration, Instant};

    let kafka_err = |e: rdkafka::error::KafkaError| bad_input(format!("{brokers}: {e}"));
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "graylane-audit")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .map_err(kafka_err)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(kafka_err)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(bad_input(format!("{brokers}: no topic {topic:?}")));
    }
    // Read each partition up to its high watermark now: records arriving later are not audited.
    let mut remaining = 0i64;
    let mut ends = std::collections::HashMap::new();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .map_err(kafka_err)?;
        if high > low {
            remaining += high - low;
            ends.insert(p, high);
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(low))
                .map_err(kafka_err)?;
        }
    }
    consumer.assign(&tpl).map_err(kafka_err)?;
    let propagator = spec.propagator();
    let (mut in_lane, mut leaked) = (0i64, 0i64);
    let deadline = Instant::now() + Duration::from_secs(60);
    while remaining > 0 {
        if Instant::now() > deadline {
            return Err(bad_input(format!(
                "{brokers}: {topic}: {remaining} record(s) not read within 60 s"
            )));
        }
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m.map_err(kafka_err)?;
        if ends
            .get(&m.partition())
            .is_none_or(|&end| m.offset() >= end)
        {
            continue;
        }
        remaining -= 1;
        let hit = |b: Option<&[u8]>| {
            b.is_some_and(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes()))
        };
        if hit(m.key()) || hit(m.payload()) {
            if graylane_kafka::lane_of(&propagator, &m).lane() == lane {
                in_lane += 1;
            } else {
                leaked += 1;
            }
        }
    }
    let place = format!("kafka topic {topic}");
    report.add(true, place.clone(), in_lane);
    report.add(false, format!("{place} (records without the lane)"), leaked);
    Ok(())
}
