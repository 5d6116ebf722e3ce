//! The control topic: lane consumers' heartbeats and base's per-partition ownership records,
//! in one partition so that every consumer applies them in the same order.
//!
//! Keys (`{group}` is the service's base consumer group):
//!
//! - `{group}/hb/{lane}/{instance}` → `live {lease_ms}` or `stop`; tombstoned (with the hold
//!   record) after a stop, or by base once the instance has been silent for
//!   [`FORGET_AFTER`](crate::timing::FORGET_AFTER) leases
//! - `{group}/hold/{lane}/{instance}` → `{topic}:{p},{p};…`: the partitions the lane group
//!   gave the instance (empty: none), written before its first heartbeat and whenever they
//!   change; base grants a partition only to a lane that holds it
//! - `{group}/own/{lane}/{partition}/{topic}` → `{version}:{intervals}`, with `:closing` while
//!   base is taking the open interval back (see [`Intervals`] and [`Owned`])
//! - `{group}/replay/{partition}/{topic}` → `{back}-{seen}:{lane}={from},…`: the replay base
//!   is about to start on a partition (see [`BaseCursor`](crate::handover::BaseCursor)),
//!   written before it seeks back, so that a new owner starting inside it takes it over
//! - `{group}/barrier/{instance}` → a sequence number: written by a reader that catches up, to
//!   know where "up to now" ends (not a lane: other readers pass over it)
//!
//! Values are in format [`records::FORMAT`] (1). A value may say its format first, `v{n};{value}`; one
//! without is format 1. A reader applies the formats it knows (up to [`records::FORMAT`]) and ignores,
//! counts and reports any newer one, so it never half-applies a record it cannot read. Writers
//! write format 1 without the marker, which every graylane reads; a later format is written
//! only once every consumer of the group reads it.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use graylane_core::{Lane, LaneSet};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::blocking::off_runtime;
use crate::handover::{BaseCursor, Intervals};
mod handback;
mod records;

pub use handback::{Handback, lane_handback};

use records::ControlState;
pub(crate) use records::Owned;

use crate::timing::{
    CATCH_UP_POLL, CONTROL_CALL, CONTROL_READ_BACKOFF, CONTROL_SEND, DESCRIBE_CALL,
};

/// A consumer's connection to the control topic: a reader that applies every record to the
/// shared state, and a producer for this consumer's own records.
pub(crate) struct Control {
    pub(crate) group: String,
    pub(crate) topic: String,
    lanes: LaneSet,
    pub(crate) state: Arc<Mutex<ControlState>>,
    changes: Arc<AtomicU64>,
    /// One past the offset of the last record applied.
    applied: Arc<AtomicI64>,
    producer: FutureProducer,
    task: tokio::task::JoinHandle<()>,
    /// This consumer's barrier key, and how many barriers it wrote.
    barrier: String,
    barriers: AtomicU64,
    /// An ownership write failed: it may have landed all the same (a delivery timeout), so
    /// this consumer's view is uncertain until a catch-up has read past it.
    uncertain: std::sync::atomic::AtomicBool,
}

