//! `kafka`: producing and consuming through rdkafka directly vs. through graylane, on
//! librdkafka's in-process mock broker (a real Kafka-protocol broker on loopback), in paired
//! alternating rounds; each ratio is the median of the per-round (with / without) ratios.
//!
//! - produce: `--requests` records of 100 bytes over 4 partitions, at most [`IN_FLIGHT`]
//!   awaiting delivery, via plain `FutureProducer::send` vs. `LaneProducer::send` (the same
//!   producer inside) in the gray lane, so every record is stamped. Throughput: records over
//!   the time until the last delivery report.
//! - consume: `--requests` records (a third stamped gray), produced once, read in full by a
//!   fresh consumer group each round: a plain `StreamConsumer` recv loop vs. graylane's base
//!   `LaneConsumer`, which with no gray consumer running handles the gray records too (same
//!   records, same trivial handler). Throughput: records over the time from the first record
//!   handled to the last; the group join before it is shown per round as `join`.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use graylane_core::{Lane, LaneContext, LaneFutureExt, LaneSet, Propagator};
use graylane_kafka::testing::MockBroker;
use graylane_kafka::{LaneConsumer, LaneProducer};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::Args;

const PARTITIONS: i32 = 4;
/// Records awaiting their delivery report at once, for both producers.
const IN_FLIGHT: usize = 1000;
const PAYLOAD: &[u8] = &[b'x'; 100];
/// No round may take longer than this.
const ROUND_LIMIT: Duration = Duration::from_secs(60);

const GRAY: Lane = Lane::from_static("gray");

/// Runs `send(i)` for `i` in `0..n` as tasks, at most [`IN_FLIGHT`] at once; the time taken.
async fn send_all<F, Fut>(n: usize, send: F) -> Duration
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    let all = async {
        let mut tasks = JoinSet::new();
        for i in 0..n {
            if tasks.len() >= IN_FLIGHT
                && let Some(r) = tasks.join_next().await
            {
                r.expect("kafka: send failed");
            }
            tasks.spawn(send(i));
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("kafka: send failed");
        }
    };
    if tokio::time::timeout(ROUND_LIMIT, all).await.is_err() {
        panic!("kafka: sending {n} records took over {ROUND_LIMIT:?}");
    }
    started.elapsed()
}

/// One send through the plain producer (`lane` = None) or the lane producer in `lane`.
fn send_one(
    plain: &FutureProducer,
    laned: &LaneProducer,
    lane: Option<LaneContext>,
    topic: &'static str,
    i: usize,
) -> impl Future<Output = ()> + Send + 'static {
    let (plain, laned) = (plain.clone(), laned.clone());
    let partition = (i % PARTITIONS as usize) as i32;
    async move {
        let record = FutureRecord::<(), _>::to(topic)
            .partition(partition)
            .payload(PAYLOAD);
        let wait = Duration::from_secs(5);
        match lane {
            None => plain.send(record, wait).await,
            Some(ctx) => laned.send(record, wait).with_lane(ctx).await,
        }
        .expect("kafka: send failed");
    }
}

/// Counts handled records; the handler both consumers run on each record.
#[derive(Default)]
struct Tally {
    target: usize,
    count: AtomicUsize,
    first: OnceLock<Instant>,
    last: OnceLock<Instant>,
    done: Notify,
}

impl Tally {
    fn handle(&self, m: &OwnedMessage) {
        black_box(m.payload().map_or(0, <[u8]>::len));
        self.first.get_or_init(Instant::now);
        if self.count.fetch_add(1, Ordering::Relaxed) + 1 == self.target {
            let _ = self.last.set(Instant::now());
            self.done.notify_one();
        }
    }

    /// (records/s from the first record handled to the last, time to the first record).
    fn figures(&self, started: Instant) -> (f64, Duration) {
        let (first, last) = (self.first.get().unwrap(), self.last.get().unwrap());
        let busy = (*last - *first).as_secs_f64().max(1e-6);
        (self.target as f64 / busy, *first - started)
    }
}

