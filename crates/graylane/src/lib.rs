#![doc = include_str!("../../../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
//!
//! # This crate
//!
//! The facade: depend on `graylane` and turn on a feature per integration. The kernel
//! ([`graylane_core`]) is re-exported at the root; each transport adapter is re-exported as a
//! module when its feature is on:
//!
//! | feature | module | what |
//! |---|---|---|
//! | `yaml`, `toml` (default) | [`spec`] | load lane specs from YAML / TOML |
//! | `tokio` | [`task`] | `spawn` / `spawn_blocking` that keep the lane |
//! | `http` | `http` | tower layers: edge/mesh server layer, client propagation, lane routing, mirroring |
//! | `axum` | `http` | the `RequestLane` extractor |
//! | `reqwest` | `http::reqwest` (`otel::reqwest` with `otel`) | lane propagation for `reqwest::Client`; with `otel`, trace context too |
//! | `reqwest-middleware` | `otel::reqwest` | `LaneTraceLayer` as a `reqwest_middleware::Middleware` |
//! | `grpc` | `grpc` | tonic metadata carriers, an interceptor, refusals as a `Status` |
//! | `grpc-unary` | `grpc::unary` | a unary gRPC service from an async function |
//! | `kafka` | `kafka` | lane-stamped producers, lane-aware consumers |
//! | `redis` | `redis` | lane key namespaces for redis-rs |
//! | `sqlx`, `mysql` | `sqlx` | shadow schemas (PostgreSQL; MySQL/MariaDB) |
//! | `otel` | `otel` | OpenTelemetry propagator, lane span attributes, per-lane metrics |
//! | `prometheus` | `otel` | the Prometheus text exposition of those metrics |

pub use graylane_core::*;

/// The HTTP tower layers: [`graylane_http`] (feature `http`; `axum` and `reqwest` add their
/// integrations). They serve tonic as they are: gRPC is HTTP/2 underneath.
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use graylane_http as http;

/// Renamed to [`graylane::http`](crate::http).
///
/// rustc does not warn on paths through a deprecated module (rust-lang/rust#47236), so each
/// type and constant here is a deprecated alias of its own. Traits, tuple and unit structs
/// (`OutboundRequest`, `RequestLane`, `MissingLaneLayer`, used in patterns) and the submodules
/// cannot be aliased: they are re-exported as they are, without a warning.
#[cfg(feature = "http")]
#[doc(hidden)]
#[deprecated(note = "renamed to `graylane::http`")]
#[allow(deprecated)]
pub mod layers {
    pub use graylane_http::{BoxError, OutboundRequest, mirror, router, server};
    #[cfg(feature = "axum")]
    pub use graylane_http::{MissingLaneLayer, RequestLane};

    macro_rules! renamed {
        ($($name:ident $(<$($p:tt),+>)?),+ $(,)?) => {$(
            #[deprecated(note = "renamed to `graylane::http`")]
            pub type $name $(<$($p),+>)? = graylane_http::$name $(<$($p),+>)?;
        )+};
    }
    renamed!(
        LaneLayer, LaneService<S>, PropagateLane<S>, PropagateLaneLayer, LaneRouter<S>,
        LaneRouterLayer, LaneSwitch<S>, RouterBuilder<'a, T>, SwitchBuilder<'a, S>, Routed,
        RouterStats, NoLaneVersion, RouterConfigError, Mirror<S, M>, MirrorConfig,
        MirrorLayer<M>, MirrorStats,
    );

    #[deprecated(note = "renamed to `graylane::http::RESPONSE_LANE_HEADER`")]
    pub const RESPONSE_LANE_HEADER: &str = graylane_http::RESPONSE_LANE_HEADER;
}

/// tonic support: [`graylane_grpc`] (feature `grpc`; `grpc-unary` adds `unary_fn`).
#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub use graylane_grpc as grpc;

/// Kafka: [`graylane_kafka`] (feature `kafka`).
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub use graylane_kafka as kafka;

/// OpenTelemetry: [`graylane_otel`] (feature `otel`).
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub use graylane_otel as otel;

/// Redis key namespaces: [`graylane_redis`] (feature `redis`).
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use graylane_redis as redis;

/// SQL shadow schemas: [`graylane_sqlx`] (feature `sqlx`; `mysql` for MySQL/MariaDB).
#[cfg(feature = "sqlx")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
pub use graylane_sqlx as sqlx;

// The guides in `docs/` run as doc tests of the facade, with every feature on (the
// dev-dependency on `graylane` itself turns them on), so each sample compiles against the
// paths a user writes. Compiled only for doc tests: nothing of it is part of the crate.

/// `docs/architecture.md`.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/architecture.md")]
mod architecture_guide {}

/// `docs/lane-spec.md`.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/lane-spec.md")]
mod lane_spec_guide {}

/// `docs/http-grpc.md`.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/http-grpc.md")]
mod http_grpc_guide {}

/// `docs/data-lanes.md`.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/data-lanes.md")]
mod data_lanes_guide {}

/// `docs/kafka-lanes.md`.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/kafka-lanes.md")]
mod kafka_lanes_guide {}

/// `docs/observability.md`.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/observability.md")]
mod observability_guide {}

/// `docs/mesh.md`.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/mesh.md")]
mod mesh_guide {}

/// `docs/mirroring.md`.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/mirroring.md")]
mod mirroring_guide {}

/// The old module name still builds, with a deprecation warning:
///
/// ```
/// #![allow(deprecated)]
/// use graylane::layers::LaneLayer;
/// ```
///
/// and that warning is there (this fails to build only because of it):
///
/// ```compile_fail
/// #![deny(deprecated)]
/// use graylane::layers::LaneLayer;
/// ```
#[cfg(doctest)]
mod layers_deprecation {}
