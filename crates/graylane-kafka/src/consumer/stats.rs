//! What a consumer did: the public [`ConsumerStats`] and the counters its loop writes.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a consumer did, for reports, metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerStats {
    /// Messages of this consumer's own lane handled.
    pub processed: u64,
    /// Messages of other lanes handled by base because their lane had no live consumer.
    pub fallback: u64,
    /// Of `fallback`, those handled while re-reading a released gap.
    pub replayed: u64,
    /// Messages left to another lane's consumer or to base.
    pub skipped: u64,
    /// Partitions handed to a lane (base consumers).
    pub grants: u64,
    /// Partitions taken back from a lane (base consumers).
    pub releases: u64,
    /// Partitions currently assigned to this consumer.
    pub partitions: u64,
    /// Records whose lane mark was refused (an unknown lane, a malformed value), dealt with by
    /// the group's [`UnknownLanes`](crate::UnknownLanes) policy; counted by base consumers.
    pub unknown: u64,
    /// Partitions granted to a lane, as of the last tick: of a base consumer's partitions,
    /// those a lane owns (one per lane and partition); of a lane consumer's, those its lane
    /// owns. A lane consumer is ready when this equals `partitions`.
    pub granted: u64,
    /// Failed broker or control-topic calls, retried (an outage pauses the consumer; it does
    /// not end it).
    pub retries: u64,
    /// Replays taken over from a partition's previous base owner: the partition moved (a
    /// rebalance, a restart) while base was re-reading a released gap, and this consumer
    /// went on with it rather than handling the gap's base records a second time.
    pub resumed: u64,
    /// Silent lane instances whose control records this consumer tombstoned (base consumers):
    /// crashed ones, long after their partitions were taken back.
    pub forgotten: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) processed: AtomicU64,
    pub(super) fallback: AtomicU64,
    pub(super) replayed: AtomicU64,
    pub(super) skipped: AtomicU64,
    pub(super) grants: AtomicU64,
    pub(super) releases: AtomicU64,
    pub(super) partitions: AtomicU64,
    pub(super) unknown: AtomicU64,
    pub(super) granted: AtomicU64,
    pub(super) retries: AtomicU64,
    pub(super) resumed: AtomicU64,
    pub(super) forgotten: AtomicU64,
}

impl Counters {
    /// A stopped consumer holds nothing (what watchers read from then on).
    pub(super) fn stopped(&self) {
        self.partitions.store(0, Ordering::Relaxed);
        self.granted.store(0, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> ConsumerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ConsumerStats {
            processed: get(&self.processed),
            fallback: get(&self.fallback),
            replayed: get(&self.replayed),
            skipped: get(&self.skipped),
            grants: get(&self.grants),
            releases: get(&self.releases),
            partitions: get(&self.partitions),
            unknown: get(&self.unknown),
            granted: get(&self.granted),
            retries: get(&self.retries),
            resumed: get(&self.resumed),
            forgotten: get(&self.forgotten),
        }
    }
}

/// Counts one. Only the consumer's own loop writes its counters, so a load and a store do
/// (readers see every value in order); no locked read-modify-write per message.
pub(super) fn bump(c: &AtomicU64) {
    add(c, 1);
}

/// Counts `n`, as [`bump`] counts one.
pub(super) fn add(c: &AtomicU64, n: usize) {
    c.store(c.load(Ordering::Relaxed) + n as u64, Ordering::Relaxed);
}
