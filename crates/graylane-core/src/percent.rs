//! [`Percent`]: a share of traffic, from 0 to 100 in steps of 0.01.
//!
//! Every share graylane draws (sticky and random coloring, mirroring) is counted in basis
//! points, so the spec, the coloring buckets and the mirror agree on what 12.34% means:
//! [`Percent::SCALE`] basis points make 100%, and a draw from `0..SCALE` falls under a
//! percentage when it is below its basis points ([`Percent::covers`]). A sticky bucket
//! ([`coloring::bucket`](crate::coloring::bucket)) is such a draw, fixed per key;
//! [`Percent::sample`] is a fresh random one.
//!
//! In a spec a percentage is a number (`percent: 12.5`); values outside 0..=100 are refused.
//!
//! ```
//! use graylane_core::Percent;
//!
//! let p = Percent::new(12.5).unwrap();
//! assert_eq!(p.basis_points(), 1_250);
//! assert!(p.covers(1_249) && !p.covers(1_250));
//! assert_eq!(p.to_string(), "12.5%");
//!
//! assert!(Percent::new(100.5).is_none());
//! assert_eq!(Percent::clamped(250.0), Percent::HUNDRED);
//! assert!(Percent::HUNDRED.sample() && !Percent::ZERO.sample());
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// A percentage from 0 to 100 with a resolution of 0.01, held in basis points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(u16);

impl Percent {
    /// Basis points in 100%: draws are taken from `0..SCALE`.
    pub const SCALE: u16 = 10_000;

    /// 0%: no draw falls under it.
    pub const ZERO: Percent = Percent(0);

    /// 100%: every draw falls under it.
    pub const HUNDRED: Percent = Percent(Percent::SCALE);

    /// `value` percent, rounded to 0.01, if within 0..=100.
    pub fn new(value: f64) -> Option<Percent> {
        (0.0..=100.0)
            .contains(&value)
            .then(|| Percent((value * 100.0).round() as u16))
    }

    /// `value` percent, rounded to 0.01, with values outside 0..=100 brought to the nearer end
    /// (and NaN to 0%): for settings that are clamped rather than refused.
    pub fn clamped(value: f64) -> Percent {
        // `as` saturates and maps NaN to 0.
        Percent((value.clamp(0.0, 100.0) * 100.0).round() as u16)
    }

    /// `basis_points` / 100 percent, if at most [`SCALE`](Self::SCALE).
    pub const fn from_basis_points(basis_points: u16) -> Option<Percent> {
        if basis_points <= Percent::SCALE {
            Some(Percent(basis_points))
        } else {
            None
        }
    }

    /// In basis points (`0..=SCALE`).
    pub const fn basis_points(self) -> u16 {
        self.0
    }

    /// As a percentage.
    pub fn value(self) -> f64 {
        f64::from(self.0) / 100.0
    }

    /// Whether `draw`, taken uniformly from `0..SCALE`, falls under this percentage: true for
    /// `basis_points()` of the `SCALE` possible draws.
    pub const fn covers(self, draw: u16) -> bool {
        draw < self.0
    }

    /// One random draw: true with this probability. 0% and 100% draw nothing.
    pub fn sample(self) -> bool {
        match self.0 {
            0 => false,
            Percent::SCALE => true,
            _ => self.covers(fastrand::u16(..Percent::SCALE)),
        }
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.value())
    }
}

impl Serialize for Percent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.value())
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        Percent::new(v).ok_or_else(|| {
            serde::de::Error::custom(format_args!("percentage {v} is outside 0..=100"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construction_and_bounds() {
        assert_eq!(Percent::new(0.005), Some(Percent(1)));
        assert_eq!(Percent::new(100.0), Some(Percent::HUNDRED));
        assert_eq!(Percent::new(-0.1), None);
        assert_eq!(Percent::new(f64::NAN), None);
        assert_eq!(Percent::clamped(-3.0), Percent::ZERO);
        assert_eq!(Percent::clamped(f64::NAN), Percent::ZERO);
        assert_eq!(Percent::clamped(33.333), Percent(3_333));
        assert_eq!(Percent::from_basis_points(10_000), Some(Percent::HUNDRED));
        assert_eq!(Percent::from_basis_points(10_001), None);
    }

    #[test]
    fn covers_exactly_its_share_of_draws() {
        for p in [Percent::ZERO, Percent(1), Percent(2_500), Percent::HUNDRED] {
            let covered = (0..Percent::SCALE).filter(|d| p.covers(*d)).count();
            assert_eq!(covered, usize::from(p.basis_points()), "{p}");
        }
    }

    #[test]
    fn sample_is_close_to_target() {
        let quarter = Percent::new(25.0).unwrap();
        let hits = (0..40_000).filter(|_| quarter.sample()).count();
        assert!((9_400..10_600).contains(&hits), "{hits}");
    }
}
