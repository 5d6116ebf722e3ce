//! The Kafka control-record parser over arbitrary records: never a panic, and a record changes
//! the state only as the protocol says — another group's records, malformed ones and those of
//! a newer format change nothing; ownership versions never go back; what is installed is what
//! the record said, and reads back from its own encoding.
//!
//! Input: one record per line, `key<TAB>value` (a line without a tab is a key with an empty
//! value), so that seeds read like the control topic.
#![no_main]

// The parser's own source files, compiled here as they are: graylane-kafka depends on rdkafka,
// and building librdkafka for this workspace would only slow every fuzz build down.
#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/graylane-kafka/src/handover/mod.rs"]
mod handover;
#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/graylane-kafka/src/control/records.rs"]
mod records;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use graylane_core::{Lane, LaneSet};
use handover::BaseCursor;
use libfuzzer_sys::fuzz_target;
use records::{ControlState, FORMAT, Owned, format_of};

const GROUP: &str = "orders";

/// What a key names, as the protocol reads it: `Some` for `{GROUP}/own/{lane}/{p}/{topic}`.
fn own_key<'a>(lanes: &LaneSet, key: &'a str) -> Option<(Lane, i32, &'a str)> {
    let rest = key.strip_prefix(GROUP)?.strip_prefix("/own/")?;
    let mut parts = rest.splitn(3, '/');
    let lane = lanes.get(parts.next()?.as_bytes())?;
    let partition = parts.next()?.parse().ok()?;
    Some((lane, partition, parts.next()?))
}

/// `Some((p, topic))` for `{GROUP}/replay/{p}/{topic}`.
fn replay_key(key: &str) -> Option<(i32, &str)> {
    let rest = key.strip_prefix(GROUP)?.strip_prefix("/replay/")?;
    let (p, topic) = rest.split_once('/')?;
    (!topic.is_empty() && !topic.contains('/')).then_some((p.parse().ok()?, topic))
}

fn assert_canonical(owned: &Owned) {
    let intervals = owned.intervals.encode();
    let again = Owned::decode(&owned.encode()).expect("an installed record re-encodes");
    assert_eq!(again.version, owned.version);
    assert_eq!(again.intervals, owned.intervals);
    assert_eq!(again.closing, owned.closing);
    assert!(!owned.closing || owned.intervals.open_from().is_some());
    assert_eq!(again.intervals.encode(), intervals);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (gray, blue) = (Lane::from_static("gray"), Lane::from_static("blue"));
    let lanes = LaneSet::new([gray, blue]);
    let mut state = ControlState::default();
    // Every (lane, partition, topic) an ownership key of the input names, base's included.
    let mut tracked: Vec<(Lane, i32, String)> = Vec::new();
    for line in text.lines() {
        let (key, value) = line.split_once('\t').unwrap_or((line, ""));
        let names = own_key(&lanes, key);
        if let Some((lane, p, topic)) = names {
            if !tracked
                .iter()
                .any(|(l, q, t)| (*l, *q, t.as_str()) == (lane, p, topic))
            {
                tracked.push((lane, p, topic.to_owned()));
            }
        }
        let before: Vec<Option<u64>> = tracked
            .iter()
            .map(|(l, p, t)| state.owned(*l, t, *p).map(|o| o.version))
            .collect();
        let (changes, malformed, future) = (
            state.changes.load(Ordering::Acquire),
            state.malformed,
            state.future,
        );

        state.apply(GROUP, &lanes, key, value);

        let after: Vec<Option<u64>> = tracked
            .iter()
            .map(|(l, p, t)| state.owned(*l, t, *p).map(|o| o.version))
            .collect();
        let changed = state.changes.load(Ordering::Acquire) != changes;
        assert_eq!(
            changed,
            before != after,
            "the change counter tells every change"
        );
        for ((b, a), (l, p, t)) in before.iter().zip(&after).zip(&tracked) {
            assert!(a >= b, "a version went back on {l}/{p}/{t}");
            if let Some(owned) = state.owned(*l, t, *p) {
                assert!(!l.is_base(), "base never owns a lane's messages");
                assert_canonical(owned);
            }
        }
        let counted = state.malformed - malformed + state.future - future;
        assert!(counted <= 1);
        let ours = key.strip_prefix(GROUP).is_some_and(|r| r.starts_with('/'));
        if !ours || counted == 1 {
            assert!(
                !changed,
                "an ignored record changed the state: {key:?} {value:?}"
            );
        }
        let newer = matches!(format_of(value), Some((n, _)) if n > FORMAT);
        if newer {
            assert!(!changed, "a record of a newer format was applied");
        }
        // A well-formed ownership record of ours is installed, unless a newer version is.
        let body = format_of(value)
            .filter(|(n, _)| *n <= FORMAT)
            .map(|(_, v)| v);
        if let (Some((lane, p, topic)), Some(owned)) = (names, body.and_then(Owned::decode)) {
            if !lane.is_base() {
                let now = state.owned(lane, topic, p).expect("installed");
                assert!(now.version >= owned.version);
                if now.version == owned.version && changed {
                    assert_eq!(now.intervals, owned.intervals);
                    assert_eq!(now.closing, owned.closing);
                }
            }
        }
        // A well-formed replay record of ours is what a new owner of the partition takes
        // over, as it said (less lanes this consumer does not know), and it reads back from
        // its own encoding.
        if let (Some((p, topic)), Some(cursor)) = (
            replay_key(key),
            body.and_then(|v| BaseCursor::decode(v, &lanes)),
        ) {
            let now = state.replay(topic, p).expect("installed");
            assert_eq!(now, &cursor);
            assert_eq!(
                BaseCursor::decode(&now.encode(), &lanes).as_ref(),
                Some(now)
            );
        }
        // Liveness and holding read whatever the records said, never panicking.
        for lane in [gray, blue, Lane::BASE] {
            let _ = state.live_instances(lane, Instant::now(), Duration::from_secs(30));
            for (_, p, t) in &tracked {
                let _ = state.holding(lane, t, *p, Instant::now(), Duration::from_secs(30));
            }
        }
    }
});
