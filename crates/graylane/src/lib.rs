#![doc = include_str!("../../../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
//!
//! # This crate
//!
//! The facade: depend on `graylane` and turn on a feature per integration. The kernel
//! ([`graylane_core`]) is re-exported at the root; each transport adapter is re-exported as a
//! module when its feature is on.

pub use graylane_core::*;

/// The HTTP tower layers: [`graylane_http`] (feature `http`; `axum` and `reqwest` add their
/// integrations).
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use graylane_http as layers;

/// tonic support: [`graylane_grpc`] (feature `tonic`).
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
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
