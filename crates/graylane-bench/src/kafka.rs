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
use crate::cpu::process_cpu;

const PARTITIONS: i32 = 4;
/// Records awaiting their delivery report at once, for both producers.
const IN_FLIGHT: usize = 1000;
/// No round may take longer than this.
const ROUND_LIMIT: Duration = Duration::from_secs(60);

const GRAY: Lane = Lane::from_static("gray");

/// Runs `send(i)` for `i` in `0..n` as tasks, at most [`IN_FLIGHT`] at once; the time and
/// the process CPU time taken.
async fn send_all<F, Fut>(n: usize, send: F) -> Round
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (started, cpu) = (Instant::now(), process_cpu());
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
    Round::new(n, started.elapsed(), process_cpu() - cpu, None)
}

/// What one round of one variant measured.
#[derive(Clone, Copy, Debug)]
struct Round {
    /// Records per second of wall-clock time.
    rate: f64,
    /// Process CPU time (every thread, the in-process broker's too) per record, in ns.
    cpu_ns: f64,
    /// The consumer group join before the first record, for consume rounds.
    join: Option<Duration>,
}

impl Round {
    fn new(n: usize, wall: Duration, cpu: Duration, join: Option<Duration>) -> Round {
        Round {
            rate: n as f64 / wall.as_secs_f64().max(1e-6),
            cpu_ns: cpu.as_nanos() as f64 / n as f64,
            join,
        }
    }
}

/// One send through the plain producer (`lane` = None) or the lane producer in `lane`.
fn send_one(
    plain: &FutureProducer,
    laned: &LaneProducer,
    lane: Option<LaneContext>,
    topic: &'static str,
    payload: &Arc<[u8]>,
    i: usize,
) -> impl Future<Output = ()> + Send + 'static {
    let (plain, laned, payload) = (plain.clone(), laned.clone(), payload.clone());
    let partition = (i % PARTITIONS as usize) as i32;
    async move {
        let record = FutureRecord::<(), _>::to(topic)
            .partition(partition)
            .payload(&payload[..]);
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
    /// Wall-clock and process CPU time at the first and the last record handled.
    first: OnceLock<(Instant, Duration)>,
    last: OnceLock<(Instant, Duration)>,
    done: Notify,
}

impl Tally {
    fn handle(&self, m: &OwnedMessage) {
        black_box(m.payload().map_or(0, <[u8]>::len));
        self.first.get_or_init(|| (Instant::now(), process_cpu()));
        if self.count.fetch_add(1, Ordering::Relaxed) + 1 == self.target {
            let _ = self.last.set((Instant::now(), process_cpu()));
            self.done.notify_one();
        }
    }

    /// The figures from the first record handled to the last (the group join before it is
    /// reported apart).
    fn figures(&self, started: Instant) -> Round {
        let (first, last) = (self.first.get().unwrap(), self.last.get().unwrap());
        // `target - 1` records were handled after the first one's clock was read.
        let n = self.target.saturating_sub(1).max(1);
        Round::new(
            n,
            last.0 - first.0,
            last.1 - first.1,
            Some(first.0 - started),
        )
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
) -> Round {
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
        // A task of its own, as the lane consumer's loop is: the same scheduling for both.
        let t = tally.clone();
        let all = tokio::spawn(async move {
            while t.count.load(Ordering::Relaxed) < n {
                let m = consumer.recv().await.expect("recv");
                t.handle(&m.detach());
            }
        });
        match tokio::time::timeout(ROUND_LIMIT, all).await {
            Ok(done) => done.expect("the StreamConsumer task"),
            Err(elapsed) => limit(elapsed),
        }
    }
    tally.figures(started)
}

/// Both ratios of one phase: medians of the per-round (with / without) ratios, robust to a
/// noisy neighbour stealing one round.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ratios {
    /// Records/s with graylane over records/s without.
    pub(crate) throughput: f64,
    /// CPU per record without graylane over CPU per record with it.
    pub(crate) cpu: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A warm-up of each variant, then `rounds` paired rounds alternating which goes first.
/// Prints every round and the phase's medians.
async fn paired<F, Fut>(what: &str, rounds: usize, mut round: F) -> Ratios
where
    F: FnMut(bool) -> Fut,
    Fut: Future<Output = Round>,
{
    round(false).await;
    round(true).await;
    let (mut throughput, mut cpu) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for r in 0..rounds {
        let (a, b) = if r % 2 == 0 {
            let a = round(false).await;
            (a, round(true).await)
        } else {
            let b = round(true).await;
            (round(false).await, b)
        };
        let join = |j: Option<Duration>| j.map_or(String::new(), |j| format!(" join {j:.0?}"));
        println!(
            "kafka {what} round {r}: without {:>7.0} rec/s {:>5.0} ns cpu/rec{}  with {:>7.0} rec/s {:>5.0} ns cpu/rec{}  ratios {:.3} {:.3}",
            a.rate,
            a.cpu_ns,
            join(a.join),
            b.rate,
            b.cpu_ns,
            join(b.join),
            b.rate / a.rate,
            a.cpu_ns / b.cpu_ns,
        );
        throughput.push(b.rate / a.rate);
        cpu.push(a.cpu_ns / b.cpu_ns);
    }
    let ratios = Ratios {
        throughput: median(throughput),
        cpu: median(cpu),
    };
    println!(
        "kafka {what}: throughput ratio {:.3}, cpu ratio {:.3} (medians of {rounds} rounds)",
        ratios.throughput, ratios.cpu
    );
    ratios
}

/// Runs both phases; (consume ratios, produce ratios).
pub(crate) async fn run(args: &Args) -> Result<(Ratios, Ratios), String> {
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
    let payload: Arc<[u8]> = vec![b'x'; args.payload].into();

    let produce = paired("produce", rounds, |with| {
        let (plain, laned, lane) = (&plain, &laned, with.then(|| LaneContext::new(GRAY)));
        let payload = &payload;
        send_all(n, move |i| {
            send_one(plain, laned, lane, produce_topic, payload, i)
        })
    })
    .await;

    // The records every consume round reads, a third of them gray.
    send_all(n, |i| {
        let lane = LaneContext::new(if i % 3 == 0 { GRAY } else { Lane::BASE });
        send_one(&plain, &laned, Some(lane), consume_topic, &payload, i)
    })
    .await;
    let mut groups = 0;
    let consume = paired("consume", rounds, |with| {
        groups += 1;
        let group = format!("bench-group-{groups}");
        let (config, lane_consumer) = (&config, with.then_some((&propagator, control)));
        async move { consume(config, consume_topic, lane_consumer, &group, n).await }
    })
    .await;
    Ok((consume, produce))
}
