//! librdkafka's mock cluster as a test broker (feature `testing`).
//!
//! A real Kafka-protocol broker inside librdkafka, reachable over TCP on loopback, so tests and
//! the demo need no JVM. Create topics with [`MockBroker::create_topic`] (the Admin API's create
//! hangs on the mock); clients should set `fetch.wait.max.ms` low (~10) and `linger.ms=0`, or
//! the mock holds fetches for 500 ms.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A running mock broker. Stops when dropped.
pub struct MockBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl std::fmt::Debug for MockBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockBroker")
            .field("bootstrap", &self.bootstrap())
            .finish()
    }
}

impl MockBroker {
    /// Starts a mock cluster of `brokers` brokers on loopback.
    pub fn start(brokers: i32) -> rdkafka::error::KafkaResult<MockBroker> {
        Ok(MockBroker {
            cluster: MockCluster::new(brokers)?,
        })
    }

    /// The bootstrap address (`127.0.0.1:port,...`).
    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> rdkafka::error::KafkaResult<()> {
        self.cluster.create_topic(topic, partitions, 1)
    }

    /// Client settings that make the mock answer promptly (see the module docs), on top of the
    /// bootstrap address.
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config
            .set("bootstrap.servers", self.bootstrap())
            .set("fetch.wait.max.ms", "10")
            .set("linger.ms", "0")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "200");
        config
    }
}
