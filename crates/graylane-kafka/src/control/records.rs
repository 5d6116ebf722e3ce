//! The control topic's records: their keys and values, and the state they build up, read
//! with no I/O. Kept free of rdkafka so that the fuzz target for this parser
//! (`fuzz/fuzz_targets/control.rs`) compiles this file as it is, without building librdkafka.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use graylane_core::{Lane, LaneSet};

use crate::handover::{BaseCursor, Instance, Intervals};

/// Ownership of one lane on one partition, with the version of the record that set it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Owned {
    pub(crate) version: u64,
    pub(crate) intervals: Intervals,
}

impl Owned {
    pub(crate) fn encode(&self) -> String {
        format!("{}:{}", self.version, self.intervals)
    }

    pub(crate) fn decode(value: &str) -> Option<Owned> {
        let (version, intervals) = value.split_once(':')?;
        Some(Owned {
            version: version.parse().ok()?,
            intervals: Intervals::decode(intervals)?,
        })
    }
}

/// Ownership records of one lane and partition number, by topic.
type ByTopic = Vec<(Box<str>, Owned)>;

/// What the control topic says, as far as this consumer has read it.
#[derive(Debug, Default)]
pub(crate) struct ControlState {
    instances: HashMap<(Lane, String), Instance>,
    /// By lane and partition, then by topic (few topics per consumer: a scan is cheaper than
    /// allocating a key per message).
    owners: HashMap<(Lane, i32), ByTopic>,
    /// The replay in progress on a partition, by topic and partition, as its base owner wrote
    /// it before seeking back: looked up when a partition comes to base.
    replays: HashMap<(Box<str>, i32), BaseCursor>,
    /// Bumped whenever `owners` changes, readable without the lock: consumers keep copies of
    /// the ownership they look up on every message and refresh them when this moves.
    pub(crate) changes: Arc<AtomicU64>,
    pub(crate) malformed: u64,
    /// Records of a format newer than [`FORMAT`], ignored.
    pub(crate) future: u64,
}

/// The newest control-record format this graylane reads and the one it writes.
pub(crate) const FORMAT: u32 = 1;

/// A value's format and the value without its marker (`v{n};`), if it has a well-formed one.
pub(crate) fn format_of(value: &str) -> Option<(u32, &str)> {
    match value.strip_prefix('v').and_then(|r| r.split_once(';')) {
        Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            Some((n.parse().ok()?, rest))
        }
        Some(_) => None,
        None => Some((1, value)),
    }
}

impl ControlState {
    /// Applies one record. Records of other groups and lanes are ignored; malformed ones are
    /// counted and ignored.
    pub(crate) fn apply(&mut self, group: &str, lanes: &LaneSet, key: &str, value: &str) {
        self.apply_seen(group, lanes, key, value, Instant::now());
    }

    /// [`apply`](Self::apply), with a heartbeat taken as seen at `seen_at`: a reader that
    /// reads the topic afresh dates each heartbeat by its record's timestamp, so that one of
    /// a crashed instance, written long ago, is not live for a whole lease from now.
    pub(crate) fn apply_seen(
        &mut self,
        group: &str,
        lanes: &LaneSet,
        key: &str,
        value: &str,
        seen_at: Instant,
    ) {
        let Some(rest) = key.strip_prefix(group).and_then(|r| r.strip_prefix('/')) else {
            return;
        };
        let mut parts = rest.splitn(4, '/');
        let kind = parts.next();
        // Replays are base's, of no lane; every other kind names a lane of this consumer's.
        let lane = match kind {
            Some("replay") => None,
            _ => match parts.next().and_then(|l| lanes.get(l.as_bytes())) {
                Some(lane) if !lane.is_base() => Some(lane),
                _ => return,
            },
        };
        let value = match format_of(value) {
            Some((n, value)) if n <= FORMAT => value,
            Some((n, _)) => {
                self.future += 1;
                if self.future == 1 {
                    tracing::warn!(
                        key,
                        format = n,
                        "graylane control topic: a record of format {n}, newer than this \
                         graylane's ({FORMAT}), ignored; upgrade this consumer"
                    );
                }
                return;
            }
            None => {
                self.malformed += 1;
                return;
            }
        };
        let ok = match (kind, lane) {
            (Some("replay"), _) => {
                let partition = parts.next().and_then(|p| p.parse::<i32>().ok());
                let topic = parts.next().filter(|t| !t.is_empty());
                let whole = parts.next().is_none();
                partition
                    .zip(topic.filter(|_| whole))
                    .zip(BaseCursor::decode(value, lanes))
                    .map(|((partition, topic), cursor)| {
                        self.replays.insert((topic.into(), partition), cursor);
                    })
            }
            (Some("hb"), Some(lane)) => parts
                .next()
                .filter(|_| parts.next().is_none())
                .and_then(|instance| Some((instance, parse_heartbeat(value)?)))
                .map(|(instance, hb)| {
                    let entry = Instance {
                        seen_at,
                        lease: hb.unwrap_or_default(),
                        stopped: hb.is_none(),
                    };
                    self.instances.insert((lane, instance.to_owned()), entry);
                }),
            (Some("own"), Some(lane)) => parts
                .next()
                .and_then(|p| p.parse::<i32>().ok())
                .zip(parts.next())
                .zip(Owned::decode(value))
                .map(|((partition, topic), owned)| self.set_owned(lane, topic, partition, owned)),
            _ => None,
        };
        if ok.is_none() {
            self.malformed += 1;
        }
    }

