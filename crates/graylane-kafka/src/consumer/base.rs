//! Base's duties: it handles base records and the records of every lane without a live
//! consumer, grants a lane the partitions once it is live, and takes them back, with the gap
//! read again, when it stops or goes silent. The decisions are `handover::BaseCursor`'s.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use graylane_core::{Lane, LaneContext};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::partition::{Partition, PartitionKey};
use super::run::{At, Core, DataConsumer, Verdict, commit_sync, seek};
use super::stats::{Counters, add, bump};
use crate::blocking::off_runtime;
use crate::control::{Control, OwnedWrite};
use crate::handover::{Holding, Intervals, Plan};
use crate::timing::{BROKER_CALL, CATCH_UP, FORGET_AFTER};

/// What a base consumer keeps besides the loop's [`Core`].
pub(super) struct BaseRole {
    config: ClientConfig,
    /// Each lane's consumer group, whose committed offsets a release starts from.
    lane_groups: HashMap<Lane, String>,
    /// A consumer per lane group, for OffsetFetch (which needs no membership), made the first
    /// time a lane is released.
    probes: HashMap<Lane, Arc<BaseConsumer>>,
    /// Since when a lane's open partition has been seen held by none of its live instances.
    unheld: HashMap<(Lane, PartitionKey), Instant>,
    /// When this consumer last tombstoned silent instances.
    last_forget: Option<Instant>,
}

impl BaseRole {
    pub(super) fn new(config: ClientConfig, lane_groups: HashMap<Lane, String>) -> BaseRole {
        BaseRole {
            config,
            lane_groups,
            probes: HashMap::new(),
            unheld: HashMap::new(),
            last_forget: None,
        }
    }

    /// Base handles a record unless its lane owns it at this offset.
    pub(super) fn on_record(
        part: &mut Partition,
        control: &Control,
        counters: &Counters,
        at: At<'_>,
        ctx: LaneContext,
    ) -> Verdict {
        if part.resume_base(control, at.topic, at.partition, at.offset) {
            bump(&counters.resumed);
        }
        let lane = ctx.lane();
        let owns = !lane.is_base()
            && part
                .owned(control, lane, at.topic, at.partition)
                .is_some_and(|own| own.intervals.contains(at.offset));
        let replaying = part.base.replaying(at.offset);
        let committable = Some(at.offset + 1);
        if !part.base.decide(lane, at.offset, owns) {
            return Verdict::Skip(committable);
        }
        if lane.is_base() {
            bump(&counters.processed);
            return Verdict::Handle(ctx, committable);
        }
        bump(&counters.fallback);
        if replaying {
            bump(&counters.replayed);
        }
        Verdict::Handle(ctx.with_served(Lane::BASE), committable)
    }

    /// Grants partitions to lanes that hold them and takes them back from lanes that do not.
    pub(super) async fn tick(
        &mut self,
        core: &mut Core,
        consumer: &Arc<DataConsumer>,
    ) -> KafkaResult<()> {
        let now = Instant::now();
        let lanes: Vec<Lane> = core.control.lanes().non_base().collect();
        let keys: Vec<PartitionKey> = core.parts.keys().copied().collect();
        self.unheld
            .retain(|(_, key), _| core.parts.contains_key(key));
        // One lane's trouble (say, its group's offsets cannot be read) holds up no other.
        let mut first_error = None;
        for &lane in &lanes {
            if let Err(e) = self.tick_lane(core, consumer, lane, &keys, now).await {
                first_error.get_or_insert(e);
            }
        }
        if let Err(e) = self.forget_silent(core, now).await {
            first_error.get_or_insert(e);
        }
        let state = core.control.lock();
        let granted = lanes
            .iter()
            .flat_map(|&lane| keys.iter().map(move |k| (lane, k)))
            .filter(|(lane, k)| state.granted(*lane, &core.topics[k.topic], k.partition))
            .count();
        core.counters
            .granted
            .store(granted as u64, Ordering::Relaxed);
        first_error.map_or(Ok(()), Err)
    }

