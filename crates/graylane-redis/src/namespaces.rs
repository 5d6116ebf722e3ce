//! Where each lane's keys live: the key prefix of every non-base lane, and the key patterns
//! whose lane reads may fall back to base (read-through).

use graylane_core::Lane;
use graylane_core::spec::LaneSpec;

use crate::glob::glob_match;

/// Each lane's key prefix.
#[derive(Clone, Debug, Default)]
pub struct Namespaces {
    prefixes: Vec<(Lane, Vec<u8>)>,
    read_through: Vec<String>,
}

impl Namespaces {
    /// The prefixes the spec names (`data.redis_prefix`).
    pub fn from_spec(spec: &LaneSpec) -> Namespaces {
        Namespaces {
            prefixes: spec
                .lane_set()
                .non_base()
                .map(|lane| (lane, spec.data_names(lane).redis_prefix.into_bytes()))
                .collect(),
            read_through: Vec::new(),
        }
    }

    /// Lets lane reads of keys matching these glob patterns (`*` and `?`) fall back to the base
    /// key when the lane key does not exist — for caches that should start warm. Only `GET`,
    /// `HGET` and `HGETALL` read through; writes always stay in the lane.
    #[must_use]
    pub fn read_through(
        mut self,
        patterns: impl IntoIterator<Item = impl Into<String>>,
    ) -> Namespaces {
        self.read_through = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// The prefix of `lane` (`None` for base and for lanes not in the spec).
    pub fn prefix(&self, lane: Lane) -> Option<&[u8]> {
        self.prefixes
            .iter()
            .find(|(l, _)| *l == lane)
            .map(|(_, p)| p.as_slice())
    }

    /// Whether `command` (canonical name) may read through for some key: read-through is
    /// configured and the command is one that reads through. Checked on every lane command, so
    /// it looks at no pattern.
    #[inline]
    pub(crate) fn may_read_through(&self, command: &str) -> bool {
        !self.read_through.is_empty() && is_read_through_command(command)
    }

    /// Whether a lane miss of `command` (canonical name) on `key` reads the base key instead.
    #[inline]
    pub(crate) fn reads_through(&self, command: &str, key: &[u8]) -> bool {
        self.may_read_through(command)
            && self
                .read_through
                .iter()
                .any(|p| glob_match(p.as_bytes(), key))
    }
}

/// The commands that may read through to base (see [`Namespaces::read_through`]).
fn is_read_through_command(name: &str) -> bool {
    matches!(name, "GET" | "HGET" | "HGETALL")
}
