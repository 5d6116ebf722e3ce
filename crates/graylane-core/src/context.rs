//! [`LaneContext`]: the lane of the work in progress, and how it is made current.
//!
//! The current context lives in a thread-local stack. [`LaneContext::attach`] pushes one and
//! returns a guard that removes it again; guards may be dropped in any order. Work that moves
//! between threads (futures, spawned tasks, blocking closures) carries its context with the
//! wrappers in [`crate::task`].
//!
//! ```
//! use graylane_core::{Lane, LaneContext};
//!
//! let gray = LaneContext::new(Lane::new("gray")?);
//! assert!(LaneContext::current().lane().is_base()); // nothing attached: base
//! {
//!     let _guard = gray.attach();
//!     assert_eq!(LaneContext::current().lane(), "gray");
//! }
//! assert!(LaneContext::current().lane().is_base());
//! # Ok::<(), graylane_core::LaneError>(())
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;

use crate::lane::Lane;

/// The lane of the work in progress.
///
/// - [`lane`](Self::lane) is the lane the request belongs to. It decides where data goes and it
///   travels to the next hop, even when this hop fell back to base.
/// - [`served`](Self::served) is the lane whose version of *this* service handles the work;
///   it differs from `lane` after a fallback (see [`is_fallback`](Self::is_fallback)).
/// - [`is_mirror`](Self::is_mirror) marks a mirrored copy of live traffic, whose side effects
///   must land in shadow data and whose response nobody reads.
///
/// `LaneContext` is `Copy` and small; pass it by value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LaneContext {
    lane: Lane,
    served: Lane,
    mirror: bool,
    origin: Origin,
    revision: u64,
}

/// Where a context's lane came from. Useful in logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Origin {
    /// Nothing chose a lane: base by default.
    #[default]
    Default,
    /// Read from the wire (a header, baggage, a Kafka record header).
    Wire,
    /// Chosen by an ingress coloring rule.
    Colored,
    /// Forced by a valid signed lane token.
    Token,
    /// Set by application code.
    Explicit,
}

impl LaneContext {
    /// A context on `lane`, served by `lane`, not a mirror, [`Origin::Explicit`].
    pub const fn new(lane: Lane) -> LaneContext {
        LaneContext {
            lane,
            served: lane,
            mirror: false,
            origin: Origin::Explicit,
            revision: 0,
        }
    }

    /// The base context, as used when nothing is attached.
    pub const fn base() -> LaneContext {
        LaneContext {
            lane: Lane::BASE,
            served: Lane::BASE,
            mirror: false,
            origin: Origin::Default,
            revision: 0,
        }
    }

    /// The lane the work belongs to (where its data goes; what the next hop receives).
    #[inline]
    pub const fn lane(&self) -> Lane {
        self.lane
    }

    /// The lane whose version of this service serves the work.
    pub const fn served(&self) -> Lane {
        self.served
    }

    /// Whether this hop is served by another lane than the request's (a fallback to base).
    pub fn is_fallback(&self) -> bool {
        self.lane != self.served
    }

    /// Whether the work is a mirrored copy.
    pub const fn is_mirror(&self) -> bool {
        self.mirror
    }

    /// Where the lane came from.
    pub const fn origin(&self) -> Origin {
        self.origin
    }

    /// The revision of this process's lane spec the lane was decided under: the
    /// [`LiveSpec`](crate::live::LiveSpec) revision whose edge admitted the request, or whose
    /// lanes it was read from the wire with; 0 when the spec is not live.
    pub const fn revision(&self) -> u64 {
        self.revision
    }

    /// The same context, served by `served` (record a fallback).
    ///
    /// ```
    /// # use graylane_core::{Lane, LaneContext};
    /// let ctx = LaneContext::new(Lane::new("gray")?).with_served(Lane::BASE);
    /// assert!(ctx.is_fallback());
    /// assert_eq!(ctx.lane(), "gray"); // the next hop still gets gray
    /// # Ok::<(), graylane_core::LaneError>(())
    /// ```
    #[must_use]
    pub const fn with_served(mut self, served: Lane) -> LaneContext {
        self.served = served;
        self
    }

    /// The same context, marked (or unmarked) as a mirror copy.
    #[must_use]
    pub const fn with_mirror(mut self, mirror: bool) -> LaneContext {
        self.mirror = mirror;
        self
    }

    /// The same context with another origin.
    #[must_use]
    pub const fn with_origin(mut self, origin: Origin) -> LaneContext {
        self.origin = origin;
        self
    }

    /// The same context, decided under spec revision `revision`.
    #[must_use]
    pub const fn with_revision(mut self, revision: u64) -> LaneContext {
        self.revision = revision;
        self
    }

    /// The context attached to this thread, or [`LaneContext::base`] when none is.
    #[inline]
    pub fn current() -> LaneContext {
        Self::try_current().unwrap_or_else(LaneContext::base)
    }

    /// The context attached to this thread, if any.
    #[inline]
    pub fn try_current() -> Option<LaneContext> {
        CURRENT.get()
    }