impl Drop for Control {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Control {
    pub(crate) async fn start(
        config: &ClientConfig,
        group: &str,
        topic: &str,
        lanes: LaneSet,
        instance: &str,
    ) -> KafkaResult<Control> {
        let mut reader = config.clone();
        reader
            .set("group.id", format!("{group}.graylane-reader.{instance}"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false");
        // Creating a client starts its threads and resolves the brokers: not on a worker.
        let reader: Arc<StreamConsumer> = Arc::new(off_runtime(move || reader.create()).await?);
        let metadata = {
            let (reader, topic) = (reader.clone(), topic.to_owned());
            off_runtime(move || reader.fetch_metadata(Some(&topic), CONTROL_CALL)).await?
        };
        let partitions = metadata
            .topics()
            .first()
            .filter(|t| t.error().is_none())
            .map_or(0, |t| t.partitions().len());
        if partitions != 1 {
            return Err(KafkaError::ClientCreation(format!(
                "graylane control topic `{topic}` must exist with exactly one partition (found {partitions}); \
                 create it compacted, e.g. kafka-topics --create --topic {topic} --partitions 1 --config cleanup.policy=compact"
            )));
        }
        check_settings(config, topic).await?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
        reader.assign(&tpl)?;
        let state = ControlState::default();
        let changes = state.changes.clone();
        let state = Arc::new(Mutex::new(state));
        let applied = Arc::new(AtomicI64::new(0));
        let task = tokio::spawn(read_loop(
            reader.clone(),
            state.clone(),
            applied.clone(),
            group.to_owned(),
            lanes.clone(),
        ));
        let mut producer = config.clone();
        // `send`'s timeout bounds the wait for room in the queue; delivery waits up to
        // `message.timeout.ms` (librdkafka's default: 300 s), while base handles nothing.
        producer
            .set("linger.ms", "0")
            .set("message.timeout.ms", CONTROL_SEND.as_millis().to_string());
        let producer: FutureProducer = off_runtime(move || producer.create()).await?;
        Ok(Control {
            group: group.to_owned(),
            topic: topic.to_owned(),
            lanes,
            state,
            changes,
            applied,
            producer,
            task,
            barrier: format!("{group}/barrier/{instance}"),
            barriers: AtomicU64::new(0),
            uncertain: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ControlState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many times ownership has changed: a copy of [`ControlState::owned`] taken under the
    /// lock stays right while this does not move.
    pub(crate) fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Waits until every record written before this call has been applied: writes a barrier
    /// record and reads up to it. A high watermark would do only if it were never stale; the
    /// broker's acknowledgement of this consumer's own record says where "now" is.
    pub(crate) async fn catch_up(&self, timeout: Duration) -> KafkaResult<()> {
        let n = self.barriers.fetch_add(1, Ordering::Relaxed);
        let barrier = self.write(self.barrier.clone(), n.to_string()).await?;
        let deadline = Instant::now() + timeout;
        while self.applied.load(Ordering::Acquire) <= barrier {
            if Instant::now() > deadline {
                return Err(KafkaError::ClientCreation(format!(
                    "graylane control topic `{}`: could not read up to offset {barrier} in {timeout:?}",
                    self.topic
                )));
            }
            tokio::time::sleep(CATCH_UP_POLL).await;
        }
        self.uncertain.store(false, Ordering::Release);
        Ok(())
    }

    /// Whether an ownership write failed since the last catch-up: whether it landed is not
    /// known, so no record may be decided on this view.
    pub(crate) fn uncertain(&self) -> bool {
        self.uncertain.load(Ordering::Acquire)
    }

    /// Writes a record; its offset once acknowledged.
    async fn write(&self, key: String, value: String) -> KafkaResult<i64> {
        self.send(&key, Some(&value)).await
    }

    /// Writes `value` under `key`, or a tombstone (`None`): compaction then drops the key.
    async fn send(&self, key: &str, value: Option<&str>) -> KafkaResult<i64> {
        let mut record = FutureRecord::to(&self.topic).partition(0).key(key);
        if let Some(value) = value {
            record = record.payload(value);
        }
        let delivery = self
            .producer
            .send(record, CONTROL_SEND)
            .await
            .map_err(|(e, _)| e)?;
        Ok(delivery.offset)
    }

    /// Writes several records at once: all in flight together, so that a batch costs one
    /// round trip to the broker rather than one per record (a start at scale grants and takes
    /// back hundreds of lane-partitions). Each record's outcome, in order.
    async fn send_all(&self, records: &[(String, Option<String>)]) -> Vec<KafkaResult<i64>> {
        join_all(
            records
                .iter()
                .map(|(key, value)| self.send(key, value.as_deref())),
        )
        .await
    }

    /// Tombstones instances' hold and heartbeat records (the hold records first: a reader that
    /// applies those alone still has the instance, holding nothing), so that compaction drops
    /// them and later starts do not read them. For an instance that stopped, or ones silent
    /// long enough that nobody waits on them.
    pub(crate) async fn forget(&self, instances: &[(Lane, String)]) -> KafkaResult<()> {
        for kind in ["hold", "hb"] {
            let tombstones: Vec<_> = instances
                .iter()
                .map(|(lane, instance)| (format!("{}/{kind}/{lane}/{instance}", self.group), None))
                .collect();
            first_error(self.send_all(&tombstones).await)?;
        }
        Ok(())
    }

    pub(crate) async fn heartbeat(
        &self,
        lane: Lane,
        instance: &str,
        lease: Option<Duration>,
    ) -> KafkaResult<()> {
        let value = lease.map_or_else(|| "stop".to_owned(), |l| format!("live {}", l.as_millis()));
        self.write(format!("{}/hb/{lane}/{instance}", self.group), value)
            .await
            .map(drop)
    }

    /// Writes the partitions this instance of `lane` holds (sorted by topic).
    pub(crate) async fn hold(
        &self,
        lane: Lane,
        instance: &str,
        holds: &[(String, i32)],
    ) -> KafkaResult<()> {
        let key = format!("{}/hold/{lane}/{instance}", self.group);
        self.write(key, records::encode_holds(holds))
            .await
            .map(drop)
    }

    /// `lane`'s ownership of `topic`/`partition` as it stands, with base taking its open
    /// interval back (`closing`) or reopening it: what [`set_owned`](Self::set_owned) writes
    /// to say so, the intervals unchanged.
    pub(crate) fn closing(
        &self,
        lane: Lane,
        topic: &str,
        partition: i32,
        closing: bool,
    ) -> OwnedWrite {
        let intervals = self
            .lock()
            .owned(lane, topic, partition)
            .map(|o| o.intervals.clone())
            .unwrap_or_default();
        OwnedWrite {
            topic: topic.to_owned(),
            partition,
            intervals,
            closing,
        }
    }

    /// Writes ownership of `lane` on each partition of `writes` (in flight together), and
    /// applies each record once acknowledged. Should any fail, the others still apply, and
    /// this consumer's view is uncertain until a catch-up: the failed ones may have landed.
    pub(crate) async fn set_owned(&self, lane: Lane, writes: Vec<OwnedWrite>) -> KafkaResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let owned: Vec<(OwnedWrite, Owned)> = {
            let state = self.lock();
            writes
                .into_iter()
                .map(|w| {
                    let version = state
                        .owned(lane, &w.topic, w.partition)
                        .map_or(1, |o| o.version + 1);
                    let owned = Owned {
                        version,
                        intervals: w.intervals.clone(),
                        closing: w.closing,
                    };
                    (w, owned)
                })
                .collect()
        };
        let records: Vec<_> = owned
            .iter()
            .map(|(w, owned)| {
                let key = format!("{}/own/{lane}/{}/{}", self.group, w.partition, w.topic);
                (key, Some(owned.encode()))
            })
            .collect();
        let sent = self.send_all(&records).await;
        let mut error = None;
        {
            let mut state = self.lock();
            for ((w, owned), sent) in owned.into_iter().zip(sent) {
                match sent {
                    Ok(_) => state.set_owned(lane, &w.topic, w.partition, owned),
                    Err(e) => {
                        error.get_or_insert(e);
                    }
                }
            }
        }
        match error {
            Some(e) => {
                self.uncertain.store(true, Ordering::Release);
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Writes the replays base is about to make, each a partition's cursor. Not applied to
    /// this consumer's own state: the owner keeps its cursor, and a later owner reads the
    /// record back in log order when it catches up.
    pub(crate) async fn set_replays(
        &self,
        replays: &[(String, i32, BaseCursor)],
    ) -> KafkaResult<()> {
        let records: Vec<_> = replays
            .iter()
            .map(|(topic, partition, cursor)| {
                let key = format!("{}/replay/{partition}/{topic}", self.group);
                (key, Some(cursor.encode()))
            })
            .collect();
        first_error(self.send_all(&records).await)
    }

    pub(crate) fn lanes(&self) -> &LaneSet {
        &self.lanes
    }
}

/// An ownership record to write: `lane`'s intervals on a partition, and whether base is taking
/// the open one back.
#[derive(Debug)]
pub(crate) struct OwnedWrite {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) intervals: Intervals,
    pub(crate) closing: bool,
}

/// The first error of a batch's outcomes.
fn first_error(outcomes: Vec<KafkaResult<i64>>) -> KafkaResult<()> {
    outcomes
        .into_iter()
        .find_map(Result::err)
        .map_or(Ok(()), Err)
}

/// The control topic's settings that the protocol relies on, where the broker answers
/// DescribeConfigs: it must be compacted (with `delete`, the broker's default, grants vanish
/// after the retention time and lanes lose ownership they still hold). A broker that does not
/// answer (librdkafka's mock) is said so once per process.
async fn check_settings(config: &ClientConfig, topic: &str) -> KafkaResult<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;

    // Brokers that did not answer, by bootstrap address: asked once per process, since each
    // question costs the whole wait.
    static SILENT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let bootstrap = config
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_owned();
    let silent = || SILENT.lock().unwrap_or_else(PoisonError::into_inner);
    if silent().contains(&bootstrap) {
        return Ok(());
    }
    let config = config.clone();
    let admin: AdminClient<DefaultClientContext> = off_runtime(move || config.create()).await?;
    let options = AdminOptions::new().request_timeout(Some(DESCRIBE_CALL));
    let described = tokio::time::timeout(
        DESCRIBE_CALL,
        admin.describe_configs([&ResourceSpecifier::Topic(topic)], &options),
    )
    .await;
    // Closing an admin client joins its thread: not on a worker.
    off_runtime(move || {
        drop(admin);
        Ok(())
    })
    .await?;
    let resource = match described {
        Ok(Ok(mut results)) if results.len() == 1 => results.pop().and_then(Result::ok),
        Ok(answer) => {
            // An answer, but not the settings (an ACL, a broker starting): not checked this
            // time, asked again by the next consumer.
            tracing::info!(
                topic,
                ?answer,
                "graylane control topic: settings not described"
            );
            return Ok(());
        }
        Err(_) => {
            tracing::info!(
                topic,
                bootstrap,
                "graylane control topic: the broker does not describe topic settings; \
                 cleanup.policy=compact is not checked"
            );
            silent().push(bootstrap);
            return Ok(());
        }
    };
    let Some(resource) = resource else {
        return Ok(());
    };
    let value = |name: &str| resource.get(name).and_then(|e| e.value.clone());
    let policy = value("cleanup.policy").unwrap_or_default();
    let policies: Vec<&str> = policy.split(',').map(str::trim).collect();
    // `compact,delete` deletes too, after the retention time, unless that is infinite.
    let deletes = policies.contains(&"delete") && value("retention.ms").as_deref() != Some("-1");
    if !policies.contains(&"compact") || deletes {
        return Err(KafkaError::ClientCreation(format!(
            "graylane control topic `{topic}` has cleanup.policy={policy}: it must be compact \
             alone (grants would be deleted after the retention time); \
             kafka-configs --alter --entity-type topics --entity-name {topic} \
             --add-config cleanup.policy=compact"
        )));
    }
    // The active segment is never compacted: until it rolls, every start reads every record
    // written since.
    if let Some(ms) = value("segment.ms").and_then(|v| v.parse::<u64>().ok())
        && ms > RECOMMENDED_SEGMENT_MS
    {
        tracing::warn!(
            topic,
            segment_ms = ms,
            "graylane control topic: segment.ms above {RECOMMENDED_SEGMENT_MS} keeps old \
             heartbeats uncompacted that long, and every start reads them; \
             set segment.ms={RECOMMENDED_SEGMENT_MS}"
        );
    }
    Ok(())
}

/// `segment.ms` recommended for a control topic (1 hour): compaction can then drop old
/// heartbeats within about an hour.
const RECOMMENDED_SEGMENT_MS: u64 = 3_600_000;

/// The settings to create a control topic with (one partition): compacted, and with segments
/// that roll hourly so that compaction keeps what a start reads small.
///
/// ```
/// # use rdkafka::admin::{NewTopic, TopicReplication};
/// let topic = graylane_kafka::CONTROL_TOPIC_SETTINGS
///     .iter()
///     .fold(NewTopic::new("graylane-control", 1, TopicReplication::Fixed(3)), |t, (k, v)| t.set(k, v));
/// # let _ = topic;
/// ```
pub const CONTROL_TOPIC_SETTINGS: [(&str, &str); 2] =
    [("cleanup.policy", "compact"), ("segment.ms", "3600000")];

async fn read_loop(
    reader: Arc<StreamConsumer>,
    state: Arc<Mutex<ControlState>>,
    applied: Arc<AtomicI64>,
    group: String,
    lanes: LaneSet,
) {
    loop {
        match reader.recv().await {
            Ok(m) => {
                let key = m.key_view::<str>().and_then(Result::ok).unwrap_or("");
                let value = m.payload_view::<str>().and_then(Result::ok).unwrap_or("");
                state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .apply(&group, &lanes, key, value);
                applied.store(m.offset() + 1, Ordering::Release);
            }
            // Transient errors (broker down, retries) are librdkafka's to recover from; the
            // lease logic covers the time they take.
            Err(_) => tokio::time::sleep(CONTROL_READ_BACKOFF).await,
        }
    }
}

/// Milliseconds on a process-wide monotonic clock, for atomics.
pub(crate) fn now_ms(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The last time (on `now_ms`) a heartbeat sent by this instance was acknowledged, measured
/// from when it was *sent*.
#[derive(Debug)]
pub(crate) struct Lease {
    origin: Instant,
    acked_sent_at: AtomicU64,
    length: Duration,
    /// How many times the lease lapsed and was regained: while it had lapsed, base may have
    /// taken the lane's partitions back.
    lapses: AtomicU64,
}

impl Lease {
    pub(crate) fn new(length: Duration) -> Lease {
        Lease {
            origin: Instant::now(),
            acked_sent_at: AtomicU64::new(0),
            length,
            lapses: AtomicU64::new(0),
        }
    }

    pub(crate) fn sent_at(&self) -> u64 {
        now_ms(self.origin)
    }

    /// A heartbeat sent at `sent_at` was acknowledged. Called by one task at a time.
    pub(crate) fn acked(&self, sent_at: u64) {
        // Stored plus one: zero means "never acknowledged".
        let previous = self.acked_sent_at.load(Ordering::Acquire);
        if previous > sent_at + 1 {
            // An older heartbeat's acknowledgement, overtaken.
            return;
        }
        // The previous lease ran out before this acknowledgement came: it lapsed in between
        // (whether or not anyone looked while it had). Counted before the lease is renewed, so
        // no reader sees it valid again without the lapse.
        let length = u64::try_from(self.length.as_millis()).unwrap_or(u64::MAX);
        if previous != 0 && now_ms(self.origin) >= (previous - 1).saturating_add(length) {
            self.lapses.fetch_add(1, Ordering::AcqRel);
        }
        self.acked_sent_at.fetch_max(sent_at + 1, Ordering::AcqRel);
    }

    /// How many times the lease has lapsed so far.
    pub(crate) fn lapses(&self) -> u64 {
        self.lapses.load(Ordering::Acquire)
    }

    /// Whether this instance still holds its lease (may process and commit).
    pub(crate) fn valid(&self) -> bool {
        match self.acked_sent_at.load(Ordering::Acquire) {
            0 => false,
            sent => {
                let age = now_ms(self.origin).saturating_sub(sent - 1);
                u128::from(age) < self.length.as_millis()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_is_invalid_until_acked_and_after_it_lapses() {
        let lease = Lease::new(Duration::from_millis(50));
        assert!(!lease.valid());
        lease.acked(lease.sent_at());
        assert!(lease.valid());
        lease.acked(lease.sent_at());
        assert_eq!(lease.lapses(), 0, "renewed in time");
        std::thread::sleep(Duration::from_millis(60));
        assert!(!lease.valid());
        // Renewed after it ran out: valid again, and the lapse is counted.
        lease.acked(lease.sent_at());
        assert!(lease.valid());
        assert_eq!(lease.lapses(), 1);
        // Sent in time but acknowledged after the lease ran out: a lapse too.
        let sent = lease.sent_at();
        std::thread::sleep(Duration::from_millis(60));
        lease.acked(sent);
        assert_eq!(lease.lapses(), 2);
    }
}
