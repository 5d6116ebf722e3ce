//! The wire format: carriers, and the [`Propagator`] that reads and writes the lane on them.
//!
//! One truth for every transport:
//!
//! - a dedicated header (default [`DEFAULT_HEADER`], `x-gray-lane`), because Istio routes on
//!   plain headers;
//! - the same value as a W3C `baggage` member (default key [`DEFAULT_BAGGAGE_KEY`], `gray.lane`),
//!   so anything that already propagates OpenTelemetry context carries the lane for free;
//! - a mirror copy additionally carries [`DEFAULT_MIRROR_HEADER`] (`x-gray-mirror: 1`) and the
//!   baggage member `gray.mirror=1`.
//!
//! Both are written on inject; either is read on extract, the header first. Extraction is
//! lenient and never fails: malformed, oversized and unknown values become base and are counted
//! in [`Propagator::stats`]. Injection never overwrites a lane already on the carrier, and keeps
//! every other baggage member.
//!
//! ```
//! use std::collections::HashMap;
//! use graylane_core::{Lane, LaneContext, LaneSet, Propagator, Rejection};
//!
//! let gray = Lane::new("gray")?;
//! let propagator = Propagator::new(LaneSet::new([gray]));
//!
//! // Outbound: write the current lane.
//! let mut headers: HashMap<String, String> = HashMap::new();
//! headers.insert("baggage".into(), "user=42".into());
//! propagator.inject(&LaneContext::new(gray), &mut headers);
//! assert_eq!(headers["x-gray-lane"], "gray");
//! assert_eq!(headers["baggage"], "user=42,gray.lane=gray");
//!
//! // Inbound: read it back.
//! assert_eq!(propagator.extract(&headers).lane(), gray);
//!
//! // A lane that is not configured is base, and counted.
//! headers.insert("x-gray-lane".into(), "blue".into());
//! assert!(propagator.extract(&headers).lane().is_base());
//! assert_eq!(propagator.stats().get(Rejection::Unknown), 1);
//! # Ok::<(), graylane_core::LaneError>(())
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::lane::intern;
use crate::stats::{Counters, Rejection, Snapshot};
use crate::{Lane, LaneContext, LaneSet, Origin};

/// The default lane header.
pub const DEFAULT_HEADER: &str = "x-gray-lane";
/// The default W3C baggage key for the lane.
pub const DEFAULT_BAGGAGE_KEY: &str = "gray.lane";
/// The default header that marks a mirror copy.
pub const DEFAULT_MIRROR_HEADER: &str = "x-gray-mirror";
/// The default W3C baggage key that marks a mirror copy.
pub const DEFAULT_BAGGAGE_MIRROR_KEY: &str = "gray.mirror";
/// The W3C baggage header.
pub const BAGGAGE_HEADER: &str = "baggage";
/// Baggage headers longer than this are ignored whole (the W3C limit).
pub const MAX_BAGGAGE_LEN: usize = 8192;
/// Baggage headers with more members than this are ignored whole (the W3C limit).
pub const MAX_BAGGAGE_MEMBERS: usize = 180;

/// Reads values from a transport's headers.
///
/// Values are bytes because transports carry bytes (HTTP header values need not be UTF-8, Kafka
/// headers are opaque); graylane validates them itself.
pub trait Extractor {
    /// The first value stored under `key`, if any. Keys are lowercase; carriers whose keys are
    /// case-insensitive (HTTP) must match case-insensitively.
    fn get(&self, key: &str) -> Option<&[u8]>;

    /// [`get`](Self::get) with a prepared key. The default uses the key's name; carriers with a
    /// parsed key type of their own (`http::HeaderMap`) override it to skip parsing.
    fn get_key(&self, key: &Key) -> Option<&[u8]> {
        self.get(key.as_str())
    }
}

/// A carrier key prepared once: interned, and pre-parsed for the carriers that can use it.
///
/// The propagator looks its keys up on every request, so parsing `"x-gray-lane"` into an
/// `http::HeaderName` each time would cost more than the lookup itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    name: &'static str,
    #[cfg(feature = "http")]
    header: Option<http::HeaderName>,
}

