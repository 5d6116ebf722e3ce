//! The control topic's records: their keys and values, and the state they build up, read
//! with no I/O. Kept free of rdkafka so that the fuzz target for this parser
//! (`fuzz/fuzz_targets/control.rs`) compiles this file as it is, without building librdkafka.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use graylane_core::{Lane, LaneSet};

use crate::handover::{BaseCursor, Holding, Instance, Intervals};

/// Ownership of one lane on one partition, with the version of the record that set it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Owned {
    pub(crate) version: u64,
    pub(crate) intervals: Intervals,
    /// Base is taking the open interval back: no lane instance acts on it, and base handles
    /// none of the lane's records in it, until base either releases it or reopens it (written
    /// `{version}:{intervals}:closing`). Saying so first is what makes a take-back safe from
    /// an instance that starts holding the partition meanwhile: it reads this before acting.
    pub(crate) closing: bool,
}

impl Owned {
    pub(crate) fn encode(&self) -> String {
        let closing = if self.closing { ":closing" } else { "" };
        format!("{}:{}{closing}", self.version, self.intervals)
    }

    pub(crate) fn decode(value: &str) -> Option<Owned> {
        let (version, rest) = value.split_once(':')?;
        let (intervals, closing) = match rest.strip_suffix(":closing") {
            Some(intervals) => (intervals, true),
            None => (rest, false),
        };
        let intervals = Intervals::decode(intervals)?;
        // Only an open interval can be being taken back.
        if closing && intervals.open_from().is_none() {
            return None;
        }
        Some(Owned {
            version: version.parse().ok()?,
            intervals,
            closing,
        })
    }

    /// Where the interval a lane instance may act on starts: the open one, unless base is
    /// taking it back.
    pub(crate) fn open_to_lane(&self) -> Option<i64> {
        self.intervals.open_from().filter(|_| !self.closing)
    }
}

/// One lane consumer instance, as its records describe it.
#[derive(Debug, Default)]
struct Member {
    heartbeat: Option<Instance>,
    /// The partitions its group gave it, as it last said; `None`: it never said (a graylane
    /// older than hold records), and is taken as holding every partition while it is live.
    holds: Option<Vec<(Box<str>, i32)>>,
}

impl Member {
    fn live(&self, now: Instant, grace: Duration) -> bool {
        self.heartbeat.is_some_and(|i| i.live(now, grace))
    }

    fn holds(&self, topic: &str, partition: i32) -> bool {
        self.holds
            .as_ref()
            .is_none_or(|h| h.iter().any(|(t, p)| *p == partition && &**t == topic))
    }
}

/// A hold record's value: `{topic}:{p},{p};{topic}:{p}`, or empty for none. Topic names
/// cannot hold `:`, `;` or `,`.
pub(crate) fn encode_holds(holds: &[(String, i32)]) -> String {
    let mut out = String::new();
    let mut last: Option<&str> = None;
    for (topic, p) in holds {
        if last == Some(topic.as_str()) {
            out.push(',');
        } else {
            if last.is_some() {
                out.push(';');
            }
            out.push_str(topic);
            out.push(':');
            last = Some(topic);
        }
        out.push_str(&p.to_string());
    }
    out
}

fn decode_holds(value: &str) -> Option<Vec<(Box<str>, i32)>> {
    let mut out = Vec::new();
    if value.is_empty() {
        return Some(out);
    }
    for group in value.split(';') {
        let (topic, partitions) = group.split_once(':')?;
        if topic.is_empty() || topic.contains([',', ':']) {
            return None;
        }
        for p in partitions.split(',') {
            let p: i32 = p.parse().ok().filter(|p| *p >= 0)?;
            out.push((topic.into(), p));
        }
    }
    Some(out)
}

/// Ownership records of one lane and partition number, by topic.
type ByTopic = Vec<(Box<str>, Owned)>;

/// The instance that last held one lane's partition number, by topic.
type Holders = Vec<(Box<str>, String)>;