    /// Tombstones the records of instances silent for [`FORGET_AFTER`] leases: crashed ones
    /// never do it themselves, and every start would read their heartbeats until compaction
    /// drops them. One base member does it, the one with the first partition of the first
    /// topic (a partition nobody holds for a while only delays it), at most once a lease.
    async fn forget_silent(&mut self, core: &Core, now: Instant) -> KafkaResult<()> {
        let first = PartitionKey {
            topic: 0,
            partition: 0,
        };
        let lease = core.timing.lease + core.timing.grace;
        if !core.parts.contains_key(&first)
            || self
                .last_forget
                .is_some_and(|at| now.duration_since(at) < lease)
        {
            return Ok(());
        }
        self.last_forget = Some(now);
        let silent = core
            .control
            .lock()
            .silent_instances(now, lease * FORGET_AFTER);
        core.control.forget(&silent).await?;
        add(&core.counters.forgotten, silent.len());
        Ok(())
    }

    /// Grants `lane` the partitions of `keys` that a live instance of it holds, and takes back
    /// those nobody holds: at once when their holder went silent or the lane has none live,
    /// after `lease + grace` when live instances hold them not (a rebalance takes less).
    async fn tick_lane(
        &mut self,
        core: &mut Core,
        consumer: &Arc<DataConsumer>,
        lane: Lane,
        keys: &[PartitionKey],
        now: Instant,
    ) -> KafkaResult<()> {
        let bound = core.timing.lease + core.timing.grace;
        let mut grants = Vec::new();
        let mut take_back = Vec::new();
        let mut resolve = Vec::new();
        for &key in keys {
            let (holding, owned) = {
                let state = core.control.lock();
                let topic = &core.topics[key.topic];
                let holding = state.holding(lane, topic, key.partition, now, core.timing.grace);
                (holding, state.owned(lane, topic, key.partition).cloned())
            };
            let owned = owned.unwrap_or_default();
            let open = owned.intervals.open_from().is_some();
            let unheld_for = if open && holding == Holding::Unheld {
                now.duration_since(*self.unheld.entry((lane, key)).or_insert(now))
            } else {
                self.unheld.remove(&(lane, key));
                Duration::ZERO
            };
            match Plan::of(holding, open, owned.closing, unheld_for, bound) {
                Plan::Nothing => {}
                Plan::Grant => grants.push((key, owned.intervals)),
                Plan::TakeBack => take_back.push(key),
                Plan::Resolve => resolve.push(key),
            }
        }
        // Each step's records go in one batch: at scale (a fleet starting, or crashing) a
        // tick grants or takes back hundreds of lane-partitions, and base handles no record
        // while it waits on them.
        let granted = grants.len();
        let grants = grant(core, consumer, grants).await?;
        core.control.set_owned(lane, grants).await?;
        add(&core.counters.grants, granted);
        if take_back.is_empty() && resolve.is_empty() {
            return Ok(());
        }
        // Silence may be this reader's lag, not the lane's: read the control topic up to now
        // before taking anything back, so that only partitions really left alone are.
        core.control.catch_up(CATCH_UP).await?;
        let mut closing = Vec::new();
        for key in take_back {
            if !self.held(core, lane, key) {
                closing.push(core.control.closing(
                    lane,
                    &core.topics[key.topic],
                    key.partition,
                    true,
                ));
                resolve.push(key);
            }
        }
        core.control.set_owned(lane, closing).await?;
        if resolve.is_empty() {
            return Ok(());
        }
        // An instance that began holding a partition before the take-back was said is read
        // by now; one that begins after it reads it before acting (it catches up past its
        // own hold record), and waits.
        core.control.catch_up(CATCH_UP).await?;
        let (mut reopen, mut release) = (Vec::new(), Vec::new());
        for key in resolve {
            let topic = &core.topics[key.topic];
            if self.held(core, lane, key) {
                reopen.push(core.control.closing(lane, topic, key.partition, false));
                continue;
            }
            let intervals = core
                .control
                .lock()
                .owned(lane, topic, key.partition)
                .map(|o| o.intervals.clone())
                .unwrap_or_default();
            if let Some(from) = intervals.open_from() {
                release.push((key, from, intervals));
            }
        }
        core.control.set_owned(lane, reopen).await?;
        self.release(core, consumer, lane, release).await
    }

