//! A real Apache Kafka broker of one test's own, for outages: started, killed and restarted
//! through graylane's `scripts/kafka` (`up --name`, `kill`, `restart`, `stop`).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{Flavor, TestBroker};

/// A broker only this test talks to, with the test broker's settings, that the test may crash
/// ([`kill`](Self::kill)) and bring back ([`restart`](Self::restart), same port, same storage).
/// Stopped, and its storage removed, on drop.
#[derive(Debug)]
pub struct DedicatedBroker {
    name: String,
    bootstrap: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka")
}

/// Runs `scripts/kafka <args>` and returns the last line it printed; a failure is the test's.
fn run(args: &[&str]) -> String {
    let output = Command::new("bash")
        .arg(script())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/kafka");
    assert!(
        output.status.success(),
        "scripts/kafka {}: {}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout.lines().last().unwrap_or_default().trim().to_owned()
}

impl DedicatedBroker {
    /// Starts a broker named after `name` (made unique). Real brokers are what the environment
    /// asks for: `None`, saying so, when `GRAYLANE_KAFKA_BROKERS` is unset (the Kafka jars
    /// and Java are set up by `scripts/kafka up`); a panic under `CI=true`.
    pub fn start(name: &str) -> Option<DedicatedBroker> {
        // The same rule as the shared broker: set when real brokers are wanted.
        TestBroker::get(Flavor::Kafka)?;
        let name: String = crate::services::unique(name)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let bootstrap = run(&["up", "--name", &name]);
        Some(DedicatedBroker { name, bootstrap })
    }

    /// The address, `127.0.0.1:<port>` (the same after a restart).
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// A [`TestBroker`] on this broker, with the test broker's client settings.
    pub fn test_broker(&self) -> TestBroker {
        TestBroker {
            flavor: Flavor::Kafka,
            bootstrap: self.bootstrap.clone(),
            mock: None,
        }
    }

    /// SIGKILL, as in a crash: what was acknowledged is in its log files.
    pub fn kill(&self) {
        run(&["kill", &self.name]);
    }

    /// Starts it again from its storage, and waits until it answers.
    pub fn restart(&self) {
        let again = run(&["restart", &self.name]);
        assert_eq!(again, self.bootstrap, "restarted on its port");
    }
}

impl Drop for DedicatedBroker {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
