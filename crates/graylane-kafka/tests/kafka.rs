//! Lane stamping, on each broker (librdkafka's mock cluster, and the real Apache Kafka that
//! `GRAYLANE_KAFKA_BROKERS` names: see `graylane_testkit::kafka`).

use std::time::{Duration, Instant};

use graylane_core::{Lane, LaneContext, LaneFutureExt, LaneSet, Propagator};
use graylane_kafka::{HeaderExtractor, LaneProducer, Stamper, lane_of};
use graylane_testkit::kafka::TestBroker;
use graylane_testkit::services::unique;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

fn propagator() -> Propagator {
    Propagator::new(LaneSet::new([Lane::new("gray").unwrap()]))
}

/// Every message of `topic` partition 0, read from the start, waiting up to 10 s for `n`.
fn read_all(broker: &TestBroker, topic: &str, n: usize) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer: BaseConsumer = broker
        .client_config()
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            out.push(m.unwrap().detach());
        }
    }
    out
}

fn header(m: &rdkafka::message::OwnedMessage, key: &str) -> Option<String> {
    m.headers().and_then(|h| {
        graylane_core::Extractor::get(&HeaderExtractor(h), key)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    })
}

graylane_testkit::kafka_tests!(
    records_carry_the_lane_they_were_sent_in,
    unknown_or_malformed_lanes_on_messages_are_base_and_counted,
);

async fn records_carry_the_lane_they_were_sent_in(broker: TestBroker) {
    let topic: &'static str = unique("stamping").leak();
    broker.create_topic(topic, 1).unwrap();
    let producer = LaneProducer::new(broker.client_config().create().unwrap(), propagator());
    let send = |key: &'static str, headers: Option<OwnedHeaders>| {
        let producer = producer.clone();
        async move {
            let mut record = FutureRecord::to(topic).key(key).payload("{}").partition(0);
            if let Some(h) = headers {
                record = record.headers(h);
            }
            producer
                .send(record, Duration::from_secs(5))
                .await
                .map_err(|(e, _)| e)
                .unwrap();
        }
    };
    send("base", None).await;
    send("gray", None)
        .with_lane(LaneContext::new(Lane::new("gray").unwrap()))
        .await;
    // An explicit lane header on the record wins; other headers are kept.
    let explicit = OwnedHeaders::new()
        .insert(Header {
            key: "x-gray-lane",
            value: Some("base"),
        })
        .insert(Header {
            key: "trace",
            value: Some("t1"),
        });
    send("explicit", Some(explicit))
        .with_lane(LaneContext::new(Lane::new("gray").unwrap()))
        .await;

    // BaseProducer too.
    let base_producer: BaseProducer = broker.client_config().create().unwrap();
    LaneContext::new(Lane::new("gray").unwrap()).scope(|| {
        let record = BaseRecord::to(topic)
            .key("base-producer")
            .payload("{}")
            .partition(0);
        base_producer
            .send(Stamper::new(propagator()).base_record(record))
            .map_err(|(e, _)| e)
            .unwrap();
    });
    base_producer.flush(Duration::from_secs(5)).unwrap();

    let messages = read_all(&broker, topic, 4);
    assert_eq!(messages.len(), 4);
    let p = propagator();
    let by_key = |k: &str| {
        messages
            .iter()
            .find(|m| m.key() == Some(k.as_bytes()))
            .unwrap()
    };
    assert_eq!(
        header(by_key("base"), "x-gray-lane"),
        None,
        "base writes nothing"
    );
    assert!(lane_of(&p, by_key("base")).lane().is_base());
    for key in ["gray", "base-producer"] {
        let m = by_key(key);
        assert_eq!(header(m, "x-gray-lane").as_deref(), Some("gray"), "{key}");
        assert_eq!(
            header(m, "baggage").as_deref(),
            Some("gray.lane=gray"),
            "{key}"
        );
        assert_eq!(lane_of(&p, m).lane(), "gray", "{key}");
    }
    let explicit = by_key("explicit");
    assert_eq!(header(explicit, "x-gray-lane").as_deref(), Some("base"));
    assert_eq!(header(explicit, "trace").as_deref(), Some("t1"));
    assert!(lane_of(&p, explicit).lane().is_base());
    let count = explicit.headers().map(|h| h.count()).unwrap_or(0);
    assert_eq!(count, 2, "no baggage lane entry for a base record");
}

async fn unknown_or_malformed_lanes_on_messages_are_base_and_counted(broker: TestBroker) {
    let topic = &unique("hostile");
    broker.create_topic(topic, 1).unwrap();
    let producer: BaseProducer = broker.client_config().create().unwrap();
    for (key, lane) in [
        ("unknown", "blue"),
        ("malformed", "Gr;ay"),
        ("binary", "\u{fffd}"),
    ] {
        let headers = OwnedHeaders::new().insert(Header {
            key: "x-gray-lane",
            value: Some(lane),
        });
        producer
            .send(
                BaseRecord::to(topic)
                    .key(key)
                    .payload("{}")
                    .partition(0)
                    .headers(headers),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(5)).unwrap();
    let p = propagator();
    let messages = read_all(&broker, topic, 3);
    assert_eq!(messages.len(), 3);
    assert!(messages.iter().all(|m| lane_of(&p, m).lane().is_base()));
    assert_eq!(p.stats().total(), 3);
}