    /// Installs `owned` unless a newer version is known (a consumer applies its own writes
    /// when they are acknowledged, before it reads them back in log order).
    pub(crate) fn set_owned(&mut self, lane: Lane, topic: &str, partition: i32, owned: Owned) {
        let topics = self.owners.entry((lane, partition)).or_default();
        match topics.iter_mut().find(|(t, _)| &**t == topic) {
            Some((_, current)) if current.version >= owned.version => return,
            Some((_, current)) => *current = owned,
            None => topics.push((topic.into(), owned)),
        }
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// The replay base's previous owner of `topic`/`partition` last wrote, if any.
    pub(crate) fn replay(&self, topic: &str, partition: i32) -> Option<&BaseCursor> {
        self.replays.get(&(topic.into(), partition))
    }

    /// Whether `lane` holds an open grant on `topic`/`partition`.
    pub(crate) fn granted(&self, lane: Lane, topic: &str, partition: i32) -> bool {
        self.owned(lane, topic, partition)
            .is_some_and(|o| o.intervals.open_from().is_some())
    }

    pub(crate) fn owned(&self, lane: Lane, topic: &str, partition: i32) -> Option<&Owned> {
        self.owners
            .get(&(lane, partition))?
            .iter()
            .find(|(t, _)| &**t == topic)
            .map(|(_, o)| o)
    }

    /// The instances of `lane` that are live, by name, sorted.
    pub(crate) fn live_instances(&self, lane: Lane, now: Instant, grace: Duration) -> Vec<String> {
        let mut live: Vec<String> = self
            .instances
            .iter()
            .filter(|((l, _), i)| *l == lane && i.live(now, grace))
            .map(|((_, name), _)| name.clone())
            .collect();
        live.sort();
        live
    }

    /// The partitions on which `lane` holds an open grant, as `(topic, partition)`, sorted.
    pub(crate) fn open_grants(&self, lane: Lane) -> Vec<(String, i32)> {
        let mut open: Vec<(String, i32)> = self
            .owners
            .iter()
            .filter(|((l, _), _)| *l == lane)
            .flat_map(|((_, p), topics)| {
                topics
                    .iter()
                    .filter(|(_, o)| o.intervals.open_from().is_some())
                    .map(|(t, _)| (t.to_string(), *p))
            })
            .collect();
        open.sort();
        open
    }

    /// Whether any instance of `lane` is live.
    pub(crate) fn live(&self, lane: Lane, now: Instant, grace: Duration) -> bool {
        self.instances
            .iter()
            .any(|((l, _), i)| *l == lane && i.live(now, grace))
    }
}

/// `Some(lease)` for `live {ms}`, `None` for `stop`; malformed → outer `None`.
fn parse_heartbeat(value: &str) -> Option<Option<Duration>> {
    match value.split_once(' ') {
        Some(("live", ms)) => Some(Some(Duration::from_millis(ms.parse().ok()?))),
        None if value == "stop" => Some(None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_instances_and_open_grants_say_what_a_lane_still_holds() {
        let gray = Lane::new("gray").unwrap();
        let lanes = LaneSet::new([gray]);
        let mut s = ControlState::default();
        s.apply("orders", &lanes, "orders/hb/gray/i2", "live 60000");
        s.apply("orders", &lanes, "orders/hb/gray/i1", "live 60000");
        s.apply("orders", &lanes, "orders/own/gray/1/events", "1:10-");
        s.apply("orders", &lanes, "orders/own/gray/0/events", "1:3-7");
        let now = Instant::now();
        assert_eq!(s.live_instances(gray, now, Duration::ZERO), ["i1", "i2"]);
        assert_eq!(s.open_grants(gray), [("events".to_owned(), 1)]);
        s.apply("orders", &lanes, "orders/hb/gray/i1", "stop");
        s.apply("orders", &lanes, "orders/hb/gray/i2", "stop");
        s.apply("orders", &lanes, "orders/own/gray/1/events", "2:10-20");
        assert!(s.live_instances(gray, now, Duration::ZERO).is_empty());
        assert!(s.open_grants(gray).is_empty());
    }

    #[test]
    fn records_apply_in_version_order_and_hostile_ones_are_counted() {
        let gray = Lane::new("gray").unwrap();
        let lanes = LaneSet::new([gray]);
        let mut s = ControlState::default();
        s.apply("orders", &lanes, "orders/own/gray/3/events", "2:10-");
        s.apply("orders", &lanes, "orders/own/gray/3/events", "1:5-9");
        assert_eq!(
            s.owned(gray, "events", 3).unwrap().intervals.open_from(),
            Some(10)
        );
        s.apply("orders", &lanes, "orders/hb/gray/i1", "live 2000");
        assert!(s.live(gray, Instant::now(), Duration::ZERO));
        s.apply("orders", &lanes, "orders/hb/gray/i1", "stop");
        assert!(!s.live(gray, Instant::now(), Duration::from_secs(9)));
        // Other groups, unknown lanes and base are not ours.
        s.apply("payments", &lanes, "orders/hb/gray/i2", "live 2000");
        s.apply("orders", &lanes, "orders/hb/blue/i2", "live 2000");
        s.apply("orders", &lanes, "orders/hb/base/i2", "live 2000");
        assert!(!s.live(gray, Instant::now(), Duration::from_secs(9)));
        // Replays are base's, of no lane: of a partition, read by its next owner.
        s.apply("orders", &lanes, "orders/replay/3/events", "10-40:gray=12");
        assert!(
            s.replay("events", 3)
                .is_some_and(|c| c.resume(20).is_some())
        );
        assert!(s.replay("events", 4).is_none() && s.replay("other", 3).is_none());
        assert_eq!(s.malformed, 0);
        for (k, v) in [
            ("orders/replay/x/events", "10-40:gray=12"),
            ("orders/replay/3", "10-40:gray=12"),
            ("orders/replay/3/a/b", "10-40:gray=12"),
            ("orders/replay/3/events", "40-10:gray=12"),
            ("orders/hb/gray/i3", "live soon"),
            ("orders/hb/gray/i3/x", "live 1"),
            ("orders/own/gray/x/events", "1:1-"),
            ("orders/own/gray/1/events", "1:9-3"),
            ("orders/own/gray/1", "1:1-"),
            ("orders/zz/gray/1", "1"),
        ] {
            s.apply("orders", &lanes, k, v);
        }
        assert_eq!(s.malformed, 10);
        assert!(!s.live(gray, Instant::now(), Duration::from_secs(9)));
        assert_eq!(
            s.replay("events", 3).map(|c| c.encode()).as_deref(),
            Some("10-40:gray=12"),
            "a malformed record replaces nothing"
        );
    }

    #[test]
    fn records_of_a_newer_format_are_ignored_and_counted_never_half_applied() {
        let gray = Lane::new("gray").unwrap();
        let lanes = LaneSet::new([gray]);
        let mut s = ControlState::default();
        // Format 1, with and without its marker.
        s.apply("orders", &lanes, "orders/own/gray/3/events", "v1;1:10-");
        assert_eq!(
            s.owned(gray, "events", 3).unwrap().intervals.open_from(),
            Some(10)
        );
        s.apply("orders", &lanes, "orders/hb/gray/i1", "live 2000");
        // A newer graylane's records: nothing of them is applied, however they look.
        s.apply("orders", &lanes, "orders/own/gray/3/events", "v2;2:10-20");
        s.apply(
            "orders",
            &lanes,
            "orders/own/gray/3/events",
            "v7;anything at all",
        );
        s.apply("orders", &lanes, "orders/hb/gray/i1", "v2;stop");
        assert_eq!(s.future, 3);
        assert_eq!(
            s.owned(gray, "events", 3).unwrap().intervals.open_from(),
            Some(10)
        );
        assert!(s.live(gray, Instant::now(), Duration::ZERO));
        // A broken marker is malformed, not a format.
        for v in ["v;1:1-", "vx;1:1-", "v99999999999;1:1-"] {
            s.apply("orders", &lanes, "orders/own/gray/4/events", v);
        }
        assert_eq!((s.malformed, s.future), (3, 3));
        assert!(s.owned(gray, "events", 4).is_none());
        s.apply("orders", &lanes, "orders/replay/3/events", "10-40:gray=12");
        s.apply(
            "orders",
            &lanes,
            "orders/replay/3/events",
            "v2;10-50:gray=12",
        );
        assert_eq!(s.future, 4);
        assert_eq!(
            s.replay("events", 3).map(|c| c.encode()).as_deref(),
            Some("10-40:gray=12")
        );
        // Barriers are nobody's lane: passed over.
        s.apply("orders", &lanes, "orders/barrier/123-0-ff", "7");
        assert_eq!(s.malformed, 3);
    }
}
