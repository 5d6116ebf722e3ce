//! Lane-aware consumers: a lane's consumers process only its messages, base processes base
//! messages and those of every lane without a live consumer, and the switch between them is
//! exact. The protocol is in `docs/kafka-lanes.md`; its decisions are in `handover.rs`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext, LaneFutureExt, Propagator};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedHeaders, BorrowedMessage, Message, OwnedMessage};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tokio::sync::oneshot;

use crate::control::{Control, Lease, Owned};
use crate::extract_from;
use crate::handover::{BaseCursor, Intervals, LaneAction, LaneCursor};

/// How fast lane consumers are found live or dead, and how often progress is committed.
///
/// The defaults switch a gracefully stopped lane back to base within a tick (50 ms) plus a
/// control-topic round trip, and a crashed one within `lease + grace` (2.5 s).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Timing {
    /// How often a lane consumer writes its heartbeat.
    pub heartbeat: Duration,
    /// How long a heartbeat keeps a lane consumer live. The consumer itself stops processing
    /// when a lease has passed since it *sent* its last acknowledged heartbeat.
    pub lease: Duration,
    /// Extra time base waits, after a lease, before taking over from a silent lane consumer.
    pub grace: Duration,
    /// How often consumers check liveness and ownership.
    pub tick: Duration,
    /// How often progress is committed. A crashed lane consumer's messages processed since
    /// its last commit are processed again by base: this is the at-least-once window.
    pub commit: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            heartbeat: Duration::from_millis(250),
            lease: Duration::from_secs(2),
            grace: Duration::from_millis(500),
            tick: Duration::from_millis(50),
            commit: Duration::from_millis(100),
        }
    }
}

impl Timing {
    /// With another heartbeat interval and lease.
    #[must_use]
    pub fn lease(mut self, heartbeat: Duration, lease: Duration) -> Timing {
        self.heartbeat = heartbeat;
        self.lease = lease;
        self
    }

    /// With another grace period.
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Timing {
        self.grace = grace;
        self
    }

    /// With another commit interval.
    #[must_use]
    pub fn commit(mut self, commit: Duration) -> Timing {
        self.commit = commit;
        self
    }
}

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
}

#[derive(Debug, Default)]
struct Counters {
    processed: AtomicU64,
    fallback: AtomicU64,
    replayed: AtomicU64,
    skipped: AtomicU64,
    grants: AtomicU64,
    releases: AtomicU64,
    partitions: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ConsumerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ConsumerStats {
            processed: get(&self.processed),
            fallback: get(&self.fallback),
            replayed: get(&self.replayed),
            skipped: get(&self.skipped),
            grants: get(&self.grants),
            releases: get(&self.releases),
            partitions: get(&self.partitions),
        }
    }
}

/// Counts one. Only the consumer's own loop writes its counters, so a load and a store do
/// (readers see every value in order); no locked read-modify-write per message.
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

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
    config: ClientConfig,
    propagator: Propagator,
    group: String,
    lane: Lane,
    topics: Vec<String>,
    control_topic: String,
    lane_groups: HashMap<Lane, String>,
    timing: Timing,
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

    /// Liveness and commit timing; every consumer of a group should use the same.
    pub fn timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
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
        let instance = instance_id();
        let control = Control::start(
            &self.config,
            &self.group,
            &self.control_topic,
            self.propagator.lanes().clone(),
            &instance,
        )?;
        control.catch_up(Duration::from_secs(10)).await?;

        let lease = Arc::new(Lease::new(self.timing.lease));
        let control = Arc::new(control);
        let heartbeat = if self.lane.is_base() {
            None
        } else {
            // Announce first: base grants partitions to live lanes only.
            let sent = lease.sent_at();
            control
                .heartbeat(self.lane, &instance, Some(self.timing.lease))
                .await?;
            lease.acked(sent);
            Some(tokio::spawn(heartbeat_loop(
                control.clone(),
                lease.clone(),
                self.lane,
                instance.clone(),
                self.timing,
            )))
        };

        let crashed = Arc::new(AtomicBool::new(false));
        let context = Ctx {
            topics: self.topics.clone(),
            shared: Mutex::default(),
            dirty: AtomicBool::new(false),
            crashed: crashed.clone(),
        };
        let consumer: StreamConsumer<Ctx> = self
            .config
            .clone()
            .set("group.id", self.group_of(self.lane))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set_default_if_absent("auto.offset.reset", "earliest")
            // Incremental rebalances keep the group generation valid while partitions are
            // revoked, so the revoke-time commit succeeds (an eager rebalance rejects it and
            // the next owner handles the same messages again).
            .set_default_if_absent("partition.assignment.strategy", "cooperative-sticky")
            .create_with_context(context)?;
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;

        let counters = Arc::new(Counters::default());
        let probes = self
            .propagator
            .lanes()
            .non_base()
            .map(|l| (l, self.group_of(l)))
            .collect();
        let state = State {
            me: self.lane,
            instance: instance.clone(),
            propagator: self.propagator,
            config: self.config,
            probes,
            probe_consumers: HashMap::new(),
            control,
            lease,
            timing: self.timing,
            topics: self.topics,
            parts: BTreeMap::new(),
            counters: counters.clone(),
            last_commit: Instant::now(),
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(run(Arc::new(consumer), state, handler, stop_rx, heartbeat));
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
            timing: Timing::default(),
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
        Ok(self.counters.snapshot())
    }

    /// Stops without committing or telling anyone, as a crash would (for tests and demos).
    /// Base takes over when the lease and grace have passed; what this consumer processed
    /// since its last commit is processed again.
    pub fn kill(self) -> ConsumerStats {
        // Dropping the consumer still closes it cleanly, and the revoke on close would commit:
        // a crash does not.
        self.crashed.store(true, Ordering::Release);
        self.task.abort();
        self.counters.snapshot()
    }
}