impl Key {
    /// A key for `name` (lowercase). Interned: make keys from configuration, not from input.
    pub fn new(name: &str) -> Key {
        let name = intern(name);
        Key {
            name,
            #[cfg(feature = "http")]
            // Validate first (`from_static` panics on bad names), then build from the interned
            // `'static` name so that clones share it instead of counting references.
            header: http::HeaderName::from_lowercase(name.as_bytes())
                .ok()
                .map(|_| http::HeaderName::from_static(name)),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &'static str {
        self.name
    }

    /// The parsed header name, when `name` is a valid lowercase one.
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn header_name(&self) -> Option<&http::HeaderName> {
        self.header.as_ref()
    }
}

/// Writes values into a transport's headers.
///
/// Keys are `'static` and values are usually `'static` too (lane names and precomputed baggage
/// entries are interned), so carriers such as `http::HeaderMap` can store them without copying.
pub trait Injector {
    /// Stores `value` under `key`, replacing what was there.
    fn set(&mut self, key: &'static str, value: Cow<'static, str>);
    /// Removes every value stored under `key`.
    fn remove(&mut self, key: &str);

    /// [`set`](Self::set) with a prepared key; see [`Extractor::get_key`].
    fn set_key(&mut self, key: &Key, value: Cow<'static, str>) {
        self.set(key.as_str(), value);
    }

    /// Stores `value` under `key` unless a value is already there; returns whether it stored.
    /// Carriers with an entry API (`http::HeaderMap`) override it to look the key up once.
    fn set_key_if_absent(&mut self, key: &Key, value: Cow<'static, str>) -> bool
    where
        Self: Extractor,
    {
        if self.get_key(key).is_some() {
            return false;
        }
        self.set_key(key, value);
        true
    }
}

impl<S: std::hash::BuildHasher> Extractor for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&[u8]> {
        HashMap::get(self, key).map(|v| v.as_bytes())
    }
}

impl<S: std::hash::BuildHasher> Injector for HashMap<String, String, S> {
    fn set(&mut self, key: &'static str, value: Cow<'static, str>) {
        self.insert(key.to_owned(), value.into_owned());
    }
    fn remove(&mut self, key: &str) {
        HashMap::remove(self, key);
    }
}

/// The names the lane travels under. The defaults suit almost everyone; change them only to
/// match an existing convention (the mesh manifests use the same header).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WireConfig {
    /// The lane header (lowercase).
    pub header: String,
    /// The lane's W3C baggage key.
    pub baggage_key: String,
    /// The header that marks a mirror copy (lowercase).
    pub mirror_header: String,
    /// The W3C baggage key that marks a mirror copy.
    pub baggage_mirror_key: String,
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            header: DEFAULT_HEADER.into(),
            baggage_key: DEFAULT_BAGGAGE_KEY.into(),
            mirror_header: DEFAULT_MIRROR_HEADER.into(),
            baggage_mirror_key: DEFAULT_BAGGAGE_MIRROR_KEY.into(),
        }
    }
}

impl WireConfig {
    /// Checks that the names are usable as HTTP header names / baggage keys, and that the lane
    /// and mirror marks differ.
    pub fn validate(&self) -> Result<(), WireError> {
        for (field, name) in [
            ("header", &self.header),
            ("mirror_header", &self.mirror_header),
        ] {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(WireError::HeaderName {
                    field,
                    name: name.clone(),
                });
            }
        }
        for (field, key) in [
            ("baggage_key", &self.baggage_key),
            ("baggage_mirror_key", &self.baggage_mirror_key),
        ] {
            if key.is_empty()
                || !key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            {
                return Err(WireError::BaggageKey {
                    field,
                    key: key.clone(),
                });
            }
        }
        if self.header == self.mirror_header || self.baggage_key == self.baggage_mirror_key {
            return Err(WireError::SameNames);
        }
        Ok(())
    }
}

