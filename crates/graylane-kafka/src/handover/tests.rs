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

mod model;
