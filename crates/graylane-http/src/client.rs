//! The client layer: every outbound request made while a lane is current carries it.
//!
//! Works with any request type that is a [`graylane_core`] carrier: `http::Request<B>` (hyper,
//! the hyper-util client, tonic channels — tonic works on `http::Request` at the tower level)
//! and, with the `reqwest` feature, `reqwest::Request` (a `reqwest::Client` is a
//! `tower::Service<reqwest::Request>`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use graylane_core::{Lane, LaneContext, LaneFutureExt, LaneSet, Propagator};
//! use graylane_http::PropagateLaneLayer;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! let gray = Lane::new("gray")?;
//! let client = ServiceBuilder::new()
//!     .layer(PropagateLaneLayer::new(Propagator::new(LaneSet::new([gray]))))
//!     .service(service_fn(|req: http::Request<()>| async move {
//!         // Stands in for hyper / reqwest / a tonic channel: see what goes on the wire.
//!         Ok::<_, std::convert::Infallible>(req.headers()["x-gray-lane"].clone())
//!     }));
//! let sent = async { client.oneshot(http::Request::new(())).await }
//!     .with_lane(LaneContext::new(gray))
//!     .await?;
//! assert_eq!(sent, "gray");
//! # Ok(()) }
//! ```
//!
//! # Doesn't override existing headers
//!
//! A lane header the caller set on the request explicitly wins over the current lane.

use std::task::{Context, Poll};

use graylane_core::{LaneContext, Propagator};
use http::HeaderMap;
use tower_layer::Layer;
use tower_service::Service;

/// Layer that applies [`PropagateLane`].
#[derive(Clone, Debug)]
pub struct PropagateLaneLayer {
    propagator: Propagator,
}

impl PropagateLaneLayer {
    /// Injects the current lane with `propagator`'s wire names.
    pub const fn new(propagator: Propagator) -> PropagateLaneLayer {
        PropagateLaneLayer { propagator }
    }
}

impl<S> Layer<S> for PropagateLaneLayer {
    type Service = PropagateLane<S>;

    fn layer(&self, inner: S) -> PropagateLane<S> {
        PropagateLane {
            inner,
            propagator: self.propagator.clone(),
        }
    }
}

/// Middleware that writes the current lane onto outbound requests. See [`PropagateLaneLayer`].
#[derive(Clone, Debug)]
pub struct PropagateLane<S> {
    inner: S,
    propagator: Propagator,
}

crate::macros::inner_accessors!(PropagateLane<S>);

/// A request type whose headers the client layer can write: `http::Request<B>`, and
/// `reqwest::Request` with the `reqwest` feature.
pub trait OutboundRequest {
    /// The request's headers.
    fn headers_mut(&mut self) -> &mut HeaderMap;
}

impl<B> OutboundRequest for http::Request<B> {
    fn headers_mut(&mut self) -> &mut HeaderMap {
        http::Request::headers_mut(self)
    }
}

impl<S, R> Service<R> for PropagateLane<S>
where
    S: Service<R>,
    R: OutboundRequest,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: R) -> S::Future {
        // `call` runs in the caller's poll, where its lane is attached.
        self.propagator
            .inject(&LaneContext::current(), req.headers_mut());
        self.inner.call(req)
    }
}
