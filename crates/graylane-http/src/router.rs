//! Lane routing without a mesh: send each request to the lane's endpoint of the target service
//! when the spec says the service has a version in that lane, and to base otherwise.
//!
//! The router only picks the endpoint; the lane itself stays on the request (stack a
//! [`PropagateLaneLayer`](crate::PropagateLaneLayer) under it), so after a fallback the next hop
//! that has the lane serves it again (re-entry). In strict mode a lane request for a service
//! without that lane fails with [`NoLaneVersion`] instead of falling back.
//!
//! Every response carries a [`Routed`] extension (requested and served lane), and
//! [`LaneRouterLayer::stats`] counts requests per requested lane, fallbacks and refusals.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use graylane_core::spec::LaneSpec;
//! use graylane_core::{Lane, LaneContext, LaneFutureExt};
//! use graylane_http::{LaneRouterLayer, Routed};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! let spec = LaneSpec::from_yaml_str(
//!     "services: [{name: orders}, {name: inventory}]\nlanes: [{name: gray, version: v2, services: [orders]}]",
//! )?;
//! let gray = Lane::new("gray")?;
//! let orders = LaneRouterLayer::builder(&spec, "orders")
//!     .base("http://orders-v1:8080".parse()?)
//!     .lane(gray, "http://orders-v2:8080".parse()?)
//!     .build()?;
//! // Stands in for an HTTP client: answers with the URI it was asked for.
//! let client = orders.layer(service_fn(|req: http::Request<()>| async move {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(req.uri().to_string()))
//! }));
//! let res = async { client.oneshot(http::Request::get("/orders/7").body(())?).await }
//!     .with_lane(LaneContext::new(gray))
//!     .await
//!     .map_err(|e| e as Box<dyn std::error::Error>)?;
//! assert_eq!(res.body(), "http://orders-v2:8080/orders/7");
//! assert_eq!(res.extensions().get::<Routed>().map(|r| r.served()), Some(gray));
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext};
use http::uri::{PathAndQuery, Uri};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

/// The error type of a [`LaneRouter`]: the inner service's error, or [`NoLaneVersion`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Strict mode refused a lane request for a service that has no version in that lane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoLaneVersion {
    /// The target service.
    pub service: String,
    /// The lane requested.
    pub lane: Lane,
}

impl fmt::Display for NoLaneVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service {} has no version in lane {} (strict lane routing: no fallback to base)",
            self.service, self.lane
        )
    }
}

impl std::error::Error for NoLaneVersion {}

/// Where a request went: the lane it asked for and the lane whose endpoint served it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Routed {
    requested: Lane,
    served: Lane,
}

impl Routed {
    /// The request's lane.
    pub fn requested(&self) -> Lane {
        self.requested
    }
    /// The lane whose endpoint served it.
    pub fn served(&self) -> Lane {
        self.served
    }
    /// Whether the request fell back to base.
    pub fn is_fallback(&self) -> bool {
        self.requested != self.served
    }
}

/// Why a router could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfigError(String);

impl fmt::Display for RouterConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RouterConfigError {}

/// Builds a [`LaneRouterLayer`] (targets are endpoint URIs) or a [`LaneSwitch`] (targets are
/// services, e.g. one tonic `Channel` per lane) for one target service.
#[derive(Debug)]
pub struct RouterBuilder<'a, T> {
    spec: &'a LaneSpec,
    service: String,
    base: Option<T>,
    lanes: Vec<(Lane, T)>,
    strict: bool,
}

impl<'a, T> RouterBuilder<'a, T> {
    fn new(spec: &'a LaneSpec, service: &str) -> Self {
        RouterBuilder {
            spec,
            service: service.to_owned(),
            base: None,
            lanes: Vec::new(),
            strict: false,
        }
    }

    /// The base target.
    #[must_use]
    pub fn base(mut self, target: T) -> Self {
        self.base = Some(target);
        self
    }

    /// The target of the service's version in `lane`.
    #[must_use]
    pub fn lane(mut self, lane: Lane, target: T) -> Self {
        self.lanes.push((lane, target));
        self
    }

