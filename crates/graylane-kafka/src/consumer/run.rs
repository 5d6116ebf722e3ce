//! The consumer loop: records, ticks and stop requests in one task, with what both roles
//! share; each role's decisions are in `base.rs` and `lane.rs`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_util::StreamExt;
use graylane_core::{LaneContext, LaneFutureExt, Propagator};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedHeaders, BorrowedMessage, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::oneshot;

use super::base::BaseRole;
use super::builder::UnknownLanes;
use super::lane::LaneRole;
use super::partition::{Partition, PartitionKey};
use super::rebalance::{Assignment, Callbacks};
use super::stats::{Counters, bump};
use crate::blocking::off_runtime;
use crate::carrier::{HeaderExtractor, try_extract_from};
use crate::control::Control;
use crate::timing::{
    BROKER_CALL, CATCH_UP, ERROR_BACKOFF, FINAL_COMMIT, FINAL_COMMIT_POLL, RETRY_FIRST,
    RETRY_LOG_EVERY, RETRY_MAX, Timing,
};

/// The consumer of the data topics.
pub(super) type DataConsumer = StreamConsumer<Callbacks>;

/// Records handled in a row before the loop looks at stop requests and ticks again.
const BATCH: usize = 64;

/// What the loop holds whatever its role.
pub(super) struct Core {
    pub(super) instance: String,
    pub(super) propagator: Propagator,
    pub(super) unknown_lanes: UnknownLanes,
    pub(super) control: Arc<Control>,
    pub(super) timing: Timing,
    pub(super) topics: Vec<String>,
    // Few entries, looked up on every record: ordered, and no hashing.
    pub(super) parts: BTreeMap<PartitionKey, Partition>,
    pub(super) counters: Arc<Counters>,
}

/// Which lane this consumer runs in, with that role's own state.
pub(super) enum Role {
    /// Handles base records and those of lanes without a live consumer; grants and releases.
    Base(BaseRole),
    /// Handles its lane's records on the partitions base granted it.
    Lane(LaneRole),
}

/// What to do with one record.
pub(super) enum Verdict {
    /// Handle it in this context; then the partition can be committed up to the offset.
    Handle(LaneContext, Option<i64>),
    /// Leave it to its owner; then the partition can be committed up to the offset.
    Skip(Option<i64>),
    /// Go back to this offset first (a lane consumer granted what it skipped).
    SeekBack(i64),
}

/// Where a record is.
#[derive(Clone, Copy)]
pub(super) struct At<'a> {
    pub(super) topic: &'a str,
    pub(super) partition: i32,
    pub(super) offset: i64,
}

pub(super) struct Runner {
    pub(super) core: Core,
    pub(super) role: Role,
    pub(super) last_commit: Instant,
    /// A base consumer was given partitions and has not yet read the control topic up to
    /// what their previous owner wrote.
    pub(super) catch_up_due: bool,
    pub(super) trouble: Trouble,
    /// A stop was requested while a record waited on a retried call.
    pub(super) stopping: bool,
}

/// Errors of the broker and control-topic calls the loop makes. None of them ends the
/// consumer: the call is retried (a tick's at the next tick, a record's with backoff before
/// the record is decided), so that an outage pauses handling and it resumes when the broker is
/// back. Logged when they start, every [`RETRY_LOG_EVERY`] while they last, and when they end.
#[derive(Debug, Default)]
pub(super) struct Trouble {
    since: Option<Instant>,
    last_log: Option<Instant>,
    count: u64,
    /// Failed ticks in a row, and when the next one may run: a tick that fails (an outage)
    /// backs off, so the records that need no control call are still handled in between.
    failed_ticks: u32,
    next_tick: Option<Instant>,
}

impl Trouble {
    fn failed(&mut self, counters: &Counters, what: &str, e: &KafkaError) {
        bump(&counters.retries);
        self.count += 1;
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        if self
            .last_log
            .is_none_or(|l| now.duration_since(l) >= RETRY_LOG_EVERY)
        {
            self.last_log = Some(now);
            tracing::warn!(
                error = %e,
                failures = self.count,
                for_ms = u64::try_from(now.duration_since(since).as_millis()).unwrap_or(u64::MAX),
                "graylane lane consumer: {what} failed; retrying"
            );
        }
    }

    fn tick_failed(&mut self) {
        self.next_tick = Some(Instant::now() + backoff(self.failed_ticks).max(RETRY_FIRST));
        self.failed_ticks = self.failed_ticks.saturating_add(1);
    }

