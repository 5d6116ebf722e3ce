//! `kafka`: producing and consuming through rdkafka directly vs. through graylane, on the
//! Apache Kafka that `GRAYLANE_KAFKA_BROKERS` names when it is set and non-empty, else on
//! librdkafka's in-process mock broker (a Kafka-protocol broker on loopback), in paired
//! alternating rounds; each ratio is the median of the per-round (with / without) ratios.
//!
//! - produce: `--requests` records of 100 bytes over 4 partitions, at most [`IN_FLIGHT`]
//!   awaiting delivery, via plain `FutureProducer::send` vs. `LaneProducer::send` (the same
//!   producer inside) in the gray lane, so every record is stamped. Throughput: records over
//!   the time until the last delivery report. A third variant sends the same two headers built
//!   by hand through the plain producer: what the wire format costs without graylane, so that
//!   graylane's own share can be told apart (rounds run the three in order and in reverse
//!   order by turns).
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
use graylane_kafka::{LaneConsumer, LaneProducer, Stamper};
use graylane_testkit::kafka::TestBroker;
use graylane_testkit::services::unique;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
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

/// How a record is sent.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// Plain `FutureProducer::send`, no headers.
    Plain,
    /// Plain `FutureProducer::send` with [`by_hand`] headers.
    ByHand,
    /// `LaneProducer::send` in this lane.
    Lane(LaneContext),
}

/// The headers graylane writes on a gray record, built without graylane.
fn by_hand() -> OwnedHeaders {
    OwnedHeaders::new_with_capacity(2)
        .insert(Header {
            key: "x-gray-lane",
            value: Some("gray"),
        })
        .insert(Header {
            key: "baggage",
            value: Some("gray.lane=gray"),
        })
}

/// The (key, value) pairs of `headers`, to compare them.
fn pairs(headers: &OwnedHeaders) -> Vec<(String, Option<Vec<u8>>)> {
    headers
        .iter()
        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
        .collect()
}

