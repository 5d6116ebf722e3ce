//! Counters for every lane value graylane refused, so that refusals show on a dashboard.
//!
//! Extraction never fails a request: a bad value becomes base. It is counted here instead, per
//! [`Propagator`](crate::Propagator) / [`Edge`](crate::Edge) instance, and the first occurrence
//! of each kind is logged (at `warn`, through `tracing`) so that a misconfigured client is
//! noticed without flooding the log. `graylane-otel` exports these counters as metrics.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What was wrong with a refused lane value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// Not a lane name (bad bytes, not UTF-8, CRLF, bad grammar).
    Malformed,
    /// Longer than the limit for its field.
    Oversized,
    /// A well-formed name that is not a configured lane.
    Unknown,
    /// A lane header from an untrusted client, stripped at the edge.
    Untrusted,
    /// A lane token whose signature does not verify.
    TokenForged,
    /// A lane token past its expiry (or too far in the future).
    TokenExpired,
    /// A lane token that does not parse.
    TokenMalformed,
}

impl Rejection {
    /// Every kind, in a stable order.
    pub const ALL: [Rejection; 7] = [
        Rejection::Malformed,
        Rejection::Oversized,
        Rejection::Unknown,
        Rejection::Untrusted,
        Rejection::TokenForged,
        Rejection::TokenExpired,
        Rejection::TokenMalformed,
    ];

    /// A short snake_case name, used as a metric attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::Oversized => "oversized",
            Rejection::Unknown => "unknown",
            Rejection::Untrusted => "untrusted",
            Rejection::TokenForged => "token_forged",
            Rejection::TokenExpired => "token_expired",
            Rejection::TokenMalformed => "token_malformed",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Thread-safe rejection counters. Cheap: one relaxed atomic add per refused value, nothing on
/// the accepted path.
#[derive(Default)]
pub struct Counters {
    counts: [AtomicU64; Rejection::ALL.len()],
    logged: [AtomicBool; Rejection::ALL.len()],
}

impl Counters {
    /// Counts one rejection, logging the first of each kind.
    pub fn record(&self, rejection: Rejection) {
        self.counts[rejection.index()].fetch_add(1, Ordering::Relaxed);
        if !self.logged[rejection.index()].swap(true, Ordering::Relaxed) {
            tracing::warn!(
                rejection = rejection.as_str(),
                "graylane refused a lane value and used base instead; further ones are only counted"
            );
        }
    }

    /// The count for one kind.
    pub fn get(&self, rejection: Rejection) -> u64 {
        self.counts[rejection.index()].load(Ordering::Relaxed)
    }

    /// All counts at once.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot(Rejection::ALL.map(|r| self.get(r)))
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.snapshot().fmt(f)
    }
}

/// A copy of [`Counters`] at one moment.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot([u64; Rejection::ALL.len()]);

impl Snapshot {
    /// The count for one kind.
    pub fn get(&self, rejection: Rejection) -> u64 {
        self.0[rejection.index()]
    }

    /// The sum over every kind.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `(kind, count)` pairs, every kind included.
    pub fn iter(&self) -> impl Iterator<Item = (Rejection, u64)> + '_ {
        Rejection::ALL.iter().map(|r| (*r, self.get(*r)))
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(r, n)| (r.as_str(), n)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_kind() {
        let c = Counters::default();
        c.record(Rejection::Unknown);
        c.record(Rejection::Unknown);
        c.record(Rejection::TokenForged);
        let s = c.snapshot();
        assert_eq!(s.get(Rejection::Unknown), 2);
        assert_eq!(s.get(Rejection::TokenForged), 1);
        assert_eq!(s.total(), 3);
        assert_eq!(format!("{s:?}").matches(':').count(), 7);
    }
}