/// What the control topic says, as far as this consumer has read it.
#[derive(Debug, Default)]
pub(crate) struct ControlState {
    instances: HashMap<(Lane, String), Member>,
    /// The instance that last said it held a partition, by lane and partition, then by topic:
    /// when nobody holds it any more, whether that one is live or went silent says whether the
    /// partition is moving or was left behind by a crash.
    last_holders: HashMap<(Lane, i32), Holders>,
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
            // A tombstone (read as empty): the instance stopped or was forgotten.
            (Some("hb"), Some(lane)) if value.is_empty() => parts
                .next()
                .filter(|_| parts.next().is_none())
                .map(|instance| {
                    self.instances.remove(&(lane, instance.to_owned()));
                }),
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
                    self.member(lane, instance).heartbeat = Some(entry);
                }),
            (Some("hold"), Some(lane)) => parts
                .next()
                .filter(|i| !i.is_empty() && parts.next().is_none())
                .zip(decode_holds(value))
                .map(|(instance, holds)| self.set_holds(lane, instance, holds)),
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

    fn member(&mut self, lane: Lane, instance: &str) -> &mut Member {
        self.instances
            .entry((lane, instance.to_owned()))
            .or_default()
    }

    fn set_holds(&mut self, lane: Lane, instance: &str, holds: Vec<(Box<str>, i32)>) {
        for (topic, p) in &holds {
            let topics = self.last_holders.entry((lane, *p)).or_default();
            match topics.iter_mut().find(|(t, _)| t == topic) {
                Some((_, holder)) if holder == instance => {}
                Some((_, holder)) => instance.clone_into(holder),
                None => topics.push((topic.clone(), instance.to_owned())),
            }
        }
        self.member(lane, instance).holds = Some(holds);
    }

    /// Whether a live instance of `lane` holds `topic`/`partition` (see [`Holding`]).
    pub(crate) fn holding(
        &self,
        lane: Lane,
        topic: &str,
        partition: i32,
        now: Instant,
        grace: Duration,
    ) -> Holding {
        let mut live = self
            .instances
            .iter()
            .filter(|((l, _), m)| *l == lane && m.live(now, grace))
            .peekable();
        if live.peek().is_none() {
            return Holding::Dead;
        }
        if live.any(|(_, m)| m.holds(topic, partition)) {
            return Holding::Held;
        }
        let last = self
            .last_holders
            .get(&(lane, partition))
            .and_then(|topics| topics.iter().find(|(t, _)| &**t == topic));
        let crashed = last.is_some_and(|(_, name)| {
            self.instances
                .get(&(lane, name.clone()))
                .and_then(|m| m.heartbeat)
                .is_some_and(|i| !i.stopped && !i.live(now, grace))
        });
        if crashed {
            Holding::Dead
        } else {
            Holding::Unheld
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
            .filter(|((l, _), m)| *l == lane && m.live(now, grace))
            .map(|((_, name), _)| name.clone())
            .collect();
        live.sort();
        live
    }

    /// The instances, of any lane, whose last heartbeat (or stop) was read `silent` or longer
    /// before `now`: nobody waits on them any more, and their records can be tombstoned.
    pub(crate) fn silent_instances(&self, now: Instant, silent: Duration) -> Vec<(Lane, String)> {
        self.instances
            .iter()
            .filter(|(_, m)| {
                m.heartbeat
                    .is_some_and(|i| now.saturating_duration_since(i.seen_at) >= silent)
            })
            .map(|(key, _)| key.clone())
            .collect()
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
    #[cfg(test)]
    pub(crate) fn live(&self, lane: Lane, now: Instant, grace: Duration) -> bool {
        self.instances
            .iter()
            .any(|((l, _), m)| *l == lane && m.live(now, grace))
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
    fn holding_is_per_partition_not_per_heartbeat() {
        let gray = Lane::new("gray").unwrap();
        let lanes = LaneSet::new([gray]);
        let mut s = ControlState::default();
        let grace = Duration::ZERO;
        let at = |s: &ControlState, p| s.holding(gray, "events", p, Instant::now(), grace);
        assert_eq!(at(&s, 0), Holding::Dead, "no instance");
        // Live, but its group has given it nothing yet.
        s.apply("orders", &lanes, "orders/hold/gray/i1", "");
        s.apply("orders", &lanes, "orders/hb/gray/i1", "live 60000");
        assert_eq!(at(&s, 0), Holding::Unheld);
        s.apply(
            "orders",
            &lanes,
            "orders/hold/gray/i1",
            "events:0,2;other:1",
        );
        assert_eq!(
            (at(&s, 0), at(&s, 1), at(&s, 2)),
            (Holding::Held, Holding::Unheld, Holding::Held)
        );
        assert_eq!(
            s.holding(gray, "other", 1, Instant::now(), grace),
            Holding::Held
        );
        // i2 holds 1; then i2 crashes (its lease runs out): its partition was left behind.
        s.apply("orders", &lanes, "orders/hold/gray/i2", "events:1");
        s.apply("orders", &lanes, "orders/hb/gray/i2", "live 1");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!((at(&s, 0), at(&s, 1)), (Holding::Held, Holding::Dead));
        // It moves to i1 (a rebalance after the crashed member's session timed out).
        s.apply("orders", &lanes, "orders/hold/gray/i1", "events:0,1,2");
        assert_eq!(at(&s, 1), Holding::Held);
        // i1 gives 2 up in a rebalance and keeps heartbeating: 2 is moving, not dead.
        s.apply("orders", &lanes, "orders/hold/gray/i1", "events:0,1");
        assert_eq!(at(&s, 2), Holding::Unheld);
        // A live instance that never said what it holds (an older graylane) holds all.
        s.apply("orders", &lanes, "orders/hb/gray/old", "live 60000");
        assert_eq!(at(&s, 2), Holding::Held);
        s.apply("orders", &lanes, "orders/hb/gray/old", "stop");
        s.apply("orders", &lanes, "orders/hb/gray/i1", "stop");
        assert_eq!(at(&s, 0), Holding::Dead, "nobody live");
        assert_eq!(s.malformed, 0);
        for v in [
            "events",
            "events:",
            "events:x",
            "events:-1",
            ":1",
            "a:1;;b:2",
            "a,b:1",
        ] {
            s.apply("orders", &lanes, "orders/hold/gray/i3", v);
        }
        s.apply("orders", &lanes, "orders/hold/gray/i3/x", "events:1");
        s.apply("orders", &lanes, "orders/hold/gray/", "events:1");
        assert_eq!(s.malformed, 9);
        assert!(s.instances.keys().all(|(_, name)| name != "i3"));
    }

    #[test]
    fn tombstones_forget_an_instance_and_silence_is_found() {
        let gray = Lane::new("gray").unwrap();
        let lanes = LaneSet::new([gray]);
        let mut s = ControlState::default();
        s.apply("orders", &lanes, "orders/hold/gray/i1", "events:0");
        s.apply("orders", &lanes, "orders/hb/gray/i1", "live 60000");
        s.apply("orders", &lanes, "orders/hb/gray/i2", "stop");
        let later = Instant::now() + Duration::from_secs(30);
        let mut silent = s.silent_instances(later, Duration::from_secs(20));
        silent.sort();
        assert_eq!(silent, [(gray, "i1".to_owned()), (gray, "i2".to_owned())]);
        assert!(
            s.silent_instances(Instant::now(), Duration::from_secs(20))
                .is_empty()
        );
        // Forgotten: the hold record's tombstone, then the heartbeat's.
        s.apply("orders", &lanes, "orders/hold/gray/i1", "");
        assert_eq!(
            s.live_instances(gray, Instant::now(), Duration::ZERO),
            ["i1"]
        );
        assert_eq!(
            s.holding(gray, "events", 0, Instant::now(), Duration::ZERO),
            Holding::Unheld
        );
        s.apply("orders", &lanes, "orders/hb/gray/i1", "");
        assert!(
            s.live_instances(gray, Instant::now(), Duration::ZERO)
                .is_empty()
        );
        assert_eq!(
            s.silent_instances(later, Duration::ZERO).len(),
            1,
            "i2 only"
        );
        assert_eq!(s.malformed, 0);
    }

    #[test]
    fn a_take_back_in_progress_is_open_but_not_to_the_lane() {
        let gray = Lane::new("gray").unwrap();
        let lanes = LaneSet::new([gray]);
        let mut s = ControlState::default();
        s.apply("orders", &lanes, "orders/own/gray/3/events", "1:10-");
        s.apply(
            "orders",
            &lanes,
            "orders/own/gray/3/events",
            "2:10-:closing",
        );
        let owned = s.owned(gray, "events", 3).unwrap();
        assert!(owned.closing && s.granted(gray, "events", 3));
        assert_eq!(
            (owned.intervals.open_from(), owned.open_to_lane()),
            (Some(10), None)
        );
        assert_eq!(owned.encode(), "2:10-:closing");
        s.apply("orders", &lanes, "orders/own/gray/3/events", "3:10-");
        assert_eq!(s.owned(gray, "events", 3).unwrap().open_to_lane(), Some(10));
        // Only an open interval can be being taken back.
        for v in [
            "4:10-20:closing",
            "4::closing",
            "4:10-:closing:closing",
            "4:10-:Closing",
        ] {
            s.apply("orders", &lanes, "orders/own/gray/3/events", v);
        }
        assert_eq!(s.malformed, 4);
        assert_eq!(s.owned(gray, "events", 3).unwrap().version, 3);
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
