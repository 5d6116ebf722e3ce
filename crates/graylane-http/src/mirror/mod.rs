//! Traffic mirroring: a copy of a share of live requests goes to a mirror target, on a shadow
//! lane, so that its side effects land in shadow data and never in production.
//!
//! For each sampled request the layer buffers the body (bounded by a size cap), passes the
//! request on unchanged, and sends a copy — marked as a mirror (`x-gray-mirror: 1`) and put on
//! the shadow lane (any lane marks the client sent are replaced) — to the mirror service in a
//! background task. The copy's failure, slowness or timeout never reaches the primary
//! response. Copies in flight are bounded: when the bound is reached a request is simply not
//! mirrored. Requests whose body size is unknown or above the cap are not mirrored either
//! (buffering them would hold the primary back). Everything is counted in
//! [`MirrorLayer::stats`].
//!
//! With [`MirrorConfig::compare`] the mirror's response is not discarded but compared with the
//! primary's, field by field, noise learned and sensitive values redacted
//! ([`compare`]); [`MirrorLayer::report`] says what differed. Only production's answers are
//! compared — requests without a lane; a request already on a lane is mirrored as before — so
//! the layer goes inside the lane layer, where the request's lane is known. The primary
//! response is copied as it streams to the client and never waits on the mirror; a copy and
//! its comparison hold one in-flight slot until both responses are in (or the timeout).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), graylane_http::BoxError> {
//! use bytes::Bytes;
//! use graylane_core::{Lane, LaneSet, Propagator};
//! use graylane_http::{MirrorConfig, MirrorLayer};
//! use http_body_util::{BodyExt, Full};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! let shadow = Lane::new("shadow")?;
//! let (tx, mut copies) = tokio::sync::mpsc::unbounded_channel();
//! // The mirror target: here a closure; in production an HTTP client.
//! let mirror = service_fn(move |req: http::Request<Full<Bytes>>| {
//!     let tx = tx.clone();
//!     async move {
//!         tx.send((req.uri().to_string(), req.headers()["x-gray-lane"].clone())).ok();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
//!     }
//! });
//! let config = MirrorConfig::new("http://orders-v2:8080".parse()?, shadow).percent(100.0);
//! let layer = MirrorLayer::new(mirror, Propagator::new(LaneSet::new([shadow])), config);
//! let primary = layer.layer(service_fn(|_req: http::Request<Full<Bytes>>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from("primary"))))
//! }));
//!
//! let res = primary.oneshot(http::Request::post("/orders").body(Full::new(Bytes::from("{}")))?).await?;
//! assert_eq!(res.into_body().collect().await?.to_bytes(), "primary");
//! let (uri, lane) = copies.recv().await.unwrap();
//! assert_eq!((uri.as_str(), lane.to_str()?), ("http://orders-v2:8080/orders", "shadow"));
//! # Ok(()) }
//! ```

pub mod body;
pub mod compare;
mod copy;
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
use tokio::sync::{Semaphore, oneshot};
use tower_layer::Layer;
use tower_service::Service;

use self::body::{Capture, MirrorBody};
use self::compare::{Captured, CompareConfig, Ledger, MirrorReport};
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
    compare: Option<CompareConfig>,
}

