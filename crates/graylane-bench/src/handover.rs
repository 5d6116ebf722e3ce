//! `handover`: how late a ticker task on the consumers' runtime fires while base grants
//! partitions to a gray consumer and takes them back, against the same ticker with the same
//! consumers running and no handover, in one run.
//!
//! A base `LaneConsumer` of 4 partitions runs throughout. Each round starts a gray consumer
//! (base grants it the 4 partitions), produces a few records of both lanes, stops it
//! gracefully (base releases the partitions and reads back the gap) and waits until base has
//! released; then the same time passes with no handover. A task on base's runtime wakes every
//! millisecond and records how late it woke. The gray consumer first runs on a runtime of its
//! own, so that what is measured is base's side of the handover, then (`--rounds` more) on
//! base's runtime, so that its own start and stop count too. Any librdkafka call that blocks a runtime worker (a seek, a
//! synchronous commit, an offset fetch) shows as lateness of this ticker: on a current-thread
//! runtime (the default here, `--threads 1`) every such call delays it by its whole length.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use graylane_core::{Lane, LaneContext, LaneFutureExt, LaneSet, Propagator};
use graylane_kafka::{ConsumerHandle, LaneConsumer, LaneProducer};
use graylane_testkit::kafka::MockBroker;
use hdrhistogram::Histogram;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Mutex;

use crate::Args;

const GRAY: Lane = Lane::from_static("gray");
const PARTITIONS: i32 = 4;
const TICK: Duration = Duration::from_millis(1);
/// No wait for a grant or a release may take longer than this.
const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// Lateness of the ticker, idle and during handovers, with the gray consumer on a runtime of
/// its own (base's side alone) and on base's runtime (both sides).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lateness {
    pub(crate) grants: u64,
    pub(crate) releases: u64,
    pub(crate) idle_p99_us: u64,
    pub(crate) idle_max_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) max_us: u64,
    pub(crate) shared_p99_us: u64,
    pub(crate) shared_max_us: u64,
}

/// Which histogram the ticker records into.
#[derive(Default)]
struct Recorder {
    handing_over: AtomicBool,
    idle: Mutex<Option<Histogram<u64>>>,
    busy: Mutex<Option<Histogram<u64>>>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

async fn ticker(rec: Arc<Recorder>, stop: Arc<AtomicBool>) {
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut idle, mut busy) = (histogram(), histogram());
    while !stop.load(Ordering::Relaxed) {
        let due = every.tick().await;
        let late = Instant::now().saturating_duration_since(due.into_std());
        let us = (late.as_micros() as u64).max(1);
        if rec.handing_over.load(Ordering::Relaxed) {
            busy.saturating_record(us);
        } else {
            idle.saturating_record(us);
        }
    }
    *rec.idle.lock().await = Some(idle);
    *rec.busy.lock().await = Some(busy);
}

async fn until(what: &str, base: &ConsumerHandle, done: impl Fn(&ConsumerHandle) -> bool) {
    let started = Instant::now();
    while !done(base) {
        if started.elapsed() > WAIT_LIMIT {
            panic!("handover: base did not {what} within {WAIT_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Everything one phase needs: the consumers' settings and a producer of both lanes.
struct Setup {
    config: rdkafka::ClientConfig,
    propagator: Propagator,
    producer: LaneProducer,
}

const TOPIC: &str = "handover";
const CONTROL: &str = "handover-ctl";

impl Setup {
    fn consumer(
        &self,
        lane: Lane,
    ) -> impl Future<Output = rdkafka::error::KafkaResult<ConsumerHandle>> + Send + 'static {
        LaneConsumer::builder(self.config.clone(), self.propagator.clone(), "handover")
            .lane(lane)
            .topic(TOPIC)
            .control_topic(CONTROL)
            .spawn(|_| std::future::ready(()))
    }

    /// `rounds` handovers with the gray consumer on `gray`, each followed by as long without;
    /// the ticker's lateness in both.
    async fn phase(
        &self,
        args: &Args,
        base: &ConsumerHandle,
        gray: &tokio::runtime::Handle,
    ) -> Result<(Histogram<u64>, Histogram<u64>), String> {
        let rec = Arc::new(Recorder::default());
        let stop = Arc::new(AtomicBool::new(false));
        let ticking = tokio::spawn(ticker(rec.clone(), stop.clone()));
        for round in 0..args.rounds {
            // The handover: grant, some records, release.
            let started = Instant::now();
            rec.handing_over.store(true, Ordering::Relaxed);
            let before = base.stats();
            let consumer = gray
                .spawn(self.consumer(GRAY))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            until("grant", base, |b| {
                b.stats().grants >= before.grants + PARTITIONS as u64
            })
            .await;
            for i in 0..args.requests {
                let lane = if i % 2 == 0 { GRAY } else { Lane::BASE };
                let key = i.to_string();
                let record = FutureRecord::to(TOPIC).key(&key).payload("x");
                self.producer
                    .send(record, Duration::from_secs(5))
                    .with_lane(LaneContext::new(lane))
                    .await
                    .map_err(|(e, _)| e.to_string())?;
            }
            gray.spawn(consumer.stop())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            until("release", base, |b| {
                b.stats().releases >= before.releases + PARTITIONS as u64
            })
            .await;
            // The same time again with the same consumers and no handover.
            let took = started.elapsed();
            rec.handing_over.store(false, Ordering::Relaxed);
            tokio::time::sleep(took).await;
            eprintln!("handover round {round}: {took:?}");
        }
        stop.store(true, Ordering::Relaxed);
        ticking.await.map_err(|e| e.to_string())?;
        let idle = rec.idle.lock().await.take().expect("recorded");
        let busy = rec.busy.lock().await.take().expect("recorded");
        Ok((idle, busy))
    }
}

fn print(what: &str, h: &Histogram<u64>) {
    eprintln!(
        "ticker lateness {what:>30}: ticks={} p50={}us p99={}us p999={}us max={}us",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
}

pub(crate) async fn run(args: &Args) -> Result<Lateness, String> {
    let broker = MockBroker::start(1).map_err(|e| format!("mock broker: {e}"))?;
    broker
        .create_topic(TOPIC, PARTITIONS)
        .and_then(|()| broker.create_topic(CONTROL, 1))
        .map_err(|e| e.to_string())?;
    let config = broker.client_config();
    let propagator = Propagator::new(LaneSet::new([GRAY]));
    let producer: FutureProducer = config.create().map_err(|e| e.to_string())?;
    let setup = Setup {
        producer: LaneProducer::new(producer, propagator.clone()),
        config,
        propagator,
    };
    let base = setup
        .consumer(Lane::BASE)
        .await
        .map_err(|e| e.to_string())?;
    until("join", &base, |b| b.stats().partitions == PARTITIONS as u64).await;
    let gray_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (idle, busy) = setup.phase(args, &base, gray_runtime.handle()).await?;
    let (shared_idle, shared) = setup
        .phase(args, &base, &tokio::runtime::Handle::current())
        .await?;
    let stats = base.stop().await.map_err(|e| e.to_string())?;
    gray_runtime.shutdown_background();
    print("idle", &idle);
    print("handing over", &busy);
    print("idle (gray on this runtime)", &shared_idle);
    print("handing over (gray on this runtime)", &shared);
    Ok(Lateness {
        grants: stats.grants,
        releases: stats.releases,
        idle_p99_us: idle.value_at_quantile(0.99),
        idle_max_us: idle.max(),
        p99_us: busy.value_at_quantile(0.99),
        max_us: busy.max(),
        shared_p99_us: shared.value_at_quantile(0.99),
        shared_max_us: shared.max(),
    })
}
