//! [`LiveSpec`]: a lane spec a running process follows — from a file it watches, or from
//! code — swapped whole and atomically, one numbered revision at a time.
//!
//! What applies live: the coloring rules (their percentages and sticky keys too), the token
//! settings (key, previous keys, header, maximum lifetime), the mesh and routing sections (read
//! through [`Revision::spec`] by whoever needs them, and by the manifests), and **removing a
//! lane**: from the new revision on, the lane is no lane on the wire (counted as unknown) for
//! every clone of the [`propagator`](LiveSpec::propagator); requests admitted before finish on
//! it. What needs a restart, and is refused with a message saying so: adding a lane (but one the process started with) or a
//! service, and changing the wire names, a service's deployment (version, port, protocol), a
//! kept lane's services, version, data overrides or mirror flag, or the data templates
//! ([`ReloadError::NeedsRestart`]). A spec that does not load or validate keeps the old one
//! ([`ReloadError::Invalid`], with the file, line and field).
//!
//! A request sees one revision from its start to its end: the edge of the revision current
//! when it arrived decides its lane ([`Revision::edge`]), and its context carries that
//! revision's number ([`LaneContext::revision`](crate::LaneContext::revision)).
//!
//! ```
//! use graylane_core::coloring::SimpleRequest;
//! use graylane_core::live::LiveSpec;
//! use graylane_core::spec::LaneSpec;
//!
//! let rules = |lane: &str| format!(
//!     "lanes: [{{name: gray}}, {{name: blue}}]\n\
//!      coloring: {{rules: [{{lane: {lane}, match: {{header: {{name: x-user-group, exact: beta}}}}}}]}}"
//! );
//! let live = LiveSpec::new(LaneSpec::from_yaml_str(&rules("gray"))?)?;
//! let beta = || SimpleRequest::new("/").header("x-user-group", "beta");
//! let first = live.current().edge().admit(&mut beta()).context();
//! assert_eq!((first.lane(), first.revision()), ("gray".parse()?, 1));
//!
//! live.apply(LaneSpec::from_yaml_str(&rules("blue"))?)?;
//! let second = live.current().edge().admit(&mut beta()).context();
//! assert_eq!((second.lane(), second.revision()), ("blue".parse()?, 2));
//!
//! // Adding a lane needs a restart: refused, the spec in force stays.
//! let more = "lanes: [{name: gray}, {name: blue}, {name: green}]";
//! let refused = live.apply(LaneSpec::from_yaml_str(more)?).unwrap_err();
//! assert!(refused.to_string().contains("restart"), "{refused}");
//! assert_eq!(live.current().number(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod compat;
mod watch;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use crate::coloring::Rules;
use crate::edge::Edge;
use crate::spec::{LaneSpec, SpecError};
use crate::wire::Propagator;

pub use watch::Watcher;

/// A lane spec that changes while the process runs. Cheap to clone (one `Arc`): clones share
/// the revisions, the propagator and the counters.
#[derive(Clone)]
pub struct LiveSpec {
    inner: Arc<Inner>,
}

struct Inner {
    current: ArcSwap<Revision>,
    /// Revision 1: what the process was built from (its lanes' names, its structure).
    first: Arc<Revision>,
    /// Shared by every revision: its counters are the process's, its lanes the current
    /// revision's.
    propagator: Propagator,
    /// Held while a revision is built and put in force: one at a time, numbered in order.
    applying: Mutex<()>,
    applied: AtomicU64,
    invalid: AtomicU64,
    refused: AtomicU64,
}

/// One version of the spec, with the edge built from it.
pub struct Revision {
    number: u64,
    spec: LaneSpec,
    edge: Edge,
}

impl Revision {
    /// Its number: 1 for the spec the process started with, then one more per change applied.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The spec document of this revision.
    pub fn spec(&self) -> &LaneSpec {
        &self.spec
    }

    /// The edge of this revision: its coloring rules and tokens, on the shared propagator, and
    /// the contexts it admits carry this revision's number.
    pub fn edge(&self) -> &Edge {
        &self.edge
    }
}

impl fmt::Debug for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revision")
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for LiveSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveSpec")
            .field("revision", &self.current().number)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Why a new spec was not put in force. The spec in force stays.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReloadError {
    /// It does not load, validate or build (its file, line and field are in the error).
    Invalid(SpecError),
    /// It changes what this process cannot change while it runs.
    NeedsRestart(String),
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadError::Invalid(e) => {
                write!(f, "the new lane spec is invalid, kept the old one: {e}")
            }
            ReloadError::NeedsRestart(what) => write!(
                f,
                "the new lane spec {what}: that needs a restart, kept the old one"
            ),
        }
    }
}