    /// Whether a live instance of `lane` holds `key` now; forgets it was unheld if so.
    fn held(&mut self, core: &Core, lane: Lane, key: PartitionKey) -> bool {
        let holding = core.control.lock().holding(
            lane,
            &core.topics[key.topic],
            key.partition,
            Instant::now(),
            core.timing.grace,
        );
        let held = holding == Holding::Held;
        if held {
            self.unheld.remove(&(lane, key));
        }
        held
    }

    /// Takes back `lane`'s open intervals on `releases` (a partition, where its open interval
    /// starts, its intervals): base reads again from where the lane's group committed what
    /// it skipped since, and the lane owns up to there.
    async fn release(
        &mut self,
        core: &mut Core,
        consumer: &Arc<DataConsumer>,
        lane: Lane,
        releases: Vec<(PartitionKey, i64, Intervals)>,
    ) -> KafkaResult<()> {
        if releases.is_empty() {
            return Ok(());
        }
        let at = |key: &PartitionKey| (core.topics[key.topic].clone(), key.partition);
        // The lane handled everything below its committed offset (and nothing below `from`).
        let probe = self.probe(lane).await?;
        let lane_committed = committed(probe, releases.iter().map(|r| at(&r.0)).collect()).await?;
        let unreceived: Vec<_> = releases
            .iter()
            .filter(|(key, ..)| core.parts.get(key).and_then(|part| part.next).is_none())
            .map(|r| at(&r.0))
            .collect();
        let base_committed = match unreceived.is_empty() {
            true => HashMap::new(),
            false => committed(consumer.clone(), unreceived).await?,
        };
        let (mut replays, mut backs, mut owned) = (Vec::new(), Vec::new(), Vec::new());
        for (key, from, mut intervals) in releases {
            let (topic, p) = at(&key);
            let y = lane_committed
                .get(&(topic.clone(), p))
                .copied()
                .unwrap_or(from)
                .max(from);
            let position = match core.parts.get(&key).and_then(|part| part.next) {
                Some(next) => Some(next),
                None => base_committed.get(&(topic.clone(), p)).copied(),
            };
            if let Some(position) = position
                && let Some(part) = core.parts.get_mut(&key)
            {
                if part.resume_base(&core.control, &topic, p, position) {
                    bump(&core.counters.resumed);
                }
                let before = part.base.clone();
                let back = part.base.released(lane, y, position);
                if part.base.in_replay() && part.base != before {
                    // Say what this replay is before starting it (or adding a lane to it):
                    // should the partition move to another base member (or this one die)
                    // before the replay ends, the next owner starts at the commit, inside the
                    // replay, and takes it over instead of handling base's records of the
                    // gap a second time.
                    replays.push((topic.clone(), p, part.base.clone()));
                }
                if let Some(back) = back {
                    backs.push((key, back));
                }
            }
            intervals.release(y);
            owned.push(OwnedWrite {
                topic,
                partition: p,
                intervals,
                closing: false,
            });
        }
        core.control.set_replays(&replays).await?;
        if !backs.is_empty() {
            // Go back for the lane's messages base skipped, and commit there first: should
            // this consumer die before the releases are written, the next owner starts from
            // `back`.
            let mut tpl = TopicPartitionList::new();
            for &(key, back) in &backs {
                let (topic, p) = at(&key);
                seek(consumer, &topic, p, back).await?;
                if let Some(part) = core.parts.get_mut(&key) {
                    part.next = Some(back);
                    part.commit.store(back, Ordering::Release);
                }
                tpl.add_partition_offset(&topic, p, Offset::Offset(back))?;
            }
            commit_sync(consumer, tpl).await?;
        }
        let released = owned.len();
        core.control.set_owned(lane, owned).await?;
        add(&core.counters.releases, released);
        Ok(())
    }

    /// The consumer that reads `lane`'s group's committed offsets, made on first use.
    async fn probe(&mut self, lane: Lane) -> KafkaResult<Arc<BaseConsumer>> {
        if let Some(probe) = self.probes.get(&lane) {
            return Ok(probe.clone());
        }
        let mut config = self.config.clone();
        config
            .set("group.id", &self.lane_groups[&lane])
            .set("enable.auto.commit", "false");
        // Creating a client starts its threads and resolves the brokers: not on a worker.
        let probe: Arc<BaseConsumer> = Arc::new(off_runtime(move || config.create()).await?);
        self.probes.insert(lane, probe.clone());
        Ok(probe)
    }
}

