//! The handover protocol's pure state: who owns a lane's messages on a partition, and what each
//! consumer does with the message in front of it. No I/O here, so the model test in this module
//! drives exactly the decisions the real consumers make.
//!
//! Ownership of lane `L` on partition `p` is a list of offset intervals `[from, to)` in which
//! `L`'s consumers own `L`'s messages (the last may be open: `[from, ∞)`). Outside them, base
//! owns them. Only the base consumer that owns `p` writes grants (open an interval at its own
//! position) and releases (close it at the lane's committed offset); every consumer applies the
//! records of the control topic in its one partition's order, so all agree.

use std::fmt;
use std::time::{Duration, Instant};

use graylane_core::{Lane, LaneSet};

/// At most this many intervals are kept per lane and partition: a compacted control topic
/// keeps only the latest record of a key, so each record carries the recent history itself.
const HISTORY: usize = 16;

/// The intervals in which a lane owns its messages on one partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Intervals(Vec<(i64, Option<i64>)>);

impl Intervals {
    /// Whether the lane owns offset `o`.
    pub(crate) fn contains(&self, o: i64) -> bool {
        // Newest first: live traffic is near the open end.
        self.0
            .iter()
            .rev()
            .any(|&(from, to)| o >= from && to.is_none_or(|to| o < to))
    }

    /// The start of the open interval, if the lane owns the partition now.
    pub(crate) fn open_from(&self) -> Option<i64> {
        match self.0.last() {
            Some(&(from, None)) => Some(from),
            _ => None,
        }
    }

    /// Where the last closed interval ended: no grant may start before it.
    pub(crate) fn end(&self) -> i64 {
        match self.0.last() {
            Some(&(_, Some(to))) => to,
            Some(&(from, None)) => from,
            None => 0,
        }
    }

    /// Opens an interval at `from`. Ignored (false) when one is open already or `from` would
    /// overlap history.
    pub(crate) fn grant(&mut self, from: i64) -> bool {
        if self.open_from().is_some() || from < self.end() {
            return false;
        }
        self.0.push((from, None));
        if self.0.len() > HISTORY {
            self.0.remove(0);
        }
        true
    }

    /// Closes the open interval at `to` (at least its start). Ignored (false) when none is open.
    pub(crate) fn release(&mut self, to: i64) -> bool {
        match self.0.last_mut() {
            Some((from, end @ None)) => {
                *end = Some(to.max(*from));
                true
            }
            _ => false,
        }
    }

    /// The record value: `10-50,60-` (the last interval open).
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        for (i, (from, to)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&from.to_string());
            out.push('-');
            if let Some(to) = to {
                out.push_str(&to.to_string());
            }
        }
        out
    }

    /// Parses a record value; `None` for anything malformed (such a record is ignored and
    /// counted, never half-applied).
    pub(crate) fn decode(value: &str) -> Option<Intervals> {
        let mut out = Vec::new();
        if value.is_empty() {
            return Some(Intervals(out));
        }
        let mut prev_end = 0i64;
        let parts: Vec<&str> = value.split(',').collect();
        for (i, part) in parts.iter().enumerate() {
            let (from, to) = part.split_once('-')?;
            let from: i64 = from.parse().ok()?;
            let to: Option<i64> = if to.is_empty() {
                None
            } else {
                Some(to.parse().ok()?)
            };
            let ordered = from >= prev_end && to.is_none_or(|to| to >= from);
            // Only the last interval may be open.
            if !ordered || (to.is_none() && i + 1 != parts.len()) {
                return None;
            }
            prev_end = to.unwrap_or(from);
            out.push((from, to));
        }
        (out.len() <= HISTORY).then_some(Intervals(out))
    }
}

impl fmt::Display for Intervals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// What base does with a message: its own messages always; a lane's only outside the lane's
/// intervals, and, after a release, once more for the gap it had skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BaseCursor {
    /// One past the highest offset delivered in this assignment: below it is a replay.
    seen: i64,
    /// Lanes released while base was ahead of their release offset: their messages from the
    /// offset up to `seen` are processed during the replay.
    replay: Vec<(Lane, i64)>,
    /// Where the replay in progress went back to: base's commit stays at or past it until the
    /// replay ends, so a new owner starting in `[back, seen)` starts inside this replay.
    back: i64,
}

impl BaseCursor {
    /// Whether base processes the message of `lane` at `o`, given whether the lane owns `o` now.
    pub(crate) fn decide(&mut self, lane: Lane, o: i64, lane_owns: bool) -> bool {
        if o >= self.seen {
            self.seen = o + 1;
            self.replay.clear();
            return lane.is_base() || !lane_owns;
        }
        // Replay: everything below `seen` was decided once; only a released lane's skipped
        // messages are new work.
        !lane.is_base() && !lane_owns && self.replay.iter().any(|&(l, from)| l == lane && o >= from)
    }

