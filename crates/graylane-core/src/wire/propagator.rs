//! [`Propagator`]: reads the lane from carriers and writes it onto them, and counts what it
//! refuses.
//!
//! The wire names are interned and each lane's baggage entries precomputed when it is built,
//! so the request path neither parses names nor allocates for a configured lane.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::baggage::{BAGGAGE_HEADER, baggage_value, without_members};
use super::carrier::{Extractor, Injector, Key};
use super::config::{WireConfig, WireError};
use crate::context::{LaneContext, Origin};
use crate::lane::{Lane, LaneSet, intern};
use crate::stats::{Counters, Rejection, Snapshot};

/// Reads and writes lane contexts on carriers; counts what it refuses.
///
/// Cheap to clone (one `Arc`). Holds the [`LaneSet`] that decides which wire values are lanes.
///
/// Built from a [`LiveSpec`](crate::live::LiveSpec), the lanes follow the spec's live
/// revisions: a lane removed from the spec is no lane on the wire any more (counted as
/// unknown), for every clone at once, and extracted contexts carry the revision they were read
/// under ([`LaneContext::revision`]).
#[derive(Clone)]
pub struct Propagator {
    inner: Arc<Inner>,
}

struct Inner {
    /// The lanes in force: swapped whole, so that a reader sees one revision's lanes.
    active: ArcSwap<Active>,
    /// The lanes it was built with: the names below are for these, and a live revision may
    /// only remove some of them.
    declared: LaneSet,
    wire: WireConfig,
    names: Names,
    counters: Counters,
}

/// The wire names, interned, and each lane's baggage entries, precomputed: injecting a lane
/// into an empty carrier copies nothing.
struct Names {
    header: Key,
    mirror_header: Key,
    baggage: Key,
    baggage_key: &'static str,
    baggage_mirror_key: &'static str,
    /// `(lane, "gray.lane=<lane>", "gray.lane=<lane>,gray.mirror=1")`, in the `LaneSet`'s
    /// order (by name), so that a lane's entry is found by bisection.
    entries: Vec<(Lane, &'static str, &'static str)>,
    mirror_entry: &'static str,
}

/// The lanes a propagator recognizes now, and the spec revision that set them.
#[derive(Debug)]
struct Active {
    revision: u64,
    lanes: Arc<LaneSet>,
}

impl Names {
    fn new(lanes: &LaneSet, wire: &WireConfig) -> Names {
        let mirror_entry = intern(&format!("{}=1", wire.baggage_mirror_key));
        Names {
            header: Key::new(&wire.header),
            mirror_header: Key::new(&wire.mirror_header),
            baggage: Key::new(BAGGAGE_HEADER),
            baggage_key: intern(&wire.baggage_key),
            baggage_mirror_key: intern(&wire.baggage_mirror_key),
            entries: lanes
                .iter()
                .map(|lane| {
                    let entry = format!("{}={lane}", wire.baggage_key);
                    let both = format!("{entry},{mirror_entry}");
                    (lane, intern(&entry), intern(&both))
                })
                .collect(),
            mirror_entry,
        }
    }

    fn entry(&self, lane: Lane, mirror: bool) -> Option<&'static str> {
        self.entries
            .binary_search_by(|(l, _, _)| l.cmp(&lane))
            .ok()
            .map(|i| {
                let (_, plain, both) = self.entries[i];
                if mirror { both } else { plain }
            })
    }
}

impl fmt::Debug for Propagator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Propagator")
            .field("lanes", &self.inner.active.load().lanes)
            .field("wire", &self.inner.wire)
            .field("rejections", &self.inner.counters)
            .finish()
    }
}

impl Propagator {
    /// A propagator for `lanes` with the default [`WireConfig`].
    pub fn new(lanes: LaneSet) -> Propagator {
        Propagator::with_wire(lanes, WireConfig::default())
    }

    /// A propagator for `lanes` with custom wire names, for names known to be good (literals,
    /// or a lane spec's, which is validated when it loads).
    ///
    /// # Panics
    ///
    /// If `wire` fails [`WireConfig::validate`]. For names from elsewhere use
    /// [`try_with_wire`](Self::try_with_wire).
    pub fn with_wire(lanes: LaneSet, wire: WireConfig) -> Propagator {
        Propagator::try_with_wire(lanes, wire)
            .unwrap_or_else(|e| panic!("invalid wire config: {e}"))
    }