/// The records that hand partitions (with their intervals) to a live lane from base's next
/// offset on. Where base has received nothing yet, the broker is asked, in one request for all
/// of them.
async fn grant(
    core: &Core,
    consumer: &Arc<DataConsumer>,
    grants: Vec<(PartitionKey, Intervals)>,
) -> KafkaResult<Vec<OwnedWrite>> {
    let at = |key: &PartitionKey| (core.topics[key.topic].clone(), key.partition);
    let next = |key: &PartitionKey| core.parts.get(key).and_then(|part| part.next);
    let unreceived: Vec<_> = grants
        .iter()
        .filter(|(key, _)| next(key).is_none())
        .map(|(key, _)| at(key))
        .collect();
    let (high, committed) = match unreceived.is_empty() {
        true => (HashMap::new(), HashMap::new()),
        false => (
            high_watermarks(consumer.clone(), unreceived.clone()).await?,
            committed(consumer.clone(), unreceived).await?,
        ),
    };
    grants
        .into_iter()
        .map(|(key, mut intervals)| {
            let (topic, partition) = at(&key);
            let position = match next(&key) {
                Some(next) => next,
                None => {
                    let high = high
                        .get(&(topic.clone(), partition))
                        .copied()
                        .ok_or_else(|| {
                            KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownPartition)
                        })?;
                    unreceived_grant(high, committed.get(&(topic.clone(), partition)).copied())
                }
            };
            intervals.grant(position.max(intervals.end()));
            Ok(OwnedWrite {
                topic,
                partition,
                intervals,
                closing: false,
            })
        })
        .collect()
}

/// The high watermarks of `partitions`, in one request (a latest-offset lookup), off the
/// runtime: a start at scale grants hundreds of partitions before base has received a record.
async fn high_watermarks(
    consumer: Arc<DataConsumer>,
    partitions: Vec<(String, i32)>,
) -> KafkaResult<HashMap<(String, i32), i64>> {
    let mut tpl = TopicPartitionList::new();
    for (topic, p) in &partitions {
        // A timestamp of -1 asks for the latest offset.
        tpl.add_partition_offset(topic, *p, Offset::End)?;
    }
    off_runtime(move || {
        let tpl = consumer.offsets_for_times(tpl, BROKER_CALL)?;
        tpl.elements()
            .iter()
            .filter_map(|e| match (e.error(), e.offset()) {
                (Err(err), _) => Some(Err(err)),
                (Ok(()), Offset::Offset(o)) => Some(Ok(((e.topic().to_owned(), e.partition()), o))),
                _ => None,
            })
            .collect()
    })
    .await
}

/// Where to grant a partition on which base has received nothing in this assignment: at or past
/// everything it has proven it handled (its group's committed offset) and everything it may
/// still receive from before the grant (the high watermark). A watermark alone can be below
/// the commit — a lagging `ListOffsets` answer, or a race with base's own commit — and would
/// hand the lane records base already handled.
fn unreceived_grant(high_watermark: i64, committed: Option<i64>) -> i64 {
    committed.map_or(high_watermark, |c| c.max(high_watermark))
}

/// The committed offsets of `consumer`'s group on `partitions` (those it has one on), in one
/// request, off the runtime.
async fn committed<C, X>(
    consumer: Arc<C>,
    partitions: Vec<(String, i32)>,
) -> KafkaResult<HashMap<(String, i32), i64>>
where
    C: Consumer<X> + Send + Sync + 'static,
    X: ConsumerContext + 'static,
{
    let mut tpl = TopicPartitionList::new();
    for (topic, p) in &partitions {
        tpl.add_partition(topic, *p);
    }
    off_runtime(move || {
        let tpl = consumer.committed_offsets(tpl, BROKER_CALL)?;
        Ok(tpl
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some(((e.topic().to_owned(), e.partition()), o)),
                _ => None,
            })
            .collect())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::unreceived_grant;

    #[test]
    fn a_grant_without_a_received_record_is_past_what_base_committed() {
        assert_eq!(unreceived_grant(40, None), 40);
        assert_eq!(unreceived_grant(40, Some(12)), 40);
        // A watermark behind the commit: the commit is what base proved.
        assert_eq!(unreceived_grant(7, Some(12)), 12);
    }
}