impl std::error::Error for ReloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReloadError::Invalid(e) => Some(e),
            ReloadError::NeedsRestart(_) => None,
        }
    }
}

/// What a [`LiveSpec`] has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadStats {
    /// The revision in force.
    pub revision: u64,
    /// Changes put in force (the first spec not counted).
    pub applied: u64,
    /// New specs that did not load, validate or build.
    pub invalid: u64,
    /// New specs refused because they need a restart.
    pub refused: u64,
}

impl LiveSpec {
    /// Revision 1: `spec`, validated and built.
    pub fn new(spec: LaneSpec) -> Result<LiveSpec, SpecError> {
        spec.validate()?;
        let propagator = Propagator::try_with_wire(spec.lane_set(), spec.wire.clone())
            .map_err(|e| SpecError::at("wire".into(), e.to_string()))?;
        let first = Arc::new(build(&propagator, spec, 1)?);
        propagator.set_lanes(1, &first.spec.lane_set());
        Ok(LiveSpec {
            inner: Arc::new(Inner {
                current: ArcSwap::new(first.clone()),
                first,
                propagator,
                applying: Mutex::new(()),
                applied: AtomicU64::new(0),
                invalid: AtomicU64::new(0),
                refused: AtomicU64::new(0),
            }),
        })
    }

    /// The revision in force. Hold on to it for the whole of one request.
    pub fn current(&self) -> Arc<Revision> {
        self.inner.current.load_full()
    }

    /// The propagator every part of the process shares: its lanes are the current revision's,
    /// and the contexts it extracts carry that revision's number.
    pub fn propagator(&self) -> &Propagator {
        &self.inner.propagator
    }

    /// Puts `spec` in force as the next revision, and returns its number; the same spec as the
    /// current one is no change (its number is returned). Refused, with the spec in force
    /// kept, when it is invalid or needs a restart.
    pub fn apply(&self, spec: LaneSpec) -> Result<u64, ReloadError> {
        let _applying = self
            .inner
            .applying
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.inner.current.load();
        if current.spec == spec {
            return Ok(current.number);
        }
        if let Err(e) = spec.validate() {
            self.inner.invalid.fetch_add(1, Ordering::Relaxed);
            return Err(ReloadError::Invalid(e));
        }
        if let Err(what) = compat::live_change(&self.inner.first.spec, &current.spec, &spec) {
            self.inner.refused.fetch_add(1, Ordering::Relaxed);
            return Err(ReloadError::NeedsRestart(what));
        }
        let number = current.number + 1;
        let next = match build(&self.inner.propagator, spec, number) {
            Ok(next) => next,
            Err(e) => {
                self.inner.invalid.fetch_add(1, Ordering::Relaxed);
                return Err(ReloadError::Invalid(e));
            }
        };
        // Lanes first: once the new revision is visible, so is the lane set it implies.
        self.inner
            .propagator
            .set_lanes(number, &next.spec.lane_set());
        self.inner.current.store(Arc::new(next));
        self.inner.applied.fetch_add(1, Ordering::Relaxed);
        Ok(number)
    }

    /// Counts a new spec that could not even be read or parsed (the watcher's files).
    fn count_invalid(&self) {
        self.inner.invalid.fetch_add(1, Ordering::Relaxed);
    }

    /// The revision in force and what happened to the changes so far.
    pub fn stats(&self) -> ReloadStats {
        ReloadStats {
            revision: self.inner.current.load().number,
            applied: self.inner.applied.load(Ordering::Relaxed),
            invalid: self.inner.invalid.load(Ordering::Relaxed),
            refused: self.inner.refused.load(Ordering::Relaxed),
        }
    }
}

/// The revision `number` of `spec`: its edge on the shared propagator.
fn build(propagator: &Propagator, spec: LaneSpec, number: u64) -> Result<Revision, SpecError> {
    let rules = Rules::new(spec.rule_set()?);
    let edge = spec.edge_on(propagator.clone(), rules)?.at_revision(number);
    Ok(Revision { number, spec, edge })
}

#[cfg(all(test, feature = "yaml"))]
mod tests;
