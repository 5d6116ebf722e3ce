//! A closed-loop load driver: `concurrency` workers share a request budget; every request's
//! latency goes into a histogram. Bounded in count and in time.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::cpu::process_cpu;

/// What one load run measured.
pub(crate) struct Sample {
    pub(crate) requests: u64,
    pub(crate) elapsed: Duration,
    /// CPU time this process used meanwhile (closed-loop runs only, which run alone).
    pub(crate) cpu: Duration,
    pub(crate) latency_us: Histogram<u64>,
}

impl Sample {
    pub(crate) fn empty() -> Sample {
        Sample {
            requests: 0,
            elapsed: Duration::ZERO,
            cpu: Duration::ZERO,
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
        }
    }

    pub(crate) fn merge(&mut self, other: &Sample) {
        self.requests += other.requests;
        self.elapsed += other.elapsed;
        self.cpu += other.cpu;
        self.latency_us.add(&other.latency_us).expect("same bounds");
    }

    pub(crate) fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// This process's CPU time per request, in nanoseconds.
    pub(crate) fn cpu_per_request_ns(&self) -> f64 {
        self.cpu.as_nanos() as f64 / self.requests.max(1) as f64
    }

    pub(crate) fn p(&self, q: f64) -> u64 {
        self.latency_us.value_at_quantile(q)
    }
}

/// Runs `requests` calls of `call` on `concurrency` workers, stopping early at `max_time`.
pub(crate) async fn drive<F, Fut>(
    requests: usize,
    concurrency: usize,
    max_time: Duration,
    call: F,
) -> Sample
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    // The workers' histograms are allocated (and later merged) outside the measured window:
    // zeroing them is ~100 KB of fresh pages each, a noticeable share of a short round.
    let samples: Vec<Sample> = (0..concurrency).map(|_| Sample::empty()).collect();
    let (started, cpu) = (Instant::now(), process_cpu());
    let deadline = started + max_time;
    let workers: Vec<_> = samples
        .into_iter()
        .map(|mut sample| {
            let (next, call) = (next.clone(), call.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < requests && Instant::now() < deadline {
                    let t = Instant::now();
                    if let Err(e) = call().await {
                        panic!("benchmark request failed: {e}");
                    }
                    sample
                        .latency_us
                        .saturating_record(t.elapsed().as_micros() as u64);
                    sample.requests += 1;
                }
                sample
            })
        })
        .collect();
    let mut done = Vec::with_capacity(workers.len());
    for w in workers {
        done.push(w.await.expect("worker panicked"));
    }
    let (elapsed, cpu) = (started.elapsed(), process_cpu() - cpu);
    let mut total = Sample::empty();
    for sample in &done {
        total.merge(sample);
    }
    total.elapsed = elapsed;
    total.cpu = cpu;
    total
}

