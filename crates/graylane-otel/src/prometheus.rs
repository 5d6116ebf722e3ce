//! Prometheus text exposition of the lane metrics (feature `prometheus`), for a `/metrics`
//! endpoint: OTel instrument names become Prometheus names (`graylane.requests` →
//! `graylane_requests_total`, `graylane.request.duration` in seconds →
//! `graylane_request_duration_seconds`), attributes become labels (`gray.lane` → `gray_lane`).
//!
//! ```
//! use graylane_core::{Lane, LaneContext};
//! use graylane_otel::{Kind, LaneMetrics, prometheus::Exposition};
//! use opentelemetry::metrics::MeterProvider as _;
//!
//! let exposition = Exposition::new()?;
//! let metrics = LaneMetrics::new(&exposition.provider().meter("graylane"), "orders");
//! metrics.record(Kind::Server, LaneContext::new(Lane::new("gray")?), Default::default(), false);
//! let text = exposition.render()?;
//! assert!(text.contains(r#"graylane_requests_total{"#));
//! assert!(text.contains(r#"gray_lane="gray""#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use opentelemetry_sdk::metrics::SdkMeterProvider;

/// A meter provider whose metrics render as Prometheus text.
#[derive(Debug, Clone)]
pub struct Exposition {
    registry: prometheus::Registry,
    provider: SdkMeterProvider,
}

impl Exposition {
    /// A fresh registry and meter provider.
    pub fn new() -> Result<Exposition, opentelemetry_sdk::error::OTelSdkError> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_target_info()
            .scope_info_enabled(false)
            .build()?;
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        Ok(Exposition { registry, provider })
    }

    /// The meter provider to create [`LaneMetrics`](crate::LaneMetrics) on.
    pub fn provider(&self) -> &SdkMeterProvider {
        &self.provider
    }

    /// The current values, in the Prometheus text format (`text/plain; version=0.0.4`).
    pub fn render(&self) -> Result<String, prometheus::Error> {
        prometheus::TextEncoder::new().encode_to_string(&self.registry.gather())
    }
}
