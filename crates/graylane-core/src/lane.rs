//! [`Lane`]: a validated lane name, and [`LaneSet`]: the lanes a deployment configures.
//!
//! A lane name ends up in many places that each have their own rules: a Kafka consumer group
//! suffix, a Redis key prefix, a PostgreSQL schema name, a Kubernetes label value, an HTTP header.
//! The grammar below is the intersection that is safe in all of them:
//!
//! - 1 to [`Lane::MAX_LEN`] bytes;
//! - lowercase ASCII letters, digits and `-`;
//! - starts with a letter, does not end with `-`.
//!
//! ```
//! use graylane_core::Lane;
//!
//! let gray = Lane::new("gray")?;
//! assert_eq!(gray.as_str(), "gray");
//! assert!(!gray.is_base());
//! assert!(Lane::BASE.is_base());
//!
//! // Anything outside the grammar is refused with the reason.
//! assert!(Lane::new("Gray").is_err());
//! assert!(Lane::new("gray;DROP TABLE").is_err());
//! assert!(Lane::new("gr*y").is_err());
//! # Ok::<(), graylane_core::LaneError>(())
//! ```

use std::collections::HashSet;
use std::fmt;
use std::sync::{Mutex, OnceLock};

/// A validated lane name.
///
/// `Lane` is `Copy` and 16 bytes: names are interned once per process (there are only as many
/// as the configuration names), so passing a lane around never allocates. Lanes read from the
/// wire are never interned: they are looked up in a [`LaneSet`], so hostile input cannot grow
/// memory.
#[derive(Clone, Copy, Eq, PartialOrd, Ord)]
pub struct Lane(&'static str);

impl std::hash::Hash for Lane {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for Lane {
    #[inline]
    fn eq(&self, other: &Lane) -> bool {
        // Interned names of one lane are one pointer, compared first; a `from_static` copy of a
        // name still compares equal by its bytes.
        std::ptr::eq(self.0, other.0) || self.0 == other.0
    }
}

/// Why a string is not a lane name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaneError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`Lane::MAX_LEN`] bytes.
    TooLong(usize),
    /// The name holds a byte outside `a-z`, `0-9`, `-` (the position is given).
    InvalidChar(usize),
    /// The name does not start with a letter.
    LeadingNonLetter,
    /// The name ends with `-`.
    TrailingHyphen,
}

impl fmt::Display for LaneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaneError::Empty => f.write_str("lane name is empty"),
            LaneError::TooLong(n) => write!(
                f,
                "lane name is {n} bytes long, the limit is {}",
                Lane::MAX_LEN
            ),
            LaneError::InvalidChar(i) => write!(
                f,
                "lane name has a character outside a-z, 0-9 and '-' at byte {i}"
            ),
            LaneError::LeadingNonLetter => f.write_str("lane name must start with a letter a-z"),
            LaneError::TrailingHyphen => f.write_str("lane name must not end with '-'"),
        }
    }
}

impl std::error::Error for LaneError {}

impl Lane {
    /// The production lane, and the default for anything that carries no (valid) lane.
    pub const BASE: Lane = Lane("base");

    /// The longest lane name, in bytes. Short enough that `lane_<name>` stays well inside
    /// PostgreSQL's 63-byte identifiers and Kubernetes' 63-byte label values.
    pub const MAX_LEN: usize = 32;

    /// Validates and interns a lane name.
    ///
    /// Use this for names that come from configuration. For names that come from the wire use
    /// [`LaneSet::get`], which accepts only configured lanes and never allocates.
    pub fn new(name: &str) -> Result<Lane, LaneError> {
        validate(name.as_bytes())?;
        if name == Lane::BASE.0 {
            return Ok(Lane::BASE);
        }
        Ok(Lane(intern(name)))
    }

    /// A lane from a string literal, checked at compile time when used in a `const`.
    ///
    /// ```
    /// use graylane_core::Lane;
    /// const GRAY: Lane = Lane::from_static("gray");
    /// assert_eq!(GRAY, Lane::new("gray").unwrap());
    /// ```
    ///
    /// # Panics
    ///
    /// When `name` is not a valid lane name (a compile error in a `const` context).
    pub const fn from_static(name: &'static str) -> Lane {
        match validate(name.as_bytes()) {
            Ok(()) => Lane(name),
            Err(_) => panic!("invalid lane name"),
        }
    }