/// Paced load: one call every `1/rate` seconds (in 1 ms batches, tokio's timer resolution) for
/// `duration`, each timed from its actual start. At a rate well below capacity nothing queues,
/// so the latencies are the per-request cost, not the queue.
pub(crate) async fn drive_rate<F, Fut>(rate: u64, duration: Duration, call: F) -> Sample
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let per_tick = (rate / 1000).max(1);
    let ticks = duration.as_millis() as u64 * rate.min(1000) / 1000;
    let mut interval = tokio::time::interval(Duration::from_millis(1000 / rate.clamp(1, 1000)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..ticks {
        interval.tick().await;
        for _ in 0..per_tick {
            let call = call.clone();
            handles.push(tokio::spawn(async move {
                let t = Instant::now();
                call().await.map(|()| t.elapsed())
            }));
        }
    }
    let mut sample = Sample::empty();
    for h in handles {
        let took = h
            .await
            .expect("request task panicked")
            .unwrap_or_else(|e| panic!("benchmark request failed: {e}"));
        sample.latency_us.saturating_record(took.as_micros() as u64);
        sample.requests += 1;
    }
    sample.elapsed = started.elapsed();
    sample
}

/// One-second paced rounds per variant in the latency phase, at most.
const LATENCY_ROUNDS: usize = 5;

/// The result of a side-by-side run.
pub(crate) struct Comparison {
    /// Median over rounds of (with throughput / without throughput), at saturation.
    pub(crate) ratio: f64,
    /// p99 latency with graylane minus without, in microseconds, at a fixed sub-saturation rate.
    pub(crate) p99_added_us: f64,
}

/// The labels of a graylane-vs-plain run.
pub(crate) const WITHOUT_WITH: [&str; 2] = ["without graylane", "with graylane   "];

/// Compares `without` and `with` in one process:
///
/// 1. throughput at saturation (closed loop, `concurrency` in flight): `rounds` paired rounds,
///    alternating which variant goes first; the ratio is the median of the per-round ratios,
///    which is robust to a noisy neighbour stealing one round. Rounds are short (tens of ms)
///    and many, so that both variants of a pair see the same machine;
/// 2. latency at a fixed rate of a fifth of the measured capacity, alternating 1-second rounds
///    (at most [`LATENCY_ROUNDS`] each); latency under saturation would only measure queueing.
///
/// The variants are printed as `labels`: [`WITHOUT_WITH`], or both graylane's (a feature off
/// and on).
pub(crate) async fn side_by_side<A, AF, B, BF>(
    name: &str,
    labels: [&str; 2],
    rounds: usize,
    per_round: usize,
    concurrency: usize,
    without: A,
    with: B,
) -> Comparison
where
    A: Fn() -> AF + Clone + Send + Sync + 'static,
    AF: Future<Output = Result<(), String>> + Send + 'static,
    B: Fn() -> BF + Clone + Send + Sync + 'static,
    BF: Future<Output = Result<(), String>> + Send + 'static,
{
    let max = Duration::from_secs(60);
    // Warm up both paths (connections, allocator, caches).
    let warm_up = per_round.max(5_000);
    drive(warm_up, concurrency, max, without.clone()).await;
    drive(warm_up, concurrency, max, with.clone()).await;

    let (mut a, mut b) = (Sample::empty(), Sample::empty());
    let mut ratios = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let (ra, rb) = if round % 2 == 0 {
            let ra = drive(per_round, concurrency, max, without.clone()).await;
            (ra, drive(per_round, concurrency, max, with.clone()).await)
        } else {
            let rb = drive(per_round, concurrency, max, with.clone()).await;
            (
                drive(per_round, concurrency, max, without.clone()).await,
                rb,
            )
        };
        ratios.push(rb.throughput() / ra.throughput());
        a.merge(&ra);
        b.merge(&rb);
    }
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    for (label, s) in [(labels[0], &a), (labels[1], &b)] {
        println!(
            "{name} saturation {label}: {:>8.0} req/s  p50={}us p99={}us  process CPU {:.0} ns/request  ({} requests, {concurrency} in flight)",
            s.throughput(),
            s.p(0.5),
            s.p(0.99),
            s.cpu_per_request_ns(),
            s.requests
        );
    }
    println!(
        "{name} process CPU per request, with / without: {:.3} ({:+.0} ns)",
        b.cpu_per_request_ns() / a.cpu_per_request_ns(),
        b.cpu_per_request_ns() - a.cpu_per_request_ns()
    );
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name} per-round throughput ratios over {rounds} rounds: min {:.3}  p10 {:.3}  median {:.3}  p90 {:.3}  max {:.3}",
        at(0.0),
        at(0.1),
        at(0.5),
        at(0.9),
        at(1.0)
    );

    let rate = ((a.throughput() / 5.0) as u64).max(100);
    let (mut la, mut lb) = (Sample::empty(), Sample::empty());
    for round in 0..rounds.min(LATENCY_ROUNDS) {
        let second = Duration::from_secs(1);
        if round % 2 == 0 {
            la.merge(&drive_rate(rate, second, without.clone()).await);
            lb.merge(&drive_rate(rate, second, with.clone()).await);
        } else {
            lb.merge(&drive_rate(rate, second, with.clone()).await);
            la.merge(&drive_rate(rate, second, without.clone()).await);
        }
    }
    for (label, s) in [(labels[0], &la), (labels[1], &lb)] {
        println!(
            "{name} at {rate} req/s {label}: p50={}us p90={}us p99={}us p999={}us  ({} requests)",
            s.p(0.5),
            s.p(0.9),
            s.p(0.99),
            s.p(0.999),
            s.requests
        );
    }
    Comparison {
        ratio,
        p99_added_us: lb.p(0.99) as f64 - la.p(0.99) as f64,
    }
}