    fn tick_due(&self) -> bool {
        self.next_tick.is_none_or(|at| Instant::now() >= at)
    }

    fn recovered(&mut self) {
        self.failed_ticks = 0;
        self.next_tick = None;
        if let Some(since) = self.since.take() {
            tracing::info!(
                failures = self.count,
                after_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                "graylane lane consumer: recovered"
            );
            self.count = 0;
            self.last_log = None;
        }
    }
}

/// The pause before the `n`th retry in a row of a record's call: doubling from
/// [`RETRY_FIRST`] up to [`RETRY_MAX`].
fn backoff(n: u32) -> std::time::Duration {
    RETRY_FIRST.saturating_mul(1 << n.min(16)).min(RETRY_MAX)
}

pub(super) async fn run<F, Fut>(
    consumer: Arc<DataConsumer>,
    mut runner: Runner,
    mut handler: F,
    mut stop: oneshot::Receiver<()>,
) -> KafkaResult<()>
where
    F: FnMut(OwnedMessage) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let mut tick = tokio::time::interval(runner.core.timing.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // One stream for the consumer's life: each `recv()` would make one, registering and then
    // removing a waker slot under a lock, for every message.
    let mut messages = consumer.stream();
    while !runner.stopping {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = tick.tick() => runner.on_tick(&consumer).await,
            message = messages.next() => match message {
                Some(Ok(m)) => {
                    runner.on_message(&consumer, m, &mut handler, &mut stop).await;
                    // Records librdkafka has already fetched are handled without going back
                    // through the `select!` (its polls cost more than a record's handling),
                    // a batch bounded in count and in time (slow handlers: a tick at most) so
                    // that stop requests and ticks, hence handovers, are still seen promptly.
                    let batch_started = Instant::now();
                    for i in 1..BATCH {
                        // The clock is read every 8 records: cheap next to their handling.
                        if runner.stopping
                            || (i % 8 == 0 && batch_started.elapsed() >= runner.core.timing.tick)
                        {
                            break;
                        }
                        match ready_now(messages.next()) {
                            Some(Some(Ok(m))) => {
                                runner.on_message(&consumer, m, &mut handler, &mut stop).await;
                            }
                            _ => break,
                        }
                    }
                }
                // librdkafka retries transient errors itself.
                _ => tokio::time::sleep(ERROR_BACKOFF).await,
            },
        }
    }
    drop(messages);
    // Graceful stop: commit everything handled, then (lane) say so, so base takes over from
    // exactly there without waiting for the lease.
    final_commit(&consumer).await?;
    if let Role::Lane(lane) = &runner.role {
        lane.stopped(&runner.core).await?;
    }
    // Leaving the group and closing the clients (the control reader and producer shut their
    // threads down) wait for the broker and for librdkafka's threads: not on a worker.
    off_runtime(move || {
        consumer.unsubscribe();
        drop(runner);
        drop(consumer);
        Ok(())
    })
    .await
}

/// `f`'s output if it is ready at once.
fn ready_now<F: Future>(f: F) -> Option<F::Output> {
    let f = std::pin::pin!(f);
    match f.poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}

/// Commits everything handled. A rebalance in progress (another member joining or leaving)
/// rejects commits until this member has taken part in it, so poll through it and retry;
/// messages received meanwhile are not handled, and not committed.
async fn final_commit(consumer: &Arc<DataConsumer>) -> KafkaResult<()> {
    let deadline = Instant::now() + FINAL_COMMIT;
    loop {
        let commits = consumer.context().commit_list(None);
        if commits.count() == 0 {
            return Ok(());
        }
        match commit_sync(consumer, commits).await {
            Err(KafkaError::ConsumerCommit(_)) if Instant::now() < deadline => {
                let _ = tokio::time::timeout(FINAL_COMMIT_POLL, consumer.recv()).await;
            }
            other => return other,
        }
    }
}

/// `commits`, committed synchronously, off the runtime.
pub(super) async fn commit_sync(
    consumer: &Arc<DataConsumer>,
    commits: TopicPartitionList,
) -> KafkaResult<()> {
    let consumer = consumer.clone();
    off_runtime(move || consumer.commit(&commits, CommitMode::Sync)).await
}

