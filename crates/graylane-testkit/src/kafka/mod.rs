//! Kafka brokers for tests: librdkafka's mock cluster in process ([`MockBroker`]), and the real
//! Apache Kafka brokers the environment names ([`TestBroker`]).
//!
//! A Kafka test is written once, against a [`TestBroker`], and [`kafka_tests!`](crate::kafka_tests)
//! runs it on each broker in the same test run:
//!
//! - `mock`: a mock cluster the test starts itself;
//! - `kafka`: the broker in `GRAYLANE_KAFKA_BROKERS` (graylane's `scripts/kafka up` starts one,
//!   with settings that make tests fast);
//! - and, for the tests that say so, `stock`: the broker in `GRAYLANE_KAFKA_STOCK_BROKERS`
//!   (`scripts/kafka up --stock`), with Apache Kafka's own group settings and clients that set
//!   nothing beyond the bootstrap address, so what users get out of the box is what is tested.
//!
//! A test that crashes and restarts its broker starts one of its own: [`DedicatedBroker`].
//!
//! A variable that is set and non-empty names a broker; unset or empty means "mock only", and
//! the real-broker tests pass without running, saying so. Under `CI=true` they fail instead: CI
//! cannot go green on the mock alone.

mod dedicated;
mod mock;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer};

pub use dedicated::DedicatedBroker;
pub use mock::MockBroker;

/// The variable naming the real broker for the main run.
pub const BROKERS_VAR: &str = "GRAYLANE_KAFKA_BROKERS";
/// The variable naming the real broker with stock group settings.
pub const STOCK_BROKERS_VAR: &str = "GRAYLANE_KAFKA_STOCK_BROKERS";

/// Which broker a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// librdkafka's mock cluster, started by the test.
    Mock,
    /// The real broker in `GRAYLANE_KAFKA_BROKERS`, with test-friendly settings.
    Kafka,
    /// The real broker in `GRAYLANE_KAFKA_STOCK_BROKERS`, with stock settings.
    Stock,
}

impl Flavor {
    /// `mock`, `kafka` or `stock`.
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::Mock => "mock",
            Flavor::Kafka => "kafka",
            Flavor::Stock => "stock",
        }
    }
}

/// A broker a test runs on: a mock it owns, or a real one the environment names.
pub struct TestBroker {
    flavor: Flavor,
    bootstrap: String,
    mock: Option<MockBroker>,
}

impl std::fmt::Debug for TestBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestBroker")
            .field("flavor", &self.flavor)
            .field("bootstrap", &self.bootstrap)
            .finish()
    }
}

impl From<MockBroker> for TestBroker {
    /// A test broker on `mock` (say, a cluster of several brokers for fault injection).
    fn from(mock: MockBroker) -> TestBroker {
        TestBroker {
            flavor: Flavor::Mock,
            bootstrap: mock.bootstrap(),
            mock: Some(mock),
        }
    }
}

impl TestBroker {
    /// The mock cluster, if this is one (for fault injection).
    pub fn as_mock(&self) -> Option<&MockBroker> {
        self.mock.as_ref()
    }

    /// A fresh one-broker mock cluster.
    pub fn mock() -> TestBroker {
        TestBroker::from(MockBroker::start(1).expect("start a mock broker"))
    }

    /// The real broker `GRAYLANE_KAFKA_BROKERS` names, else a new mock: for benchmarks and
    /// demos that run on whichever there is (never fails under `CI=true`).
    pub fn from_env() -> TestBroker {
        match std::env::var(BROKERS_VAR) {
            Ok(bootstrap) if !bootstrap.trim().is_empty() => TestBroker {
                flavor: Flavor::Kafka,
                bootstrap: bootstrap.trim().to_owned(),
                mock: None,
            },
            _ => TestBroker::mock(),
        }
    }

