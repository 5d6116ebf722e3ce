//! Side-by-side benchmarks: each scenario runs the same workload without and with graylane in
//! one process, alternating rounds, and prints its figures; the last line is the scenario's
//! summary in `key=value` form.
//!
//! ```text
//! cargo run --release -p graylane-bench -- http [--requests N] [--rounds R] [--concurrency C]
//! cargo run --release -p graylane-bench -- grpc
//! cargo run --release -p graylane-bench -- redis
//! cargo run --release -p graylane-bench -- sql
//! cargo run --release -p graylane-bench -- sql-tx
//! cargo run --release -p graylane-bench -- kafka
//! cargo run --release -p graylane-bench -- handover
//! cargo run --release -p graylane-bench -- mirror
//! cargo run --release -p graylane-bench -- kafka-scale [--hours H]
//! ```

mod cpu;
mod grpc;
mod handover;
mod http;
mod kafka;
mod kafka_scale;
mod load;
mod mirror;
mod redis;
mod sql;

use std::process::ExitCode;

/// Load parameters shared by the scenarios.
pub(crate) struct Args {
    requests: usize,
    rounds: usize,
    concurrency: usize,
    /// Record payload size in bytes (kafka).
    payload: usize,
    /// Runtime worker threads; 1 is a current-thread runtime, `None` one per core.
    threads: Option<usize>,
    /// Hours of heartbeats to pre-fill a control topic with (kafka-scale).
    hours: Option<u64>,
}

const USAGE: &str =
    "usage: graylane-bench <http|grpc|redis|sql|sql-tx|kafka|kafka-scale|handover|mirror> [--requests N] [--rounds R] [--concurrency C] [--payload B]

  http   the same axum handler over a hyper client, without vs. with graylane's layers
  grpc   the same tonic unary method over a channel, without vs. with graylane's layers
  redis  the same GET/SET mix, raw redis-rs vs. LaneRedis in a gray lane (needs REDIS_URL)
  sql    the same SELECT/INSERT mix, plain PgPool vs. lane-routed pools (needs DATABASE_URL)
  sql-tx the same mix in a transaction per request, plain BEGIN vs. LaneTransactions (BEGIN and
         SET LOCAL search_path in one round trip, as behind a transaction pooler)
  kafka  produce and consume, plain rdkafka vs. LaneProducer/LaneConsumer, on the broker in
         GRAYLANE_KAFKA_BROKERS when set and non-empty, else on a mock broker
  kafka-scale  the control topic at 64 partitions × 8 lanes × 3 instances per lane: records
         written per second, what a start reads, on a fresh topic and on one pre-filled with
         --hours of heartbeats (default 168 on a real broker, 1 on the mock); not a comparison,
         and long (minutes): not a CI step
  handover  how late a 1 ms ticker on base's runtime fires while base grants partitions to a gray
         consumer and takes them back vs. the same time with no handover; the gray consumer on
         a runtime of its own, then on base's (--rounds handovers each, default 20, of
         --requests records, default 20; --threads default 1)
  mirror the same JSON handler with 10% mirrored by MirrorLayer, the copies' answers discarded
         vs. compared with the primary's (noise copies included)

  --requests N     requests per round and variant (default 2000; kafka: records, 50000)
  --rounds R       paired rounds per phase (default 101; redis 301; kafka 15); the ratio is the median
                   of the per-round ratios. Many short rounds, alternating, let both variants
                   see the same neighbours on a shared machine.
  --concurrency C  concurrent requests in flight (default 32; kafka keeps 1000 records in flight)
  --payload B      kafka record payload in bytes (default 100)
  --hours H        kafka-scale: hours of heartbeats in the pre-filled control topic
  --threads T      the benchmark's runtime threads; 1 is a current-thread runtime (default:
                   redis 1, so that the local Redis server keeps a core of its own and the
                   client's cost is what is measured; the others one per core)";