    /// Whether `o` is below what this assignment has seen (a replay after a release).
    pub(crate) fn replaying(&self, o: i64) -> bool {
        o < self.seen
    }

    /// `lane` was released at `y` while base's next offset is `position`: the offset base must
    /// seek back to, if any.
    pub(crate) fn released(&mut self, lane: Lane, y: i64, position: i64) -> Option<i64> {
        self.seen = self.seen.max(position);
        if y >= self.seen {
            return None;
        }
        let seek = y < position;
        if seek {
            // Lanes already replaying have handled everything below `position`: seeking back
            // further must not hand them their messages twice.
            for (_, from) in &mut self.replay {
                *from = (*from).max(position);
            }
            self.back = y;
        }
        match self.replay.iter_mut().find(|(l, _)| *l == lane) {
            Some((_, from)) => *from = (*from).min(y),
            None => self.replay.push((lane, y)),
        }
        // Without a seek base is at or past `back` already; kept below every lane's start all
        // the same, so that a record always describes one window.
        self.back = self.back.min(y);
        seek.then_some(y)
    }

    /// Whether a replay is in progress: what the partition's next owner must take over, should
    /// the partition move (a rebalance, a restart) before the replay ends.
    pub(crate) fn in_replay(&self) -> bool {
        !self.replay.is_empty()
    }

    /// The replay as a new owner that starts reading at `start` takes it over: this cursor, if
    /// `start` is inside the replay (`[back, seen)`). Outside it, the record is of an older
    /// replay (its commit has moved past `seen`) or of another log (a topic recreated): a fresh
    /// cursor is right. (Its lanes may all be unknown to this consumer: base's own messages of
    /// the window are still not handled twice.)
    pub(crate) fn resume(&self, start: i64) -> Option<BaseCursor> {
        (self.back <= start && start < self.seen).then(|| self.clone())
    }

    /// The record value: `{back}-{seen}:{lane}={from},…`.
    pub(crate) fn encode(&self) -> String {
        let lanes: Vec<String> = self
            .replay
            .iter()
            .map(|(lane, from)| format!("{lane}={from}"))
            .collect();
        format!("{}-{}:{}", self.back, self.seen, lanes.join(","))
    }

    /// Parses a record value; `None` for anything malformed. Lanes that `lanes` does not know
    /// (the writer's spec had them) are left out: this consumer handles none of their messages
    /// as fallback anyway.
    pub(crate) fn decode(value: &str, lanes: &LaneSet) -> Option<BaseCursor> {
        let (window, list) = value.split_once(':')?;
        let (back, seen) = window.split_once('-')?;
        let (back, seen): (i64, i64) = (back.parse().ok()?, seen.parse().ok()?);
        if back < 0 || seen < back {
            return None;
        }
        let mut replay = Vec::new();
        // An empty list is read too (the cursor of a consumer that knew none of the writer's
        // lanes): the window alone still says which of base's own records were handled.
        let entries = list.split(',').filter(|_| !list.is_empty());
        for entry in entries {
            let (name, from) = entry.split_once('=')?;
            let from: i64 = from.parse().ok()?;
            if from < back || from > seen || Lane::new(name).is_err() {
                return None;
            }
            match lanes.get(name.as_bytes()) {
                Some(lane) if lane.is_base() => return None,
                Some(lane) if replay.iter().any(|(l, _)| *l == lane) => return None,
                Some(lane) => replay.push((lane, from)),
                None => {}
            }
        }
        Some(BaseCursor { seen, replay, back })
    }
}

/// What a lane consumer does with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LaneAction {
    /// Run the handler.
    Process,
    /// Not this lane's, or base's.
    Skip,
    /// This lane's, but the partition's ownership is unknown (no grant yet, or the lease
    /// lapsed): do not process, do not commit past it, come back when a grant is known.
    Wait,
    /// Go back to this offset (it waited on messages there that it now owns); this message
    /// will come again.
    Seek(i64),
}

/// A lane consumer's view of one partition.
#[derive(Clone, Debug, Default)]
pub(crate) struct LaneCursor {
    /// One past the highest offset processed in this assignment (never process twice after a
    /// seek back).
    done: i64,
    /// The first of this lane's messages seen without a known grant.
    pub(crate) pending: Option<i64>,
    /// Whether a record has been read with a grant known in this assignment. The first one
    /// below the grant moves the consumer up to it: a lane group starts at the log's start
    /// (or at an old commit), never past what it owns, and need not read what precedes it.
    aligned: bool,
}