    /// A propagator for `lanes` with custom wire names, or why the names cannot be used.
    ///
    /// ```
    /// use graylane_core::wire::{WireConfig, WireError};
    /// use graylane_core::{LaneSet, Propagator};
    ///
    /// let wire = WireConfig { header: "X-Lane".into(), ..WireConfig::default() };
    /// let err = Propagator::try_with_wire(LaneSet::base_only(), wire).unwrap_err();
    /// assert!(matches!(err, WireError::HeaderName { field: "header", .. }));
    /// ```
    pub fn try_with_wire(lanes: LaneSet, wire: WireConfig) -> Result<Propagator, WireError> {
        wire.validate()?;
        Ok(Propagator {
            inner: Arc::new(Inner {
                names: Names::new(&lanes, &wire),
                active: ArcSwap::from_pointee(Active {
                    revision: 0,
                    lanes: Arc::new(lanes.clone()),
                }),
                declared: lanes,
                wire,
                counters: Counters::default(),
            }),
        })
    }

    /// The lanes in force: those it was built with, less any a live spec revision removed
    /// since.
    pub fn lanes(&self) -> Arc<LaneSet> {
        self.inner.active.load().lanes.clone()
    }

    /// The spec revision whose lanes are in force (0 unless a [`LiveSpec`](crate::live::LiveSpec)
    /// has applied one).
    pub fn revision(&self) -> u64 {
        self.inner.active.load().revision
    }

    /// Puts `lanes` in force for `revision`, for every clone. Only lanes it was built with can
    /// be lanes (their wire names are precomputed): others are left out, and returned.
    pub(crate) fn set_lanes(&self, revision: u64, lanes: &LaneSet) -> Vec<Lane> {
        let (kept, unknown): (Vec<Lane>, Vec<Lane>) = lanes
            .non_base()
            .partition(|l| self.inner.declared.contains(*l));
        self.inner.active.store(Arc::new(Active {
            revision,
            lanes: Arc::new(LaneSet::new(kept)),
        }));
        unknown
    }

    /// The wire names.
    pub fn wire(&self) -> &WireConfig {
        &self.inner.wire
    }

    /// The header keys this propagator reads and writes (for CORS lists, header allow-lists).
    pub fn fields(&self) -> [&str; 3] {
        let w = &self.inner.wire;
        [&w.header, &w.mirror_header, BAGGAGE_HEADER]
    }

    /// What has been refused so far.
    pub fn stats(&self) -> Snapshot {
        self.inner.counters.snapshot()
    }

    /// The counters, for instances that refuse on the propagator's behalf (the edge).
    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// The context on `carrier`: its lane if it carries a configured one, else base.
    ///
    /// Never fails: a refused value is counted and base is returned. A mirror copy keeps its
    /// mirror mark even then (a copy for a lane this service does not know): the context is
    /// base *and* mirror, which must never be served as live base traffic —
    /// `graylane_http::LaneLayer` refuses it. Never allocates for a configured lane.
    pub fn extract<C: Extractor + ?Sized>(&self, carrier: &C) -> LaneContext {
        let active = self.inner.active.load();
        match self.try_extract_in(&active, carrier) {
            Ok(Some(ctx)) => ctx,
            Ok(None) => LaneContext::base().with_revision(active.revision),
            Err(rejection) => {
                self.inner.counters.record(rejection);
                let base = LaneContext::base().with_revision(active.revision);
                if self.marks_mirror(carrier) {
                    base.with_mirror(true).with_origin(Origin::Wire)
                } else {
                    base
                }
            }
        }
    }

    /// Whether `carrier` is marked as a mirror copy (the mirror header, or the baggage member
    /// where the baggage can be read), whatever its lane, known or not. A copy whose lane is
    /// refused is never live traffic: consumers skip it rather than apply an unknown-lane
    /// policy that would hand it to base.
    pub fn marks_mirror<C: Extractor + ?Sized>(&self, carrier: &C) -> bool {
        let names = &self.inner.names;
        carrier
            .get_list(&names.mirror_header)
            .is_some_and(|v| any_true(&v))
            || carrier.get_list(&names.baggage).is_some_and(|b| {
                baggage_value(&b, names.baggage_mirror_key)
                    .is_ok_and(|v| v.is_some_and(|v| is_true(v.as_bytes())))
            })
    }