    /// The broker of `flavor`: a new mock, or the real broker its variable names (`None` when
    /// it names none, or a panic under `CI=true`).
    pub fn get(flavor: Flavor) -> Option<TestBroker> {
        let var = match flavor {
            Flavor::Mock => return Some(TestBroker::mock()),
            Flavor::Kafka => BROKERS_VAR,
            Flavor::Stock => STOCK_BROKERS_VAR,
        };
        match std::env::var(var) {
            Ok(bootstrap) if !bootstrap.trim().is_empty() => Some(TestBroker {
                flavor,
                bootstrap: bootstrap.trim().to_owned(),
                mock: None,
            }),
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
                "CI=true and {var} names no broker: start one with `scripts/kafka up{}` and \
                 export the line it prints",
                if flavor == Flavor::Stock {
                    " --stock"
                } else {
                    ""
                }
            ),
            _ => {
                eprintln!(
                    "skipped on the {} broker: {var} is not set",
                    flavor.as_str()
                );
                None
            }
        }
    }

    /// Which broker this is.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Whether this is a real broker (not the mock).
    pub fn is_real(&self) -> bool {
        self.flavor != Flavor::Mock
    }

    /// The bootstrap address.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Client settings for this broker. On the mock and the test broker: prompt fetches
    /// (`fetch.wait.max.ms=10`, `linger.ms=0`) and a short group session (1.5 s). On the stock
    /// broker: the bootstrap address and nothing else.
    pub fn client_config(&self) -> ClientConfig {
        match (&self.mock, self.flavor) {
            (Some(mock), _) => mock.client_config(),
            (None, Flavor::Stock) => {
                let mut config = ClientConfig::new();
                config.set("bootstrap.servers", &self.bootstrap);
                config
            }
            (None, _) => {
                let mut config = ClientConfig::new();
                config
                    .set("bootstrap.servers", &self.bootstrap)
                    .set("fetch.wait.max.ms", "10")
                    .set("linger.ms", "0")
                    .set("session.timeout.ms", "1500")
                    .set("heartbeat.interval.ms", "200");
                config
            }
        }
    }

    /// Creates `topic` with `partitions` partitions and waits until every partition has a
    /// leader. On a real broker this is the Admin API; an existing topic is an error (tests use
    /// [`unique`](crate::services::unique) names).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> KafkaResult<()> {
        self.create_topic_with(topic, partitions, &[])
    }

    /// Like [`create_topic`](Self::create_topic), with topic settings (`("cleanup.policy",
    /// "compact")`, …) on a real broker; the mock ignores them.
    pub fn create_topic_with(
        &self,
        topic: &str,
        partitions: i32,
        settings: &[(&str, &str)],
    ) -> KafkaResult<()> {
        let new = settings.iter().fold(
            NewTopic::new(topic, partitions, TopicReplication::Fixed(1)),
            |new, (key, value)| new.set(key, value),
        );
        self.create(new)
    }

    /// Creates a control topic for graylane's lane consumers: one partition, compacted, with
    /// hourly segments (the values of graylane-kafka's `CONTROL_TOPIC_SETTINGS`, which this
    /// crate does not depend on).
    pub fn create_control_topic(&self, topic: &str) -> KafkaResult<()> {
        self.create_topic_with(
            topic,
            1,
            &[("cleanup.policy", "compact"), ("segment.ms", "3600000")],
        )
    }

    fn create(&self, new: NewTopic<'_>) -> KafkaResult<()> {
        if let Some(mock) = &self.mock {
            return mock.create_topic(new.name, new.num_partitions);
        }
        let admin: AdminClient<DefaultClientContext> = self.client_config().create()?;
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for result in block_on(admin.create_topics([&new], &options))? {
            result.map_err(|(_, code)| KafkaError::AdminOp(code))?;
        }
        self.await_leaders(new.name, new.num_partitions)
    }

    /// A created topic's partitions get their leaders a moment later.
    fn await_leaders(&self, topic: &str, partitions: i32) -> KafkaResult<()> {
        let client: BaseProducer = self.client_config().create()?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let metadata = client
                .client()
                .fetch_metadata(Some(topic), Duration::from_secs(5))?;
            let ready = metadata.topics().iter().any(|t| {
                t.name() == topic
                    && t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && t.partitions().iter().all(|p| p.leader() >= 0)
            });
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(KafkaError::AdminOp(RDKafkaErrorCode::LeaderNotAvailable));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Drives an rdkafka admin future to completion on this thread (librdkafka's own threads do the
/// work; the future only waits for their answer).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

/// Runs each `async fn name(broker: TestBroker)` of the calling module on every broker: a
/// module `name` with one `#[tokio::test]` per broker, `mock` and `kafka` (so `name::mock` and
/// `name::kafka` in the test list); after `stock:`, a `stock` test too, for what must hold on
/// Apache Kafka's own group settings with graylane's default timing.
///
/// ```no_run
/// use graylane_testkit::kafka::TestBroker;
///
/// async fn records_arrive(broker: TestBroker) {
///     broker.create_topic(&graylane_testkit::services::unique("events"), 4).unwrap();
/// }
///
/// async fn defaults_work(broker: TestBroker) {
///     let _ = broker.client_config();
/// }
///
/// graylane_testkit::kafka_tests!(records_arrive);
/// graylane_testkit::kafka_tests!(stock: defaults_work);
/// # fn main() {}
/// ```
///
/// The tests run on tokio's multi-threaded runtime with two workers: the calling crate needs
/// tokio with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! kafka_tests {
    (stock: $($name:ident),+ $(,)?) => {$(
        $crate::kafka_tests!(@mod $name [mock Mock] [kafka Kafka] [stock Stock]);
    )+};
    ($($name:ident),+ $(,)?) => {$(
        $crate::kafka_tests!(@mod $name [mock Mock] [kafka Kafka]);
    )+};
    (@mod $name:ident $([$test:ident $flavor:ident])+) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let flavor = $crate::kafka::Flavor::$flavor;
                    if let Some(broker) = $crate::kafka::TestBroker::get(flavor) {
                        super::$name(broker).await;
                    }
                }
            )+
        }
    };
}
