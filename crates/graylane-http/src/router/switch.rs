//! [`LaneSwitch`]: dispatches each request to the service of its lane's version, or to base.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use graylane_core::spec::LaneSpec;
use http::{Request, Response};
use tower::util::Oneshot;
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::{RouterBuilder, SwitchBuilder};
use super::table::{RouterStats, Table};
use crate::BoxError;

/// Dispatches each request to the service of its lane's version — for clients bound to one
/// endpoint, such as tonic `Channel`s — with the same fallback, strict mode and counters as
/// [`LaneRouterLayer`](super::LaneRouterLayer).
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

impl<S> LaneSwitch<S> {
    /// A builder for the switch of requests to `service`; targets are services.
    pub fn builder<'a>(spec: &'a LaneSpec, service: &str) -> SwitchBuilder<'a, S> {
        SwitchBuilder::new(RouterBuilder::new(spec, service))
    }

    pub(super) const fn new(table: Arc<Table<S>>) -> LaneSwitch<S> {
        LaneSwitch { table }
    }

    /// What has been routed so far.
    pub fn stats(&self) -> RouterStats {
        self.table.stats()
    }
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
            .field("service", &self.table.service())
            .field("strict", &self.table.strict())
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LaneSwitch<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<Oneshot<S, Request<ReqBody>>>;

    /// Always ready: readiness is awaited on the chosen service inside the response future.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        match self.table.pick() {
            Ok((service, routed)) => {
                ResponseFuture::routed(tower::ServiceExt::oneshot(service.clone(), req), routed)
            }
            Err(refused) => ResponseFuture::refused(refused),
        }
    }
}
