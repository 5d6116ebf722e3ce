//! Traffic mirroring: a copy of a share of live requests goes to a mirror target, on a shadow
//! lane, so that its side effects land in shadow data and never in production.
//!
//! For each sampled request the layer buffers the body (bounded by a size cap), passes the
//! request on unchanged, and sends a copy — marked as a mirror (`x-gray-mirror: 1`) and put on
//! the shadow lane (any lane marks the client sent are replaced) — to the mirror service in a
//! background task. The copy's response is discarded; its failure, slowness or timeout never
//! reaches the primary response. Copies in flight are bounded: when the bound is reached a
//! request is simply not mirrored. Requests whose body size is unknown or above the cap are not
//! mirrored either (buffering them would hold the primary back). Everything is counted in
//! [`MirrorLayer::stats`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), graylane_http::BoxError> {
//! use bytes::Bytes;
//! use graylane_core::{Lane, LaneSet, Propagator};
//! use graylane_http::{MirrorConfig, MirrorLayer};
//! use http_body_util::Full;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! let shadow = Lane::new("shadow")?;
//! let (tx, mut copies) = tokio::sync::mpsc::unbounded_channel();
//! // The mirror target: here a closure; in production an HTTP client.
//! let mirror = service_fn(move |req: http::Request<Full<Bytes>>| {
//!     let tx = tx.clone();
//!     async move {
//!         tx.send((req.uri().to_string(), req.headers()["x-gray-lane"].clone())).ok();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(()))
//!     }
//! });
//! let config = MirrorConfig::new("http://orders-v2:8080".parse()?, shadow).percent(100.0);
//! let layer = MirrorLayer::new(mirror, Propagator::new(LaneSet::new([shadow])), config);
//! let primary = layer.layer(service_fn(|_req: http::Request<Full<Bytes>>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new("primary"))
//! }));
//!
//! let res = primary.oneshot(http::Request::post("/orders").body(Full::new(Bytes::from("{}")))?).await?;
//! assert_eq!(*res.body(), "primary");
//! let (uri, lane) = copies.recv().await.unwrap();
//! assert_eq!((uri.as_str(), lane.to_str()?), ("http://orders-v2:8080/orders", "shadow"));
//! # Ok(()) }
//! ```

pub mod future;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use graylane_core::{Lane, LaneContext, LaneFutureExt, Percent, Propagator};
use http::{Request, Response, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_layer::Layer;
use tower_service::Service;

use self::future::ResponseFuture;
use crate::BoxError;
use crate::router::Endpoint;

/// How much to mirror, where, and within which bounds.
#[derive(Clone, Debug)]
pub struct MirrorConfig {
    target: Uri,
    shadow: Lane,
    share: Percent,
    max_body_bytes: usize,
    max_in_flight: usize,
    timeout: Duration,
}

impl MirrorConfig {
    /// Mirror to `target` (scheme and authority; the request's path and query are kept) on the
    /// `shadow` lane. Defaults: 100%, 64 KiB bodies, 64 copies in flight, 5 s timeout.
    pub const fn new(target: Uri, shadow: Lane) -> MirrorConfig {
        MirrorConfig {
            target,
            shadow,
            share: Percent::HUNDRED,
            max_body_bytes: 64 * 1024,
            max_in_flight: 64,
            timeout: Duration::from_secs(5),
        }
    }

    /// The share of requests to mirror, 0 to 100 (clamped).
    #[must_use]
    pub fn percent(mut self, percent: f64) -> MirrorConfig {
        self.share = Percent::clamped(percent);
        self
    }

    /// Requests with larger (or unknown-size) bodies are not mirrored.
    #[must_use]
    pub const fn max_body_bytes(mut self, bytes: usize) -> MirrorConfig {
        self.max_body_bytes = bytes;
        self
    }

    /// At most this many copies in flight; beyond it requests are not mirrored.
    #[must_use]
    pub const fn max_in_flight(mut self, n: usize) -> MirrorConfig {
        self.max_in_flight = n;
        self
    }

    /// A copy still running after this long is abandoned (and counted as failed).
    #[must_use]
    pub const fn timeout(mut self, timeout: Duration) -> MirrorConfig {
        self.timeout = timeout;
        self
    }
}

/// What the mirror has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MirrorStats {
    /// Copies whose mirror call completed (whatever the status code).
    pub sent: u64,
    /// Copies that failed or timed out.
    pub failed: u64,
    /// Sampled requests not mirrored because the in-flight bound was reached.
    pub skipped_busy: u64,
    /// Sampled requests not mirrored because the body was too large or of unknown size.
    pub skipped_body: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    skipped_busy: AtomicU64,
    skipped_body: AtomicU64,
}

/// Layer that applies [`Mirror`]. Clones share the in-flight bound and the counters.
pub struct MirrorLayer<M> {
    mirror: M,
    shared: Arc<Shared>,
}

struct Shared {
    config: MirrorConfig,
    target: Endpoint,
    propagator: Propagator,
    permits: Arc<Semaphore>,
    counters: Counters,
}