/// Rebalance events and the offsets to commit, shared with librdkafka's callbacks.
struct Ctx {
    topics: Vec<String>,
    shared: Mutex<Shared>,
    dirty: AtomicBool,
    crashed: Arc<AtomicBool>,
}

#[derive(Default)]
struct Shared {
    events: Vec<(bool, Vec<(usize, i32)>)>,
    /// Committable offset per (topic index, partition), written by the consumer loop on every
    /// message (an atomic store, not a lock) and read when committing; negative: nothing yet.
    offsets: HashMap<(usize, i32), Arc<AtomicI64>>,
}

impl Ctx {
    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<(usize, i32)> {
        tpl.elements()
            .iter()
            .filter_map(|e| {
                let t = self.topics.iter().position(|t| t == e.topic())?;
                Some((t, e.partition()))
            })
            .collect()
    }

    fn commit_list(&self, only: Option<&[(usize, i32)]>) -> TopicPartitionList {
        let shared = self.shared();
        let mut tpl = TopicPartitionList::new();
        for (&(t, p), o) in &shared.offsets {
            let o = o.load(Ordering::Acquire);
            if o >= 0 && only.is_none_or(|only| only.contains(&(t, p))) {
                let _ = tpl.add_partition_offset(&self.topics[t], p, Offset::Offset(o));
            }
        }
        tpl
    }
}

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            if self.crashed.load(Ordering::Acquire) {
                return;
            }
            let parts = self.partitions(tpl);
            // Commit what was handled before the partitions move, so the next owner does not
            // handle it again.
            let commits = self.commit_list(Some(&parts));
            if commits.count() > 0 {
                let _ = consumer.commit(&commits, CommitMode::Sync);
            }
            let mut shared = self.shared();
            for p in &parts {
                shared.offsets.remove(p);
            }
            shared.events.push((false, parts));
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
            shared.events.push((true, parts));
            self.dirty.store(true, Ordering::Release);
        }
    }
}

#[derive(Default)]
struct Part {
    /// One past the last offset delivered in this assignment.
    next: Option<i64>,
    base: BaseCursor,
    lane: LaneCursor,
    /// The committable offset, shared with the rebalance callback.
    commit: Arc<AtomicI64>,
    /// Lanes' ownership of this partition as of `Control::changes() == owners_seen`, looked up
    /// on every message of another lane (base) or of its own (lane): copies, so that the
    /// control state's lock is taken only after it changed.
    owners: Vec<(Lane, Option<Owned>)>,
    owners_seen: u64,
}