    /// Like [`extract`](Self::extract), but tells apart "no lane on the carrier" (`Ok(None)`)
    /// and "a lane value that was refused" (`Err`), and counts nothing.
    pub fn try_extract<C: Extractor + ?Sized>(
        &self,
        carrier: &C,
    ) -> Result<Option<LaneContext>, Rejection> {
        self.try_extract_in(&self.inner.active.load(), carrier)
    }

    /// [`try_extract`](Self::try_extract) with the lanes in force read once by the caller.
    fn try_extract_in<C: Extractor + ?Sized>(
        &self,
        active: &Active,
        carrier: &C,
    ) -> Result<Option<LaneContext>, Rejection> {
        let names = &self.inner.names;
        // Each field is read whole, every line of it (`get_list`): what a proxy joining the
        // lines would pass on, and what Envoy matches. Two lane header lines are then one
        // value, `gray,blue`, which is no lane.
        let mirror_header = || {
            carrier
                .get_list(&names.mirror_header)
                .is_some_and(|v| any_true(&v))
        };
        // Header first: when the lane header is there, the headers alone decide (the injector
        // always writes header and baggage together), which spares a lookup on the hot path.
        let (lane, mirror) = match carrier.get_list(&names.header) {
            Some(raw) => (Some(lane_from(&active.lanes, &raw)?), mirror_header()),
            None => match carrier.get_list(&names.baggage) {
                Some(baggage) => {
                    let lane = match baggage_value(&baggage, names.baggage_key)? {
                        Some(raw) => Some(lane_from(&active.lanes, raw.as_bytes())?),
                        None => None,
                    };
                    // A mirror member whose value does not decode is dropped, as OTel drops
                    // it; the lane member alone decides whether there is a lane.
                    let mirror = mirror_header()
                        || baggage_value(&baggage, names.baggage_mirror_key)
                            .is_ok_and(|v| v.is_some_and(|v| is_true(v.as_bytes())));
                    (lane, mirror)
                }
                None => (None, mirror_header()),
            },
        };
        Ok(match (lane, mirror) {
            (None, false) => None,
            (lane, mirror) => Some(
                LaneContext::new(lane.unwrap_or(Lane::BASE))
                    .with_mirror(mirror)
                    .with_origin(Origin::Wire)
                    .with_revision(active.revision),
            ),
        })
    }

    /// Writes `ctx` onto `carrier`: the lane header and baggage member (and the mirror marks for
    /// a mirror copy).
    ///
    /// # Doesn't override existing values
    ///
    /// A lane header already on the carrier wins (the application set it on purpose); the
    /// baggage member is then written with that lane so both agree. Other baggage members are
    /// kept. Base is the default, so a base context writes nothing.
    pub fn inject<C: Injector + Extractor + ?Sized>(&self, ctx: &LaneContext, carrier: &mut C) {
        let names = &self.inner.names;
        let mut lane = ctx.lane();
        let explicit = if lane.is_base() {
            carrier.get_key(&names.header).is_some()
        } else {
            !carrier.set_key_if_absent(&names.header, Cow::Borrowed(lane.as_str()))
        };
        if explicit {
            let existing = carrier.get_list(&names.header);
            let existing = existing.as_deref().map(<[u8]>::trim_ascii);
            if let Some(existing) = existing.and_then(|v| self.inner.active.load().lanes.get(v)) {
                lane = existing;
            }
        }
        let mirror = ctx.is_mirror();
        if mirror {
            carrier.set_key_if_absent(&names.mirror_header, Cow::Borrowed("1"));
        }
        if lane.is_base() && !mirror {
            return;
        }

        // The common case: no baggage yet, so the precomputed entry is the whole value.
        let entry = match (lane.is_base(), names.entry(lane, mirror)) {
            (false, Some(entry)) => entry,
            _ => names.mirror_entry,
        };
        if carrier.set_key_if_absent(&names.baggage, Cow::Borrowed(entry)) {
            return;
        }
        // Every line: the one written back replaces them all, and must keep their members.
        let lines = carrier.get_list(&names.baggage);
        let existing = lines
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default();
        if existing.trim().is_empty() {
            carrier.set_key(&names.baggage, Cow::Borrowed(entry));
            return;
        }
        let has = |key: &str| matches!(baggage_value(existing.as_bytes(), key), Ok(Some(_)));
        let add_lane = !lane.is_base() && !has(names.baggage_key);
        let add_mirror = mirror && !has(names.baggage_mirror_key);
        if !add_lane && !add_mirror {
            return;
        }
        let mut value = String::with_capacity(existing.len() + 48);
        value.push_str(existing);
        if add_lane {
            value.push(',');
            value.push_str(names.baggage_key);
            value.push('=');
            value.push_str(lane.as_str());
        }
        if add_mirror {
            value.push(',');
            value.push_str(names.mirror_entry);
        }
        carrier.set_key(&names.baggage, Cow::Owned(value));
    }