impl<M: Clone> Clone for MirrorLayer<M> {
    fn clone(&self) -> Self {
        MirrorLayer {
            mirror: self.mirror.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<M> fmt::Debug for MirrorLayer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MirrorLayer")
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<M> MirrorLayer<M> {
    /// Mirrors through `mirror` (a client service such as a hyper client), writing the shadow
    /// lane with `propagator`'s wire names.
    ///
    /// # Panics
    ///
    /// When the config's target is not a scheme and authority, or its shadow lane is base
    /// (copies of live traffic would then go out as live base traffic, writes and all).
    pub fn new(mirror: M, propagator: Propagator, config: MirrorConfig) -> MirrorLayer<M> {
        assert!(
            !config.shadow.is_base(),
            "mirror shadow lane is base: copies of live traffic would be served as live base traffic; mirror on a lane of their own"
        );
        let target = Endpoint::new(config.target.clone())
            .unwrap_or_else(|e| panic!("mirror target {}: {e}", config.target));
        MirrorLayer {
            mirror,
            shared: Arc::new(Shared {
                permits: Arc::new(Semaphore::new(config.max_in_flight)),
                config,
                target,
                propagator,
                counters: Counters::default(),
            }),
        }
    }

    /// What has been mirrored so far.
    pub fn stats(&self) -> MirrorStats {
        let c = &self.shared.counters;
        MirrorStats {
            sent: c.sent.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            skipped_busy: c.skipped_busy.load(Ordering::Relaxed),
            skipped_body: c.skipped_body.load(Ordering::Relaxed),
        }
    }
}

impl<S, M: Clone> Layer<S> for MirrorLayer<M> {
    type Service = Mirror<S, M>;

    fn layer(&self, inner: S) -> Mirror<S, M> {
        Mirror {
            inner,
            mirror: self.mirror.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// Middleware that mirrors a share of requests. See [`MirrorLayer`].
pub struct Mirror<S, M> {
    inner: S,
    mirror: M,
    shared: Arc<Shared>,
}

crate::macros::inner_accessors!(Mirror<S, M>);

impl<S: Clone, M: Clone> Clone for Mirror<S, M> {
    fn clone(&self) -> Self {
        Mirror {
            inner: self.inner.clone(),
            mirror: self.mirror.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug, M> fmt::Debug for Mirror<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mirror")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, M, ReqBody, ResBody, MirrorResBody> Service<Request<ReqBody>> for Mirror<S, M>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    M: Service<Request<Full<Bytes>>, Response = Response<MirrorResBody>> + Clone + Send + 'static,
    M::Error: Into<BoxError>,
    M::Future: Send + 'static,
    MirrorResBody: Send + 'static,
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, ResBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        let config = &shared.config;
        if !config.share.sample() {
            return ResponseFuture::passthrough(self.inner.call(req));
        }
        let fits = req
            .body()
            .size_hint()
            .exact()
            .is_some_and(|n| n <= config.max_body_bytes as u64);
        if !fits {
            shared.counters.skipped_body.fetch_add(1, Ordering::Relaxed);
            return ResponseFuture::passthrough(self.inner.call(req));
        }
        let Ok(permit) = shared.permits.clone().try_acquire_owned() else {
            shared.counters.skipped_busy.fetch_add(1, Ordering::Relaxed);
            return ResponseFuture::passthrough(self.inner.call(req));
        };

        // The body must be read before the primary can be called: take the ready inner service
        // and leave a fresh clone for the next call (the usual tower pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let mirror = self.mirror.clone();
        let shared = self.shared.clone();
        let ctx = LaneContext::current();
        ResponseFuture::mirroring(Box::pin(
            async move {
                let (parts, body) = req.into_parts();
                let bytes = Limited::new(body, shared.config.max_body_bytes)
                    .collect()
                    .await?
                    .to_bytes();

                let mut copy = Request::builder()
                    .method(parts.method.clone())
                    .uri(shared.target.apply(&parts.uri))
                    .version(parts.version)
                    .body(Full::new(bytes.clone()))?;
                *copy.headers_mut() = parts.headers.clone();
                copy.headers_mut().remove(http::header::HOST);
                // Whatever lane the request had, the copy is on the shadow lane.
                let shadow = LaneContext::new(shared.config.shadow).with_mirror(true);
                shared.propagator.strip(copy.headers_mut());
                shared.propagator.inject(&shadow, copy.headers_mut());
                tokio::spawn(send_copy(mirror, copy, shared, permit).with_lane(shadow));

                let primary = Request::from_parts(parts, ReqBody::from(bytes));
                inner.call(primary).await.map_err(Into::into)
            }
            .with_lane(ctx),
        ))
    }
}

async fn send_copy<M, B>(
    mirror: M,
    copy: Request<Full<Bytes>>,
    shared: Arc<Shared>,
    permit: tokio::sync::OwnedSemaphorePermit,
) where
    M: Service<Request<Full<Bytes>>, Response = Response<B>>,
    M::Error: Into<BoxError>,
{
    let outcome = tokio::time::timeout(shared.config.timeout, mirror.oneshot(copy)).await;
    let counter = match outcome {
        Ok(Ok(_response)) => &shared.counters.sent,
        Ok(Err(e)) => {
            tracing::debug!(error = %e.into(), "mirror copy failed");
            &shared.counters.failed
        }
        Err(_elapsed) => {
            tracing::debug!("mirror copy timed out");
            &shared.counters.failed
        }
    };
    counter.fetch_add(1, Ordering::Relaxed);
    drop(permit);
}
