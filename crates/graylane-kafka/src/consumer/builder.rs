//! [`LaneConsumerBuilder`]: what a lane consumer is configured with, and how it starts.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use graylane_core::{Lane, LaneSet, Propagator};
use rdkafka::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::OwnedMessage;
use tokio::sync::oneshot;

use super::ConsumerHandle;
use super::base::BaseRole;
use super::lane::LaneRole;
use super::rebalance::Callbacks;
use super::run::{Core, DataConsumer, Role, Runner, Trouble, run};
use super::stats::Counters;
use crate::blocking::off_runtime;
use crate::control::Control;
use crate::timing::{CATCH_UP, Timing};

/// Builds a [`LaneConsumer`]: a service's consumer group, the lane this instance runs in,
/// the topics, and where the control records live.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use graylane_core::{Lane, LaneContext, LaneSet, Propagator};
/// use graylane_kafka::LaneConsumer;
///
/// let gray = Lane::new("gray")?;
/// let mut config = rdkafka::ClientConfig::new();
/// config.set("bootstrap.servers", "127.0.0.1:9092");
/// // This instance runs the gray version: group `fulfillment.lane.gray`, gray messages only.
/// let consumer = LaneConsumer::builder(config, Propagator::new(LaneSet::new([gray])), "fulfillment")
///     .lane(gray)
///     .topic("orders")
///     .spawn(|message| async move {
///         // The message's lane is in scope: graylane's Redis, SQL and Kafka wrappers use it.
///         assert_eq!(LaneContext::current().lane(), "gray");
///         drop(message);
///     })
///     .await?;
/// // ...
/// consumer.stop().await?; // hands the lane's partitions back to base, exactly
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct LaneConsumerBuilder {
    pub(super) config: ClientConfig,
    pub(super) propagator: Propagator,
    pub(super) group: String,
    pub(super) lane: Lane,
    pub(super) topics: Vec<String>,
    pub(super) control_topic: String,
    pub(super) lane_groups: HashMap<Lane, String>,
    pub(super) timing: Timing,
    pub(super) unknown_lanes: UnknownLanes,
}

/// What the consumers of a group do with a record whose lane mark they refuse: a lane their
/// propagator does not know (producer and consumer specs differ, during a rollout or after a
/// typo), or a malformed or oversized value.
///
/// For a request, "unknown is base" is right: it is served, by base, and nothing is stored
/// under a lane that does not exist. A record is stored work of a lane: handled as base, its
/// side effects land in base data. So by default nobody handles it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnknownLanes {
    /// Nobody in the group handles it; base counts it in [`ConsumerStats::unknown`], logs its
    /// topic, partition and offset (the 1st, 2nd, 4th, 8th … time), and commits past it. It
    /// stays in the topic, to be read again once the specs agree.
    #[default]
    Skip,
    /// Handle it as a record of this configured lane (a quarantine lane, say, whose data
    /// namespaces hold nothing else): by that lane's consumer, or by base in that lane's
    /// context when it has none. Counted in [`ConsumerStats::unknown`] too.
    Lane(Lane),
    /// Handle it as a base record, the HTTP rule: its side effects land in base data.
    Base,
}

impl std::fmt::Debug for LaneConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneConsumerBuilder")
            .field("group", &self.group)
            .field("lane", &self.lane)
            .field("topics", &self.topics)
            .field("control_topic", &self.control_topic)
            .finish_non_exhaustive()
    }
}

/// The control topic's name unless [`LaneConsumerBuilder::control_topic`] says otherwise.
pub const DEFAULT_CONTROL_TOPIC: &str = "graylane-control";

impl LaneConsumerBuilder {
    /// This instance runs in `lane` (default: base).
    pub fn lane(mut self, lane: Lane) -> Self {
        self.lane = lane;
        self
    }

