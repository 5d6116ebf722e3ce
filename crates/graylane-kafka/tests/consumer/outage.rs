//! The broker crashes in the middle of lane traffic (SIGKILL) and comes back on its port from
//! its storage: while it is down, a send fails with an error within its `message.timeout.ms`
//! ([`SEND_BOUND`]) and the consumers keep running (no panic, no end); after it is back, the
//! same producer and consumers carry on without a restart, everything acknowledged before the
//! crash and after it is handled within [`RECOVERY_BOUND`], and no record changes lane.
//! Duplicates are allowed: a crash loses the offsets committed since the last commit
//! interval, so both consumers may handle a record again (at least once).

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
