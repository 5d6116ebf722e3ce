//! The broker crashes in the middle of lane traffic (SIGKILL) and comes back on its port from
//! its storage: while it is down, a send fails with an error within its `message.timeout.ms`
//! ([`SEND_BOUND`]) and the consumers keep running (no panic, no end); after it is back, the
//! same producer and consumers carry on without a restart, everything acknowledged before the
//! crash and after it is handled within [`RECOVERY_BOUND`], and no record changes lane.
//! Duplicates are allowed: a crash loses the offsets committed since the last commit
//! interval, so both consumers may handle a record again (at least once).
//!
//! And the control topic's leader alone goes away (a mock cluster's second broker): base
//! pauses what needs it, and resumes when it is back.

use graylane_testkit::kafka::DedicatedBroker;

use super::*;

/// A send while the broker is down fails within this (its producer's `message.timeout.ms`)
/// plus the queue timeout of the send.
const SEND_BOUND: Duration = Duration::from_secs(3);
/// Once the broker answers again, every acknowledged record is handled within this: the group
/// rejoins, base and the lane consumer agree on ownership again through the control topic.
const RECOVERY_BOUND: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_crash_fails_sends_within_a_bound_and_loses_nothing_acknowledged() {
    let Some(broker) = DedicatedBroker::start("broker_outage") else {
        return;
    };
    let w = World::new(broker.test_broker(), "broker_outage");
    let base = w.consumer("base-1", Lane::BASE).await;
    let gray_1 = w.consumer("gray-1", gray()).await;
    until("gray granted", Duration::from_secs(30), || {
        grants(&[&base]) >= PARTITIONS as u64
    })
    .await;
    w.produce(0, 60, Duration::ZERO).await;
    w.wait_for(60, Duration::from_secs(20)).await;
    // Acknowledged just before the crash: most of these are not handled yet when it comes.
    w.produce(60, 90, Duration::ZERO).await;
    broker.kill();

    let mut config = w.broker.client_config();
    config.set("message.timeout.ms", SEND_BOUND.as_millis().to_string());
    let impatient = LaneProducer::new(config.create().unwrap(), propagator());
    let started = Instant::now();
    let sent = impatient
        .send(
            FutureRecord::to(&w.topic).key("x").payload("1000000"),
            Duration::from_secs(1),
        )
        .with_lane(LaneContext::new(gray()))
        .await;
    let took = started.elapsed();
    let error = sent.expect_err("a send to a dead broker fails").0;
    assert!(
        took < SEND_BOUND + Duration::from_secs(2),
        "the send failed after {took:?}: {error}"
    );
    // Down for longer than the consumers' session timeout and the lane's lease.
    tokio::time::sleep(Duration::from_secs(4)).await;

    broker.restart();
    let back = Instant::now();
    w.produce(90, 150, Duration::ZERO).await;
    w.wait_for(150, RECOVERY_BOUND).await;
    let recovered = back.elapsed();
    let duplicates = w.audit(150, &["base-1", "gray-1"]);
    assert!(recovered < RECOVERY_BOUND, "recovered in {recovered:?}");
    let (base_stats, gray_stats) = (base.stats(), gray_1.stats());
    gray_1
        .stop()
        .await
        .expect("the lane consumer outlived the crash");
    base.stop().await.expect("base outlived the crash");
    eprintln!(
        "broker outage: send failed in {took:?} ({error}); all handled {recovered:?} after the \
         restart; duplicates={duplicates}; base {base_stats:?}; gray {gray_stats:?}"
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
