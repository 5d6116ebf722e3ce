//! The server layer: gives every inbound request its lane and runs the handler in it.
//!
//! Two modes, for the two sides of the trust boundary:
//!
//! - [`LaneLayer::edge`] at the ingress: client lane marks are stripped, signed tokens verified,
//!   coloring rules applied (see [`graylane_core::Edge`]); the decided lane is written onto the
//!   request (so a proxying gateway forwards it) and onto the response (`x-gray-lane`), so a
//!   tester sees which lane answered.
//! - [`LaneLayer::mesh`] behind it: the lane on the wire is trusted (and validated against the
//!   configured lanes).
//!
//! For a lane spec the process follows while it runs ([`LiveSpec`]), [`LaneLayer::live_edge`] is
//! the edge of whichever revision is in force when each request arrives: that revision decides
//! the request from start to end, its number is on the context, and the handler finds the
//! revision itself (`Arc<Revision>`) in the request extensions. Behind the edge, a mesh layer on
//! [`LiveSpec::propagator`] follows the revisions' lanes.
//!
//! A mirror copy for a lane the service does not have (a mirror mark with an unknown lane, or
//! none) is answered `421 Misdirected Request` without calling the handler: served as base, its
//! writes would land in production.
//!
//! Either way the handler runs with the [`LaneContext`](graylane_core::LaneContext) current — across its `.await`s, and in
//! tasks it starts with [`graylane_core::task::spawn`] — and finds it in the request extensions
//! (and, with the `axum` feature, through the [`RequestLane`] extractor).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use graylane_core::{current_lane, Lane, LaneContext, LaneSet, Propagator};
//! use graylane_http::LaneLayer;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! let gray = Lane::new("gray")?;
//! let propagator = Propagator::new(LaneSet::new([gray]));
//! let svc = ServiceBuilder::new()
//!     .layer(LaneLayer::mesh(propagator))
//!     .service(service_fn(|req: http::Request<()>| async move {
//!         let ctx = req.extensions().get::<LaneContext>().copied();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(format!("{:?} {}", ctx.map(|c| c.lane()), current_lane())))
//!     }));
//! let req = http::Request::get("/").header("x-gray-lane", "gray").body(())?;
//! let res = svc.oneshot(req).await?;
//! assert_eq!(res.into_body(), "Some(Lane(gray)) gray");
//! # Ok(()) }
//! ```

#[cfg(feature = "axum")]
mod extract;
pub mod future;

#[cfg(feature = "axum")]
pub use extract::{MissingLaneLayer, RequestLane};

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use graylane_core::live::LiveSpec;
use graylane_core::{Edge, Lane, LaneContext, LaneFutureExt, Propagator};
use http::{HeaderName, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use self::future::ResponseFuture;

/// The response header the edge marks with the request's lane.
pub const RESPONSE_LANE_HEADER: &str = "x-gray-lane";

/// Layer that applies [`LaneService`]. Cheap to clone.
#[derive(Clone)]
pub struct LaneLayer {
    config: Arc<Config>,
}

#[derive(Clone)]
struct Config {
    mode: Mode,
    serving: Lane,
    mark: Option<HeaderName>,
    /// A mirror lane's deployment: every request is a mirror copy on this lane.
    pinned: Option<Lane>,
}

impl Config {
    fn propagator(&self) -> &Propagator {
        match &self.mode {
            Mode::Mesh(p) => p,
            Mode::Edge(e) => e.propagator(),
            Mode::Live(live) => live.propagator(),
        }
    }
}

#[derive(Clone)]
enum Mode {
    Mesh(Propagator),
    Edge(Edge),
    Live(LiveSpec),
}

impl fmt::Debug for LaneLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match &self.config.mode {
            Mode::Mesh(_) => "mesh",
            Mode::Edge(_) => "edge",
            Mode::Live(_) => "live edge",
        };
        f.debug_struct("LaneLayer")
            .field("mode", &mode)
            .field("serving", &self.config.serving)
            .field("mark", &self.config.mark)
            .field("pinned", &self.config.pinned)
            .finish()
    }
}

