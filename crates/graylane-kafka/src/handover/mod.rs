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
mod tests;