impl Part {
    /// `lane`'s ownership of this partition, from the copies while the control state has not
    /// changed since they were taken.
    fn owned(&mut self, control: &Control, lane: Lane, topic: &str, p: i32) -> Option<&Owned> {
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

struct State {
    me: Lane,
    instance: String,
    propagator: Propagator,
    config: ClientConfig,
    probes: HashMap<Lane, String>,
    probe_consumers: HashMap<Lane, BaseConsumer>,
    control: Arc<Control>,
    lease: Arc<Lease>,
    timing: Timing,
    topics: Vec<String>,
    // Few entries, looked up on every record: ordered, and no hashing.
    parts: BTreeMap<(usize, i32), Part>,
    counters: Arc<Counters>,
    last_commit: Instant,
}

type Data = StreamConsumer<Ctx>;

async fn run<F, Fut>(
    consumer: Arc<Data>,
    mut state: State,
    mut handler: F,
    mut stop: oneshot::Receiver<()>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
) -> KafkaResult<()>
where
    F: FnMut(OwnedMessage) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    // Stop the heartbeat with the consumer, whether it ends, fails or is aborted (a crash
    // simulation must silence both).
    struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            if let Some(h) = &self.0 {
                h.abort();
            }
        }
    }
    let heartbeat = AbortOnDrop(heartbeat);
    let mut tick = tokio::time::interval(state.timing.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // One stream for the consumer's life: each `recv()` would make one, registering and then
    // removing a waker slot under a lock, for every message.
    let mut messages = consumer.stream();
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = tick.tick() => state.on_tick(&consumer).await?,
            message = messages.next() => match message {
                Some(Ok(m)) => {
                    state.on_message(&consumer, m, &mut handler).await?;
                    // Records librdkafka has already fetched are handled without going back
                    // through the `select!` (its polls cost more than a record's handling),
                    // a batch bounded in count and in time (slow handlers: a tick at most) so
                    // that stop requests and ticks, hence handovers, are still seen promptly.
                    let batch_started = Instant::now();
                    for i in 1..BATCH {
                        // The clock is read every 8 records: cheap next to their handling.
                        if i % 8 == 0 && batch_started.elapsed() >= state.timing.tick {
                            break;
                        }
                        match ready_now(messages.next()) {
                            Some(Some(Ok(m))) => {
                                state.on_message(&consumer, m, &mut handler).await?
                            }
                            _ => break,
                        }
                    }
                }
                // librdkafka retries transient errors itself.
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
    drop(messages);
    // Graceful stop: commit everything handled, then (lane) say so, so base takes over from
    // exactly there without waiting for the lease.
    final_commit(&consumer).await?;
    if !state.me.is_base() {
        if let Some(h) = &heartbeat.0 {
            h.abort();
        }
        state
            .control
            .heartbeat(state.me, &state.instance, None)
            .await?;
    }
    consumer.unsubscribe();
    Ok(())
}

/// Records handled in a row before the loop looks at stop requests and ticks again.
const BATCH: usize = 64;

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
async fn final_commit(consumer: &Data) -> KafkaResult<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let commits = consumer.context().commit_list(None);
        if commits.count() == 0 {
            return Ok(());
        }
        match consumer.commit(&commits, CommitMode::Sync) {
            Err(KafkaError::ConsumerCommit(_)) if Instant::now() < deadline => {
                let _ = tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await;
            }
            other => return other,
        }
    }
}

impl State {
    async fn apply_events(&mut self, consumer: &Data) -> KafkaResult<()> {
        let events = std::mem::take(&mut consumer.context().shared().events);
        let mut assigned = false;
        for (assign, parts) in events {
            for p in parts {
                if assign {
                    let commit = consumer.context().shared().offsets.get(&p).cloned();
                    let part = Part {
                        commit: commit.unwrap_or_default(),
                        ..Part::default()
                    };
                    self.parts.insert(p, part);
                    assigned = true;
                } else {
                    self.parts.remove(&p);
                }
            }
        }
        self.counters
            .partitions
            .store(self.parts.len() as u64, Ordering::Relaxed);
        if assigned && self.me.is_base() {
            // The previous owner's grants and releases happened before it gave the partitions
            // up: read them before deciding anything.
            self.control.catch_up(Duration::from_secs(10)).await?;
        }
        Ok(())
    }

