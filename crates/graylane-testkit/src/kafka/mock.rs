//! librdkafka's mock cluster as a test broker.
//!
//! A real Kafka-protocol broker inside librdkafka, reachable over TCP on loopback, so tests and
//! the demo need no JVM. Create topics with [`MockBroker::create_topic`] (the Admin API's create
//! hangs on the mock); clients should set `fetch.wait.max.ms` low (~10) and `linger.ms=0`, or
//! the mock holds fetches for 500 ms.

use rdkafka::producer::{BaseProducer, Producer};

/// A running mock broker. Stops when dropped.
pub struct MockBroker {
    // The mock cluster belongs to this client (`test.mock.num.brokers`), which is how its
    // group settings can be reached.
    client: BaseProducer,
}

impl std::fmt::Debug for MockBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockBroker")
            .field("bootstrap", &self.bootstrap())
            .finish()
    }
}

impl MockBroker {
    /// Starts a mock cluster of `brokers` brokers on loopback, with no initial rebalance delay
    /// for consumer groups (a real broker's default is 3 s).
    pub fn start(brokers: i32) -> rdkafka::error::KafkaResult<MockBroker> {
        let client: BaseProducer = rdkafka::ClientConfig::new()
            .set("test.mock.num.brokers", brokers.to_string())
            .create()?;
        no_rebalance_delay(&client);
        Ok(MockBroker { client })
    }

    /// The mock cluster, for fault injection: partition leaders, brokers down and up, group
    /// coordinators, request errors (rdkafka's [`MockCluster`](rdkafka::mocking::MockCluster)).
    pub fn cluster(
        &self,
    ) -> rdkafka::mocking::MockCluster<'_, rdkafka::producer::DefaultProducerContext> {
        self.client
            .client()
            .mock_cluster()
            .expect("created with test.mock.num.brokers")
    }

    /// The bootstrap address (`127.0.0.1:port,...`).
    pub fn bootstrap(&self) -> String {
        self.cluster().bootstrap_servers()
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> rdkafka::error::KafkaResult<()> {
        self.cluster().create_topic(topic, partitions, 1)
    }

    /// Client settings that make the mock answer promptly (see the module docs), on top of the
    /// bootstrap address.
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config
            .set("bootstrap.servers", self.bootstrap())
            .set("fetch.wait.max.ms", "10")
            .set("linger.ms", "0")
            .set("session.timeout.ms", "1500")
            .set("heartbeat.interval.ms", "200");
        config
    }
}

/// rdkafka exposes no setter for the mock's group rebalance delay; librdkafka has one.
// The crate denies `unsafe`; this is its one exception.
#[allow(unsafe_code)]
fn no_rebalance_delay(client: &BaseProducer) {
    use rdkafka_sys as rdsys;
    // SAFETY: `client` is a live handle created with `test.mock.num.brokers`, so it owns a mock
    // cluster (checked non-null) that lives as long as the handle, which outlives this call.
    unsafe {
        let cluster = rdsys::rd_kafka_handle_mock_cluster(client.client().native_ptr());
        if !cluster.is_null() {
            rdsys::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0);
        }
    }
}
