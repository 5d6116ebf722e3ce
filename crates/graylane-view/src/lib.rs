//! The live lane view: one page that shows, as it happens, where every lane's traffic and
//! data go — the topology with each lane's edges (fallbacks dashed), per service, version
//! and lane the rates, errors, latency and fallbacks beside base's, the traffic chart, the
//! Kafka lane consumers and who owns each lane now, the trust counters, the latest leak
//! audit and the mirror comparison.
//!
//! It reads graylane's metrics only (`docs/observability.md`): from the services' `/metrics`
//! pages ([`Source::Scrape`]) or from a Prometheus server ([`Source::Prometheus`]). Panels are
//! rendered on the server (SVG for the topology and the chart) and pushed to the page by
//! server-sent events; every asset is in the binary.
//!
//! ```no_run
//! use graylane_view::{Source, View, ViewConfig};
//!
//! # async fn run() -> std::io::Result<()> {
//! let view = View::start(ViewConfig::new(Source::Scrape(vec![
//!     "http://127.0.0.1:9464/metrics".to_owned(),
//! ])));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
//! axum::serve(listener, view.router()).await
//! # }
//! ```
//!
//! `graylane view` runs it from the command line; the shop's `--serve` mounts it at
//! `http://127.0.0.1:8080/lanes/`.

pub mod exposition;
pub mod history;
pub mod model;
mod render;
mod server;
pub mod source;

pub use render::RATE_WINDOW;
pub use server::{View, ViewConfig};
pub use source::Source;
