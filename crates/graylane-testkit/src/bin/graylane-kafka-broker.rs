//! Hosts a librdkafka mock broker on loopback and prints its bootstrap address, for demos and
//! local runs without a JVM Kafka. Runs until its standard input closes or it is killed.
//!
//! `cargo run -p graylane-testkit --features kafka --bin graylane-kafka-broker -- [brokers] [topic:partitions ...]`

use std::io::Read;
use std::process::ExitCode;

use graylane_testkit::kafka::MockBroker;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let brokers: i32 = match args.next().map(|a| a.parse()) {
        None => 1,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: graylane-kafka-broker [brokers] [topic:partitions ...]");
            return ExitCode::from(2);
        }
    };
    let broker = match MockBroker::start(brokers) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot start the mock broker: {e}");
            return ExitCode::FAILURE;
        }
    };
    for spec in args {
        let (topic, partitions) = spec.split_once(':').unwrap_or((&spec, "1"));
        let created = partitions
            .parse()
            .map_err(|_| format!("{spec}: partitions must be a number"))
            .and_then(|p| {
                broker
                    .create_topic(topic, p)
                    .map_err(|e| format!("{spec}: {e}"))
            });
        if let Err(e) = created {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    }
    println!("{}", broker.bootstrap());
    // Keep serving until stdin closes (the parent went away) or the process is killed.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    ExitCode::SUCCESS
}
