//! The kernel of graylane: the lane, its wire format, coloring rules, trust and async
//! propagation.
//!
//! A *lane* is a named traffic + data environment; [`Lane::BASE`] is production. A gray request
//! carries its lane on every hop (HTTP, gRPC, Kafka) and writes its data into the lane's shadow
//! namespaces, falling back to base only where a service has no version in the lane. This crate
//! holds what every transport adapter shares; it has no transport dependency of its own (the
//! `http` carrier is behind a feature).
//!
//! - [`Lane`], [`LaneSet`]: validated names; only configured lanes are accepted from the wire.
//! - [`LaneContext`]: the lane of the work in progress (requested vs. served lane, mirror flag),
//!   current per thread and carried across `.await`, spawns and blocking pools by [`task`].
//! - [`Propagator`]: reads and writes the lane on carriers ([`Extractor`], [`Injector`]): the
//!   `x-gray-lane` header and the W3C `baggage` member `gray.lane`. Lenient and counted.
//! - [`coloring`]: ingress rules, swappable at run time. [`trust`]: signed lane tokens.
//!   [`Edge`]: the trust boundary that ties both together.
//! - [`spec::LaneSpec`]: the one document all of it is configured from;
//!   [`compile`](spec::LaneSpec::compile) builds the propagator, rules and edge once, to share.
//! - [`Percent`]: the shares that coloring and mirroring draw, in basis points.
//!
//! ```
//! use graylane_core::spec::LaneSpec;
//! use graylane_core::coloring::SimpleRequest;
//! use graylane_core::{current_lane, LaneFutureExt};
//!
//! let spec = LaneSpec::from_yaml_str(r#"
//! services: [{ name: orders }]
//! lanes: [{ name: gray, version: v2, services: [orders] }]
//! coloring:
//!   rules: [{ lane: gray, match: { header: { name: x-user-group, exact: beta } } }]
//! "#)?;
//! // Once per process: one propagator (one set of counters) for the edge and every layer.
//! let compiled = spec.compile()?;
//!
//! // At the edge: a beta user is colored gray.
//! let mut req = SimpleRequest::new("/checkout").header("x-user-group", "beta");
//! let ctx = compiled.edge().admit(&mut req).context();
//! assert_eq!(ctx.lane(), "gray");
//!
//! // In the handler: the lane is current, across awaits and spawned tasks.
//! let seen = futures_lite_block_on(async { current_lane() }.with_lane(ctx));
//! assert_eq!(seen, "gray");
//!
//! // On the way out: the next hop gets the lane on the wire.
//! let mut outbound = std::collections::HashMap::new();
//! compiled.propagator().inject(&ctx, &mut outbound);
//! assert_eq!(outbound["x-gray-lane"], "gray");
//! # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `yaml` (default), `toml` (default): load lane specs from these formats.
//! - `http`: `http::HeaderMap` carrier and `RequestView` for `http::Request`.
//! - `tokio`: [`task::spawn`] and [`task::spawn_blocking`], which keep the lane.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod coloring;
mod context;
mod edge;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod lane;
pub mod live;
mod percent;
pub mod spec;
pub mod stats;
pub mod task;
pub mod trust;
pub mod wire;

pub use context::{LaneContext, LaneGuard, Origin, current_lane};
pub use edge::{Admission, Edge};
pub use lane::{Lane, LaneError, LaneSet};
pub use percent::Percent;
pub use stats::Rejection;
pub use task::{LaneFutureExt, WithLane};
pub use wire::{Extractor, Injector, Key, Propagator, WireConfig, WireError};