impl LaneCursor {
    /// The action for a message of `lane` at `o` in a consumer of lane `me`, given the start of
    /// the open grant (`None` when there is none or this consumer is fenced).
    pub(crate) fn decide(&mut self, me: Lane, lane: Lane, o: i64, open: Option<i64>) -> LaneAction {
        if let Some(from) = open {
            let first = !std::mem::replace(&mut self.aligned, true);
            if let Some(back) = self.granted(from, o) {
                // Messages it waited on are behind this one: go back for them first, or `done`
                // would skip them.
                return LaneAction::Seek(back);
            }
            if first && o < from {
                return LaneAction::Seek(from);
            }
        }
        if lane != me {
            return LaneAction::Skip;
        }
        match open {
            None => {
                self.pending = Some(self.pending.map_or(o, |p| p.min(o)));
                LaneAction::Wait
            }
            Some(from) if o < from || o < self.done => LaneAction::Skip,
            Some(_) => {
                self.done = o + 1;
                LaneAction::Process
            }
        }
    }

    /// A grant starting at `from` is known and the next message is at `position`: where to
    /// seek back to, if this consumer waited on messages it now owns.
    pub(crate) fn granted(&mut self, from: i64, position: i64) -> Option<i64> {
        let target = self.pending.take()?.max(from);
        (target < position).then_some(target)
    }

    /// The offset this consumer may commit: its position, but never past a message it waits on.
    pub(crate) fn committable(&self, position: i64) -> i64 {
        self.pending.map_or(position, |p| p.min(position))
    }
}

/// Whether a lane's partition has a consumer, as base reads the lane's instances: their
/// heartbeats say who is live, their hold records which partitions each one's group gave it.
/// Heartbeating is not consuming: an instance whose group has not formed, is stuck in a
/// rebalance or lost the partition to a member that was killed holds nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holding {
    /// A live instance holds the partition (or is too old a graylane to say what it holds,
    /// and is taken as holding every partition).
    Held,
    /// Nobody can be handling it: no instance of the lane is live, or the last one that held
    /// it went silent (its lease has run out, so it handles nothing).
    Dead,
    /// Instances are live but none holds it: it is moving between them (the next one says so
    /// within a rebalance), or the group cannot give it to anyone.
    Unheld,
}

/// What base does about one lane on one partition, given how it is held and owned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    Nothing,
    /// Grant it: a live instance holds it.
    Grant,
    /// Take it back: say so first ([`Owned::closing`](crate::control::Owned)), read up to
    /// now, then release it — or reopen it, if by then someone holds it.
    TakeBack,
    /// A take-back was said and not finished (this consumer failed, or another base member
    /// started it): finish it.
    Resolve,
}

impl Plan {
    /// `open`/`closing`: the lane's ownership of the partition; `unheld_for`: how long base has
    /// seen it unheld while open; `bound`: how long a partition may stay open and unheld (a
    /// rebalance takes less) before base takes it back.
    pub(crate) fn of(
        holding: Holding,
        open: bool,
        closing: bool,
        unheld_for: Duration,
        bound: Duration,
    ) -> Plan {
        match (open, closing, holding) {
            (false, _, Holding::Held) => Plan::Grant,
            (false, _, _) => Plan::Nothing,
            (true, true, _) => Plan::Resolve,
            (true, false, Holding::Held) => Plan::Nothing,
            (true, false, Holding::Dead) => Plan::TakeBack,
            (true, false, Holding::Unheld) if unheld_for >= bound => Plan::TakeBack,
            (true, false, Holding::Unheld) => Plan::Nothing,
        }
    }
}

/// Liveness of one lane consumer instance, as read from its heartbeats.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Instance {
    pub(crate) seen_at: Instant,
    pub(crate) lease: Duration,
    pub(crate) stopped: bool,
}

