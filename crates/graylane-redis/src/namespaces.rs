//! Where each lane's keys live: the key prefix of every non-base lane, the key patterns whose
//! lane reads may fall back to base (read-through), and the scripts a lane may run.

use graylane_core::Lane;
use graylane_core::spec::LaneSpec;

use crate::glob::glob_match;

/// Each lane's key prefix.
#[derive(Clone, Debug, Default)]
pub struct Namespaces {
    prefixes: Vec<(Lane, Vec<u8>)>,
    read_through: Vec<String>,
    /// SHA-1 digests, lower-case hex.
    scripts: Vec<String>,
    functions: Vec<String>,
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
            scripts: Vec::new(),
            functions: Vec::new(),
        }
        .allow_scripts(&spec.data.redis_scripts)
        .allow_functions(&spec.data.redis_functions)
    }

    /// Lets lane code run these Lua scripts (`EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO`), by
    /// the SHA-1 of their text in hex (any case), besides those the spec lists in
    /// `data.redis_scripts`. Every other script is refused in a lane: a script can build key
    /// names, reach `redis.call` under another name, or ignore the keys it declares, so its
    /// text says nothing certain about what it touches. Listing one vouches that it touches only
    /// the keys it is passed; those are moved into the lane like any other key.
    #[must_use]
    pub fn allow_scripts(mut self, sha1: impl IntoIterator<Item = impl AsRef<str>>) -> Namespaces {
        self.scripts
            .extend(sha1.into_iter().map(|s| s.as_ref().to_ascii_lowercase()));
        self
    }

    /// Lets lane code call these Redis functions (`FCALL`, `FCALL_RO`) by name (as Redis
    /// spells it), besides the spec's `data.redis_functions`; the same promise as
    /// [`allow_scripts`](Self::allow_scripts). Loading functions (`FUNCTION LOAD`) stays an
    /// operator task: a name vouches for the library an operator loaded under it.
    #[must_use]
    pub fn allow_functions(
        mut self,
        names: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Namespaces {
        self.functions
            .extend(names.into_iter().map(|s| s.as_ref().to_owned()));
        self
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

impl Namespaces {
    /// Whether `command` (canonical: `EVAL`, `EVALSHA`, `FCALL`, or their `_RO` forms) may run
    /// `target` (its script text, SHA-1 or function name) in a lane.
    pub(crate) fn allows_script(&self, command: &str, target: &[u8]) -> bool {
        match command {
            "EVAL" | "EVAL_RO" => {
                let sha = sha1_hex(target);
                self.scripts.contains(&sha)
            }
            "EVALSHA" | "EVALSHA_RO" => self
                .scripts
                .iter()
                .any(|s| s.as_bytes().eq_ignore_ascii_case(target)),
            "FCALL" | "FCALL_RO" => self.functions.iter().any(|f| f.as_bytes() == target),
            _ => false,
        }
    }
}

/// The SHA-1 of `text` in lower-case hex: the name Redis gives a script.
fn sha1_hex(text: &[u8]) -> String {
    use sha1::Digest;
    use std::fmt::Write;
    sha1::Sha1::digest(text)
        .iter()
        .fold(String::with_capacity(40), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The commands that may read through to base (see [`Namespaces::read_through`]).
fn is_read_through_command(name: &str) -> bool {
    matches!(name, "GET" | "HGET" | "HGETALL")
}