impl MirrorConfig {
    /// Mirror to `target` (scheme and authority; the request's path and query are kept) on the
    /// `shadow` lane. Defaults: 100%, 64 KiB bodies, 64 copies in flight, 5 s timeout, no
    /// comparison.
    pub const fn new(target: Uri, shadow: Lane) -> MirrorConfig {
        MirrorConfig {
            target,
            shadow,
            share: Percent::HUNDRED,
            max_body_bytes: 64 * 1024,
            max_in_flight: 64,
            timeout: Duration::from_secs(5),
            compare: None,
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

    /// At most this many copies in flight (each with its comparison); beyond it requests are
    /// not mirrored.
    #[must_use]
    pub const fn max_in_flight(mut self, n: usize) -> MirrorConfig {
        self.max_in_flight = n;
        self
    }

    /// A copy still running after this long is abandoned (and counted as failed); so is the
    /// comparison of a primary response not read to its end by then.
    #[must_use]
    pub const fn timeout(mut self, timeout: Duration) -> MirrorConfig {
        self.timeout = timeout;
        self
    }

    /// Compares each copy's response with the primary's ([`compare`]).
    #[must_use]
    pub fn compare(mut self, compare: CompareConfig) -> MirrorConfig {
        self.compare = Some(compare);
        self
    }
}

/// What the mirror has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MirrorStats {
    /// Copies whose mirror call completed (whatever the status code).
    pub sent: u64,
    /// Copies (and noise copies) that failed or timed out.
    pub failed: u64,
    /// Sampled requests not mirrored because the in-flight bound was reached.
    pub skipped_busy: u64,
    /// Sampled requests not mirrored because the body was too large or of unknown size.
    pub skipped_body: u64,
    /// Noise copies (see [`compare`]) whose call completed.
    pub noise_sent: u64,
    /// Copies running now, each with its noise copy and comparison (a gauge: wait for 0 to
    /// read a settled report).
    pub in_flight: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    skipped_busy: AtomicU64,
    skipped_body: AtomicU64,
    noise_sent: AtomicU64,
}

/// Layer that applies [`Mirror`]. Clones share the in-flight bound, the counters and the
/// comparison's report.
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
    /// With comparison: its state, and where noise copies go when not to `target`.
    ledger: Option<Ledger>,
    noise_target: Option<Endpoint>,
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
    /// When the config's target (or noise target) is not a scheme and authority, or its
    /// shadow lane (or noise lane) is base: copies of live traffic would then go out as live
    /// base traffic, writes and all.
    pub fn new(mirror: M, propagator: Propagator, config: MirrorConfig) -> MirrorLayer<M> {
        assert!(
            !config.shadow.is_base(),
            "mirror shadow lane is base: copies of live traffic would be served as live base traffic; mirror on a lane of their own"
        );
        let endpoint = |uri: &Uri| {
            Endpoint::new(uri.clone()).unwrap_or_else(|e| panic!("mirror target {uri}: {e}"))
        };
        let target = endpoint(&config.target);
        let noise = config.compare.as_ref().and_then(|c| c.noise.as_ref());
        assert!(
            noise.is_none_or(|n| !n.lane.is_base()),
            "mirror noise lane is base: noise copies would write production data; use a mirror lane with no versions"
        );
        let noise_target = noise.and_then(|n| n.target.as_ref()).map(endpoint);
        MirrorLayer {
            mirror,
            shared: Arc::new(Shared {
                permits: Arc::new(Semaphore::new(config.max_in_flight)),
                ledger: config.compare.clone().map(Ledger::new),
                noise_target,
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
            noise_sent: c.noise_sent.load(Ordering::Relaxed),
            in_flight: (self.shared.config.max_in_flight - self.shared.permits.available_permits())
                as u64,
        }
    }

    /// What the comparison has seen so far (empty when the mirror does not compare).
    pub fn report(&self) -> MirrorReport {
        self.shared
            .ledger
            .as_ref()
            .map(Ledger::report)
            .unwrap_or_default()
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
    MirrorResBody: Body + Send + 'static,
    MirrorResBody::Data: Send,
    MirrorResBody::Error: Into<BoxError>,
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body + Send + 'static,
{
    type Response = Response<MirrorBody<ResBody>>;
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
        // The lane layer outside puts the request's lane in its extensions.
        let ctx = req
            .extensions()
            .get::<LaneContext>()
            .copied()
            .unwrap_or_else(LaneContext::current);
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

                let primary = Request::from_parts(parts, ReqBody::from(bytes.clone()));
                // Only production's answers are compared: a request on a lane ran that lane's
                // code, and what it answered says nothing of the release.
                let production = ctx.lane().is_base() && !ctx.is_mirror();
                let Some(ledger) = shared.ledger.as_ref().filter(|_| production) else {
                    tokio::spawn(
                        copy::send_copy(mirror, copy, shared.clone(), permit).with_lane(shadow),
                    );
                    let res = inner.call(primary).await.map_err(Into::into)?;
                    return Ok(res.map(MirrorBody::plain));
                };
                let (tx, rx) = oneshot::channel();
                let job = copy::Job {
                    copy,
                    body: bytes,
                    primary: rx,
                    permit,
                };
                tokio::spawn(copy::compare(mirror, job, shared.clone()).with_lane(shadow));
                let res = inner.call(primary).await.map_err(Into::into)?;
                let (parts, body) = res.into_parts();
                let config = ledger.config();
                let head = Captured::of(parts.status, &parts.headers, config, Bytes::new());
                let capture = Capture::new(head, config.max_body_bytes, tx);
                Ok(Response::from_parts(
                    parts,
                    MirrorBody::captured(body, capture),
                ))
            }
            .with_lane(ctx),
        ))
    }
}
