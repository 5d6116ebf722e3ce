//! A base rebalance in the middle of a replay: base releases a lagging lane and re-reads the
//! gap (handling only the lane's records, its own were handled the first time); before it is
//! done, a second base member joins and takes half the partitions. The new owner starts at the
//! revoke's commit, inside the gap: it takes the replay over from the record the old owner
//! wrote before seeking back, so it handles the gap's lane records and none of base's again.

use super::*;

/// Records produced: a third gray.
const N: u64 = 900;

async fn a_base_rebalance_in_the_middle_of_a_replay_handles_nothing_twice(broker: TestBroker) {
    let mut w = World::new(broker, "replay");
    // A slow replay (40 ms a gray record on base): the second member joins during it.
    w.fallback_work = Duration::from_millis(40);
    let b1 = w.consumer("base-1", Lane::BASE).await;
    until("base has its partitions", Duration::from_secs(30), || {
        b1.stats().partitions == PARTITIONS as u64
    })
    .await;
    // A slow gray consumer (40 ms a record): base is far ahead of it when it stops.
    let g = w
        .consumer_on(
            "gray-1",
            gray(),
            timing(),
            w.broker.client_config(),
            Duration::from_millis(40),
        )
        .await;
    until("every partition granted", Duration::from_secs(30), || {
        grants(&[&b1]) >= PARTITIONS as u64
    })
    .await;
    w.produce(0, N, Duration::ZERO).await;
    until(
        "base handled its own records",
        Duration::from_secs(30),
        || b1.stats().processed >= N * 2 / 3,
    )
    .await;
    let gs = g.stop().await.unwrap();
    until("base replays the gap", Duration::from_secs(30), || {
        b1.stats().replayed >= 10
    })
    .await;
    let b2 = w.consumer("base-2", Lane::BASE).await;
    settled(&[&b1, &b2]).await;
    w.wait_for(N as usize, Duration::from_secs(60)).await;
    // Let any replay finish before counting duplicates.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s1, s2) = (b1.stop().await.unwrap(), b2.stop().await.unwrap());
    eprintln!("gray {gs:?}\nbase-1 {s1:?}\nbase-2 {s2:?}");
    assert_eq!(w.audit(N, &[]), 0);
    assert!(gs.processed < N / 3, "gray lagged, leaving a gap: {gs:?}");
    assert!(
        s2.resumed > 0,
        "the partitions moved in the middle of the replay: {s2:?}"
    );
}

graylane_testkit::kafka_tests!(a_base_rebalance_in_the_middle_of_a_replay_handles_nothing_twice);
