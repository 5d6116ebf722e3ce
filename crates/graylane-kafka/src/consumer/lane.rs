//! A lane consumer's duties: it announces itself and keeps its lease with heartbeats, says which
//! partitions its group gave it, handles its lane's records on those base granted it, goes back
//! for those it skipped before the grant, and says when it stops. The decisions are `handover::LaneCursor`'s.

use std::sync::Arc;

use graylane_core::{Lane, LaneContext};
use rdkafka::error::KafkaResult;

use super::partition::Partition;
use super::run::{At, Core, DataConsumer, Verdict, seek};
use super::stats::{Counters, bump};
use crate::control::{Control, Lease, Owned};
use crate::handover::LaneAction;
use crate::timing::{CATCH_UP, Timing};

/// What a lane consumer keeps besides the loop's [`Core`].
pub(super) struct LaneRole {
    lane: Lane,
    lease: Arc<Lease>,
    /// The lease's lapses this instance has caught up on: after a lapse, base may have taken
    /// the partitions back, and what this instance's reader last saw may be a grant that is
    /// gone. It acts again only once it has read the control topic up to now.
    caught_up_lapses: std::sync::atomic::AtomicU64,
    /// The partitions this instance last said it holds, as `(topic, partition)`, sorted;
    /// `None`: to be said again (back from a lapse, base may have forgotten this instance).
    holds: Option<Vec<(String, i32)>>,
    /// Stopped with the consumer, whether it ends, fails or is aborted (a crash simulation
    /// must silence both).
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Drop for LaneRole {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

impl LaneRole {
    /// Announces `lane`'s consumer (base grants partitions to live lanes only) and keeps it
    /// live from then on.
    pub(super) async fn start(
        control: &Arc<Control>,
        lane: Lane,
        instance: &str,
        timing: Timing,
    ) -> KafkaResult<LaneRole> {
        let lease = Arc::new(Lease::new(timing.lease));
        // Before the first heartbeat: a live instance that never said what it holds is taken
        // as holding everything (a graylane older than hold records).
        control.hold(lane, instance, &[]).await?;
        let sent = lease.sent_at();
        control
            .heartbeat(lane, instance, Some(timing.lease))
            .await?;
        lease.acked(sent);
        let heartbeat = tokio::spawn(heartbeat_loop(
            control.clone(),
            lease.clone(),
            lane,
            instance.to_owned(),
            timing,
        ));
        Ok(LaneRole {
            lane,
            lease,
            caught_up_lapses: std::sync::atomic::AtomicU64::new(0),
            holds: Some(Vec::new()),
            heartbeat,
        })
    }

    /// Whether this instance may act on what its reader has read: its lease holds, and it has
    /// caught up since the lease last lapsed.
    fn acting(&self) -> bool {
        self.lease.valid()
            && self.lease.lapses()
                == self
                    .caught_up_lapses
                    .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The lane handles its own records within its grant while its lease holds.
    pub(super) fn on_record(
        &self,
        part: &mut Partition,
        control: &Control,
        counters: &Counters,
        at: At<'_>,
        ctx: LaneContext,
    ) -> Verdict {
        let open = if self.acting() && part.announced {
            part.owned(control, self.lane, at.topic, at.partition)
                .and_then(Owned::open_to_lane)
        } else {
            None
        };
        match part.lane.decide(self.lane, ctx.lane(), at.offset, open) {
            LaneAction::Seek(back) => Verdict::SeekBack(back),
            LaneAction::Process => {
                bump(&counters.processed);
                Verdict::Handle(ctx, open.map(|_| part.lane.committable(at.offset + 1)))
            }
            LaneAction::Skip | LaneAction::Wait => {
                Verdict::Skip(open.map(|_| part.lane.committable(at.offset + 1)))
            }
        }
    }

    /// Says which partitions this instance holds when that changed; then, if it skipped
    /// messages while it had no grant, goes back for them.
    pub(super) async fn tick(
        &mut self,
        core: &mut Core,
        consumer: &Arc<DataConsumer>,
    ) -> KafkaResult<()> {
        let lapses = self.lease.lapses();
        if self.lease.valid()
            && lapses
                != self
                    .caught_up_lapses
                    .load(std::sync::atomic::Ordering::Acquire)
        {
            // Back from a lapse: a grant it last saw may have been released meanwhile, and
            // base may have forgotten what it holds (silent long enough, it is tombstoned).
            core.control.catch_up(CATCH_UP).await?;
            self.holds = None;
            self.caught_up_lapses
                .store(lapses, std::sync::atomic::Ordering::Release);
        }
        let holds: Vec<(String, i32)> = core
            .parts
            .keys()
            .map(|k| (core.topics[k.topic].clone(), k.partition))
            .collect();
        if self.holds.as_ref() != Some(&holds) {
            core.control.hold(self.lane, &core.instance, &holds).await?;
            // A partition is acted on only once this instance has read past its own hold
            // record: a take-back base said before reading it is then known (and waited on).
            core.control.catch_up(CATCH_UP).await?;
            self.holds = Some(holds);
        }
        for part in core.parts.values_mut() {
            part.announced = true;
        }
        let granted = if self.acting() {
            let state = core.control.lock();
            core.parts
                .keys()
                .filter(|k| {
                    state
                        .owned(self.lane, &core.topics[k.topic], k.partition)
                        .and_then(Owned::open_to_lane)
                        .is_some()
                })
                .count()
        } else {
            0
        };
        core.counters
            .granted
            .store(granted as u64, std::sync::atomic::Ordering::Relaxed);
        if !self.acting() {
            return Ok(());
        }
        for (key, part) in &mut core.parts {
            let (Some(next), Some(_)) = (part.next, part.lane.pending) else {
                continue;
            };
            let topic = &core.topics[key.topic];
            let open = core
                .control
                .lock()
                .owned(self.lane, topic, key.partition)
                .and_then(Owned::open_to_lane);
            if let Some(from) = open
                && let Some(back) = part.lane.granted(from, next)
            {
                if let Err(e) = seek(consumer, topic, key.partition, back).await {
                    // Still waiting on them: the next tick or record seeks again.
                    part.lane.pending = Some(back);
                    return Err(e);
                }
                part.next = Some(back);
            }
        }
        Ok(())
    }

    /// Tells base this consumer stopped, after its final commit: base takes over from there
    /// without waiting for the lease. Then its records are tombstoned, so that they do not
    /// outlive it on the control topic (`stop` first: an older graylane does not read a
    /// tombstone as one).
    pub(super) async fn stopped(&self, core: &Core) -> KafkaResult<()> {
        self.heartbeat.abort();
        core.control
            .heartbeat(self.lane, &core.instance, None)
            .await?;
        core.control
            .forget(&[(self.lane, core.instance.clone())])
            .await
    }
}

async fn heartbeat_loop(
    control: Arc<Control>,
    lease: Arc<Lease>,
    lane: Lane,
    instance: String,
    timing: Timing,
) {
    let mut every = tokio::time::interval(timing.heartbeat);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let sent = lease.sent_at();
        if control
            .heartbeat(lane, &instance, Some(timing.lease))
            .await
            .is_ok()
        {
            lease.acked(sent);
        }
    }
}
