//! Side-by-side benchmarks: each scenario runs the same workload without and with graylane in
//! one process, alternating rounds, and prints its figures; the last line is the scenario's
//! summary in `key=value` form.
//!
//! ```text
//! cargo run --release -p graylane-bench -- http [--requests N] [--rounds R] [--concurrency C]
//! cargo run --release -p graylane-bench -- grpc
//! cargo run --release -p graylane-bench -- redis
//! cargo run --release -p graylane-bench -- sql
//! cargo run --release -p graylane-bench -- kafka
//! ```

mod grpc;
mod http;
mod kafka;
mod load;
mod redis;
mod sql;

use std::process::ExitCode;

/// Load parameters shared by the scenarios.
pub(crate) struct Args {
    requests: usize,
    rounds: usize,
    concurrency: usize,
}

const USAGE: &str =
    "usage: graylane-bench <http|grpc|redis|sql|kafka> [--requests N] [--rounds R] [--concurrency C]

  http   the same axum handler over a hyper client, without vs. with graylane's layers
  grpc   the same tonic unary method over a channel, without vs. with graylane's layers
  redis  the same GET/SET mix, raw redis-rs vs. LaneRedis in a gray lane (needs REDIS_URL)
  sql    the same SELECT/INSERT mix, plain PgPool vs. lane-routed pools (needs DATABASE_URL)
  kafka  produce and consume on a mock broker, plain rdkafka vs. LaneProducer/LaneConsumer

  --requests N     requests per saturation round and variant (default 20000)
  --rounds R       paired rounds per phase (default 7; the ratio is their median)
  --concurrency C  concurrent requests in flight (default 32; kafka keeps 1000 records in flight)";

fn parse(mut argv: impl Iterator<Item = String>) -> Result<(String, Args), String> {
    let scenario = argv.next().ok_or("no scenario given")?;
    let mut args = Args {
        requests: 20_000,
        rounds: 7,
        concurrency: 32,
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
        "kafka" => match runtime.block_on(kafka::run(&args)) {
            Ok((consume, produce)) => {
                format!("kafka consume_ratio={consume:.3} produce_ratio={produce:.3}")
            }
            Err(e) => {
                eprintln!("kafka: {e}");
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
        let (scenario, a) = args("http --requests 10 --rounds 2 --concurrency 3").unwrap();
        assert_eq!(
            (scenario.as_str(), a.requests, a.rounds, a.concurrency),
            ("http", 10, 2, 3)
        );
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
        };
        for c in [
            rt.block_on(http::run(&small)),
            rt.block_on(grpc::run(&small)),
        ] {
            assert!(c.ratio.is_finite() && c.ratio > 0.0);
            assert!(c.p99_added_us.is_finite());
        }
        let (consume, produce) = rt.block_on(kafka::run(&small)).unwrap();
        assert!(consume.is_finite() && consume > 0.0 && produce.is_finite() && produce > 0.0);
    }
}