    /// Fail lane requests for lanes the service lacks instead of falling back to base.
    #[must_use]
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Checks the targets against the spec: the service exists, every lane it has a version in
    /// has a target, and no target is given for a lane it has no version in.
    fn table<U>(
        self,
        convert: impl Fn(T) -> Result<U, String>,
    ) -> Result<Table<U>, RouterConfigError> {
        let err = |m: String| Err(RouterConfigError(m));
        let service = self.service;
        let lane_set = self.spec.lane_set();
        if self.spec.service(&service).is_none() {
            return err(format!("service {service:?} is not in the lane spec"));
        }
        if let Some((lane, _)) = self.lanes.iter().find(|(l, _)| !lane_set.contains(*l)) {
            return err(format!("lane {lane} is not in the lane spec"));
        }
        let Some(base) = self.base else {
            return err(format!("service {service:?} has no base endpoint"));
        };
        let base = convert(base).map_err(RouterConfigError)?;
        let mut given = self.lanes;
        let mut routes = Vec::new();
        for lane in lane_set.non_base() {
            let mut mine: Vec<T> = Vec::new();
            let mut rest = Vec::new();
            for (l, t) in given {
                if l == lane {
                    mine.push(t)
                } else {
                    rest.push((l, t))
                }
            }
            given = rest;
            let has = self.spec.has_version(&service, lane);
            let target = match (has, mine.len()) {
                (true, 1) => Some(convert(mine.remove(0)).map_err(RouterConfigError)?),
                (true, 0) => {
                    return err(format!(
                        "service {service:?} has a version in lane {lane} but no endpoint for it"
                    ));
                }
                (false, 0) => None,
                (false, _) => {
                    return err(format!(
                        "service {service:?} has no version in lane {lane} per the spec, but an endpoint was given"
                    ));
                }
                (true, _) => return err(format!("lane {lane} is given twice")),
            };
            routes.push(Route {
                lane,
                target,
                count: AtomicU64::new(0),
            });
        }
        Ok(Table {
            service,
            base,
            base_count: AtomicU64::new(0),
            routes,
            strict: self.strict,
            refused: AtomicU64::new(0),
        })
    }
}

impl RouterBuilder<'_, Uri> {
    /// The router layer. Endpoints are a scheme and an authority, without a path.
    pub fn build(self) -> Result<LaneRouterLayer, RouterConfigError> {
        Ok(LaneRouterLayer {
            table: Arc::new(self.table(Endpoint::new)?),
        })
    }
}

/// The routing decision shared by both routers: per-lane targets, fallback, strict mode and
/// counters.
struct Table<T> {
    service: String,
    base: T,
    base_count: AtomicU64,
    routes: Vec<Route<T>>,
    strict: bool,
    refused: AtomicU64,
}

struct Route<T> {
    lane: Lane,
    target: Option<T>,
    count: AtomicU64,
}

