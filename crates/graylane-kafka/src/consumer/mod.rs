//! Lane-aware consumers: a lane's consumers process only its messages, base processes base
//! messages and those of every lane without a live consumer, and the switch between them is
//! exact. The protocol is in `docs/kafka-lanes.md`; its decisions are in `handover/`, with
//! their model test.
//!
//! - `builder.rs`: the public builder and how a consumer starts;
//! - `run.rs`: the loop (records, ticks, stop) and what both roles share;
//! - `base.rs`, `lane.rs`: each role's decisions, grants, releases and heartbeats;
//! - `rebalance.rs`: librdkafka's rebalance callbacks; `partition.rs`: per-partition state;
//! - `stats.rs`: what a consumer did.

mod base;
mod builder;
mod lane;
mod partition;
mod rebalance;
mod run;
mod stats;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, Propagator};
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult};
use tokio::sync::oneshot;

pub use builder::{DEFAULT_CONTROL_TOPIC, LaneConsumerBuilder, UnknownLanes};
pub use stats::ConsumerStats;

use stats::Counters;

/// A lane-aware Kafka consumer. See [`LaneConsumerBuilder`] and `docs/kafka-lanes.md`.
#[derive(Debug)]
pub struct LaneConsumer(());

impl LaneConsumer {
    /// A builder for a consumer of the service whose base consumer group is `group`.
    /// `propagator` decides which lanes exist (and reads each message's lane).
    pub fn builder(
        config: ClientConfig,
        propagator: Propagator,
        group: impl Into<String>,
    ) -> LaneConsumerBuilder {
        LaneConsumerBuilder {
            config,
            propagator,
            group: group.into(),
            lane: Lane::BASE,
            topics: Vec::new(),
            control_topic: DEFAULT_CONTROL_TOPIC.to_owned(),
            lane_groups: HashMap::new(),
            timing: crate::Timing::default(),
            unknown_lanes: UnknownLanes::default(),
        }
    }

    /// A builder whose lanes and lane groups (`data.kafka_group_suffix`) come from `spec`.
    pub fn from_spec(
        spec: &LaneSpec,
        config: ClientConfig,
        group: impl Into<String>,
    ) -> LaneConsumerBuilder {
        let group = group.into();
        let mut builder = LaneConsumer::builder(config, spec.propagator(), group.clone());
        for lane in spec.lane_set().non_base() {
            let suffix = spec.data_names(lane).kafka_group_suffix;
            builder = builder.lane_group(lane, format!("{group}{suffix}"));
        }
        builder
    }
}

/// A consumer's counts, read from anywhere ([`ConsumerHandle::watch`]).
#[derive(Clone, Debug)]
pub struct ConsumerWatch {
    counters: Arc<Counters>,
    lane: Lane,
    instance: String,
}

impl ConsumerWatch {
    /// What the consumer has done so far (or did, once stopped).
    pub fn stats(&self) -> ConsumerStats {
        self.counters.snapshot()
    }

    /// The lane the consumer runs in.
    pub fn lane(&self) -> Lane {
        self.lane
    }

    /// The consumer's instance id in the control topic.
    pub fn instance(&self) -> &str {
        &self.instance
    }
}

/// A running [`LaneConsumer`].
#[derive(Debug)]
pub struct ConsumerHandle {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<KafkaResult<()>>,
    counters: Arc<Counters>,
    crashed: Arc<AtomicBool>,
    lane: Lane,
    instance: String,
}

impl ConsumerHandle {
    /// What this consumer has done so far.
    pub fn stats(&self) -> ConsumerStats {
        self.counters.snapshot()
    }

    /// A reader of this consumer's counts that outlives the handle (after a stop, it keeps
    /// the final counts, and no partitions): what a metrics callback holds.
    pub fn watch(&self) -> ConsumerWatch {
        ConsumerWatch {
            counters: self.counters.clone(),
            lane: self.lane,
            instance: self.instance.clone(),
        }
    }

    /// The lane this consumer runs in.
    pub fn lane(&self) -> Lane {
        self.lane
    }

    /// This instance's id in the control topic.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Stops gracefully: finishes the message in hand, commits, and (for a lane consumer)
    /// tells base, which takes the lane's messages over from exactly the committed offsets.
    pub async fn stop(mut self) -> KafkaResult<ConsumerStats> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.map_err(|_| KafkaError::Canceled)??;
        let stats = self.counters.snapshot();
        self.counters.stopped();
        Ok(stats)
    }

    /// Stops without committing or telling anyone, as a crash would (for tests and demos).
    /// Base takes over when the lease and grace have passed; what this consumer processed
    /// since its last commit is processed again.
    ///
    /// The client is dropped, and librdkafka leaves the group as it closes: the group
    /// rebalances at once, where a real crash keeps its partitions until the broker's session
    /// timeout. To test that, kill the process.
    pub fn kill(self) -> ConsumerStats {
        // Dropping the consumer still closes it cleanly, and the revoke on close would commit:
        // a crash does not.
        self.crashed.store(true, Ordering::Release);
        self.task.abort();
        let stats = self.counters.snapshot();
        self.counters.stopped();
        stats
    }
}
