//! Tower layers that carry gray-release lanes across HTTP hops.
//!
//! - [`LaneLayer`] (server): at the edge, strips client lane marks, verifies signed tokens and
//!   colors the request; inside the mesh, extracts the lane. Either way the handler runs in the
//!   lane and finds its [`LaneContext`](graylane_core::LaneContext) in the request extensions
//!   (axum: [`RequestLane`]).
//! - [`PropagateLaneLayer`] (client): every outbound request made while a lane is current
//!   carries it — hyper, the hyper-util client, tonic channels, and `reqwest` (feature).
//! - [`LaneRouterLayer`] (client): lane routing without a mesh, with fallback to base and
//!   re-entry, or a clear error in strict mode; [`LaneSwitch`] does the same across per-lane
//!   services (one tonic `Channel` per lane).
//! - [`MirrorLayer`]: copies a share of traffic to a mirror target on a shadow lane,
//!   fire-and-forget, bounded.
//!
//! The layers, their services and builders are all here at the top; each middleware's module
//! ([`server`], [`router`], [`mirror`]) also holds its response future, tower style, as
//! `future::ResponseFuture` ([`PropagateLane`] returns its inner service's future as it is).
//!
//! The layers work on `http::Request`, so the same ones serve gRPC (tonic); `graylane-grpc`
//! adds the tonic-specific pieces. A typical service:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use graylane_core::spec::LaneSpec;
//! use graylane_http::{LaneLayer, PropagateLaneLayer};
//! use tower::ServiceBuilder;
//!
//! let spec = LaneSpec::from_yaml_str("services: [{name: orders}]\nlanes: [{name: gray, services: [orders]}]")?;
//! let gray = graylane_core::Lane::new("gray")?;
//!
//! // Inbound: this is the gray deployment of `orders`, inside the mesh.
//! let server_layer = LaneLayer::mesh(spec.propagator()).serving(gray);
//! // Outbound: its calls carry the lane of the request being handled.
//! let client_layer = PropagateLaneLayer::new(spec.propagator());
//! # let _ = (ServiceBuilder::new().layer(server_layer), ServiceBuilder::new().layer(client_layer));
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod macros;
pub mod mirror;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
pub mod router;
pub mod server;

pub use client::{OutboundRequest, PropagateLane, PropagateLaneLayer};
pub use mirror::body::MirrorBody;
pub use mirror::compare::{CompareConfig, MirrorReport};
pub use mirror::{Mirror, MirrorConfig, MirrorLayer, MirrorStats};
pub use router::error::{NoLaneVersion, RouterConfigError};
pub use router::{
    LaneRouter, LaneRouterLayer, LaneSwitch, Routed, RouterBuilder, RouterStats, SwitchBuilder,
};
pub use server::{LaneLayer, LaneService, RESPONSE_LANE_HEADER};
#[cfg(feature = "axum")]
pub use server::{MissingLaneLayer, RequestLane};

/// The error type of the middlewares that can fail on their own ([`LaneRouter`],
/// [`LaneSwitch`], [`Mirror`]): the inner service's error, boxed, or theirs (such as
/// [`NoLaneVersion`]).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response future of [`LaneRouter`] and [`LaneSwitch`].
#[deprecated(note = "renamed to `graylane_http::router::future::ResponseFuture`")]
pub type RouterFuture<F> = router::future::ResponseFuture<F>;

/// The response future of [`Mirror`].
#[deprecated(note = "renamed to `graylane_http::mirror::future::ResponseFuture`")]
pub type MirrorFuture<F, B> = mirror::future::ResponseFuture<F, B>;

/// The response future of [`LaneService`].
#[deprecated(note = "moved to `graylane_http::server::future::ResponseFuture`")]
pub type ResponseFuture<F> = server::future::ResponseFuture<F>;

#[cfg(test)]
mod tests {
    use std::any::TypeId;

    fn same<A: 'static, B: 'static>() -> bool {
        TypeId::of::<A>() == TypeId::of::<B>()
    }

    #[test]
    #[allow(deprecated)]
    fn the_old_future_names_still_name_the_futures() {
        assert!(same::<
            crate::RouterFuture<()>,
            crate::router::future::ResponseFuture<()>,
        >());
        assert!(same::<
            crate::MirrorFuture<(), ()>,
            crate::mirror::future::ResponseFuture<(), ()>,
        >());
        assert!(same::<
            crate::ResponseFuture<()>,
            crate::server::future::ResponseFuture<()>,
        >());
    }
}