    /// Removes every lane mark from `carrier` (the header, the mirror header, and the lane and
    /// mirror baggage members, keeping the other members), from every line of each header.
    /// Returns whether anything was removed.
    ///
    /// The edge calls this on requests from untrusted clients.
    pub fn strip<C: Injector + Extractor + ?Sized>(&self, carrier: &mut C) -> bool {
        let names = &self.inner.names;
        let mut stripped = false;
        for header in [&names.header, &names.mirror_header] {
            if carrier.get_key(header).is_some() {
                carrier.remove(header.as_str());
                stripped = true;
            }
        }
        // Every line, as one list: a member on any line reaches whatever joins them later.
        let kept = carrier.get_list(&names.baggage).map(|baggage| {
            let keys = [names.baggage_key, names.baggage_mirror_key];
            match std::str::from_utf8(&baggage) {
                Ok(text) => without_members(text, &keys),
                // Not UTF-8: nobody can parse it, and it could hide a lane. Drop it whole.
                Err(_) => Some(String::new()),
            }
        });
        if let Some(Some(kept)) = kept {
            stripped = true;
            if kept.is_empty() {
                carrier.remove(BAGGAGE_HEADER);
            } else {
                // One line replaces them all.
                carrier.set(BAGGAGE_HEADER, Cow::Owned(kept));
            }
        }
        stripped
    }
}

/// Whether a mark's raw value says yes (`1` or `true`), in a header or a baggage member.
fn is_true(raw: &[u8]) -> bool {
    matches!(raw.trim_ascii(), b"1" | b"true")
}

/// Whether any element of a mirror header's list says yes: a mark on any line makes a mirror
/// copy, which is never taken for live traffic.
fn any_true(list: &[u8]) -> bool {
    list.split(|b| *b == b',').any(is_true)
}

