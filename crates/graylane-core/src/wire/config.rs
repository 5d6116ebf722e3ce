//! [`WireConfig`]: the names the lane travels under, and [`WireError`], why a set of names
//! cannot be used.
//!
//! Plain data, so a lane spec can carry it without knowing the propagator that reads it.

use std::fmt;

/// The default lane header.
pub const DEFAULT_HEADER: &str = "x-gray-lane";
/// The default W3C baggage key for the lane.
pub const DEFAULT_BAGGAGE_KEY: &str = "gray.lane";
/// The default header that marks a mirror copy.
pub const DEFAULT_MIRROR_HEADER: &str = "x-gray-mirror";
/// The default W3C baggage key that marks a mirror copy.
pub const DEFAULT_BAGGAGE_MIRROR_KEY: &str = "gray.mirror";

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
/// [`Propagator::try_with_wire`](super::Propagator::try_with_wire) refuse.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LaneSet, Propagator};

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
}
