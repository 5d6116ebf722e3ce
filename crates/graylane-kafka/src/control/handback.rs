//! Whether a lane's consumers have handed their partitions back, read off the control topic by
//! someone who is not a consumer (`graylane release finish`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use graylane_core::{Lane, LaneSet};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::records::ControlState;

/// Where one lane's consumers of one base consumer group stand, as the control topic says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handback {
    /// The lane's instances whose last heartbeat was `live` and whose lease has not run out
    /// since this was read.
    pub live: Vec<String>,
    /// `(topic, partition)` on which the lane still holds an open grant: base has not taken
    /// those records back yet.
    pub open_grants: Vec<(String, i32)>,
}

impl Handback {
    /// Whether the lane has handed everything back: no instance live, no grant open.
    pub fn released(&self) -> bool {
        self.live.is_empty() && self.open_grants.is_empty()
    }
}

/// Reads the control topic `topic` from its start to its end now and says where `lane`'s
/// consumers of the base group `group` stand. Blocking (call it off an async runtime); bounded
/// by `timeout`. `config` holds the connection settings (`bootstrap.servers`, security).
///
/// A lane instance that stopped cleanly wrote `stop`; one that crashed is live until its lease
/// has passed since its last heartbeat's record timestamp (as the broker or its producer
/// dated it: clocks apart by seconds move that by as much), so a caller that waits for
/// [`Handback::released`] waits at most a lease for it. A grant closes when base takes the lane's records back, which base does once
/// no instance of the lane is live.
pub fn lane_handback(
    config: &ClientConfig,
    topic: &str,
    group: &str,
    lane: Lane,
    timeout: Duration,
) -> KafkaResult<Handback> {
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let mut config = config.clone();
    let reader: BaseConsumer = config
        .set("group.id", format!("{group}.graylane-handback"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let (low, high) = reader.fetch_watermarks(topic, 0, left())?;
    let mut state = ControlState::default();
    let lanes = LaneSet::new([lane]);
    if high > low {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Offset(low))?;
        reader.assign(&tpl)?;
        let mut next = low;
        while next < high {
            if left().is_zero() {
                return Err(KafkaError::ClientCreation(format!(
                    "control topic `{topic}`: read {} of {} records within {timeout:?}",
                    next - low,
                    high - low
                )));
            }
            match reader.poll(left().min(Duration::from_millis(200))) {
                Some(Ok(m)) => {
                    let key = m.key_view::<str>().and_then(Result::ok).unwrap_or("");
                    let value = m.payload_view::<str>().and_then(Result::ok).unwrap_or("");
                    // Dated by the record: how long ago it was written, by the wall clock.
                    let age = m
                        .timestamp()
                        .to_millis()
                        .and_then(|ms| u64::try_from(ms).ok())
                        .map(|ms| {
                            let now = SystemTime::now()
                                .duration_since(UNIX_EPOCH)
                                .map_or(0, |d| d.as_millis() as u64);
                            Duration::from_millis(now.saturating_sub(ms))
                        })
                        .unwrap_or_default();
                    let seen = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
                    state.apply_seen(group, &lanes, key, value, seen);
                    next = m.offset() + 1;
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
    }
    Ok(Handback {
        live: state.live_instances(lane, Instant::now(), Duration::ZERO),
        open_grants: state.open_grants(lane),
    })
}