/// Reads `n` records of `topic` from the beginning in group `group`: plain `StreamConsumer`
/// (`lane_consumer` = None) or graylane's base `LaneConsumer` with control topic `control`.
async fn consume(
    config: &ClientConfig,
    topic: &str,
    lane_consumer: Option<(&Propagator, &str)>,
    group: &str,
    n: usize,
) -> (f64, Duration) {
    let tally = Arc::new(Tally {
        target: n,
        ..Tally::default()
    });
    let started = Instant::now();
    let variant = if lane_consumer.is_some() {
        "LaneConsumer"
    } else {
        "StreamConsumer"
    };
    let limit = |_| {
        panic!(
            "kafka: {variant} consumed {} of {n} records in {ROUND_LIMIT:?}",
            tally.count.load(Ordering::Relaxed)
        )
    };
    if let Some((propagator, control)) = lane_consumer {
        let t = tally.clone();
        let handle = LaneConsumer::builder(config.clone(), propagator.clone(), group)
            .topic(topic)
            .control_topic(control)
            .spawn(move |m| {
                t.handle(&m);
                std::future::ready(())
            })
            .await
            .expect("LaneConsumer starts");
        tokio::time::timeout(ROUND_LIMIT, tally.done.notified())
            .await
            .unwrap_or_else(limit);
        handle.stop().await.expect("LaneConsumer stops");
    } else {
        let consumer: StreamConsumer = config
            .clone()
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("StreamConsumer starts");
        consumer.subscribe(&[topic]).expect("subscribes");
        let all = async {
            while tally.count.load(Ordering::Relaxed) < n {
                let m = consumer.recv().await.expect("recv");
                tally.handle(&m.detach());
            }
        };
        tokio::time::timeout(ROUND_LIMIT, all)
            .await
            .unwrap_or_else(limit);
    }
    tally.figures(started)
}

/// A warm-up of each variant, then `rounds` paired rounds alternating which goes first; each
/// round gives (records/s, group join time if any). Prints every round; returns the median of
/// the per-round (with / without) ratios, robust to a noisy neighbour stealing one round.
async fn paired<F, Fut>(what: &str, rounds: usize, mut round: F) -> f64
where
    F: FnMut(bool) -> Fut,
    Fut: Future<Output = (f64, Option<Duration>)>,
{
    round(false).await;
    round(true).await;
    let mut ratios = Vec::with_capacity(rounds);
    for r in 0..rounds {
        let (a, b) = if r % 2 == 0 {
            let a = round(false).await;
            (a, round(true).await)
        } else {
            let b = round(true).await;
            (round(false).await, b)
        };
        let join = |j: Option<Duration>| j.map_or(String::new(), |j| format!(" (join {j:.0?})"));
        let ratio = b.0 / a.0;
        println!(
            "kafka {what} round {r}: without {:>7.0} rec/s{}  with {:>7.0} rec/s{}  ratio {ratio:.3}",
            a.0,
            join(a.1),
            b.0,
            join(b.1)
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

/// Runs both phases; (consume ratio, produce ratio).
pub(crate) async fn run(args: &Args) -> Result<(f64, f64), String> {
    let (n, rounds) = (args.requests, args.rounds);
    let broker = MockBroker::start(1).map_err(|e| format!("mock broker: {e}"))?;
    let (produce_topic, consume_topic, control) = ("bench-produce", "bench-consume", "bench-ctl");
    let create = |topic, partitions| {
        broker
            .create_topic(topic, partitions)
            .map_err(|e| e.to_string())
    };
    create(produce_topic, PARTITIONS)?;
    create(consume_topic, PARTITIONS)?;
    create(control, 1)?; // the control topic has one partition
    let config = broker.client_config();
    let propagator = Propagator::new(LaneSet::new([GRAY]));
    let plain: FutureProducer = config.create().map_err(|e| e.to_string())?;
    let laned = LaneProducer::new(plain.clone(), propagator.clone());

    let produce_ratio = paired("produce", rounds, |with| {
        let (plain, laned, lane) = (&plain, &laned, with.then(|| LaneContext::new(GRAY)));
        let took = send_all(n, move |i| send_one(plain, laned, lane, produce_topic, i));
        async move { (n as f64 / took.await.as_secs_f64().max(1e-6), None) }
    })
    .await;

    // The records every consume round reads, a third of them gray.
    send_all(n, |i| {
        let lane = LaneContext::new(if i % 3 == 0 { GRAY } else { Lane::BASE });
        send_one(&plain, &laned, Some(lane), consume_topic, i)
    })
    .await;
    let mut groups = 0;
    let consume_ratio = paired("consume", rounds, |with| {
        groups += 1;
        let group = format!("bench-group-{groups}");
        let (config, lane_consumer) = (&config, with.then_some((&propagator, control)));
        async move {
            let (rate, join) = consume(config, consume_topic, lane_consumer, &group, n).await;
            (rate, Some(join))
        }
    })
    .await;
    Ok((consume_ratio, produce_ratio))
}
