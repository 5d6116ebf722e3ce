//! Carrying the lane across `.await`, spawned tasks and blocking pools.
//!
//! A future polled on an executor thread does not see the context of the code that created it.
//! [`LaneFutureExt::with_lane`] and [`LaneFutureExt::in_current_lane`] wrap a future so that its
//! context is attached on every poll (and while it is dropped), the way `tracing::Instrument`
//! carries a span. The spawn helpers do the wrapping for you, so the easy way is the right way:
//!
//! ```
//! # #[cfg(feature = "tokio")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use graylane_core::{current_lane, task, Lane, LaneContext, LaneFutureExt};
//!
//! let gray = LaneContext::new(Lane::new("gray")?);
//! async {
//!     // `task::spawn` captures the current lane; `tokio::spawn` alone would not.
//!     let spawned = task::spawn(async { current_lane() }).await?;
//!     let blocking = task::spawn_blocking(current_lane).await?;
//!     assert_eq!((spawned.as_str(), blocking.as_str()), ("gray", "gray"));
//!     Ok(())
//! }
//! .with_lane(gray)
//! .await
//! # }
//! # #[cfg(not(feature = "tokio"))]
//! # fn main() {}
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::context::LaneContext;

pin_project! {
    /// A future that runs with a [`LaneContext`] attached. See [`LaneFutureExt`].
    #[derive(Debug, Clone)]
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct WithLane<F> {
        // `Option` so that the inner future can be dropped while the context is attached,
        // through the safe `Pin::set`.
        #[pin]
        inner: Option<F>,
        ctx: LaneContext,
    }

    impl<F> PinnedDrop for WithLane<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.inner.is_some() {
                let _guard = this.ctx.attach();
                this.inner.set(None);
            }
        }
    }
}

impl<F> WithLane<F> {
    /// The context the future runs in.
    pub fn context(&self) -> LaneContext {
        self.ctx
    }

    /// The wrapped future.
    ///
    /// # Panics
    ///
    /// Once the future has completed (it is dropped then, in the lane).
    pub fn get_ref(&self) -> &F {
        self.inner
            .as_ref()
            .expect("`WithLane` inspected after completion")
    }

    /// The wrapped future.
    ///
    /// # Panics
    ///
    /// Once the future has completed (it is dropped then, in the lane).
    pub fn get_mut(&mut self) -> &mut F {
        self.inner
            .as_mut()
            .expect("`WithLane` inspected after completion")
    }
}

impl<F: Future> Future for WithLane<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _guard = this.ctx.attach();
        let mut inner = this.inner;
        let out = inner
            .as_mut()
            .as_pin_mut()
            .expect("`WithLane` polled after completion")
            .poll(cx);
        if out.is_ready() {
            // Dropped now, while attached, so that dropping `WithLane` needs no second attach.
            inner.set(None);
        }
        out
    }
}

/// Runs futures in a lane.
pub trait LaneFutureExt: Sized {
    /// Runs this future with `ctx` attached on every poll.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), graylane_core::LaneError> {
    /// use graylane_core::{current_lane, Lane, LaneContext, LaneFutureExt};
    /// let ctx = LaneContext::new(Lane::new("gray")?);
    /// let seen = async { tokio::task::yield_now().await; current_lane() }.with_lane(ctx).await;
    /// assert_eq!(seen, "gray");
    /// # Ok(()) }
    /// ```
    fn with_lane(self, ctx: LaneContext) -> WithLane<Self> {
        WithLane {
            inner: Some(self),
            ctx,
        }
    }

    /// Runs this future in the context current *now* (at the call, not at the first poll).
    fn in_current_lane(self) -> WithLane<Self> {
        self.with_lane(LaneContext::current())
    }
}

impl<F: Future> LaneFutureExt for F {}

/// Wraps a closure so that it runs in the context current now, on whatever thread calls it.
///
/// For `std::thread::spawn`, `rayon`, or any pool that takes a closure:
///
/// ```
/// use graylane_core::{current_lane, task, Lane, LaneContext};
/// let lane = LaneContext::new(Lane::new("gray")?).scope(|| {
///     std::thread::spawn(task::bind(current_lane)).join().unwrap()
/// });
/// assert_eq!(lane, "gray");
/// # Ok::<(), graylane_core::LaneError>(())
/// ```
pub fn bind<R>(f: impl FnOnce() -> R) -> impl FnOnce() -> R {
    let ctx = LaneContext::current();
    move || ctx.scope(f)
}