impl LaneLayer {
    /// A layer for services inside the mesh: the lane on the wire is trusted.
    pub fn mesh(propagator: Propagator) -> LaneLayer {
        LaneLayer::with(Mode::Mesh(propagator), None)
    }

    /// A layer for the ingress: strips client lane marks, verifies tokens, colors, writes the
    /// lane onto the request and marks the response with it ([`RESPONSE_LANE_HEADER`]).
    pub fn edge(edge: Edge) -> LaneLayer {
        LaneLayer::with(
            Mode::Edge(edge),
            Some(HeaderName::from_static(RESPONSE_LANE_HEADER)),
        )
    }

    /// An [edge](Self::edge) that follows `live`: each request is admitted by the edge of the
    /// revision in force when it arrives.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use graylane_core::live::LiveSpec;
    /// use graylane_core::spec::LaneSpec;
    /// use graylane_core::LaneContext;
    /// use graylane_http::LaneLayer;
    /// use tower::{service_fn, Layer, ServiceExt};
    ///
    /// let spec = |lane| LaneSpec::from_yaml_str(&format!(
    ///     "lanes: [{{name: gray}}, {{name: blue}}]\n\
    ///      coloring: {{rules: [{{lane: {lane}, match: {{header: {{name: x-user-group, exact: beta}}}}}}]}}"
    /// ));
    /// let live = LiveSpec::new(spec("gray")?)?;
    /// let svc = LaneLayer::live_edge(live.clone()).layer(service_fn(|req: http::Request<()>| async move {
    ///     let ctx = req.extensions().get::<LaneContext>().unwrap();
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(format!("{} {}", ctx.lane(), ctx.revision())))
    /// }));
    /// let beta = || http::Request::get("/").header("x-user-group", "beta").body(());
    /// assert_eq!(svc.clone().oneshot(beta()?).await?.into_body(), "gray 1");
    /// live.apply(spec("blue")?)?;
    /// assert_eq!(svc.oneshot(beta()?).await?.into_body(), "blue 2");
    /// # Ok(()) }
    /// ```
    pub fn live_edge(live: LiveSpec) -> LaneLayer {
        LaneLayer::with(
            Mode::Live(live),
            Some(HeaderName::from_static(RESPONSE_LANE_HEADER)),
        )
    }

    fn with(mode: Mode, mark: Option<HeaderName>) -> LaneLayer {
        LaneLayer {
            config: Arc::new(Config {
                mode,
                serving: Lane::BASE,
                mark,
                pinned: None,
            }),
        }
    }

    /// The lane of this deployment (default base): a v2 instance of a gray lane says `gray`.
    /// Requests of another lane are recorded as served by it ([`LaneContext::served`](graylane_core::LaneContext::served)).
    #[must_use]
    pub fn serving(self, lane: Lane) -> LaneLayer {
        self.reconfigure(|c| c.serving = lane)
    }

    /// Pins this deployment to the mirror lane `lane` (the spec's `mirror: true` lane, which
    /// the generated Deployment names in `GRAYLANE_PINNED_LANE`): every request is taken as a
    /// mirror copy on `lane`, whatever the wire says — Envoy's mirrored copy carries no header
    /// of graylane's, only a `-shadow` suffix on its host — and the lane is written onto the
    /// request, so that every hop and record after it, base services' included, is in the
    /// mirror lane and writes its data. Also serves `lane` ([`serving`](Self::serving)).
    ///
    /// Envoy discards a mirrored copy's response; nothing a pinned deployment answers reaches a
    /// user.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use graylane_core::{Lane, LaneContext, LaneSet, Propagator};
    /// use graylane_http::LaneLayer;
    /// use tower::{service_fn, Layer, ServiceExt};
    ///
    /// let shadow = Lane::new("shadow")?;
    /// let layer = LaneLayer::mesh(Propagator::new(LaneSet::new([shadow]))).pinned(shadow);
    /// let svc = layer.layer(service_fn(|req: http::Request<()>| async move {
    ///     let ctx = LaneContext::current();
    ///     let wire = |h: &str| req.headers()[h].to_str().unwrap().to_owned();
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(format!(
    ///         "{} mirror={} wire={} {}", ctx.lane(), ctx.is_mirror(), wire("x-gray-lane"), wire("x-gray-mirror")
    ///     )))
    /// }));
    /// // Envoy's copy: the host suffixed, no lane header (a forged `base` is overridden too).
    /// let copy = http::Request::post("http://orders-shadow/place").header("x-gray-lane", "base").body(())?;
    /// assert_eq!(svc.oneshot(copy).await?.into_body(), "shadow mirror=true wire=shadow 1");
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn pinned(self, lane: Lane) -> LaneLayer {
        self.reconfigure(|c| {
            c.pinned = Some(lane);
            c.serving = lane;
        })
    }

    /// Marks every response with the request's lane under `header` (`None`: no mark). Edges mark
    /// [`RESPONSE_LANE_HEADER`] by default; mesh services do not.
    #[must_use]
    pub fn mark_response(self, header: Option<HeaderName>) -> LaneLayer {
        self.reconfigure(|c| c.mark = header)
    }

    fn reconfigure(self, f: impl FnOnce(&mut Config)) -> LaneLayer {
        let mut config = Arc::unwrap_or_clone(self.config);
        f(&mut config);
        LaneLayer {
            config: Arc::new(config),
        }
    }

    /// The propagator whose lanes and counters the layer uses.
    pub fn propagator(&self) -> &Propagator {
        self.config.propagator()
    }
}

impl<S> Layer<S> for LaneLayer {
    type Service = LaneService<S>;

    fn layer(&self, inner: S) -> LaneService<S> {
        LaneService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// Middleware that scopes each request in its lane. See [`LaneLayer`].
#[derive(Clone)]
pub struct LaneService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for LaneService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

crate::macros::inner_accessors!(LaneService<S>);

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LaneService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let config = &self.config;
        let ctx = match (config.pinned, &config.mode) {
            (Some(lane), _) => {
                // A mirror lane's deployment: what came on the wire does not count, and what
                // goes on is the mirror lane.
                let ctx = LaneContext::new(lane).with_mirror(true);
                let propagator = config.propagator();
                propagator.strip(req.headers_mut());
                propagator.inject(&ctx, req.headers_mut());
                ctx
            }
            (None, Mode::Mesh(propagator)) => propagator.extract(req.headers()),
            (None, Mode::Edge(edge)) => admit(edge, &mut req),
            (None, Mode::Live(live)) => {
                let revision = live.current();
                let ctx = admit(revision.edge(), &mut req);
                req.extensions_mut().insert(revision);
                ctx
            }
        }
        .with_served(config.serving);
        if ctx.is_mirror() && ctx.lane().is_base() {
            // A mirror copy whose lane this service does not have (its propagator refused the
            // lane and kept the mark): run as base, its writes would land in production.
            tracing::debug!(uri = %req.uri(), "refused a mirror copy for a lane this service does not have");
            return ResponseFuture::misdirected();
        }
        req.extensions_mut().insert(ctx);
        // The synchronous part of the handler runs in the lane too.
        let future = ctx.scope(|| self.inner.call(req));
        ResponseFuture::new(
            future.with_lane(ctx),
            config.mark.clone().map(|h| (h, ctx.lane())),
        )
    }
}

/// The edge's decision for `req`, written onto it too: downstream of the edge the lane is
/// trusted, so it goes where a proxy forwards it.
fn admit<B>(edge: &Edge, req: &mut Request<B>) -> graylane_core::LaneContext {
    let ctx = edge.admit(req).context();
    edge.propagator().inject(&ctx, req.headers_mut());
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;
    use graylane_core::coloring::Rules;
    use graylane_core::{LaneContext, LaneSet, Origin, current_lane};
    use std::convert::Infallible;
    use tower::{ServiceExt, service_fn};

    fn gray() -> Lane {
        Lane::new("gray").unwrap()
    }

    fn echo() -> impl Service<
        Request<()>,
        Response = Response<String>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<String>, Infallible>>,
    > + Clone {
        service_fn(|req: Request<()>| async move {
            tokio::task::yield_now().await;
            let ctx = *req.extensions().get::<LaneContext>().unwrap();
            let header = req
                .headers()
                .get("x-gray-lane")
                .map(|v| v.to_str().unwrap().to_owned());
            Ok(Response::new(format!(
                "{} {} {} {:?}",
                ctx.lane(),
                ctx.served(),
                current_lane(),
                header
            )))
        })
    }

    #[tokio::test]
    async fn mesh_extracts_and_scopes() {
        let layer = LaneLayer::mesh(Propagator::new(LaneSet::new([gray()])));
        let req = Request::get("/")
            .header("x-gray-lane", "gray")
            .body(())
            .unwrap();
        let res = layer.layer(echo()).oneshot(req).await.unwrap();
        assert_eq!(res.body(), "gray base gray Some(\"gray\")");
        assert!(res.headers().get(RESPONSE_LANE_HEADER).is_none());
    }

    #[tokio::test]
    async fn a_mirror_copy_for_an_unknown_lane_is_never_served_as_base() {
        let layer = LaneLayer::mesh(Propagator::new(LaneSet::new([gray()])));
        let called = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = called.clone();
        let handler = service_fn(move |_: Request<()>| {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async { Ok::<_, Infallible>(Response::new(String::from("served"))) }
        });
        let svc = layer.layer(handler);
        for (lane, mirror) in [("shadow", "1"), ("Not A Lane", "true")] {
            let req = Request::get("/")
                .header("x-gray-lane", lane)
                .header("x-gray-mirror", mirror)
                .body(())
                .unwrap();
            let res = svc.clone().oneshot(req).await.unwrap();
            assert_eq!(
                res.status(),
                http::StatusCode::MISDIRECTED_REQUEST,
                "{lane}"
            );
            assert_eq!(res.body(), "");
        }
        assert_eq!(called.load(std::sync::atomic::Ordering::Relaxed), 0);
        // A copy on a lane the service has is served, in that lane.
        let req = Request::get("/")
            .header("x-gray-lane", "gray")
            .header("x-gray-mirror", "1")
            .body(())
            .unwrap();
        let res = layer.layer(echo()).oneshot(req).await.unwrap();
        assert_eq!(res.status(), http::StatusCode::OK);
        assert!(res.body().starts_with("gray "), "{}", res.body());
    }

    #[tokio::test]
    async fn serving_lane_is_recorded() {
        let layer = LaneLayer::mesh(Propagator::new(LaneSet::new([gray()]))).serving(gray());
        let req = Request::get("/")
            .header("x-gray-lane", "gray")
            .body(())
            .unwrap();
        let res = layer.layer(echo()).oneshot(req).await.unwrap();
        assert_eq!(res.body(), "gray gray gray Some(\"gray\")");
    }

    #[tokio::test]
    async fn edge_strips_colors_writes_and_marks() {
        let edge = Edge::new(Propagator::new(LaneSet::new([gray()])), Rules::default());
        let layer = LaneLayer::edge(edge.clone());
        let forged = Request::get("/")
            .header("x-gray-lane", "gray")
            .body(())
            .unwrap();
        let res = layer.layer(echo()).oneshot(forged).await.unwrap();
        assert_eq!(res.body(), "base base base None");
        assert_eq!(res.headers()[RESPONSE_LANE_HEADER], "base");
        assert_eq!(edge.stats().get(graylane_core::Rejection::Untrusted), 1);
    }

    #[tokio::test]
    async fn edge_origin_is_kept_in_the_extension() {
        let key = graylane_core::trust::TokenKey::new(b"server layer test key").unwrap();
        let token = key.mint(
            gray(),
            std::time::SystemTime::now() + std::time::Duration::from_secs(60),
        );
        let edge =
            Edge::new(Propagator::new(LaneSet::new([gray()])), Rules::default()).with_tokens(key);
        let svc = LaneLayer::edge(edge).layer(service_fn(|req: Request<()>| async move {
            let ctx = *req.extensions().get::<LaneContext>().unwrap();
            Ok::<_, Infallible>(Response::new(ctx.origin()))
        }));
        let req = Request::get("/")
            .header("x-gray-lane-token", token)
            .body(())
            .unwrap();
        let res = svc.oneshot(req).await.unwrap();
        assert_eq!(*res.body(), Origin::Token);
        assert_eq!(res.headers()[RESPONSE_LANE_HEADER], "gray");
    }
}