impl<T> Table<T> {
    /// The target for the current lane and the lane it serves, counted.
    fn pick(&self) -> Result<(&T, Routed), NoLaneVersion> {
        let requested = LaneContext::current().lane();
        let Some(route) = self.routes.iter().find(|r| r.lane == requested) else {
            // Base, or a lane this router's spec does not know (cannot come off the wire).
            self.base_count.fetch_add(1, Ordering::Relaxed);
            let served = Lane::BASE;
            return Ok((&self.base, Routed { requested, served }));
        };
        route.count.fetch_add(1, Ordering::Relaxed);
        match &route.target {
            Some(target) => Ok((
                target,
                Routed {
                    requested,
                    served: requested,
                },
            )),
            None if self.strict => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(NoLaneVersion {
                    service: self.service.clone(),
                    lane: requested,
                })
            }
            None => Ok((
                &self.base,
                Routed {
                    requested,
                    served: Lane::BASE,
                },
            )),
        }
    }

    fn stats(&self) -> RouterStats {
        let mut routes = vec![(
            Lane::BASE,
            Lane::BASE,
            self.base_count.load(Ordering::Relaxed),
        )];
        routes.extend(self.routes.iter().map(|r| {
            let served = if r.target.is_some() {
                r.lane
            } else {
                Lane::BASE
            };
            (r.lane, served, r.count.load(Ordering::Relaxed))
        }));
        RouterStats {
            routes,
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// Scheme and authority of an endpoint.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
}

impl Endpoint {
    pub(crate) fn new(uri: Uri) -> Result<Endpoint, String> {
        let parts = uri.into_parts();
        if parts
            .path_and_query
            .as_ref()
            .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty())
        {
            return Err("an endpoint is a scheme and authority, without a path".into());
        }
        match (parts.scheme, parts.authority) {
            (Some(scheme), Some(authority)) => Ok(Endpoint { scheme, authority }),
            _ => Err("an endpoint needs a scheme and an authority (http://host:port)".into()),
        }
    }

    pub(crate) fn apply(&self, uri: &Uri) -> Uri {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(
            uri.path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
    }
}

/// Layer that applies [`LaneRouter`]. Cheap to clone; clones share their counters.
#[derive(Clone)]
pub struct LaneRouterLayer {
    table: Arc<Table<Endpoint>>,
}

impl fmt::Debug for LaneRouterLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneRouterLayer")
            .field("service", &self.table.service)
            .field("strict", &self.table.strict)
            .finish_non_exhaustive()
    }
}

/// Request counts of a router, per requested lane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterStats {
    /// `(requested, served, requests)` for base and every configured lane.
    pub routes: Vec<(Lane, Lane, u64)>,
    /// Lane requests refused in strict mode.
    pub refused: u64,
}

impl RouterStats {
    /// Requests served by base although they asked for another lane.
    pub fn fallbacks(&self) -> u64 {
        self.routes
            .iter()
            .filter(|(requested, served, _)| requested != served)
            .map(|(_, _, n)| n)
            .sum()
    }
}

impl LaneRouterLayer {
    /// A builder for the router of requests to `service`; targets are endpoint URIs.
    pub fn builder<'a>(spec: &'a LaneSpec, service: &str) -> RouterBuilder<'a, Uri> {
        RouterBuilder::new(spec, service)
    }

    /// What has been routed so far.
    pub fn stats(&self) -> RouterStats {
        self.table.stats()
    }
}

impl<S> Layer<S> for LaneRouterLayer {
    type Service = LaneRouter<S>;

    fn layer(&self, inner: S) -> LaneRouter<S> {
        LaneRouter {
            inner,
            table: self.table.clone(),
        }
    }
}

/// Middleware that points requests at the right lane's endpoint. See [`LaneRouterLayer`].
#[derive(Clone)]
pub struct LaneRouter<S> {
    inner: S,
    table: Arc<Table<Endpoint>>,
}

impl<S: fmt::Debug> fmt::Debug for LaneRouter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneRouter")
            .field("inner", &self.inner)
            .field("service", &self.table.service)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LaneRouter<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = RouterFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let (endpoint, routed) = match self.table.pick() {
            Ok(picked) => picked,
            Err(refused) => return RouterFuture::refused(refused),
        };
        *req.uri_mut() = endpoint.apply(req.uri());
        // The Host header belonged to the old authority; the client sets the new one.
        req.headers_mut().remove(http::header::HOST);
        RouterFuture::routed(self.inner.call(req), routed)
    }
}