/// Why a [`WireConfig`] cannot be used: what [`WireConfig::validate`] and
/// [`Propagator::try_with_wire`] refuse.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// `header` or `mirror_header` is not a lowercase HTTP header name (a-z, 0-9, `-`).
    HeaderName {
        /// The field of [`WireConfig`].
        field: &'static str,
        /// The name refused.
        name: String,
    },
    /// `baggage_key` or `baggage_mirror_key` is not made of letters, digits, `-`, `.`, `_`.
    BaggageKey {
        /// The field of [`WireConfig`].
        field: &'static str,
        /// The key refused.
        key: String,
    },
    /// The lane and the mirror mark share a header name or a baggage key.
    SameNames,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::HeaderName { field, name } => write!(
                f,
                "{field} {name:?} must be a lowercase HTTP header name (a-z, 0-9, '-')"
            ),
            WireError::BaggageKey { field, key } => write!(
                f,
                "{field} {key:?} must be a baggage key of letters, digits, '-', '.', '_'"
            ),
            WireError::SameNames => f.write_str("the lane and mirror names must differ"),
        }
    }
}

impl std::error::Error for WireError {}

/// Reads and writes lane contexts on carriers; counts what it refuses.
///
/// Cheap to clone (one `Arc`). Holds the [`LaneSet`] that decides which wire values are lanes.
#[derive(Clone)]
pub struct Propagator {
    inner: Arc<Inner>,
}

struct Inner {
    lanes: LaneSet,
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
    /// `(lane, "gray.lane=<lane>", "gray.lane=<lane>,gray.mirror=1")`.
    entries: Vec<(Lane, &'static str, &'static str)>,
    mirror_entry: &'static str,
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
            .iter()
            .find(|(l, _, _)| *l == lane)
            .map(|(_, plain, both)| if mirror { *both } else { *plain })
    }
}

impl fmt::Debug for Propagator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Propagator")
            .field("lanes", &self.inner.lanes)
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
                lanes,
                wire,
                counters: Counters::default(),
            }),
        })
    }

    /// The configured lanes.
    pub fn lanes(&self) -> &LaneSet {
        &self.inner.lanes
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
    /// Never fails: a refused value is counted and base is returned. Never allocates for a
    /// configured lane.
    pub fn extract<C: Extractor + ?Sized>(&self, carrier: &C) -> LaneContext {
        match self.try_extract(carrier) {
            Ok(Some(ctx)) => ctx,
            Ok(None) => LaneContext::base(),
            Err(rejection) => {
                self.inner.counters.record(rejection);
                LaneContext::base()
            }
        }
    }

    /// Like [`extract`](Self::extract), but tells apart "no lane on the carrier" (`Ok(None)`)
    /// and "a lane value that was refused" (`Err`), and counts nothing.
    pub fn try_extract<C: Extractor + ?Sized>(
        &self,
        carrier: &C,
    ) -> Result<Option<LaneContext>, Rejection> {
        let names = &self.inner.names;
        // Header first: when the lane header is there, the headers alone decide (the injector
        // always writes header and baggage together), which spares a lookup on the hot path.
        let (lane, mirror) = match carrier.get_key(&names.header) {
            Some(raw) => (
                Some(self.lane_from(raw)?),
                carrier.get_key(&names.mirror_header).is_some_and(is_true),
            ),
            None => match carrier.get_key(&names.baggage) {
                Some(baggage) => {
                    let lane = match baggage_value(baggage, names.baggage_key)? {
                        Some(raw) => Some(self.lane_from(&raw)?),
                        None => None,
                    };
                    let mirror = carrier.get_key(&names.mirror_header).is_some_and(is_true)
                        || baggage_value(baggage, names.baggage_mirror_key)?
                            .is_some_and(|v| is_true(&v));
                    (lane, mirror)
                }
                None => (
                    None,
                    carrier.get_key(&names.mirror_header).is_some_and(is_true),
                ),
            },
        };
        Ok(match (lane, mirror) {
            (None, false) => None,
            (lane, mirror) => Some(
                LaneContext::new(lane.unwrap_or(Lane::BASE))
                    .with_mirror(mirror)
                    .with_origin(Origin::Wire),
            ),
        })
    }

    /// The configured lane named by a raw wire value.
    fn lane_from(&self, raw: &[u8]) -> Result<Lane, Rejection> {
        let raw = raw.trim_ascii();
        if raw.len() > Lane::MAX_LEN {
            return Err(Rejection::Oversized);
        }
        match self.inner.lanes.get(raw) {
            Some(lane) => Ok(lane),
            None if crate::lane::validate(raw).is_ok() => Err(Rejection::Unknown),
            None => Err(Rejection::Malformed),
        }
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
            let existing = carrier.get_key(&names.header).map(<[u8]>::trim_ascii);
            if let Some(existing) = existing.and_then(|v| self.inner.lanes.get(v)) {
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
        let existing = carrier
            .get_key(&names.baggage)
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
    /// mirror baggage members, keeping the other members). Returns whether anything was removed.
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
        if let Some(baggage) = carrier.get(BAGGAGE_HEADER) {
            let keys = [names.baggage_key, names.baggage_mirror_key];
            match std::str::from_utf8(baggage) {
                Ok(text) => {
                    let kept = without_members(text, &keys);
                    if kept.len() != text.len() {
                        stripped = true;
                        if kept.is_empty() {
                            carrier.remove(BAGGAGE_HEADER);
                        } else {
                            carrier.set(BAGGAGE_HEADER, Cow::Owned(kept));
                        }
                    }
                }
                // Not UTF-8: nobody can parse it, and it could hide a lane. Drop it whole.
                Err(_) => {
                    carrier.remove(BAGGAGE_HEADER);
                    stripped = true;
                }
            }
        }
        stripped
    }
}

fn is_true(raw: &[u8]) -> bool {
    matches!(raw.trim_ascii(), b"1" | b"true")
}

/// The value of member `key` in a W3C baggage header, percent-decoded.
///
/// `Ok(None)` when the member is absent; `Err` when the header is too large to be read.
/// Members that do not parse are skipped, as the W3C spec asks.
fn baggage_value<'a>(header: &'a [u8], key: &str) -> Result<Option<Cow<'a, [u8]>>, Rejection> {
    if header.len() > MAX_BAGGAGE_LEN {
        return Err(Rejection::Oversized);
    }
    let mut found = None;
    for (n, member) in header.split(|b| *b == b',').enumerate() {
        if n >= MAX_BAGGAGE_MEMBERS {
            return Err(Rejection::Oversized);
        }
        if found.is_some() {
            continue; // keep counting members, so an oversized list is refused whole
        }
        let kv = member.split(|b| *b == b';').next().unwrap_or_default();
        let Some(eq) = kv.iter().position(|b| *b == b'=') else {
            continue;
        };
        if kv[..eq].trim_ascii() == key.as_bytes() {
            found = Some(percent_decode(kv[eq + 1..].trim_ascii(), false));
        }
    }
    Ok(found)
}