    /// The name.
    pub const fn as_str(&self) -> &'static str {
        self.0
    }

    /// Whether this is [`Lane::BASE`].
    #[inline]
    pub fn is_base(&self) -> bool {
        self.0 == Lane::BASE.0
    }
}

/// Checks the lane grammar; `const` so that [`Lane::from_static`] can run it at compile time.
pub(crate) const fn validate(name: &[u8]) -> Result<(), LaneError> {
    if name.is_empty() {
        return Err(LaneError::Empty);
    }
    if name.len() > Lane::MAX_LEN {
        return Err(LaneError::TooLong(name.len()));
    }
    if !name[0].is_ascii_lowercase() {
        // A leading digit or hyphen is a grammar error; a leading non-ASCII byte is a bad char.
        return if name[0].is_ascii_digit() || name[0] == b'-' {
            Err(LaneError::LeadingNonLetter)
        } else {
            Err(LaneError::InvalidChar(0))
        };
    }
    let mut i = 1;
    while i < name.len() {
        let b = name[i];
        if !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(LaneError::InvalidChar(i));
        }
        i += 1;
    }
    if name[name.len() - 1] == b'-' {
        return Err(LaneError::TrailingHyphen);
    }
    Ok(())
}

/// A `'static` copy of `name`, made once per distinct name for the life of the process.
/// Only for configuration values (lane names, wire names), never for wire input.
pub(crate) fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        // The set is only ever inserted into; a panic elsewhere cannot leave it inconsistent.
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(existing) = names.get(name) {
        return existing;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

impl fmt::Debug for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lane({})", self.0)
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Default for Lane {
    fn default() -> Self {
        Lane::BASE
    }
}

impl AsRef<str> for Lane {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl PartialEq<str> for Lane {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Lane {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::str::FromStr for Lane {
    type Err = LaneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lane::new(s)
    }
}

impl TryFrom<&str> for Lane {
    type Error = LaneError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Lane::new(s)
    }
}

impl serde::Serialize for Lane {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Lane {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Lane::new(&s).map_err(|e| serde::de::Error::custom(format_args!("{e}: {s:?}")))
    }
}

/// The lanes a deployment has configured, always including [`Lane::BASE`].
///
/// This is the gate between the wire and the rest of graylane: a value read from a header is a
/// lane only when [`LaneSet::get`] finds it here.
///
/// ```
/// use graylane_core::{Lane, LaneSet};
///
/// let lanes = LaneSet::new([Lane::new("gray")?]);
/// assert_eq!(lanes.get(b"gray"), Some(Lane::new("gray")?));
/// assert_eq!(lanes.get(b"base"), Some(Lane::BASE));
/// assert_eq!(lanes.get(b"blue"), None); // well-formed, but not configured
/// # Ok::<(), graylane_core::LaneError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneSet {
    // Sorted by name, base included, and searched by bisection: as quick as a scan for the
    // handful of lanes deployments configure, without hashing the input, and no slower than
    // `log n` for a spec with thousands.
    lanes: Vec<Lane>,
}

impl LaneSet {
    /// A set of the given lanes plus base. Duplicates are ignored.
    pub fn new(lanes: impl IntoIterator<Item = Lane>) -> LaneSet {
        let mut lanes: Vec<Lane> = lanes.into_iter().collect();
        lanes.push(Lane::BASE);
        lanes.sort_unstable();
        lanes.dedup();
        LaneSet { lanes }
    }

    /// The set holding only base.
    pub fn base_only() -> LaneSet {
        LaneSet::new([])
    }

    /// The configured lane whose name is exactly `name`, if any. Never allocates.
    pub fn get(&self, name: &[u8]) -> Option<Lane> {
        self.lanes
            .binary_search_by(|lane| lane.0.as_bytes().cmp(name))
            .ok()
            .map(|i| self.lanes[i])
    }

    /// Whether `lane` is configured.
    pub fn contains(&self, lane: Lane) -> bool {
        self.lanes.binary_search(&lane).is_ok()
    }

    /// The lanes, base included, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = Lane> + '_ {
        self.lanes.iter().copied()
    }

    /// The configured lanes other than base.
    pub fn non_base(&self) -> impl Iterator<Item = Lane> + '_ {
        self.iter().filter(|l| !l.is_base())
    }
}