/// One send of record `i`.
fn send_one(
    plain: &FutureProducer,
    laned: &LaneProducer,
    via: Via,
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
        match via {
            Via::Plain => plain.send(record, wait).await,
            Via::ByHand => plain.send(record.headers(by_hand()), wait).await,
            Via::Lane(ctx) => laned.send(record, wait).with_lane(ctx).await,
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

/// Both ratios of two variants: medians of the per-round ratios, robust to a noisy neighbour
/// stealing one round.
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

/// The medians of the per-round ratios of variant `b` to variant `a` over `rounds`.
fn ratios(rounds: &[Vec<Round>], a: usize, b: usize) -> Ratios {
    Ratios {
        throughput: median(rounds.iter().map(|r| r[b].rate / r[a].rate).collect()),
        cpu: median(rounds.iter().map(|r| r[a].cpu_ns / r[b].cpu_ns).collect()),
    }
}

/// A warm-up of each variant, then `rounds` rounds of every variant, in order and in reverse
/// order by turns. Prints every round with each later variant's ratios to the first
/// (throughput, CPU); returns every round's figures, variants in order.
async fn rounds_of<F, Fut>(
    what: &str,
    labels: &[&str],
    rounds: usize,
    mut round: F,
) -> Vec<Vec<Round>>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Round>,
{
    let n = labels.len();
    for v in 0..n {
        round(v).await;
    }
    let mut all = Vec::with_capacity(rounds);
    for r in 0..rounds {
        let mut got = vec![None; n];
        for k in 0..n {
            // Reversed every other round: each pair of variants runs in both orders equally
            // often, so that a drift within a round (later runs slower, or faster) cancels. A
            // rotation would not: with three variants, one of each pair runs later two
            // rounds in three, which an A/A run showed as a 3-4% bias.
            let v = if r % 2 == 0 { k } else { n - 1 - k };
            got[v] = Some(round(v).await);
        }
        let got: Vec<Round> = got.into_iter().flatten().collect();
        let mut line = format!("kafka {what} round {r}:");
        for (label, g) in labels.iter().zip(&got) {
            let join = g.join.map_or(String::new(), |j| format!(" join {j:.0?}"));
            line += &format!(
                "  {label} {:>7.0} rec/s {:>5.0} ns cpu/rec{join}",
                g.rate, g.cpu_ns
            );
        }
        line += "  ratios";
        for g in &got[1..] {
            line += &format!(
                " {:.3} {:.3}",
                g.rate / got[0].rate,
                got[0].cpu_ns / g.cpu_ns
            );
        }
        println!("{line}");
        all.push(got);
    }
    all
}

/// Prints the medians of variant `b` against variant `a`; returns them.
fn summary(what: &str, all: &[Vec<Round>], (a, b): (usize, usize), labels: &[&str]) -> Ratios {
    let r = ratios(all, a, b);
    println!(
        "kafka {what}, {} / {}: throughput ratio {:.3}, cpu ratio {:.3} (medians of {} rounds)",
        labels[b],
        labels[a],
        r.throughput,
        r.cpu,
        all.len()
    );
    r
}

/// What the two phases measured.
pub(crate) struct Figures {
    /// Consuming with `LaneConsumer` against a plain `StreamConsumer`.
    pub(crate) consume: Ratios,
    /// Producing with `LaneProducer` (gray records) against plain rdkafka (no headers).
    pub(crate) produce: Ratios,
    /// Producing with `LaneProducer` against plain rdkafka writing the same two headers by
    /// hand: graylane's own cost, without the wire format's (librdkafka's headers).
    pub(crate) produce_own: Ratios,
}

/// Runs both phases, on the broker `GRAYLANE_KAFKA_BROKERS` names, or on a mock.
pub(crate) async fn run(args: &Args) -> Result<Figures, String> {
    let (n, rounds) = (args.requests, args.rounds);
    let broker = TestBroker::from_env();
    eprintln!(
        "kafka: {} broker {}",
        broker.flavor().as_str(),
        broker.bootstrap()
    );
    // Unique names: a real broker keeps topics between runs.
    let leak = |what: &str| -> &'static str { unique(what).leak() };
    let (produce_topic, consume_topic, control) = (
        leak("bench_produce"),
        leak("bench_consume"),
        leak("bench_ctl"),
    );
    let create = |topic, partitions| {
        broker
            .create_topic(topic, partitions)
            .map_err(|e| e.to_string())
    };
    create(produce_topic, PARTITIONS)?;
    create(consume_topic, PARTITIONS)?;
    broker
        .create_control_topic(control)
        .map_err(|e| e.to_string())?;
    let config = broker.client_config();
    let propagator = Propagator::new(LaneSet::new([GRAY]));
    let plain: FutureProducer = config.create().map_err(|e| e.to_string())?;
    let laned = LaneProducer::new(plain.clone(), propagator.clone());
    let payload: Arc<[u8]> = vec![b'x'; args.payload].into();

    // The floor must be the same bytes graylane writes, or it is no floor.
    let stamped = Stamper::new(propagator.clone()).headers(&LaneContext::new(GRAY), None);
    if stamped.as_ref().map(pairs) != Some(pairs(&by_hand())) {
        return Err(format!(
            "the by-hand headers {:?} differ from graylane's {:?}",
            pairs(&by_hand()),
            stamped.as_ref().map(pairs)
        ));
    }

    let labels = ["without", "by hand", "with"];
    let all = rounds_of("produce", &labels, rounds, |v| {
        let via = [Via::Plain, Via::ByHand, Via::Lane(LaneContext::new(GRAY))][v];
        let (plain, laned, payload) = (&plain, &laned, &payload);
        send_all(n, move |i| {
            send_one(plain, laned, via, produce_topic, payload, i)
        })
    })
    .await;
    summary("produce", &all, (0, 1), &labels);
    let produce_own = summary("produce", &all, (1, 2), &labels);
    let produce = summary("produce", &all, (0, 2), &labels);

    // The records every consume round reads, a third of them gray.
    send_all(n, |i| {
        let lane = LaneContext::new(if i % 3 == 0 { GRAY } else { Lane::BASE });
        send_one(&plain, &laned, Via::Lane(lane), consume_topic, &payload, i)
    })
    .await;
    let mut groups = 0;
    let labels = ["without", "with"];
    let all = rounds_of("consume", &labels, rounds, |v| {
        groups += 1;
        let group = format!("{consume_topic}-group-{groups}");
        let (config, lane_consumer) = (&config, (v == 1).then_some((&propagator, control)));
        async move { consume(config, consume_topic, lane_consumer, &group, n).await }
    })
    .await;
    let consume = summary("consume", &all, (0, 1), &labels);
    Ok(Figures {
        consume,
        produce,
        produce_own,
    })
}
