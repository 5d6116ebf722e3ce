//! What a consumer keeps per assigned partition: where it is, both roles' cursors, the
//! committable offset, and a cache of the lanes' ownership of it.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use graylane_core::Lane;

use crate::control::{Control, Owned};
use crate::handover::{BaseCursor, LaneCursor};

/// A partition of one of the consumer's topics: the topic's index in the consumer's topic
/// list (a record's topic is compared by name only when there are several) and its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct PartitionKey {
    pub(super) topic: usize,
    pub(super) partition: i32,
}

#[derive(Default)]
pub(super) struct Partition {
    /// One past the last offset delivered in this assignment.
    pub(super) next: Option<i64>,
    pub(super) base: BaseCursor,
    /// Whether base has looked for a replay its previous owner left to take over.
    resumed: bool,
    pub(super) lane: LaneCursor,
    /// (Lane consumers) This instance has said it holds the partition, and read the control
    /// topic past saying so: only then may it act on a grant of it.
    pub(super) announced: bool,
    /// The committable offset, shared with the rebalance callback.
    pub(super) commit: Arc<AtomicI64>,
    /// Lanes' ownership of this partition as of `Control::changes() == owners_seen`, looked up
    /// on every message of another lane (base) or of its own (lane): copies, so that the
    /// control state's lock is taken only after it changed.
    owners: Vec<(Lane, Option<Owned>)>,
    owners_seen: u64,
}

impl Partition {
    pub(super) fn new(commit: Arc<AtomicI64>) -> Partition {
        Partition {
            commit,
            ..Partition::default()
        }
    }

    /// Before base decides anything on this partition in this assignment, starting at
    /// `start`: takes over the replay its previous owner wrote, if `start` is inside it (a
    /// rebalance or a restart in the middle of re-reading a released gap). Whether it did.
    pub(super) fn resume_base(
        &mut self,
        control: &Control,
        topic: &str,
        p: i32,
        start: i64,
    ) -> bool {
        if self.resumed {
            return false;
        }
        self.resumed = true;
        let replay = control
            .lock()
            .replay(topic, p)
            .and_then(|r| r.resume(start));
        match replay {
            Some(cursor) => {
                self.base = cursor;
                true
            }
            None => false,
        }
    }

    /// `lane`'s ownership of this partition, from the copies while the control state has not
    /// changed since they were taken.
    pub(super) fn owned(
        &mut self,
        control: &Control,
        lane: Lane,
        topic: &str,
        p: i32,
    ) -> Option<&Owned> {
        let changes = control.changes();
        if changes != self.owners_seen {
            self.owners.clear();
            self.owners_seen = changes;
        }
        let at = match self.owners.iter().position(|(l, _)| *l == lane) {
            Some(at) => at,
            None => {
                let owned = control.lock().owned(lane, topic, p).cloned();
                self.owners.push((lane, owned));
                self.owners.len() - 1
            }
        };
        self.owners[at].1.as_ref()
    }
}