impl Instance {
    /// Live until its lease plus `grace` has passed since its last heartbeat was read. The
    /// instance itself stops processing when a lease has passed since its last heartbeat was
    /// *sent*, which is earlier, so base never takes over from a lane still processing.
    pub(crate) fn live(&self, now: Instant, grace: Duration) -> bool {
        !self.stopped && now.saturating_duration_since(self.seen_at) < self.lease + grace
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gray() -> Lane {
        Lane::new("gray").unwrap()
    }

    #[test]
    fn base_grants_to_holders_and_takes_back_what_nobody_holds() {
        use Holding::{Dead, Held, Unheld};
        let (zero, bound) = (Duration::ZERO, Duration::from_secs(2));
        let plan = |h, open, closing, unheld| Plan::of(h, open, closing, unheld, bound);
        assert_eq!(plan(Held, false, false, zero), Plan::Grant);
        assert_eq!(
            plan(Unheld, false, false, zero),
            Plan::Nothing,
            "live, holding nothing"
        );
        assert_eq!(plan(Dead, false, false, zero), Plan::Nothing);
        assert_eq!(plan(Held, true, false, zero), Plan::Nothing);
        assert_eq!(
            plan(Dead, true, false, zero),
            Plan::TakeBack,
            "its holder went silent"
        );
        // Moving between instances: left alone for as long as a rebalance takes.
        assert_eq!(plan(Unheld, true, false, bound / 2), Plan::Nothing);
        assert_eq!(plan(Unheld, true, false, bound), Plan::TakeBack);
        for h in [Held, Dead, Unheld] {
            assert_eq!(plan(h, true, true, zero), Plan::Resolve);
        }
    }

    #[test]
    fn intervals_grant_release_and_contains() {
        let mut iv = Intervals::default();
        assert!(!iv.contains(0));
        assert!(iv.grant(10));
        assert!(!iv.grant(12), "already open");
        assert!(iv.contains(10) && iv.contains(1_000) && !iv.contains(9));
        assert!(iv.release(50));
        assert!(!iv.release(60), "nothing open");
        assert!(!iv.grant(40), "overlaps history");
        assert!(iv.grant(60));
        assert!(iv.contains(49) && !iv.contains(50) && !iv.contains(59) && iv.contains(60));
        assert_eq!(iv.encode(), "10-50,60-");
        assert_eq!(Intervals::decode("10-50,60-"), Some(iv));
    }

    #[test]
    fn malformed_records_are_rejected_whole() {
        for bad in ["x", "10", "10-5", "10-,20-", "10-50,40-", "-5-", "1-2,,3-"] {
            assert_eq!(Intervals::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn base_replays_only_the_released_gap() {
        let g = gray();
        let mut c = BaseCursor::default();
        let mut iv = Intervals::default();
        iv.grant(2);
        // Base reads 0..6; gray messages at 1, 3, 5.
        let mut processed = Vec::new();
        for o in 0..6 {
            let lane = if o % 2 == 1 { g } else { Lane::BASE };
            if c.decide(lane, o, lane != Lane::BASE && iv.contains(o)) {
                processed.push(o);
            }
        }
        assert_eq!(processed, [0, 1, 2, 4]);
        // The lane committed up to 4 and is released there: base goes back to 4.
        iv.release(4);
        assert_eq!(c.released(g, 4, 6), Some(4));
        let replayed: Vec<i64> = (4..8)
            .filter(|&o| {
                let lane = if o % 2 == 1 { g } else { Lane::BASE };
                c.decide(lane, o, lane != Lane::BASE && iv.contains(o))
            })
            .collect();
        assert_eq!(replayed, [5, 6, 7], "5 is the gap, 6 and 7 are new");
    }

    #[test]
    fn lane_waits_without_grant_and_seeks_back() {
        let g = gray();
        let mut c = LaneCursor::default();
        assert_eq!(c.decide(g, Lane::BASE, 0, None), LaneAction::Skip);
        assert_eq!(c.decide(g, g, 1, None), LaneAction::Wait);
        assert_eq!(c.decide(g, g, 3, None), LaneAction::Wait);
        assert_eq!(c.committable(4), 1);
        // The grant is known when the message at 4 arrives: back to 2 first.
        assert_eq!(c.decide(g, g, 4, Some(2)), LaneAction::Seek(2));
        assert_eq!(c.decide(g, g, 1, Some(2)), LaneAction::Skip);
        assert_eq!(c.decide(g, g, 3, Some(2)), LaneAction::Process);
        assert_eq!(c.decide(g, g, 3, Some(2)), LaneAction::Skip, "never twice");
        assert_eq!(c.committable(4), 4);
    }

    #[test]
    fn lane_starting_below_its_grant_moves_up_to_it() {
        let g = gray();
        // From the log's start (or an old commit): up to the grant at once.
        let mut c = LaneCursor::default();
        assert_eq!(c.decide(g, Lane::BASE, 0, Some(5)), LaneAction::Seek(5));
        assert_eq!(c.decide(g, g, 5, Some(5)), LaneAction::Process);
        // From a commit past the grant's start: what it processed before stays processed.
        let mut c = LaneCursor::default();
        assert_eq!(c.decide(g, g, 7, Some(5)), LaneAction::Process);
        assert_eq!(c.decide(g, g, 6, Some(5)), LaneAction::Skip, "never twice");
    }

    #[test]
    fn a_replay_record_is_taken_over_only_from_inside_its_window() {
        let (g, blue) = (gray(), Lane::new("blue").unwrap());
        let mut c = BaseCursor::default();
        for o in 0..10 {
            c.decide(if o % 2 == 0 { g } else { Lane::BASE }, o, true);
        }
        assert!(!c.in_replay());
        assert_eq!(c.released(g, 4, 10), Some(4));
        assert_eq!(c.released(blue, 6, 10), Some(6), "further back for no lane");
        assert_eq!(c.encode(), "6-10:gray=10,blue=6");
        let lanes = LaneSet::new([g, blue]);
        let read = BaseCursor::decode(&c.encode(), &lanes).unwrap();
        assert_eq!(read, c);
        assert_eq!(read.resume(6), Some(c.clone()));
        assert_eq!(read.resume(9), Some(c.clone()));
        assert_eq!(
            read.resume(5),
            None,
            "below the window: another replay's commit"
        );
        assert_eq!(read.resume(10), None, "the replay ended");
        // A lane this consumer does not know is left out; the window still holds.
        let only_gray = BaseCursor::decode(&c.encode(), &LaneSet::new([g])).unwrap();
        assert_eq!(only_gray.encode(), "6-10:gray=10");
        let none_known = BaseCursor::decode("6-10:", &lanes).unwrap();
        assert!(!none_known.in_replay() && none_known.resume(8).is_some());
        for bad in [
            "",
            "6-10",
            "6-10:,",
            "6-10:gray=7,",
            "10-6:gray=8",
            "-1-10:gray=2",
            "6-10:gray=5",
            "6-10:gray=11",
            "6-10:base=7",
            "6-10:gray=7,gray=8",
            "6-10:Gray=7",
            "6-10:gray",
            "x-10:gray=7",
        ] {
            assert_eq!(BaseCursor::decode(bad, &lanes), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn replay_records_round_trip(
            steps in proptest::collection::vec((0u8..3, 0i64..200, 0i64..200), 0..30),
        ) {
            let lanes = LaneSet::new([gray(), Lane::new("blue").unwrap()]);
            let mut c = BaseCursor::default();
            for (what, a, b) in steps {
                match what {
                    0 => { c.decide(gray(), a, false); }
                    1 => { c.released(gray(), a.min(b), a.max(b)); }
                    _ => { c.released(Lane::new("blue").unwrap(), a.min(b), a.max(b)); }
                }
                if c.in_replay() {
                    prop_assert_eq!(BaseCursor::decode(&c.encode(), &lanes), Some(c.clone()));
                }
            }
        }

        #[test]
        fn replay_decode_never_panics(s in "[0-9a-z=,:-]{0,40}|\\PC{0,40}") {
            let _ = BaseCursor::decode(&s, &LaneSet::new([gray()]));
        }

        #[test]
        fn intervals_round_trip(steps in proptest::collection::vec((any::<bool>(), 0i64..1000), 0..40)) {
            let mut iv = Intervals::default();
            for (grant, at) in steps {
                if grant { iv.grant(at); } else { iv.release(at); }
                prop_assert_eq!(Intervals::decode(&iv.encode()), Some(iv.clone()));
            }
        }

        #[test]
        fn decode_never_panics(s in "\\PC{0,40}") {
            let _ = Intervals::decode(&s);
        }
    }

    /// A model of one partition, one base consumer and one lane consumer, stepped through random
    /// interleavings of deliveries, commits, start/stop/crash of the lane, restarts of base
    /// (a rebalance or crash), base's control ticks, and each side's control reader catching
    /// up at its own pace (so either may act on a stale view of the other). The decisions are
    /// the real ones above; the model replaces Kafka with a vector and the control topic with
    /// one record that each reader copies when it catches up.
    mod model {
        use super::*;

        #[derive(Clone, Copy, Debug)]
        enum Step {
            Base,
            Lane,
            BaseCommit,
            LaneCommit,
            Tick,
            LaneStart,
            LaneStop,
            LaneCrash,
            BaseRestart,
            /// Base's partition moves to another base member (a member joins or leaves): the
            /// revoke commits what was handled, and the new owner starts from there.
            BaseRebalance,
            LaneTick,
            /// Base's control reader catches up: it sees the lane's latest heartbeat or stop.
            BaseRead,
            /// The lane's control reader catches up: it sees the latest grants and releases.
            LaneRead,
            /// The lane instance's lease lapses (a pause, a network cut): it stops acting and
            /// committing, and its heartbeats stop reaching base.
            LaneLapse,
            /// It comes back: heartbeats flow again, and (the fix) it reads the control topic
            /// up to now before acting.
            LaneReturn,
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                6 => Just(Step::Base),
                6 => Just(Step::Lane),
                2 => Just(Step::BaseCommit),
                2 => Just(Step::LaneCommit),
                3 => Just(Step::Tick),
                1 => Just(Step::LaneStart),
                1 => Just(Step::LaneStop),
                1 => Just(Step::LaneCrash),
                1 => Just(Step::BaseRestart),
                1 => Just(Step::BaseRebalance),
                2 => Just(Step::LaneTick),
                2 => Just(Step::BaseRead),
                2 => Just(Step::LaneRead),
                1 => Just(Step::LaneLapse),
                1 => Just(Step::LaneReturn),
            ]
        }

        #[derive(Default)]
        struct World {
            log: Vec<Lane>,
            /// The ownership record on the control topic.
            iv: Intervals,
            /// Base reads the control topic to its end before releasing a silent lane (the fix
            /// for a lagging reader; off only to show that the model catches its absence).
            no_catch_up: bool,
            /// A lane back from a lapse reads the control topic to its end before acting (off
            /// only to show that the model catches its absence).
            no_return_catch_up: bool,
            /// Base writes its replay to the control topic before it seeks back, and a new
            /// owner that starts inside it takes it over (off only to show that the model
            /// catches its absence).
            no_replay_record: bool,
            /// The replay record on the control topic.
            replay: Option<BaseCursor>,
            /// Base says a take-back (`closing`) before it releases, and reads up to now again
            /// before deciding (off only to show that the model catches its absence: base then
            /// releases on what it read when it decided).
            no_closing: bool,
            /// The ownership record's `closing` mark.
            closing: bool,
            /// Base has decided to take the lane's interval back and not finished: a release
            /// takes base a few calls (the lane's committed offset, a seek, a commit), and the
            /// lane may act in between.
            taking_back: bool,
            // Base.
            b_pos: i64,
            b_commit: i64,
            b_cursor: BaseCursor,
            /// Whether base's control reader, as far as it has read, has the lane live.
            b_sees_live: bool,
            // Lane.
            l_running: bool,
            /// Its lease has lapsed: it neither acts nor heartbeats.
            l_lapsed: bool,
            l_pos: i64,
            l_commit: i64,
            l_cursor: LaneCursor,
            l_since_commit: Vec<i64>,
            /// The ownership record as far as the lane's control reader has read.
            l_iv: Intervals,
            l_closing: bool,
            // Ledger.
            by_base: Vec<u32>,
            by_lane: Vec<u32>,
            allowed_dups: std::collections::HashSet<i64>,
        }

        impl World {
            fn new(lanes: &[bool]) -> World {
                let g = gray();
                World {
                    log: lanes
                        .iter()
                        .map(|&l| if l { g } else { Lane::BASE })
                        .collect(),
                    by_base: vec![0; lanes.len()],
                    by_lane: vec![0; lanes.len()],
                    ..World::default()
                }
            }
            fn len(&self) -> i64 {
                self.log.len() as i64
            }
            /// The partition's next base owner starts from base's commit, taking over the
            /// replay in progress if the commit is inside it.
            fn base_moves(&mut self) {
                self.b_pos = self.b_commit;
                // The next owner finishes a take-back the record says is in progress.
                self.taking_back = self.closing;
                self.b_cursor = self
                    .replay
                    .as_ref()
                    .and_then(|r| r.resume(self.b_pos))
                    .unwrap_or_default();
            }
            /// Whether the lane's heartbeats reach base.
            fn live(&self) -> bool {
                self.l_running && !self.l_lapsed
            }
            fn lane_return(&mut self) {
                if self.l_lapsed {
                    self.l_lapsed = false;
                    if !self.no_return_catch_up {
                        self.lane_read();
                    }
                }
            }
            /// The lane's control reader catches up.
            fn lane_read(&mut self) {
                self.l_iv = self.iv.clone();
                self.l_closing = self.closing;
            }
            /// Where the interval the lane may act on starts, as its reader has read.
            fn lane_open(&self) -> Option<i64> {
                self.l_iv
                    .open_from()
                    .filter(|_| !self.l_lapsed && !self.l_closing)
            }
            fn base_step(&mut self) {
                if self.b_pos >= self.len() {
                    return;
                }
                let o = self.b_pos;
                let lane = self.log[o as usize];
                let owns = !lane.is_base() && self.iv.contains(o);
                if self.b_cursor.decide(lane, o, owns) {
                    self.by_base[o as usize] += 1;
                }
                self.b_pos += 1;
            }
            fn lane_step(&mut self) {
                if !self.l_running || self.l_pos >= self.len() {
                    return;
                }
                let o = self.l_pos;
                let lane = self.log[o as usize];
                let open = self.lane_open();
                match self.l_cursor.decide(gray(), lane, o, open) {
                    LaneAction::Process => {
                        self.by_lane[o as usize] += 1;
                        self.l_since_commit.push(o);
                    }
                    LaneAction::Seek(back) => {
                        self.l_pos = back;
                        return;
                    }
                    LaneAction::Skip | LaneAction::Wait => {}
                }
                self.l_pos += 1;
            }
            /// The consumer's tick: goes back for waited messages even when none arrive.
            fn lane_tick(&mut self) {
                if self.l_running
                    && let Some(from) = self.lane_open()
                    && let Some(back) = self.l_cursor.granted(from, self.l_pos)
                {
                    self.l_pos = back;
                }
            }
            fn lane_commit(&mut self) {
                if self.l_running && self.lane_open().is_some() {
                    self.l_commit = self.l_cursor.committable(self.l_pos);
                    self.l_since_commit.clear();
                }
            }
            /// Base's control tick, on what its reader has seen.
            fn tick(&mut self) {
                if self.taking_back {
                    self.taking_back = false;
                    if !self.no_closing {
                        // Past its own mark: a lane back meanwhile is read, and keeps it.
                        self.b_sees_live = self.live();
                        self.closing = false;
                        if self.b_sees_live {
                            return;
                        }
                    }
                    self.release();
                    return;
                }
                match (self.b_sees_live, self.iv.open_from()) {
                    (true, None) => {
                        let x = self.b_pos.max(self.iv.end());
                        assert!(self.iv.grant(x));
                    }
                    (false, Some(_)) => {
                        if !self.no_catch_up {
                            // Silent as far as base has read: read to the end, then decide.
                            self.b_sees_live = self.live();
                            if self.b_sees_live {
                                return;
                            }
                        }
                        // Decided; released at the next tick (the lane may act in between).
                        self.taking_back = true;
                        self.closing = !self.no_closing;
                    }
                    _ => {}
                }
            }
            /// Base's release: at the lane's committed offset, going back for the gap.
            fn release(&mut self) {
                if let Some(from) = self.iv.open_from() {
                    let y = from.max(self.l_commit);
                    let seek = self.b_cursor.released(gray(), y, self.b_pos);
                    if self.b_cursor.in_replay() && !self.no_replay_record {
                        self.replay = Some(self.b_cursor.clone());
                    }
                    if let Some(back) = seek {
                        self.b_pos = back;
                        self.b_commit = back;
                    }
                    assert!(self.iv.release(y));
                }
            }
            fn run(&mut self, steps: &[Step]) {
                for s in steps {
                    match s {
                        Step::Base => self.base_step(),
                        Step::Lane => self.lane_step(),
                        Step::BaseCommit => {
                            self.b_commit = self.b_pos;
                        }
                        Step::LaneCommit => self.lane_commit(),
                        Step::LaneTick => self.lane_tick(),
                        Step::Tick => self.tick(),
                        Step::BaseRead => self.b_sees_live = self.live(),
                        Step::LaneRead => self.lane_read(),
                        Step::LaneLapse if self.l_running && !self.l_lapsed => {
                            // Like a crash: base may take over from its last commit.
                            let c = self.l_commit;
                            self.allowed_dups
                                .extend(self.l_since_commit.drain(..).filter(|&o| o >= c));
                            self.l_lapsed = true;
                        }
                        Step::LaneReturn => self.lane_return(),
                        Step::LaneStart if !self.l_running => {
                            // A new instance reads the control topic to its end first.
                            self.l_running = true;
                            self.l_lapsed = false;
                            self.l_pos = self.l_commit;
                            self.l_cursor = LaneCursor::default();
                            self.lane_read();
                        }
                        Step::LaneStop if self.l_running => {
                            self.lane_commit();
                            self.l_running = false;
                            self.l_lapsed = false;
                        }
                        Step::LaneCrash if self.l_running => {
                            // What it processed at or past its committed offset may be
                            // processed again.
                            let c = self.l_commit;
                            self.allowed_dups
                                .extend(self.l_since_commit.drain(..).filter(|&o| o >= c));
                            self.l_running = false;
                            self.l_lapsed = false;
                        }
                        Step::BaseRestart => {
                            // Base's commit may have moved back to a release offset: all it
                            // processed from there is in the window.
                            let c = self.b_commit;
                            let redo = (c..self.len()).filter(|&o| self.by_base[o as usize] > 0);
                            self.allowed_dups.extend(redo.collect::<Vec<_>>());
                            self.base_moves();
                        }
                        Step::BaseRebalance => {
                            self.b_commit = self.b_pos;
                            self.base_moves();
                        }
                        _ => {}
                    }
                }
                // Drain: the lane comes back if it lapsed; settle ownership, then both consumers
                // read to the end.
                self.lane_return();
                for _ in 0..3 {
                    self.b_sees_live = self.live();
                    self.tick();
                    self.lane_read();
                    self.lane_tick();
                    while self.b_pos < self.len() || (self.l_running && self.l_pos < self.len()) {
                        self.base_step();
                        self.lane_step();
                    }
                }
            }
        }

        impl World {
            /// The first broken promise: a message lost, a base message handled by the lane,
            /// or a message handled twice outside a crash window.
            fn violation(&self) -> Option<String> {
                self.log.iter().enumerate().find_map(|(o, lane)| {
                    let (b, l) = (self.by_base[o], self.by_lane[o]);
                    if b + l == 0 {
                        Some(format!("offset {o} ({lane}) lost"))
                    } else if lane.is_base() && l > 0 {
                        Some(format!("base message {o} processed by the lane"))
                    } else if b + l > 1 && !self.allowed_dups.contains(&(o as i64)) {
                        Some(format!(
                            "offset {o} ({lane}) processed {b} times by base, {l} by lane, outside a crash window"
                        ))
                    } else {
                        None
                    }
                })
            }
        }

        /// `steps` keep every promise, and break one (a message handled twice outside a crash
        /// window) with the fix that `unfix` switches off: the model would catch that bug
        /// coming back.
        fn holds_only_with_the_fix(lanes: &[bool], steps: &[Step], unfix: fn(&mut World)) {
            let mut w = World::new(lanes);
            w.run(steps);
            assert_eq!(w.violation(), None);

            let mut unfixed = World::new(lanes);
            unfix(&mut unfixed);
            unfixed.run(steps);
            let broken = unfixed
                .violation()
                .expect("without the fix, a promise breaks");
            assert!(broken.contains("outside a crash window"), "{broken}");
        }

        /// A lane instance stops and the next one starts before base's reader has seen the
        /// new heartbeat: base must not release the lane it still thinks is silent.
        #[test]
        fn a_lagging_base_reader_does_not_release_a_live_lane() {
            use Step::*;
            let steps = [
                LaneStart, BaseRead, Tick, LaneRead, LaneStop, BaseRead, LaneStart, Lane, Tick,
                Lane, Base, Base,
            ];
            // Base's second look before releasing (its `closing` mark) catches this too.
            holds_only_with_the_fix(&[true, true, false, true], &steps, |w| {
                w.no_catch_up = true;
                w.no_closing = true;
            });
        }

        /// The lane's lease lapses; base, no longer seeing it, releases and re-reads the gap;
        /// the lane comes back. Acting on the grant its reader last saw, it would handle the
        /// gap's records a second time: it must read the control topic first and wait for a
        /// new grant.
        #[test]
        fn a_lane_back_from_a_lapse_waits_for_a_new_grant() {
            use Step::*;
            let steps = [
                LaneStart, BaseRead, Tick, LaneRead, Lane, LaneCommit, LaneLapse, BaseRead, Tick,
                Tick, Base, Base, Base, LaneReturn, Lane, Lane, Lane,
            ];
            holds_only_with_the_fix(&[true, false, true, true], &steps, |w| {
                w.no_return_catch_up = true;
            });
        }

        /// The lane's lease lapses; base decides to take the lane's interval back, and before it
        /// has released it the lane comes back and reads the control topic: acting on the grant
        /// still open there, it would handle records base is about to replay. The `closing`
        /// mark base writes first makes it wait, and base, reading again before it releases,
        /// sees it back and reopens.
        #[test]
        fn a_lane_back_while_base_takes_its_interval_back_waits() {
            use Step::*;
            let steps = [
                LaneStart, BaseRead, Tick, LaneRead, Lane, LaneCommit, LaneLapse, BaseRead, Tick,
                LaneReturn, Lane, Lane, Tick, Base, Base, Base,
            ];
            holds_only_with_the_fix(&[true, true, false, true], &steps, |w| w.no_closing = true);
        }

        /// Base releases a lagging lane and re-reads the gap; before the replay ends, the
        /// partition moves to another base member. Starting afresh from the commit, the new
        /// owner would handle the gap's base messages a second time: it takes the replay over
        /// from the record the old owner wrote before seeking back.
        #[test]
        fn a_base_rebalance_in_the_middle_of_a_replay_handles_nothing_twice() {
            use Step::*;
            // Base reads all six while the lane handles none, the lane stops, base goes back
            // and re-reads two of them, and the partition moves.
            let steps = [
                &[LaneStart, BaseRead, Tick, LaneRead][..],
                &[Base; 6],
                &[
                    LaneStop,
                    BaseRead,
                    Tick,
                    Tick,
                    Base,
                    Base,
                    BaseRebalance,
                    Base,
                    Base,
                ],
            ]
            .concat();
            let lanes = [true, false, true, false, true, false];
            holds_only_with_the_fix(&lanes, &steps, |w| w.no_replay_record = true);
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2_000))]
            #[test]
            fn every_message_once_by_its_owner(
                lanes in proptest::collection::vec(any::<bool>(), 1..60),
                steps in proptest::collection::vec(step(), 0..200),
            ) {
                let mut w = World::new(&lanes);
                w.run(&steps);
                if let Some(v) = w.violation() {
                    prop_assert!(false, "{}", v);
                }
            }
        }
    }
}