    /// Makes this context current on this thread until the guard drops.
    ///
    /// Guards may be dropped in any order: dropping one removes exactly its own context, and the
    /// current context is always the most recently attached one still alive.
    #[inline]
    pub fn attach(self) -> LaneGuard {
        let index = STACK.with(|stack| {
            let mut stack = stack.borrow_mut();
            stack.entries.push(Some(self));
            stack.entries.len() - 1
        });
        CURRENT.set(Some(self));
        LaneGuard {
            index,
            _not_send: PhantomData,
        }
    }

    /// Runs `f` with this context current.
    ///
    /// ```
    /// # use graylane_core::{Lane, LaneContext};
    /// let lane = LaneContext::new(Lane::new("gray")?).scope(|| LaneContext::current().lane());
    /// assert_eq!(lane, "gray");
    /// # Ok::<(), graylane_core::LaneError>(())
    /// ```
    pub fn scope<R>(self, f: impl FnOnce() -> R) -> R {
        let _guard = self.attach();
        f()
    }
}

impl Default for LaneContext {
    fn default() -> Self {
        LaneContext::base()
    }
}

impl fmt::Debug for LaneContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneContext")
            .field("lane", &self.lane.as_str())
            .field("served", &self.served.as_str())
            .field("mirror", &self.mirror)
            .field("origin", &self.origin)
            .field("revision", &self.revision)
            .finish()
    }
}

/// The lane the current work belongs to: `LaneContext::current().lane()`.
#[inline]
pub fn current_lane() -> Lane {
    LaneContext::current().lane()
}

#[derive(Default)]
struct Stack {
    // `None` marks a context whose guard was dropped out of order. The last entry is always
    // `Some`: trailing `None`s are popped eagerly.
    entries: Vec<Option<LaneContext>>,
}

thread_local! {
    static STACK: RefCell<Stack> = const { RefCell::new(Stack { entries: Vec::new() }) };
    // The top of `STACK`, kept beside it: reading the current context is what every layer and
    // wrapper does on every call, and a `Copy` value without a destructor is a plain
    // thread-local load.
    static CURRENT: Cell<Option<LaneContext>> = const { Cell::new(None) };
}

/// Keeps a [`LaneContext`] current until dropped. Returned by [`LaneContext::attach`].
///
/// The guard is `!Send`: the context is attached to one thread, and must be detached there.
#[must_use = "the context is detached as soon as the guard is dropped"]
pub struct LaneGuard {
    index: usize,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for LaneGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneGuard")
            .field("index", &self.index)
            .finish()
    }
}

impl Drop for LaneGuard {
    #[inline]
    fn drop(&mut self) {
        let alive = STACK.try_with(|stack| {
            let mut stack = stack.borrow_mut();
            let entries = &mut stack.entries;
            if self.index + 1 == entries.len() {
                entries.pop();
                while matches!(entries.last(), Some(None)) {
                    entries.pop();
                }
                CURRENT.set(entries.last().copied().flatten());
            } else if let Some(slot) = entries.get_mut(self.index) {
                *slot = None;
            }
        });
        if alive.is_err() {
            // Thread teardown has taken the stack: no context is left to restore.
            CURRENT.set(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(s: &str) -> Lane {
        Lane::new(s).unwrap()
    }

    #[test]
    fn nested_scopes_restore() {
        let a = LaneContext::new(lane("a"));
        let b = LaneContext::new(lane("b"));
        assert_eq!(LaneContext::try_current(), None);
        let ga = a.attach();
        {
            let _gb = b.attach();
            assert_eq!(current_lane(), "b");
        }
        assert_eq!(current_lane(), "a");
        drop(ga);
        assert_eq!(LaneContext::try_current(), None);
    }

    #[test]
    fn out_of_order_drops_keep_the_newest_alive_context() {
        let ga = LaneContext::new(lane("a")).attach();
        let gb = LaneContext::new(lane("b")).attach();
        let gc = LaneContext::new(lane("c")).attach();
        drop(gb);
        assert_eq!(current_lane(), "c");
        drop(gc);
        // b was dropped already: a is what is left.
        assert_eq!(current_lane(), "a");
        let gd = LaneContext::new(lane("d")).attach();
        drop(ga);
        assert_eq!(current_lane(), "d");
        drop(gd);
        assert_eq!(LaneContext::try_current(), None);
        STACK.with(|s| assert!(s.borrow().entries.is_empty()));
    }

    #[test]
    fn oldest_dropped_first_then_rest() {
        let ga = LaneContext::new(lane("a")).attach();
        let gb = LaneContext::new(lane("b")).attach();
        drop(ga);
        assert_eq!(current_lane(), "b");
        drop(gb);
        assert_eq!(LaneContext::try_current(), None);
        STACK.with(|s| assert!(s.borrow().entries.is_empty()));
    }

    #[test]
    fn contexts_are_per_thread() {
        let _g = LaneContext::new(lane("a")).attach();
        let other = std::thread::spawn(LaneContext::try_current).join().unwrap();
        assert_eq!(other, None);
    }

    #[test]
    fn fallback_and_mirror_flags() {
        let ctx = LaneContext::new(lane("gray"))
            .with_served(Lane::BASE)
            .with_mirror(true)
            .with_origin(Origin::Wire);
        assert!(ctx.is_fallback() && ctx.is_mirror());
        assert_eq!((ctx.lane(), ctx.served()), (lane("gray"), Lane::BASE));
        assert_eq!(ctx.origin(), Origin::Wire);
        assert!(!LaneContext::base().is_fallback());
    }
}