/// Dispatches each request to the service of its lane's version — for clients bound to one
/// endpoint, such as tonic `Channel`s — with the same fallback, strict mode and counters as
/// [`LaneRouterLayer`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), graylane_http::BoxError> {
/// use graylane_core::spec::LaneSpec;
/// use graylane_core::{Lane, LaneContext, LaneFutureExt};
/// use graylane_http::LaneSwitch;
/// use tower::{service_fn, ServiceExt};
///
/// let spec = LaneSpec::from_yaml_str("services: [{name: orders}]\nlanes: [{name: gray, services: [orders]}]")?;
/// let gray = Lane::new("gray")?;
/// let answer = |who: &'static str| service_fn(move |_req: http::Request<()>| async move {
///     Ok::<_, std::convert::Infallible>(http::Response::new(who))
/// });
/// let switch = LaneSwitch::builder(&spec, "orders")
///     .base(answer("v1"))
///     .lane(gray, answer("v2"))
///     .build()?;
/// let res = async { switch.oneshot(http::Request::new(())).await }
///     .with_lane(LaneContext::new(gray))
///     .await?;
/// assert_eq!(*res.body(), "v2");
/// # Ok(()) }
/// ```
pub struct LaneSwitch<S> {
    table: Arc<Table<S>>,
}

impl<S> Clone for LaneSwitch<S> {
    fn clone(&self) -> Self {
        LaneSwitch {
            table: self.table.clone(),
        }
    }
}

impl<S> fmt::Debug for LaneSwitch<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneSwitch")
            .field("service", &self.table.service)
            .field("strict", &self.table.strict)
            .finish_non_exhaustive()
    }
}

impl<S> LaneSwitch<S> {
    /// A builder for the switch of requests to `service`; targets are services.
    pub fn builder<'a>(spec: &'a LaneSpec, service: &str) -> SwitchBuilder<'a, S> {
        SwitchBuilder(RouterBuilder::new(spec, service))
    }

    /// What has been routed so far.
    pub fn stats(&self) -> RouterStats {
        self.table.stats()
    }
}

/// Builds a [`LaneSwitch`]; the same checks as [`RouterBuilder`].
#[derive(Debug)]
pub struct SwitchBuilder<'a, S>(RouterBuilder<'a, S>);

impl<'a, S> SwitchBuilder<'a, S> {
    /// The base service.
    #[must_use]
    pub fn base(self, service: S) -> Self {
        SwitchBuilder(self.0.base(service))
    }

    /// The service of the version in `lane`.
    #[must_use]
    pub fn lane(self, lane: Lane, service: S) -> Self {
        SwitchBuilder(self.0.lane(lane, service))
    }

    /// Fail lane requests for lanes the service lacks instead of falling back to base.
    #[must_use]
    pub fn strict(self, strict: bool) -> Self {
        SwitchBuilder(self.0.strict(strict))
    }

    /// The switch.
    pub fn build(self) -> Result<LaneSwitch<S>, RouterConfigError> {
        Ok(LaneSwitch {
            table: Arc::new(self.0.table(Ok)?),
        })
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LaneSwitch<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = RouterFuture<tower::util::Oneshot<S, Request<ReqBody>>>;

    /// Always ready: readiness is awaited on the chosen service inside the response future.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        match self.table.pick() {
            Ok((service, routed)) => {
                RouterFuture::routed(tower::ServiceExt::oneshot(service.clone(), req), routed)
            }
            Err(refused) => RouterFuture::refused(refused),
        }
    }
}

pin_project! {
    /// Response future of [`LaneRouter`] and [`LaneSwitch`].
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct RouterFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Routed { #[pin] inner: F, routed: Routed },
        Refused { error: Option<NoLaneVersion> },
    }
}

impl<F> RouterFuture<F> {
    fn routed(inner: F, routed: Routed) -> Self {
        RouterFuture {
            state: State::Routed { inner, routed },
        }
    }

    fn refused(error: NoLaneVersion) -> Self {
        RouterFuture {
            state: State::Refused { error: Some(error) },
        }
    }
}

impl<F> fmt::Debug for RouterFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Routed { routed, .. } => f.debug_tuple("Routed").field(routed).finish(),
            State::Refused { error } => f.debug_tuple("Refused").field(error).finish(),
        }
    }
}

