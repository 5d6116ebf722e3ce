//! [`LaneRouter`]: points each request at its lane's endpoint, or at base.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::endpoint::Endpoint;
use super::future::ResponseFuture;
use super::table::Table;
use crate::BoxError;

/// Middleware that points requests at the right lane's endpoint. See
/// [`LaneRouterLayer`](super::LaneRouterLayer).
#[derive(Clone)]
pub struct LaneRouter<S> {
    inner: S,
    table: Arc<Table<Endpoint>>,
}

impl<S> LaneRouter<S> {
    pub(super) const fn new(inner: S, table: Arc<Table<Endpoint>>) -> LaneRouter<S> {
        LaneRouter { inner, table }
    }
}

crate::macros::inner_accessors!(LaneRouter<S>);

impl<S: fmt::Debug> fmt::Debug for LaneRouter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneRouter")
            .field("inner", &self.inner)
            .field("service", &self.table.service())
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
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let (endpoint, routed) = match self.table.pick() {
            Ok(picked) => picked,
            Err(refused) => return ResponseFuture::refused(refused),
        };
        *req.uri_mut() = endpoint.apply(req.uri());
        // The Host header belonged to the old authority; the client sets the new one.
        req.headers_mut().remove(http::header::HOST);
        ResponseFuture::routed(self.inner.call(req), routed)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use graylane_core::{Lane, LaneContext, LaneFutureExt};
    use http::{Request, Response};
    use tower::{Layer, ServiceExt, service_fn};

    use super::super::fixtures::{lane, spec, uri};
    use crate::BoxError;
    use crate::router::error::NoLaneVersion;
    use crate::router::{LaneRouterLayer, Routed};

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
}