    /// Consumes `topic` too.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topics.push(topic.into());
        self
    }

    /// The control topic (default [`DEFAULT_CONTROL_TOPIC`]). It must exist with one
    /// partition, compacted; several services may share it.
    pub fn control_topic(mut self, topic: impl Into<String>) -> Self {
        self.control_topic = topic.into();
        self
    }

    /// The consumer group of `lane`'s consumers (default `{group}.lane.{lane}`).
    pub fn lane_group(mut self, lane: Lane, group: impl Into<String>) -> Self {
        self.lane_groups.insert(lane, group.into());
        self
    }

    /// Reads records' lanes with `propagator` instead of the one the builder was made with:
    /// pass the process's shared one (`LaneSpec::compile()`'s) so that what this consumer
    /// refuses is counted with everything else. It should know the same lanes as the spec
    /// the builder came from.
    pub fn propagator(mut self, propagator: Propagator) -> Self {
        self.propagator = propagator;
        self
    }

    /// Liveness and commit timing; every consumer of a group should use the same.
    pub fn timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// What to do with records whose lane mark is refused (default [`UnknownLanes::Skip`]);
    /// every consumer of a group should say the same. A [`UnknownLanes::Lane`] must be a
    /// configured lane, or [`spawn`](Self::spawn) fails.
    pub fn unknown_lanes(mut self, policy: UnknownLanes) -> Self {
        self.unknown_lanes = policy;
        self
    }

    fn group_of(&self, lane: Lane) -> String {
        if lane.is_base() {
            return self.group.clone();
        }
        self.lane_groups
            .get(&lane)
            .cloned()
            .unwrap_or_else(|| format!("{}.lane.{lane}", self.group))
    }

    /// Joins the groups and starts consuming on the current Tokio runtime; `handler` runs for
    /// every message this instance owns, one at a time (per-partition order is kept), with the
    /// message's lane in scope.
    ///
    /// A lane instance first announces itself and then waits for base to grant it the
    /// partitions, so at least one base consumer of the group must be running for lane
    /// messages to be processed at all; until then they wait, nothing is lost.
    pub async fn spawn<F, Fut>(self, handler: F) -> KafkaResult<ConsumerHandle>
    where
        F: FnMut(OwnedMessage) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if self.topics.is_empty() {
            return Err(KafkaError::ClientCreation(
                "LaneConsumer: no topic to consume (call `.topic(..)`)".into(),
            ));
        }
        if !self.propagator.lanes().contains(self.lane) {
            return Err(KafkaError::ClientCreation(format!(
                "LaneConsumer: lane `{}` is not a configured lane",
                self.lane
            )));
        }
        if let UnknownLanes::Lane(l) = self.unknown_lanes
            && (l.is_base() || !self.propagator.lanes().contains(l))
        {
            return Err(KafkaError::ClientCreation(format!(
                "LaneConsumer: unknown_lanes(Lane({l})): not a configured lane (use \
                 UnknownLanes::Base for base)"
            )));
        }
        let instance = instance_id();
        let control = Control::start(
            &self.config,
            &self.group,
            &self.control_topic,
            LaneSet::clone(&self.propagator.lanes()),
            &instance,
        )
        .await?;
        control.catch_up(CATCH_UP).await?;
        let control = Arc::new(control);
        let role = if self.lane.is_base() {
            let lane_groups = self
                .propagator
                .lanes()
                .non_base()
                .map(|l| (l, self.group_of(l)))
                .collect();
            Role::Base(BaseRole::new(self.config.clone(), lane_groups))
        } else {
            Role::Lane(LaneRole::start(&control, self.lane, &instance, self.timing).await?)
        };

        let crashed = Arc::new(AtomicBool::new(false));
        let mut data = self.config.clone();
        if !self.lane.is_base() {
            // A lane group is graylane's own: it must start no later than the grant base gives
            // it, which may be below the partition's end (base lags). `latest` would lose the
            // records in between; from the start, the first record moves it up to the grant.
            data.set("auto.offset.reset", "earliest");
        }
        data.set("group.id", self.group_of(self.lane))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set_default_if_absent("auto.offset.reset", "earliest");
        // librdkafka reads the value case-insensitively.
        let incremental = match data
            .get("group.protocol")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            // KIP-848's protocol: the broker assigns, always incrementally; librdkafka refuses
            // an assignment strategy there.
            Some("consumer") => true,
            Some(p) if p != "classic" => {
                return Err(KafkaError::ClientCreation(format!(
                    "LaneConsumer: group.protocol={p} is neither `classic` nor `consumer`"
                )));
            }
            // Incremental rebalances keep the group generation valid while partitions are
            // revoked, so the revoke-time commit succeeds (an eager rebalance rejects it and
            // the next owner handles the same messages again).
            _ => {
                data.set_default_if_absent("partition.assignment.strategy", "cooperative-sticky");
                // librdkafka refuses to mix eager and cooperative assignors in one list.
                data.get("partition.assignment.strategy")
                    .is_some_and(|s| s.to_ascii_lowercase().contains("cooperative-sticky"))
            }
        };
        let callbacks = Callbacks::new(self.topics.clone(), crashed.clone(), incremental);
        let topics = self.topics.clone();
        let consumer: DataConsumer = off_runtime(move || {
            let consumer: DataConsumer = data.create_with_context(callbacks)?;
            let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
            consumer.subscribe(&topics)?;
            Ok(consumer)
        })
        .await?;

        let counters = Arc::new(Counters::default());
        let runner = Runner {
            core: Core {
                instance: instance.clone(),
                propagator: self.propagator,
                unknown_lanes: self.unknown_lanes,
                control,
                timing: self.timing,
                topics: self.topics,
                parts: BTreeMap::new(),
                counters: counters.clone(),
            },
            role,
            last_commit: Instant::now(),
            catch_up_due: false,
            trouble: Trouble::default(),
            stopping: false,
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(run(Arc::new(consumer), runner, handler, stop_rx));
        Ok(ConsumerHandle {
            stop: Some(stop_tx),
            task,
            counters,
            crashed,
            lane: self.lane,
            instance,
        })
    }
}

trait SetDefault {
    fn set_default_if_absent(&mut self, key: &str, value: &str) -> &mut Self;
}

impl SetDefault for ClientConfig {
    fn set_default_if_absent(&mut self, key: &str, value: &str) -> &mut Self {
        if self.get(key).is_none() {
            self.set(key, value);
        }
        self
    }
}

fn instance_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
