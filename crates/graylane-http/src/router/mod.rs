//! Lane routing without a mesh: send each request to the lane's endpoint of the target service
//! when the spec says the service has a version in that lane, and to base otherwise.
//!
//! The router only picks the endpoint; the lane itself stays on the request (stack a
//! [`PropagateLaneLayer`](crate::PropagateLaneLayer) under it), so after a fallback the next hop
//! that has the lane serves it again (re-entry). In strict mode a lane request for a service
//! without that lane fails with [`NoLaneVersion`](error::NoLaneVersion) instead of falling back.
//!
//! Every response carries a [`Routed`] extension (requested and served lane), and
//! [`LaneRouterLayer::stats`] counts requests per requested lane, fallbacks and refusals.
//!
//! What the module holds:
//!
//! - [`LaneRouterLayer`] and the builders ([`RouterBuilder`], [`SwitchBuilder`]), which check
//!   the targets against the spec;
//! - the two services: [`LaneRouter`] rewrites the request's URI to the lane's endpoint (one
//!   HTTP client for every lane), [`LaneSwitch`] hands the request to the lane's own service
//!   (one tonic `Channel` per lane);
//! - the routing table both share: fallback, strict mode, counters;
//! - [`future::ResponseFuture`], the response future of both services;
//! - [`error`]: why a router could not be built, and the strict-mode refusal.
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

mod endpoint;
pub mod error;
pub mod future;
mod lane_router;
mod layer;
mod switch;
mod table;

pub(crate) use endpoint::Endpoint;
pub use lane_router::LaneRouter;
pub use layer::{LaneRouterLayer, RouterBuilder, SwitchBuilder};
pub use switch::LaneSwitch;
pub use table::{Routed, RouterStats};

#[cfg(test)]
mod fixtures {
    use graylane_core::Lane;
    use graylane_core::spec::LaneSpec;
    use http::Uri;

    /// Service `a` has versions in `gray` and `blue`, service `b` only in `blue`.
    pub(super) fn spec() -> LaneSpec {
        LaneSpec::from_yaml_str(
            "services: [{name: a}, {name: b}]\nlanes: [{name: gray, version: v2, services: [a]}, {name: blue, services: [a, b]}]",
        )
        .unwrap()
    }

    pub(super) fn lane(s: &str) -> Lane {
        Lane::new(s).unwrap()
    }

    pub(super) fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }
}
