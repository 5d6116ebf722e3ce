//! Test support for graylane and for the services built on it, the way `tower-test` serves
//! tower: what graylane's own tests use, published so that yours can use it too.
//!
//! - [`kafka`] (feature `kafka`): Kafka tests written once and run on each broker
//!   ([`kafka::TestBroker`], [`kafka_tests!`]): librdkafka's mock cluster in process
//!   ([`kafka::MockBroker`], and the `graylane-kafka-broker` binary that hosts one) and the
//!   real Apache Kafka brokers the environment names;
//! - [`services`]: where the local PostgreSQL, MariaDB and Redis are (`scripts/services up`
//!   starts them; `DATABASE_URL`, `MYSQL_URL`, `REDIS_URL` override), and unique names for a
//!   test's schemas, databases and keys;
//! - [`pgbouncer`]: a PgBouncer of the test's own in front of the local PostgreSQL, in session
//!   or transaction mode;
//! - [`prometheus`]: a real Prometheus server of the test's own, scraping its targets every
//!   second;
//! - [`otel`] (feature `otel`): in-memory span and metric exporters wired the way a service
//!   wires graylane's OpenTelemetry parts;
//! - [`grpc::Text`] (feature `grpc`): a one-string prost message, for unary gRPC tests without
//!   protoc.
//!
//! ```
//! let schema = graylane_testkit::services::unique("orders");
//! assert!(schema.starts_with("gltest_orders_"));
//! // A plain SQL identifier: no quoting needed.
//! assert!(schema.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric()));
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]
// `kafka` reaches one librdkafka setting that rdkafka does not wrap: the only `unsafe` in
// graylane's published crates (the production crates forbid it), justified where it is.
#![deny(unsafe_code)]

#[cfg(feature = "browser")]
#[cfg_attr(docsrs, doc(cfg(feature = "browser")))]
pub mod browser;
pub mod pgbouncer;
pub mod prometheus;
pub mod services;

#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub mod grpc;
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub mod kafka;
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub mod otel;
