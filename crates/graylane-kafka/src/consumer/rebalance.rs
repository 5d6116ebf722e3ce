//! librdkafka's rebalance callbacks: they record which partitions came and went, for the
//! consumer loop to apply, commit what was handled on partitions being revoked, and apply the
//! assignment themselves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::partition::PartitionKey;

/// What a rebalance did to this consumer's assignment.
#[derive(Debug)]
pub(super) enum Assignment {
    Assigned(Vec<PartitionKey>),
    Revoked(Vec<PartitionKey>),
}

/// The consumer's librdkafka context: rebalance events and the offsets to commit, shared
/// between the callbacks and the consumer loop.
pub(super) struct Callbacks {
    pub(super) topics: Vec<String>,
    shared: Mutex<Shared>,
    /// Set by a callback, cleared by the loop when it applies the events.
    pub(super) dirty: AtomicBool,
    /// A simulated crash commits nothing, not even in the revoke the consumer's close runs.
    pub(super) crashed: Arc<AtomicBool>,
    /// Whether the group assigns incrementally (cooperative-sticky, or KIP-848's protocol),
    /// known from the configuration.
    incremental: bool,
}

#[derive(Default)]
struct Shared {
    events: Vec<Assignment>,
    /// Committable offset per partition, written by the consumer loop on every message (an
    /// atomic store, not a lock) and read when committing; negative: nothing yet.
    offsets: HashMap<PartitionKey, Arc<AtomicI64>>,
}

impl Callbacks {
    pub(super) fn new(
        topics: Vec<String>,
        crashed: Arc<AtomicBool>,
        incremental: bool,
    ) -> Callbacks {
        Callbacks {
            topics,
            shared: Mutex::default(),
            dirty: AtomicBool::new(false),
            crashed,
            incremental,
        }
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The events since the last call, oldest first.
    pub(super) fn take_events(&self) -> Vec<Assignment> {
        std::mem::take(&mut self.shared().events)
    }

    /// The committable offset of an assigned partition, shared with the loop.
    pub(super) fn offset(&self, key: PartitionKey) -> Option<Arc<AtomicI64>> {
        self.shared().offsets.get(&key).cloned()
    }

    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<PartitionKey> {
        tpl.elements()
            .iter()
            .filter_map(|e| {
                let topic = self.topics.iter().position(|t| t == e.topic())?;
                Some(PartitionKey {
                    topic,
                    partition: e.partition(),
                })
            })
            .collect()
    }

    /// The offsets to commit: of every partition, or of `only` those.
    pub(super) fn commit_list(&self, only: Option<&[PartitionKey]>) -> TopicPartitionList {
        let shared = self.shared();
        let mut tpl = TopicPartitionList::new();
        for (key, o) in &shared.offsets {
            let o = o.load(Ordering::Acquire);
            if o >= 0 && only.is_none_or(|only| only.contains(key)) {
                let _ = tpl.add_partition_offset(
                    &self.topics[key.topic],
                    key.partition,
                    Offset::Offset(o),
                );
            }
        }
        tpl
    }
}

impl ClientContext for Callbacks {}

impl ConsumerContext for Callbacks {
    /// rdkafka's own `rebalance`, but for the one call it makes to learn the group's protocol
    /// (`rd_kafka_rebalance_protocol`): made during the revoke that closing a consumer runs,
    /// that call can wait for ever (librdkafka#4041), which hung a dropped consumer's thread.
    /// The protocol follows from the configuration, so it is not asked.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let rebalance = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(tpl),
            err => Rebalance::Error(KafkaError::Rebalance(err.into())),
        };
        self.pre_rebalance(consumer, &rebalance);
        // As rdkafka's: an error gives up the assignment, as a revoke does. A failure here has
        // nobody to go to; librdkafka logs it, and the group rebalances again.
        let _ = match (&rebalance, self.incremental) {
            (Rebalance::Assign(tpl), true) => consumer.incremental_assign(tpl),
            (Rebalance::Assign(tpl), false) => consumer.assign(tpl),
            (Rebalance::Revoke(tpl), true) => consumer.incremental_unassign(tpl),
            (Rebalance::Error(_), true) => consumer.incremental_unassign(tpl),
            (_, false) => consumer.unassign(),
        };
        self.post_rebalance(consumer, &rebalance);
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            if self.crashed.load(Ordering::Acquire) {
                return;
            }
            let parts = self.partitions(tpl);
            // Commit what was handled before the partitions move, so the next owner does not
            // handle it again. This is the one call to the broker a consumer makes on the
            // thread that polls it: librdkafka runs this callback inside that poll, and the
            // next owner starts from the committed offset only once the callback has returned,
            // so the commit must be complete by then.
            let commits = self.commit_list(Some(&parts));
            if commits.count() > 0
                && let Err(e) = consumer.commit(&commits, CommitMode::Sync)
            {
                // The next owner starts from the last commit that landed. Apache Kafka takes a
                // member's commits while a rebalance is being prepared; librdkafka's mock
                // cluster refuses them in an eager one.
                tracing::warn!(
                    error = %e,
                    "graylane lane consumer: the commit before giving partitions up failed; what was handled since the last commit will be handled again"
                );
            }
            let mut shared = self.shared();
            for p in &parts {
                shared.offsets.remove(p);
            }
            shared.events.push(Assignment::Revoked(parts));
            self.dirty.store(true, Ordering::Release);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let parts = self.partitions(tpl);
            let mut shared = self.shared();
            for p in &parts {
                shared.offsets.insert(*p, Arc::new(AtomicI64::new(-1)));
            }
            shared.events.push(Assignment::Assigned(parts));
            self.dirty.store(true, Ordering::Release);
        }
    }
}