/// `%XX` escapes decoded (and `+` as a space when `plus_is_space`, for query strings).
/// Invalid escapes are kept as they are.
pub(crate) fn percent_decode(raw: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    if !raw
        .iter()
        .any(|b| *b == b'%' || (plus_is_space && *b == b'+'))
    {
        return Cow::Borrowed(raw);
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' if i + 2 < raw.len() => match (hex(raw[i + 1]), hex(raw[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// `header` without the members named in `keys`.
fn without_members(header: &str, keys: &[&str]) -> String {
    header
        .split(',')
        .filter(|member| {
            let kv = member.split(';').next().unwrap_or_default();
            let key = kv.split('=').next().unwrap_or_default().trim();
            !keys.contains(&key)
        })
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    #[test]
    fn wire_config_validation() {
        let bad = WireConfig {
            header: "X-Lane".into(),
            ..WireConfig::default()
        };
        assert!(bad.validate().is_err());
        let same = WireConfig {
            mirror_header: DEFAULT_HEADER.into(),
            ..WireConfig::default()
        };
        assert!(same.validate().is_err());
    }

    #[test]
    fn try_with_wire_names_what_it_refuses() {
        let bad = |wire: WireConfig| Propagator::try_with_wire(LaneSet::base_only(), wire);
        let e = bad(WireConfig {
            baggage_key: "gray lane".into(),
            ..WireConfig::default()
        })
        .unwrap_err();
        assert_eq!(
            e,
            WireError::BaggageKey {
                field: "baggage_key",
                key: "gray lane".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "baggage_key \"gray lane\" must be a baggage key of letters, digits, '-', '.', '_'"
        );
        let same = WireConfig {
            baggage_mirror_key: DEFAULT_BAGGAGE_KEY.into(),
            ..WireConfig::default()
        };
        assert_eq!(bad(same).unwrap_err(), WireError::SameNames);
        assert!(bad(WireConfig::default()).is_ok());
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