    async fn on_message<F, Fut>(
        &mut self,
        consumer: &Data,
        m: BorrowedMessage<'_>,
        handler: &mut F,
    ) -> KafkaResult<()>
    where
        F: FnMut(OwnedMessage) -> Fut,
        Fut: Future<Output = ()>,
    {
        // A plain load first: the swap's locked write is paid only after a rebalance.
        let dirty = &consumer.context().dirty;
        if dirty.load(Ordering::Acquire) && dirty.swap(false, Ordering::AcqRel) {
            self.apply_events(consumer).await?;
        }
        // Reading a record's topic name costs a `strlen` and a UTF-8 check: only compare names
        // when there is more than one topic.
        let t = match self.topics.len() {
            1 => 0,
            _ => match self.topics.iter().position(|t| t == m.topic()) {
                Some(t) => t,
                None => return Ok(()),
            },
        };
        let (p, o) = (m.partition(), m.offset());
        let Some(part) = self.parts.get_mut(&(t, p)) else {
            // Delivered after a revoke: the new owner handles it.
            return Ok(());
        };
        part.next = Some(o + 1);
        // Read once: librdkafka caches parsed headers, but not their absence, so every
        // `headers()` on a record without any allocates, parses and frees a buffer again
        // (`BorrowedMessage::detach` would be a second).
        let headers = m.headers();
        let ctx = headers.map_or_else(LaneContext::base, |h| extract_from(&self.propagator, h));
        let lane = ctx.lane();
        let topic = &self.topics[t];
        let committable;
        let run = if self.me.is_base() {
            let owns = !lane.is_base()
                && part
                    .owned(&self.control, lane, topic, p)
                    .is_some_and(|own| own.intervals.contains(o));
            let replaying = part.base.replaying(o);
            committable = Some(o + 1);
            if part.base.decide(lane, o, owns) {
                if lane.is_base() {
                    bump(&self.counters.processed);
                    Some(ctx)
                } else {
                    bump(&self.counters.fallback);
                    if replaying {
                        bump(&self.counters.replayed);
                    }
                    Some(ctx.with_served(Lane::BASE))
                }
            } else {
                None
            }
        } else {
            let open = if self.lease.valid() {
                part.owned(&self.control, self.me, topic, p)
                    .and_then(|own| own.intervals.open_from())
            } else {
                None
            };
            match part.lane.decide(self.me, lane, o, open) {
                LaneAction::Seek(back) => {
                    consumer.seek(topic, p, Offset::Offset(back), Duration::from_secs(5))?;
                    part.next = Some(back);
                    return Ok(());
                }
                LaneAction::Process => {
                    bump(&self.counters.processed);
                    committable = open.map(|_| part.lane.committable(o + 1));
                    Some(ctx)
                }
                LaneAction::Skip | LaneAction::Wait => {
                    committable = open.map(|_| part.lane.committable(o + 1));
                    None
                }
            }
        };
        match run {
            Some(ctx) => {
                // The handler's synchronous part runs in the lane too, not only its future: it
                // is called on the first poll, inside `with_lane` (one lane entry per poll).
                let message = OwnedMessage::new(
                    m.payload().map(<[u8]>::to_vec),
                    m.key().map(<[u8]>::to_vec),
                    self.topics[t].clone(),
                    m.timestamp(),
                    p,
                    o,
                    headers.map(BorrowedHeaders::detach),
                );
                async { handler(message).await }.with_lane(ctx).await;
            }
            None => bump(&self.counters.skipped),
        }
        if let Some(c) = committable {
            part.commit.store(c, Ordering::Release);
        }
        Ok(())
    }

    async fn on_tick(&mut self, consumer: &Data) -> KafkaResult<()> {
        if consumer.context().dirty.swap(false, Ordering::AcqRel) {
            self.apply_events(consumer).await?;
        }
        if self.me.is_base() {
            self.base_tick(consumer).await?;
        } else {
            self.lane_tick(consumer)?;
        }
        if self.last_commit.elapsed() >= self.timing.commit {
            self.last_commit = Instant::now();
            let commits = consumer.context().commit_list(None);
            if commits.count() > 0 {
                consumer.commit(&commits, CommitMode::Async)?;
            }
        }
        Ok(())
    }

    /// A lane consumer that skipped messages while it had no grant goes back for them.
    fn lane_tick(&mut self, consumer: &Data) -> KafkaResult<()> {
        if !self.lease.valid() {
            return Ok(());
        }
        for (&(t, p), part) in &mut self.parts {
            let (Some(next), Some(_)) = (part.next, part.lane.pending) else {
                continue;
            };
            let open = self
                .control
                .lock()
                .owned(self.me, &self.topics[t], p)
                .and_then(|own| own.intervals.open_from());
            if let Some(from) = open
                && let Some(back) = part.lane.granted(from, next)
            {
                consumer.seek(
                    &self.topics[t],
                    p,
                    Offset::Offset(back),
                    Duration::from_secs(5),
                )?;
                part.next = Some(back);
            }
        }
        Ok(())
    }