/// The defaults of `--requests` and `--rounds` for `scenario`.
fn defaults(scenario: &str) -> (usize, usize) {
    match scenario {
        "kafka" => (50_000, 15),
        "handover" => (20, 20),
        // A Redis round is ~7 ms: three times the rounds for a steadier median, ~4 s in all.
        "redis" => (2_000, 301),
        _ => (2_000, 101),
    }
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<(String, Args), String> {
    let scenario = argv.next().ok_or("no scenario given")?;
    let (requests, rounds) = defaults(&scenario);
    let mut args = Args {
        requests,
        rounds,
        concurrency: 32,
        payload: 100,
        threads: matches!(scenario.as_str(), "redis" | "handover").then_some(1),
        hours: None,
    };
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or(format!("{flag} needs a value"))?;
        let n: usize = value
            .parse()
            .map_err(|_| format!("{flag}: {value:?} is not a number"))?;
        if n == 0 {
            return Err(format!("{flag} must be positive"));
        }
        match flag.as_str() {
            "--requests" => args.requests = n,
            "--rounds" => args.rounds = n,
            "--concurrency" => args.concurrency = n,
            "--payload" => args.payload = n,
            "--threads" => args.threads = Some(n),
            "--hours" => args.hours = Some(n as u64),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok((scenario, args))
}

fn main() -> ExitCode {
    let (scenario, args) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut builder = match args.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let summary = match scenario.as_str() {
        "http" | "grpc" => {
            let c = if scenario == "http" {
                runtime.block_on(http::run(&args))
            } else {
                runtime.block_on(grpc::run(&args))
            };
            format!(
                "{scenario} ratio={:.3} p99_added_us={:.0}",
                c.ratio, c.p99_added_us
            )
        }
        "redis" => match runtime.block_on(redis::run(&args)) {
            Ok(c) => format!("redis ratio={:.3}", c.ratio),
            Err(e) => {
                eprintln!("redis: {e}");
                return ExitCode::FAILURE;
            }
        },
        "sql" => match runtime.block_on(sql::run(&args)) {
            Ok(c) => format!("sql ratio={:.3}", c.ratio),
            Err(e) => {
                eprintln!("sql: {e}");
                return ExitCode::FAILURE;
            }
        },
        "sql-tx" => match runtime.block_on(sql::run_tx(&args)) {
            Ok(c) => format!("sql-tx ratio={:.3}", c.ratio),
            Err(e) => {
                eprintln!("sql-tx: {e}");
                return ExitCode::FAILURE;
            }
        },
        "kafka" => match runtime.block_on(kafka::run(&args)) {
            Ok(r) => format!(
                "kafka consume_ratio={:.3} produce_ratio={:.3} produce_own_ratio={:.3}",
                r.consume.throughput, r.produce.throughput, r.produce_own.throughput
            ),
            Err(e) => {
                eprintln!("kafka: {e}");
                return ExitCode::FAILURE;
            }
        },
        "kafka-scale" => match runtime.block_on(kafka_scale::run(args.hours)) {
            Ok(figures) => {
                let mut line = String::from("kafka-scale");
                for s in &figures {
                    line.push_str(&format!(
                        " {0}_records_per_s={1:.1} {0}_start_read={2} {0}_start_read_ms={3}",
                        s.label,
                        s.records_per_s,
                        s.start_read,
                        s.start_read_time.as_millis()
                    ));
                }
                line
            }
            Err(e) => {
                eprintln!("kafka-scale: {e}");
                return ExitCode::FAILURE;
            }
        },
        "mirror" => {
            let (c, compared) = runtime.block_on(mirror::run(&args));
            if compared == 0 {
                eprintln!("mirror: nothing was compared; the figures would not measure comparing");
                return ExitCode::FAILURE;
            }
            format!(
                "mirror ratio={:.3} p99_added_us={:.0}",
                c.ratio, c.p99_added_us
            )
        }
        "handover" => match runtime.block_on(handover::run(&args)) {
            Ok(l) => format!(
                "handover grants={} releases={} idle_p99_us={} idle_max_us={} p99_us={} max_us={} \
                 shared_p99_us={} shared_max_us={}",
                l.grants,
                l.releases,
                l.idle_p99_us,
                l.idle_max_us,
                l.p99_us,
                l.max_us,
                l.shared_p99_us,
                l.shared_max_us
            ),
            Err(e) => {
                eprintln!("handover: {e}");
                return ExitCode::FAILURE;
            }
        },
        other => {
            eprintln!("unknown scenario {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    println!("{summary}");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<(String, Args), String> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn parses_flags_and_refuses_nonsense() {
        let (scenario, a) =
            args("http --requests 10 --rounds 2 --concurrency 3 --payload 7 --threads 4").unwrap();
        assert_eq!(
            (
                scenario.as_str(),
                a.requests,
                a.rounds,
                a.concurrency,
                a.payload,
                a.threads
            ),
            ("http", 10, 2, 3, 7, Some(4))
        );
        assert_eq!(args("redis").unwrap().1.threads, Some(1));
        assert_eq!(args("http").unwrap().1.threads, None);
        assert_eq!(args("kafka-scale --hours 3").unwrap().1.hours, Some(3));
        assert_eq!(args("kafka-scale").unwrap().1.hours, None);
        let (_, a) = args("kafka").unwrap();
        assert_eq!((a.requests, a.rounds), defaults("kafka"));
        assert!(args("").is_err());
        assert!(args("http --requests").is_err());
        assert!(args("http --requests x").is_err());
        assert!(args("http --requests 0").is_err());
        assert!(args("http --bogus 1").is_err());
    }

    /// A tiny run of each scenario, so the harness itself is tested (not the figures).
    #[test]
    fn scenarios_run_end_to_end() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let small = Args {
            requests: 40,
            rounds: 1,
            concurrency: 4,
            payload: 100,
            threads: None,
            hours: None,
        };
        for c in [
            rt.block_on(http::run(&small)),
            rt.block_on(grpc::run(&small)),
        ] {
            assert!(c.ratio.is_finite() && c.ratio > 0.0);
            assert!(c.p99_added_us.is_finite());
        }
        let kafka = rt.block_on(kafka::run(&small)).unwrap();
        for r in [kafka.consume, kafka.produce, kafka.produce_own] {
            assert!(r.throughput.is_finite() && r.throughput > 0.0);
            assert!(r.cpu.is_finite() && r.cpu > 0.0);
        }
    }
}