/// The lane of `lanes` named by a raw wire value.
fn lane_from(lanes: &LaneSet, raw: &[u8]) -> Result<Lane, Rejection> {
    let raw = raw.trim_ascii();
    if raw.len() > Lane::MAX_LEN {
        return Err(Rejection::Oversized);
    }
    match lanes.get(raw) {
        Some(lane) => Ok(lane),
        None if crate::lane::validate(raw).is_ok() => Err(Rejection::Unknown),
        None => Err(Rejection::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    type Map = HashMap<String, String>;

    fn gray() -> Lane {
        Lane::new("gray").unwrap()
    }

    fn prop() -> Propagator {
        Propagator::new(LaneSet::new([gray(), Lane::new("blue").unwrap()]))
    }

    fn map(pairs: &[(&str, &str)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A carrier with raw byte values, for inputs a `String` cannot hold.
    struct Raw(Vec<(&'static str, Vec<u8>)>);
    impl Extractor for Raw {
        fn get(&self, key: &str) -> Option<&[u8]> {
            self.0
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_slice())
        }
    }

    #[test]
    fn header_first_then_baggage() {
        let p = prop();
        let both = map(&[("x-gray-lane", "gray"), ("baggage", "gray.lane=blue")]);
        assert_eq!(p.extract(&both).lane(), "gray");
        let bag = map(&[("baggage", "a=1, gray.lane = blue ;prop=x,b=2")]);
        assert_eq!(p.extract(&bag).lane(), "blue");
        let encoded = map(&[("baggage", "gray.lane=%67ray")]);
        assert_eq!(p.extract(&encoded).lane(), "gray");
        let none = map(&[("baggage", "a=1")]);
        assert_eq!(p.try_extract(&none), Ok(None));
        assert_eq!(p.extract(&none), LaneContext::base());
        assert_eq!(p.stats().total(), 0);
    }

    #[test]
    fn a_mirror_mark_survives_an_unknown_lane() {
        let p = prop();
        for carrier in [
            map(&[("x-gray-lane", "shadow"), ("x-gray-mirror", "1")]),
            map(&[("baggage", "gray.lane=shadow,gray.mirror=1")]),
            map(&[("x-gray-lane", "Not A Lane"), ("x-gray-mirror", "true")]),
        ] {
            let ctx = p.extract(&carrier);
            assert_eq!(
                (ctx.lane(), ctx.is_mirror()),
                (Lane::BASE, true),
                "{carrier:?}"
            );
        }
        // Without the mark, a refused lane is plain base.
        let ctx = p.extract(&map(&[("x-gray-lane", "shadow")]));
        assert!(ctx.lane().is_base() && !ctx.is_mirror());
    }

    #[test]
    fn extracted_context_is_marked_as_wire() {
        let ctx = prop().extract(&map(&[("x-gray-lane", " gray ")]));
        assert_eq!(ctx.lane(), "gray");
        assert_eq!(ctx.origin(), Origin::Wire);
        assert!(!ctx.is_mirror());
    }

    #[test]
    fn mirror_mark_round_trips() {
        let p = prop();
        let mut m = Map::new();
        p.inject(&LaneContext::new(gray()).with_mirror(true), &mut m);
        assert_eq!(m["x-gray-mirror"], "1");
        assert_eq!(m["baggage"], "gray.lane=gray,gray.mirror=1");
        let ctx = p.extract(&m);
        assert!(ctx.is_mirror());
        m.remove("x-gray-mirror");
        m.remove("x-gray-lane");
        let ctx = p.extract(&m);
        assert!(ctx.is_mirror() && ctx.lane() == "gray");
    }

    #[test]
    fn hostile_values_become_base_and_are_counted() {
        let p = prop();
        let huge = "g".repeat(64 * 1024);
        let many = (0..1000)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        let cases: Vec<(Raw, Rejection)> = vec![
            (
                Raw(vec![("x-gray-lane", huge.clone().into_bytes())]),
                Rejection::Oversized,
            ),
            (
                Raw(vec![("x-gray-lane", b"gray\r\nx-evil: 1".to_vec())]),
                Rejection::Malformed,
            ),
            (
                Raw(vec![("x-gray-lane", vec![0xff, 0xfe, b'g'])]),
                Rejection::Malformed,
            ),
            (
                Raw(vec![("x-gray-lane", b"GRAY".to_vec())]),
                Rejection::Malformed,
            ),
            (
                Raw(vec![(
                    "x-gray-lane",
                    b"gray'; DROP SCHEMA public; --".to_vec(),
                )]),
                Rejection::Malformed,
            ),
            (
                Raw(vec![(
                    "x-gray-lane",
                    b"gray'; DROP SCHEMA public CASCADE; --".to_vec(),
                )]),
                Rejection::Oversized,
            ),
            (
                Raw(vec![("x-gray-lane", b"x'or'1'='1".to_vec())]),
                Rejection::Malformed,
            ),
            (
                Raw(vec![("x-gray-lane", b"gr*y".to_vec())]),
                Rejection::Malformed,
            ),
            (
                Raw(vec![("x-gray-lane", b"{gray}".to_vec())]),
                Rejection::Malformed,
            ),
            (
                Raw(vec![("x-gray-lane", b"green".to_vec())]),
                Rejection::Unknown,
            ),
            (
                Raw(vec![("x-gray-lane", b"".to_vec())]),
                Rejection::Malformed,
            ),
            (
                Raw(vec![(
                    "baggage",
                    format!("gray.lane=gray,{many}").into_bytes(),
                )]),
                Rejection::Oversized,
            ),
            (
                Raw(vec![("baggage", format!("gray.lane={huge}").into_bytes())]),
                Rejection::Oversized,
            ),
            (
                Raw(vec![("baggage", b"gray.lane=%ff%fe".to_vec())]),
                Rejection::Malformed,
            ),
            (
                Raw(vec![("baggage", b"gray.lane=gr%2Ay".to_vec())]),
                Rejection::Malformed,
            ),
        ];
        for (i, (carrier, expected)) in cases.iter().enumerate() {
            assert_eq!(p.try_extract(carrier), Err(*expected), "case {i}");
            assert_eq!(p.extract(carrier), LaneContext::base(), "case {i}");
        }
        let stats = p.stats();
        assert_eq!(stats.total(), cases.len() as u64);
        assert_eq!(stats.get(Rejection::Unknown), 1);
    }

    #[test]
    fn inject_writes_header_and_baggage_and_keeps_other_members() {
        let p = prop();
        let mut m = map(&[("baggage", "userId=alice,session=x;ttl=3")]);
        p.inject(&LaneContext::new(gray()), &mut m);
        assert_eq!(m["x-gray-lane"], "gray");
        assert_eq!(m["baggage"], "userId=alice,session=x;ttl=3,gray.lane=gray");
    }

    #[test]
    fn inject_does_not_override_an_existing_lane() {
        let p = prop();
        let mut m = map(&[("x-gray-lane", "blue")]);
        p.inject(&LaneContext::new(gray()), &mut m);
        assert_eq!(m["x-gray-lane"], "blue");
        assert_eq!(
            m["baggage"], "gray.lane=blue",
            "baggage agrees with the explicit header"
        );

        let mut m = map(&[("baggage", "gray.lane=blue")]);
        p.inject(&LaneContext::new(gray()), &mut m);
        assert_eq!(m["baggage"], "gray.lane=blue");
    }

    #[test]
    fn base_writes_nothing() {
        let mut m = Map::new();
        prop().inject(&LaneContext::base(), &mut m);
        assert!(m.is_empty());
    }

    #[test]
    fn strip_removes_only_lane_marks() {
        let p = prop();
        let mut m = map(&[
            ("x-gray-lane", "gray"),
            ("x-gray-mirror", "1"),
            ("baggage", "a=1,gray.lane=gray;p, gray.mirror=1 ,b=2"),
            ("other", "x"),
        ]);
        assert!(p.strip(&mut m));
        assert_eq!(m, map(&[("baggage", "a=1,b=2"), ("other", "x")]));
        assert!(!p.strip(&mut m));

        let mut only = map(&[("baggage", "gray.lane=gray")]);
        assert!(p.strip(&mut only));
        assert!(only.is_empty());
    }

    #[test]
    fn every_spelling_of_the_lane_key_is_read_and_stripped() {
        let p = prop();
        // Each decodes to `gray.lane` (or `gray.mirror`) as W3C Baggage and OTel's
        // `BaggagePropagator` read keys: percent-decoded, then trimmed of Unicode whitespace.
        for member in [
            "gray%2Elane=gray",
            "gray%2elane=gray",
            "%67ray.lane=gray",
            "%67%72%61%79%2E%6C%61%6E%65=gray",
            "%20gray.lane=gray",
            "gray.lane%09=gray",
            "gray.lane%C2%A0=gray",
            "gray.lane%E2%80%83 =gray",
            "gray.lane=%20gray%C2%A0",
        ] {
            let m = map(&[("baggage", &format!("a=1,{member};p=1,b=2"))]);
            assert_eq!(p.extract(&m).lane(), gray(), "{member}");
            let mut stripped = m.clone();
            assert!(p.strip(&mut stripped), "{member}");
            assert_eq!(stripped["baggage"], "a=1,b=2", "{member}");
        }
        for member in ["gray%2Emirror=1", "%20gray.mirror%20=%31"] {
            let m = map(&[("baggage", &format!("gray.lane=gray,{member}"))]);
            assert!(p.extract(&m).is_mirror(), "{member}");
            let mut stripped = m.clone();
            assert!(p.strip(&mut stripped));
            assert!(stripped.is_empty(), "{member}: {stripped:?}");
        }
        // `+` is no space in baggage, but a form decoder would read one: stripped all the same.
        let mut plus = map(&[("baggage", "gray.lane+=gray,a=1")]);
        assert!(p.strip(&mut plus));
        assert_eq!(plus["baggage"], "a=1");

        // The last member wins, as in OTel's `Baggage` (a map); a member whose value is not
        // UTF-8 once decoded is skipped, as OTel skips it, and alone it is malformed.
        let last = map(&[("baggage", "gray.lane=blue,gray.lane=gray")]);
        assert_eq!(p.extract(&last).lane(), gray());
        let skipped = map(&[("baggage", "gray.lane=gray,gray.lane=%ff")]);
        assert_eq!(p.extract(&skipped).lane(), gray());
        let alone = map(&[("baggage", "gray.lane=%ff")]);
        assert_eq!(p.try_extract(&alone), Err(Rejection::Malformed));
        // An undecodable mirror member is dropped too: the lane stands, no mirror copy.
        let mirror = map(&[("baggage", "gray.mirror=%ff,gray.lane=gray")]);
        let read = p.extract(&mirror);
        assert_eq!((read.lane(), read.is_mirror()), (gray(), false));

        // Other keys are other keys.
        for other in [
            "gray.lanes=gray",
            "gray%2Elane%2E=gray",
            "Gray.lane=gray",
            "gray.lane",
        ] {
            let mut m = map(&[("baggage", other)]);
            assert_eq!(p.try_extract(&m), Ok(None), "{other}");
            assert!(!p.strip(&mut m), "{other}");
        }
    }

    #[test]
    fn custom_wire_names() {
        let wire = WireConfig {
            header: "x-lane".into(),
            baggage_key: "lane".into(),
            ..WireConfig::default()
        };
        wire.validate().unwrap();
        let p = Propagator::with_wire(LaneSet::new([gray()]), wire);
        let mut m = Map::new();
        p.inject(&LaneContext::new(gray()), &mut m);
        assert_eq!(m, map(&[("x-lane", "gray"), ("baggage", "lane=gray")]));
        assert_eq!(p.fields(), ["x-lane", "x-gray-mirror", "baggage"]);
    }

    proptest! {
        /// Whatever bytes arrive, extraction returns a configured lane or base; never panics.
        #[test]
        fn extract_never_panics_and_only_yields_configured_lanes(
            header in proptest::collection::vec(any::<u8>(), 0..80),
            baggage in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let p = prop();
            let c = Raw(vec![("x-gray-lane", header), ("baggage", baggage)]);
            let ctx = p.extract(&c);
            prop_assert!(p.lanes().contains(ctx.lane()));
        }

        #[test]
        fn baggage_shaped_input_never_panics(s in "((gray\\.lane|gray\\.mirror|[a-z.]{0,8}) ?=[%a-z0-9]{0,8}(;[a-z]=?[a-z]*)?,? ?){0,20}") {
            let p = prop();
            let m = map(&[("baggage", &s)]);
            let ctx = p.extract(&m);
            prop_assert!(p.lanes().contains(ctx.lane()));
            let mut m2 = m.clone();
            p.strip(&mut m2);
            prop_assert_eq!(p.try_extract(&m2), Ok(None));
        }

        /// inject then extract is the identity on the lane, whatever other members exist.
        #[test]
        fn inject_extract_round_trip(other in "([a-z]{1,6}=[a-z0-9]{1,6},){0,5}[a-z]{1,6}=[a-z0-9]{0,6}", mirror: bool) {
            let p = prop();
            let mut m = map(&[("baggage", &other)]);
            let ctx = LaneContext::new(gray()).with_mirror(mirror);
            p.inject(&ctx, &mut m);
            let back = p.extract(&m);
            prop_assert_eq!((back.lane(), back.is_mirror()), (gray(), mirror));
            prop_assert!(m["baggage"].starts_with(&other));
            // Baggage alone carries it too.
            m.remove("x-gray-lane");
            m.remove("x-gray-mirror");
            prop_assert_eq!(p.extract(&m).lane(), gray());
        }
    }
}