    /// Base grants partitions to lanes that became live and takes them back from lanes that
    /// stopped or went silent.
    async fn base_tick(&mut self, consumer: &Data) -> KafkaResult<()> {
        let now = Instant::now();
        let lanes: Vec<Lane> = self.control.lanes().non_base().collect();
        let parts: Vec<(usize, i32)> = self.parts.keys().copied().collect();
        for lane in lanes {
            let mut live = self.control.lock().live(lane, now, self.timing.grace);
            let granted = parts.iter().any(|&(t, p)| {
                self.control
                    .lock()
                    .owned(lane, &self.topics[t], p)
                    .is_some_and(|o| o.intervals.open_from().is_some())
            });
            if !live && granted {
                // Silence may be this reader's lag, not the lane's: read the control topic to
                // its end before taking anything back, so only a lane whose heartbeats really
                // stopped (or that said `stop`) is released.
                self.control.catch_up(Duration::from_secs(10)).await?;
                live = self
                    .control
                    .lock()
                    .live(lane, Instant::now(), self.timing.grace);
            }
            for &(t, p) in &parts {
                let topic = self.topics[t].clone();
                let intervals = self
                    .control
                    .lock()
                    .owned(lane, &topic, p)
                    .map(|o| o.intervals.clone())
                    .unwrap_or_default();
                match (live, intervals.open_from()) {
                    (true, None) => self.grant(consumer, lane, t, p, intervals).await?,
                    (false, Some(from)) => {
                        self.release(consumer, lane, t, p, from, intervals).await?;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    async fn grant(
        &mut self,
        consumer: &Data,
        lane: Lane,
        t: usize,
        p: i32,
        mut intervals: Intervals,
    ) -> KafkaResult<()> {
        let topic = self.topics[t].clone();
        // Base has handled nothing at or past its next offset; if it has not received anything
        // yet, everything it will receive is below the high watermark.
        let position = match self.parts.get(&(t, p)).and_then(|part| part.next) {
            Some(next) => next,
            None => {
                consumer
                    .fetch_watermarks(&topic, p, Duration::from_secs(5))?
                    .1
            }
        };
        intervals.grant(position.max(intervals.end()));
        self.control.set_owned(lane, &topic, p, intervals).await?;
        bump(&self.counters.grants);
        Ok(())
    }

    async fn release(
        &mut self,
        consumer: &Data,
        lane: Lane,
        t: usize,
        p: i32,
        from: i64,
        mut intervals: Intervals,
    ) -> KafkaResult<()> {
        let topic = self.topics[t].clone();
        // The lane handled everything below its committed offset (and nothing below `from`).
        let y = self
            .lane_committed(lane, &topic, p)?
            .unwrap_or(from)
            .max(from);
        let position = match self.parts.get(&(t, p)).and_then(|part| part.next) {
            Some(next) => Some(next),
            None => committed(consumer, &topic, p)?,
        };
        if let Some(position) = position
            && let Some(part) = self.parts.get_mut(&(t, p))
            && let Some(back) = part.base.released(lane, y, position)
        {
            // Go back for the lane's messages base skipped, and commit there first: should this
            // consumer die before the release is written, the next owner starts from `back`.
            consumer.seek(&topic, p, Offset::Offset(back), Duration::from_secs(5))?;
            part.next = Some(back);
            part.commit.store(back, Ordering::Release);
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, p, Offset::Offset(back))?;
            consumer.commit(&tpl, CommitMode::Sync)?;
        }
        intervals.release(y);
        self.control.set_owned(lane, &topic, p, intervals).await?;
        bump(&self.counters.releases);
        Ok(())
    }

    /// The committed offset of `lane`'s group on a partition (OffsetFetch needs no membership).
    fn lane_committed(&mut self, lane: Lane, topic: &str, p: i32) -> KafkaResult<Option<i64>> {
        let probe = match self.probe_consumers.get(&lane) {
            Some(c) => c,
            None => {
                let c: BaseConsumer = self
                    .config
                    .clone()
                    .set("group.id", &self.probes[&lane])
                    .set("enable.auto.commit", "false")
                    .create()?;
                self.probe_consumers.entry(lane).or_insert(c)
            }
        };
        committed(probe, topic, p)
    }
}

fn committed<C: Consumer<X>, X: ConsumerContext>(
    consumer: &C,
    topic: &str,
    p: i32,
) -> KafkaResult<Option<i64>> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, p);
    let tpl = consumer.committed_offsets(tpl, Duration::from_secs(5))?;
    Ok(tpl.find_partition(topic, p).and_then(|e| match e.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }))
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