impl Default for LaneSet {
    fn default() -> Self {
        LaneSet::base_only()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grammar() {
        for ok in [
            "a",
            "gray",
            "canary-2",
            "a1",
            "x-y-z",
            "abcdefghijklmnopqrstuvwxyz012345",
        ] {
            assert!(Lane::new(ok).is_ok(), "{ok}");
        }
        let cases: &[(&str, LaneError)] = &[
            ("", LaneError::Empty),
            ("abcdefghijklmnopqrstuvwxyz0123456", LaneError::TooLong(33)),
            ("Gray", LaneError::InvalidChar(0)),
            ("grAy", LaneError::InvalidChar(2)),
            ("1gray", LaneError::LeadingNonLetter),
            ("-gray", LaneError::LeadingNonLetter),
            ("gray-", LaneError::TrailingHyphen),
            ("gr_ay", LaneError::InvalidChar(2)),
            ("gray;drop", LaneError::InvalidChar(4)),
            ("gr*y", LaneError::InvalidChar(2)),
            ("g{tag}", LaneError::InvalidChar(1)),
            ("g ray", LaneError::InvalidChar(1)),
            ("gräy", LaneError::InvalidChar(2)),
            ("gray\r\n", LaneError::InvalidChar(4)),
        ];
        for (input, err) in cases {
            assert_eq!(Lane::new(input).as_ref(), Err(err), "{input:?}");
        }
    }

    #[test]
    fn interning_returns_the_same_storage() {
        let a = Lane::new("interned").unwrap();
        let b = Lane::new(&String::from("interned")).unwrap();
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        assert!(std::ptr::eq(
            Lane::new("base").unwrap().as_str(),
            Lane::BASE.as_str()
        ));
    }

    #[test]
    fn set_lookup_is_exact() {
        let gray = Lane::new("gray").unwrap();
        let set = LaneSet::new([gray, gray]);
        assert_eq!(set.iter().count(), 2);
        assert_eq!(set.get(b"gray"), Some(gray));
        assert_eq!(set.get(b"GRAY"), None);
        assert_eq!(set.get(b"gray "), None);
        assert_eq!(set.get(b"gra"), None);
        assert_eq!(set.non_base().collect::<Vec<_>>(), vec![gray]);
    }

    #[cfg(feature = "yaml")]
    #[test]
    fn serde_roundtrip_and_refusal() {
        let lane: Lane = serde_yaml_ng::from_str("gray").unwrap();
        assert_eq!(lane, "gray");
        let err = serde_yaml_ng::from_str::<Lane>("Gray").unwrap_err();
        assert!(err.to_string().contains("lane name"), "{err}");
    }

    proptest! {
        /// Everything `Lane::new` accepts is safe as a Postgres identifier part (after '-' -> '_'),
        /// a Redis prefix (no glob or hash-tag bytes), a Kafka group suffix and a k8s label value.
        #[test]
        fn accepted_names_are_safe_everywhere(s in "\\PC{0,40}") {
            if let Ok(lane) = Lane::new(&s) {
                let n = lane.as_str();
                prop_assert!(!n.is_empty() && n.len() <= Lane::MAX_LEN);
                prop_assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
                let unsafe_chars = ['*', '?', '[', ']', '{', '}', '\\', '\'', '"', ';', ' '];
                prop_assert!(!n.contains(unsafe_chars), "{:?}", n);
                prop_assert_eq!(Lane::new(n).unwrap(), lane);
            }
        }

        #[test]
        fn generated_valid_names_are_accepted(s in "[a-z]([a-z0-9-]{0,30}[a-z0-9])?") {
            prop_assert_eq!(Lane::new(&s).unwrap().as_str(), s.as_str());
        }
    }
}
