//! What the comparison has seen: [`MirrorReport`], per route and a ring of sample diffs.

use std::collections::BTreeMap;

use serde::Serialize;

/// What a [`MirrorLayer`](crate::MirrorLayer) comparing responses has seen so far: per route,
/// and the latest sample diffs. Serializes to the JSON served at `GET /graylane/mirror`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MirrorReport {
    /// One entry per route, by route.
    pub routes: Vec<RouteReport>,
    /// The latest differing comparisons, oldest first (a bounded ring).
    pub samples: Vec<SampleDiff>,
}

impl MirrorReport {
    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report is plain data")
    }

    /// The route's entry, if it has one.
    pub fn route(&self, route: &str) -> Option<&RouteReport> {
        self.routes.iter().find(|r| r.route == route)
    }
}

/// One route's comparisons.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RouteReport {
    /// The method and path template (`POST /quote`, `GET /orders/{id}`), or `other`.
    pub route: String,
    /// Requests whose primary and mirror responses were both compared.
    pub compared: u64,
    /// Compared requests with no difference beyond noise and ignored fields.
    pub identical: u64,
    /// Compared requests whose status differed.
    pub different_status: u64,
    /// ... whose status was the same and a compared header differed.
    pub different_header: u64,
    /// ... whose status and headers were the same and the body differed.
    pub different_body: u64,
    /// Mirrored requests not compared: a response too large, cut short, failed or late.
    pub skipped: u64,
    /// Noise copies compared with production (what noise is learned from).
    pub noise_copies: u64,
    /// The fields learned as noise: they differ between two runs of base.
    pub noise: Vec<String>,
    /// Whether the route's noise has settled (its last noise copies taught nothing new): it
    /// gets a tenth of the noise share until one does.
    pub noise_settled: bool,
    /// The fields that differed beyond noise and ignored ones (`shipping`, `header:etag`,
    /// `(status)`), each with the number of compared requests it differed in.
    pub fields: BTreeMap<String, u64>,
}

impl RouteReport {
    /// The counts by result, as the `graylane.mirror.compared` metric reports them:
    /// `identical`, `status`, `header`, `body`, `skipped`.
    pub fn results(&self) -> [(&'static str, u64); 5] {
        [
            ("identical", self.identical),
            ("status", self.different_status),
            ("header", self.different_header),
            ("body", self.different_body),
            ("skipped", self.skipped),
        ]
    }
}

/// A comparison that found differences, as kept: production payloads, redacted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SampleDiff {
    /// The request's id (its `x-request-id`, or the configured header), when it had one.
    pub request_id: Option<String>,
    /// Its route.
    pub route: String,
    /// What differed, beyond noise and ignored fields (at most eight).
    pub fields: Vec<FieldDiff>,
}

/// One differing field of a [`SampleDiff`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FieldDiff {
    /// `status`, `header` or `body`.
    pub part: &'static str,
    /// Where: `(status)`, `header:<name>`, a body path (`lines[0].qty`), `(body) line <n>`
    /// for text.
    pub path: String,
    /// Production's value (JSON text for JSON bodies), redacted and cut.
    pub primary: String,
    /// The mirror's.
    pub mirror: String,
}
