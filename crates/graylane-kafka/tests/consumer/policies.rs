//! What users configure, or get wrong, and what the consumers do about it: a lane consumer
//! told to read from the end, mirror records and lanes the consumers' spec lacks, a control
//! topic that is not compacted, the KIP-848 group protocol and an eager assignor.

use super::*;

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

graylane_testkit::kafka_tests!(an_eager_assignment_strategy_works_too);

/// `partition.assignment.strategy=range` (eager: every rebalance revokes everything, then
/// assigns anew): graylane applies such an assignment with `assign`, not `incremental_assign`
/// (which librdkafka refuses there, leaving the consumer without partitions), knowing the
/// protocol from the configuration. A second base member joining and leaving, and a lane
/// consumer coming and going, lose nothing, and every consumer stops promptly (its close runs
/// the last revoke). On Apache Kafka nothing is handled twice either: each revoke commits what
/// was handled. The mock cluster refuses commits during an eager rebalance, so there base
/// handles again what it handled since its last commit.
async fn an_eager_assignment_strategy_works_too(broker: TestBroker) {
    let w = World::new(broker, "eager");
    let mut config = w.broker.client_config();
    config.set("partition.assignment.strategy", "range");
    let consumer = |name: &'static str, lane: Lane| {
        w.consumer_on(name, lane, timing(), config.clone(), Duration::ZERO)
    };
    let stopped = async |c: ConsumerHandle| {
        let started = Instant::now();
        let stats = c.stop().await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a consumer's stop took {:?}",
            started.elapsed()
        );
        stats
    };
    let base = consumer("base-1", Lane::BASE).await;
    until("base has its partitions", Duration::from_secs(30), || {
        base.stats().partitions == PARTITIONS as u64
    })
    .await;
    let second = consumer("base-2", Lane::BASE).await;
    until(
        "the group shares the partitions",
        Duration::from_secs(30),
        || {
            let (a, b) = (base.stats().partitions, second.stats().partitions);
            a > 0 && b > 0 && a + b == PARTITIONS as u64
        },
    )
    .await;
    let g = consumer("gray-1", gray()).await;
    until("gray ready", Duration::from_secs(30), || {
        g.stats().granted == PARTITIONS as u64 && g.stats().partitions == PARTITIONS as u64
    })
    .await;
    w.produce(0, 90, Duration::ZERO).await;
    w.wait_for(90, Duration::from_secs(30)).await;
    let ss = stopped(second).await;
    until(
        "base has all partitions again",
        Duration::from_secs(30),
        || base.stats().partitions == PARTITIONS as u64,
    )
    .await;
    let gs = stopped(g).await;
    until("released", Duration::from_secs(30), || {
        base.stats().granted == 0
    })
    .await;
    w.produce(90, 120, Duration::ZERO).await;
    w.wait_for(120, Duration::from_secs(30)).await;
    let real = w.broker.is_real();
    let duplicates = w.audit(120, if real { &[] } else { &["base-1", "base-2"] });
    let bs = stopped(base).await;
    assert_eq!(gs.processed, 30, "gray handled its lane: {gs:?}");
    if real {
        assert_eq!(duplicates, 0);
        assert_eq!(bs.fallback + ss.fallback, 10, "{bs:?} {ss:?}");
    }
}