/// Moves the consumer's position on a partition to `offset`, off the runtime.
pub(super) async fn seek(
    consumer: &Arc<DataConsumer>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> KafkaResult<()> {
    let (consumer, topic) = (consumer.clone(), topic.to_owned());
    off_runtime(move || consumer.seek(&topic, partition, Offset::Offset(offset), BROKER_CALL)).await
}

impl Runner {
    fn apply_events(&mut self, consumer: &DataConsumer) {
        let callbacks = consumer.context();
        for event in callbacks.take_events() {
            match event {
                Assignment::Assigned(keys) => {
                    for key in keys {
                        let commit = callbacks.offset(key).unwrap_or_default();
                        self.core.parts.insert(key, Partition::new(commit));
                        // The previous owner's grants and releases happened before it gave
                        // the partitions up: base reads them before deciding anything.
                        self.catch_up_due |= matches!(self.role, Role::Base(_));
                    }
                }
                Assignment::Revoked(keys) => {
                    for key in keys {
                        self.core.parts.remove(&key);
                    }
                }
            }
        }
        self.core
            .counters
            .partitions
            .store(self.core.parts.len() as u64, Ordering::Relaxed);
    }

    /// Whether records must wait for a catch-up: partitions came to base, or an ownership
    /// write failed and may have landed.
    fn must_catch_up(&self) -> bool {
        self.catch_up_due || self.core.control.uncertain()
    }

    /// Reads the control topic up to now, retried until it succeeds or a stop is requested
    /// (`false`): records wait meanwhile, none is decided on a view that may be wrong.
    async fn catch_up_for_records(&mut self, stop: &mut oneshot::Receiver<()>) -> bool {
        let mut n = 0;
        loop {
            match self.core.control.catch_up(CATCH_UP).await {
                Ok(()) => {
                    self.catch_up_due = false;
                    self.trouble.recovered();
                    return true;
                }
                Err(e) => {
                    self.trouble
                        .failed(&self.core.counters, "reading the control topic", &e);
                    tokio::time::sleep(backoff(n)).await;
                    n += 1;
                    // The sender dropped counts as a stop, as in the loop.
                    if !matches!(stop.try_recv(), Err(oneshot::error::TryRecvError::Empty)) {
                        self.stopping = true;
                        return false;
                    }
                }
            }
        }
    }

    async fn on_message<F, Fut>(
        &mut self,
        consumer: &Arc<DataConsumer>,
        m: BorrowedMessage<'_>,
        handler: &mut F,
        stop: &mut oneshot::Receiver<()>,
    ) where
        F: FnMut(OwnedMessage) -> Fut,
        Fut: Future<Output = ()>,
    {
        let dirty = &consumer.context().dirty;
        loop {
            // A plain load first: the swap's locked write is paid only after a rebalance.
            if dirty.load(Ordering::Acquire) && dirty.swap(false, Ordering::AcqRel) {
                self.apply_events(consumer);
            }
            if !self.must_catch_up() {
                break;
            }
            // After the wait, the assignment is looked at again: the partition may be gone.
            if !self.catch_up_for_records(stop).await {
                return;
            }
        }
        let core = &mut self.core;
        // Reading a record's topic name costs a `strlen` and a UTF-8 check: only compare names
        // when there is more than one topic.
        let topic = match core.topics.len() {
            1 => 0,
            _ => match core.topics.iter().position(|t| t == m.topic()) {
                Some(t) => t,
                None => return,
            },
        };
        let key = PartitionKey {
            topic,
            partition: m.partition(),
        };
        let Some(part) = core.parts.get_mut(&key) else {
            // Delivered after a revoke: the new owner handles it.
            return;
        };
        let at = At {
            topic: &core.topics[topic],
            partition: key.partition,
            offset: m.offset(),
        };
        part.next = Some(at.offset + 1);
        // Read once: librdkafka caches parsed headers, but not their absence, so every
        // `headers()` on a record without any allocates, parses and frees a buffer again
        // (`BorrowedMessage::detach` would be a second).
        let headers = m.headers();
        let read = headers.map(|h| try_extract_from(&core.propagator, h));
        // A mirror copy without a lane of this consumer's (none, or one refused) is never
        // live base traffic, whatever the policy for unknown lanes says: skipped, counted.
        let mirror_without_lane = match &read {
            Some(Ok(Some(ctx))) => ctx.is_mirror() && ctx.lane().is_base(),
            Some(Err(_)) => {
                headers.is_some_and(|h| core.propagator.marks_mirror(&HeaderExtractor(h)))
            }
            _ => false,
        };
        if mirror_without_lane {
            if matches!(self.role, Role::Base(_)) {
                bump(&core.counters.unknown);
                part.commit.store(at.offset + 1, Ordering::Release);
            }
            return;
        }
        let ctx = match read {
            None | Some(Ok(None)) => LaneContext::base(),
            Some(Ok(Some(ctx))) => ctx,
            Some(Err(rejection)) => {
                let is_base = matches!(self.role, Role::Base(_));
                if is_base {
                    // Counted (and logged, the 1st, 2nd, 4th, 8th … time) once per group, by
                    // base, whoever handles it.
                    bump(&core.counters.unknown);
                    let n = core.counters.unknown.load(Ordering::Relaxed);
                    if n.is_power_of_two() {
                        tracing::warn!(
                            topic = at.topic,
                            partition = at.partition,
                            offset = at.offset,
                            ?rejection,
                            policy = ?core.unknown_lanes,
                            count = n,
                            "graylane lane consumer: a record's lane mark was refused"
                        );
                    }
                }
                match core.unknown_lanes {
                    UnknownLanes::Base => LaneContext::base(),
                    UnknownLanes::Lane(lane) => LaneContext::new(lane),
                    UnknownLanes::Skip => {
                        // Base commits past every record it decided; a lane consumer's commit
                        // stays where its own records allow.
                        if is_base {
                            part.commit.store(at.offset + 1, Ordering::Release);
                        }
                        return;
                    }
                }
            }
        };
        let verdict = match &self.role {
            Role::Base(_) => BaseRole::on_record(part, &core.control, &core.counters, at, ctx),
            Role::Lane(lane) => lane.on_record(part, &core.control, &core.counters, at, ctx),
        };
        let committable = match verdict {
            Verdict::SeekBack(back) => {
                match seek(consumer, at.topic, at.partition, back).await {
                    Ok(()) => part.next = Some(back),
                    Err(e) => {
                        // This record stays undecided, and the lane still waits on `back`:
                        // the next record of the partition (or a tick) seeks again.
                        part.lane.pending = Some(back);
                        self.trouble.failed(&core.counters, "a seek", &e);
                    }
                }
                return;
            }
            Verdict::Handle(ctx, committable) => {
                // The handler's synchronous part runs in the lane too, not only its future: it
                // is called on the first poll, inside `with_lane` (one lane entry per poll).
                let message = OwnedMessage::new(
                    m.payload().map(<[u8]>::to_vec),
                    m.key().map(<[u8]>::to_vec),
                    at.topic.to_owned(),
                    m.timestamp(),
                    at.partition,
                    at.offset,
                    headers.map(BorrowedHeaders::detach),
                );
                async { handler(message).await }.with_lane(ctx).await;
                committable
            }
            Verdict::Skip(committable) => {
                bump(&core.counters.skipped);
                committable
            }
        };
        if let Some(c) = committable {
            part.commit.store(c, Ordering::Release);
        }
    }

    /// A tick: the role's duties (backed off after a failure), then the periodic commit,
    /// whatever became of them.
    async fn on_tick(&mut self, consumer: &Arc<DataConsumer>) {
        if consumer.context().dirty.swap(false, Ordering::AcqRel) {
            self.apply_events(consumer);
        }
        if self.trouble.tick_due() {
            match self.role_tick(consumer).await {
                Ok(()) => self.trouble.recovered(),
                Err(e) => {
                    self.trouble.failed(&self.core.counters, "a tick", &e);
                    self.trouble.tick_failed();
                }
            }
        }
        if self.last_commit.elapsed() >= self.core.timing.commit {
            self.last_commit = Instant::now();
            let commits = consumer.context().commit_list(None);
            if commits.count() > 0
                && let Err(e) = consumer.commit(&commits, CommitMode::Async)
            {
                self.trouble.failed(&self.core.counters, "a commit", &e);
            }
        }
    }

    async fn role_tick(&mut self, consumer: &Arc<DataConsumer>) -> KafkaResult<()> {
        if self.must_catch_up() {
            self.core.control.catch_up(CATCH_UP).await?;
            self.catch_up_due = false;
        }
        match &mut self.role {
            Role::Base(base) => base.tick(&mut self.core, consumer).await,
            Role::Lane(lane) => lane.tick(&mut self.core, consumer).await,
        }
    }
}