impl<F, ResBody, E> Future for RouterFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<ResBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Routed { inner, routed } => {
                let mut res = ready!(inner.poll(cx)).map_err(Into::into)?;
                res.extensions_mut().insert(*routed);
                Poll::Ready(Ok(res))
            }
            StateProj::Refused { error } => Poll::Ready(Err(Box::new(
                error.take().expect("a refused future is polled once"),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graylane_core::LaneFutureExt;
    use std::convert::Infallible;
    use tower::{ServiceExt, service_fn};

    fn spec() -> LaneSpec {
        LaneSpec::from_yaml_str(
            "services: [{name: a}, {name: b}]\nlanes: [{name: gray, version: v2, services: [a]}, {name: blue, services: [a, b]}]",
        )
        .unwrap()
    }

    fn lane(s: &str) -> Lane {
        Lane::new(s).unwrap()
    }

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    async fn send(layer: &LaneRouterLayer, ctx: LaneContext) -> Result<Response<String>, BoxError> {
        let svc = layer.layer(service_fn(|req: Request<()>| async move {
            Ok::<_, Infallible>(Response::new(req.uri().to_string()))
        }));
        let req = Request::get("/x?y=1")
            .header("host", "stale")
            .body(())
            .unwrap();
        async { svc.oneshot(req).await }.with_lane(ctx).await
    }

    #[tokio::test]
    async fn routes_fall_back_and_count() {
        let layer = LaneRouterLayer::builder(&spec(), "b")
            .base(uri("http://b1:80"))
            .lane(lane("blue"), uri("http://b-blue:80"))
            .build()
            .unwrap();
        let gray = send(&layer, LaneContext::new(lane("gray"))).await.unwrap();
        assert_eq!(gray.body(), "http://b1:80/x?y=1");
        let routed = gray.extensions().get::<Routed>().unwrap();
        assert!(routed.is_fallback());
        let blue = send(&layer, LaneContext::new(lane("blue"))).await.unwrap();
        assert_eq!(blue.body(), "http://b-blue:80/x?y=1");
        let base = send(&layer, LaneContext::base()).await.unwrap();
        assert_eq!(base.body(), "http://b1:80/x?y=1");
        let stats = layer.stats();
        assert_eq!(stats.fallbacks(), 1);
        assert!(stats.routes.contains(&(lane("gray"), Lane::BASE, 1)));
        assert!(stats.routes.contains(&(lane("blue"), lane("blue"), 1)));
        assert!(stats.routes.contains(&(Lane::BASE, Lane::BASE, 1)));
    }

    #[tokio::test]
    async fn strict_mode_refuses() {
        let layer = LaneRouterLayer::builder(&spec(), "b")
            .base(uri("http://b1:80"))
            .lane(lane("blue"), uri("http://b-blue:80"))
            .strict(true)
            .build()
            .unwrap();
        let err = send(&layer, LaneContext::new(lane("gray")))
            .await
            .unwrap_err();
        let refused = err.downcast_ref::<NoLaneVersion>().unwrap();
        assert_eq!(refused.lane, lane("gray"));
        assert!(err.to_string().contains("no version in lane gray"));
        assert_eq!(layer.stats().refused, 1);
        assert!(send(&layer, LaneContext::base()).await.is_ok());
    }

    #[test]
    fn build_checks_against_the_spec() {
        let spec = spec();
        let e = |b: RouterBuilder<'_, Uri>| b.build().unwrap_err().to_string();
        assert!(
            e(LaneRouterLayer::builder(&spec, "zz").base(uri("http://x:1")))
                .contains("not in the lane spec")
        );
        assert!(e(LaneRouterLayer::builder(&spec, "a")).contains("no base endpoint"));
        assert!(
            e(LaneRouterLayer::builder(&spec, "a").base(uri("http://x:1")))
                .contains("no endpoint for it")
        );
        assert!(
            e(LaneRouterLayer::builder(&spec, "b")
                .base(uri("http://x:1"))
                .lane(lane("gray"), uri("http://g:1"))
                .lane(lane("blue"), uri("http://x:2")))
            .contains("endpoint was given")
        );
        assert!(
            e(LaneRouterLayer::builder(&spec, "b").base(uri("http://x:1/path")))
                .contains("without a path")
        );
        assert!(e(LaneRouterLayer::builder(&spec, "b").base(uri("/rel"))).contains("scheme"));
    }
}