/// `tokio::spawn` that keeps the current lane.
///
/// Capture happens at the call: the task runs in the lane of the code that spawned it.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.in_current_lane())
}

/// `tokio::task::spawn_blocking` that keeps the current lane.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(bind(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Lane, current_lane};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn ctx(s: &str) -> LaneContext {
        LaneContext::new(Lane::new(s).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn survives_awaits_and_thread_hops() {
        let seen = async {
            let mut seen = Vec::new();
            for _ in 0..50 {
                tokio::task::yield_now().await;
                seen.push(current_lane());
            }
            seen
        }
        .with_lane(ctx("gray"))
        .await;
        assert!(seen.iter().all(|l| *l == "gray"));
        assert_eq!(LaneContext::try_current(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokio_spawn_without_wrapper_loses_the_lane() {
        // The pitfall the wrappers exist for, pinned down so nobody "simplifies" them away.
        let plain = async { tokio::spawn(async { current_lane() }).await.unwrap() }
            .with_lane(ctx("gray"))
            .await;
        assert!(plain.is_base());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nested_lanes_in_futures() {
        let (outer, inner, after) = async {
            let inner = async { current_lane() }.with_lane(ctx("b")).await;
            (current_lane(), inner, current_lane())
        }
        .with_lane(ctx("a"))
        .await;
        assert_eq!(
            (outer, inner, after),
            (ctx("a").lane(), ctx("b").lane(), ctx("a").lane())
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn interleaved_futures_on_one_thread_do_not_mix() {
        // Two tasks on the same thread alternate polls; each must only ever see its own lane.
        let mut handles = Vec::new();
        for name in ["a", "b", "c"] {
            let c = ctx(name);
            handles.push(tokio::spawn(
                async move {
                    for _ in 0..100 {
                        assert_eq!(current_lane(), c.lane());
                        tokio::task::yield_now().await;
                    }
                }
                .with_lane(c),
            ));
        }
        for h in handles {
            h.await.unwrap();
        }
    }

    struct SeesLaneOnDrop(Arc<AtomicBool>);
    impl Drop for SeesLaneOnDrop {
        fn drop(&mut self) {
            self.0.store(current_lane() == "gray", Ordering::SeqCst);
        }
    }

    #[test]
    fn drop_runs_in_the_lane() {
        let flag = Arc::new(AtomicBool::new(false));
        let guard = SeesLaneOnDrop(flag.clone());
        let fut = async move {
            let _g = guard;
            std::future::pending::<()>().await;
        }
        .with_lane(ctx("gray"));
        // Poll once so the async block owns the guard, then drop it unfinished.
        let mut fut = Box::pin(fut);
        let waker = std::task::Waker::noop();
        assert!(
            fut.as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_pending()
        );
        drop(fut);
        assert!(flag.load(Ordering::SeqCst));
        assert_eq!(LaneContext::try_current(), None);
    }

    #[cfg(feature = "tokio")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spawn_helpers_keep_the_lane() {
        let (spawned, blocking, nested) = async {
            let spawned = spawn(async { current_lane() }).await.unwrap();
            let blocking = spawn_blocking(current_lane).await.unwrap();
            let nested = spawn(async { spawn(async { current_lane() }).await.unwrap() })
                .await
                .unwrap();
            (spawned, blocking, nested)
        }
        .with_lane(ctx("gray"))
        .await;
        assert_eq!(
            [spawned, blocking, nested].map(|l| l.as_str()),
            ["gray", "gray", "gray"]
        );
    }

    #[test]
    fn bind_captures_at_call_time() {
        let f = ctx("a").scope(|| bind(current_lane));
        // Called outside any scope, the bound closure still runs in "a".
        assert_eq!(f(), "a");
        assert_eq!(LaneContext::try_current(), None);
    }
}
