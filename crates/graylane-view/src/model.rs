//! What the view knows at one moment: graylane's series (`docs/observability.md`) summed over
//! the targets, keyed by what the panels show. Everything here is a total since each target
//! started; rates come from two of these ([`crate::history`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::exposition::Sample;

/// One kind of hop a service recorded: a request it served or a record it consumed, in a
/// lane, served by a lane.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HopKey {
    /// `graylane_service`.
    pub service: String,
    /// `graylane_kind`: `server` or `consumer`.
    pub kind: String,
    /// `gray_lane`: the lane of the request or record.
    pub lane: String,
    /// `gray_served`: the lane whose version served it (base after a fallback).
    pub served: String,
    /// `gray_mirror`: a mirror copy.
    pub mirror: bool,
    /// `graylane_peer`: the topic a consumer read; empty for a server.
    pub peer: String,
}

impl HopKey {
    /// Whether base served a lane's work (the service has no version in the lane, or its
    /// lane consumer was down).
    pub fn is_fallback(&self) -> bool {
        self.lane != self.served
    }
}

/// A client call: `service`, served in `served`, called `peer` in `lane`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallKey {
    /// The caller.
    pub service: String,
    /// The lane the caller's version serves.
    pub served: String,
    /// The callee service, or the topic written.
    pub peer: String,
    /// The request's lane.
    pub lane: String,
}

/// Counts and latency of one [`HopKey`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// Requests or records.
    pub requests: f64,
    /// Of them, errors.
    pub errors: f64,
    /// Cumulative histogram buckets by upper bound, sorted, `+Inf` last.
    pub buckets: Vec<(f64, f64)>,
}

impl Figures {
    fn add(&mut self, other: &Figures) {
        self.requests += other.requests;
        self.errors += other.errors;
        for &(bound, n) in &other.buckets {
            self.add_bucket(bound, n);
        }
    }

    fn add_bucket(&mut self, bound: f64, n: f64) {
        match self.buckets.iter_mut().find(|(b, _)| *b == bound) {
            Some((_, count)) => *count += n,
            None => {
                self.buckets.push((bound, n));
                self.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
        }
    }

    /// `errors / requests`; 0 without requests.
    pub fn error_ratio(&self) -> f64 {
        if self.requests > 0.0 {
            self.errors / self.requests
        } else {
            0.0
        }
    }

    /// The `q` quantile in seconds, as `histogram_quantile`.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        crate::exposition::quantile(q, &self.buckets)
    }

    /// The figures summed over several keys.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Figures>) -> Figures {
        let mut out = Figures::default();
        for f in all {
            out.add(f);
        }
        out
    }
}

/// One Kafka lane consumer instance (`graylane_consumer_*`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Consumer {
    /// Records by how they were handled: `own`, `fallback`, `replayed`, `skipped`.
    pub records: BTreeMap<String, f64>,
    /// `grant` and `release` counts.
    pub handovers: BTreeMap<String, f64>,
    /// Partitions assigned now.
    pub assigned: f64,
    /// Of them, those a lane owns now.
    pub granted: f64,
}

/// Everything the panels read, as totals.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    /// Served requests and consumed records.
    pub hops: BTreeMap<HopKey, Figures>,
    /// Client calls with a peer (what draws edges).
    pub calls: BTreeMap<CallKey, f64>,
    /// Fallbacks by `(service, lane)`.
    pub fallbacks: BTreeMap<(String, String), f64>,
    /// Lane consumers by `(service, lane, instance)`.
    pub consumers: BTreeMap<(String, String, String), Consumer>,
    /// Lane marks from untrusted clients stripped at the edge.
    pub stripped: f64,
    /// Lane tokens rejected, by reason.
    pub tokens_rejected: BTreeMap<String, f64>,
    /// Lane values read as base, by reason.
    pub values_rejected: BTreeMap<String, f64>,
    /// Mirror comparisons by route, then result.
    pub compared: BTreeMap<String, BTreeMap<String, f64>>,
    /// Mirror copies by result.
    pub copies: BTreeMap<String, f64>,
    /// Leak audits run, if any target reports them.
    pub audit_runs: Option<f64>,
    /// The latest audit's findings by name.
    pub findings: BTreeMap<String, f64>,
}

fn bump<K: Ord>(map: &mut BTreeMap<K, f64>, key: K, n: f64) {
    *map.entry(key).or_default() += n;
}

impl Totals {
    /// Adds one target's samples (a scrape of its `/metrics`, or Prometheus's series).
    pub fn add<'a>(&mut self, samples: impl IntoIterator<Item = Sample<'a>>) {
        for s in samples {
            self.add_sample(&s);
        }
    }

    fn add_sample(&mut self, s: &Sample<'_>) {
        let get = |k: &str| s.label(k).unwrap_or_default().to_owned();
        let value = s.value;
        if !value.is_finite() {
            return;
        }
        match s.name {
            "graylane_requests_total"
            | "graylane_request_duration_seconds_bucket"
            | "graylane_request_duration_seconds_count" => {
                let kind = get("graylane_kind");
                if kind == "client" {
                    // A call without a peer draws nothing; a mirror copy's is not traffic.
                    if s.name == "graylane_requests_total"
                        && !get("graylane_peer").is_empty()
                        && s.label("gray_mirror") != Some("true")
                    {
                        let key = CallKey {
                            service: get("graylane_service"),
                            served: get("gray_served"),
                            peer: get("graylane_peer"),
                            lane: get("gray_lane"),
                        };
                        bump(&mut self.calls, key, value);
                    }
                    return;
                }
                let key = HopKey {
                    service: get("graylane_service"),
                    kind,
                    lane: get("gray_lane"),
                    served: get("gray_served"),
                    mirror: s.label("gray_mirror") == Some("true"),
                    peer: get("graylane_peer"),
                };
                let figures = self.hops.entry(key).or_default();
                match s.name {
                    "graylane_requests_total" => {
                        figures.requests += value;
                        if s.label("graylane_outcome") == Some("error") {
                            figures.errors += value;
                        }
                    }
                    "graylane_request_duration_seconds_bucket" => {
                        let bound = match s.label("le") {
                            Some("+Inf") => f64::INFINITY,
                            Some(le) => le.parse().unwrap_or(f64::NAN),
                            None => f64::NAN,
                        };
                        if !bound.is_nan() {
                            figures.add_bucket(bound, value);
                        }
                    }
                    _ => {}
                }
            }
            "graylane_fallbacks_total" => bump(
                &mut self.fallbacks,
                (get("graylane_service"), get("gray_lane")),
                value,
            ),
            "graylane_consumer_records_total"
            | "graylane_consumer_handovers_total"
            | "graylane_consumer_partitions" => {
                let key = (
                    get("graylane_service"),
                    get("gray_lane"),
                    get("graylane_instance"),
                );
                let c = self.consumers.entry(key).or_default();
                match s.name {
                    "graylane_consumer_records_total" => {
                        bump(&mut c.records, get("graylane_handled"), value);
                    }
                    "graylane_consumer_handovers_total" => {
                        bump(&mut c.handovers, get("graylane_handover"), value);
                    }
                    _ => match s.label("graylane_share") {
                        Some("assigned") => c.assigned += value,
                        Some("granted") => c.granted += value,
                        _ => {}
                    },
                }
            }
            "graylane_lane_headers_stripped_total" => self.stripped += value,
            "graylane_tokens_rejected_total" => {
                bump(&mut self.tokens_rejected, get("graylane_reason"), value);
            }
            "graylane_lane_values_rejected_total" => {
                bump(&mut self.values_rejected, get("graylane_reason"), value);
            }
            "graylane_mirror_compared_total" => bump(
                self.compared.entry(get("graylane_route")).or_default(),
                get("graylane_result"),
                value,
            ),
            "graylane_mirror_copies_total" => {
                bump(&mut self.copies, get("graylane_result"), value);
            }
            "graylane_audit_runs_total" => *self.audit_runs.get_or_insert(0.0) += value,
            "graylane_audit_findings" => bump(&mut self.findings, get("graylane_finding"), value),
            _ => {}
        }
    }

    /// The lanes seen, base first.
    pub fn lanes(&self) -> Vec<String> {
        let mut lanes: Vec<String> = self
            .hops
            .keys()
            .map(|k| k.lane.clone())
            .chain(self.calls.keys().map(|k| k.lane.clone()))
            .collect();
        lanes.sort_by(|a, b| (a != "base", a).cmp(&(b != "base", b)));
        lanes.dedup();
        lanes
    }

    /// The services nobody calls (no client names them as its peer): where requests enter.
    pub fn entry_services(&self) -> BTreeSet<String> {
        let called: BTreeSet<&str> = self.calls.keys().map(|k| k.peer.as_str()).collect();
        self.hops
            .keys()
            .filter(|k| k.kind == "server" && !called.contains(k.service.as_str()))
            .map(|k| k.service.clone())
            .collect()
    }

    /// Whether `key` is a request from outside: served, not a mirror copy, by an entry
    /// service (see [`entry_services`](Self::entry_services)).
    pub fn is_entry(entries: &BTreeSet<String>, key: &HopKey) -> bool {
        key.kind == "server" && !key.mirror && entries.contains(&key.service)
    }

    /// The peers that are topics: those consumers read.
    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self
            .hops
            .keys()
            .filter(|k| k.kind == "consumer" && !k.peer.is_empty())
            .map(|k| k.peer.clone())
            .collect();
        topics.sort();
        topics.dedup();
        topics
    }

    /// What grew from `before` to `self` (a counter that dropped restarted: it counts from
    /// zero since, as Prometheus's `increase` assumes). Gauges are `self`'s.
    pub fn since(&self, before: &Totals) -> Totals {
        let grow = |now: f64, was: Option<f64>| match was {
            Some(was) if now >= was => now - was,
            _ => now,
        };
        let mut out = self.clone();
        for (k, f) in &mut out.hops {
            if let Some(was) = before.hops.get(k) {
                f.requests = grow(f.requests, Some(was.requests));
                f.errors = grow(f.errors, Some(was.errors));
                for (bound, n) in &mut f.buckets {
                    let then = was.buckets.iter().find(|(b, _)| b == bound).map(|b| b.1);
                    *n = grow(*n, then);
                }
            }
        }
        for (k, n) in &mut out.calls {
            *n = grow(*n, before.calls.get(k).copied());
        }
        for (k, n) in &mut out.fallbacks {
            *n = grow(*n, before.fallbacks.get(k).copied());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::samples;

    const PAGE: &str = r#"
graylane_requests_total{graylane_service="orders",graylane_kind="server",gray_lane="gray",gray_served="gray",gray_mirror="false",graylane_outcome="ok"} 9
graylane_requests_total{graylane_service="orders",graylane_kind="server",gray_lane="gray",gray_served="gray",gray_mirror="false",graylane_outcome="error"} 1
graylane_requests_total{graylane_service="orders",graylane_kind="client",gray_lane="gray",gray_served="gray",gray_mirror="false",graylane_outcome="ok",graylane_peer="inventory"} 10
graylane_requests_total{graylane_service="orders",graylane_kind="client",gray_lane="gray",gray_served="gray",gray_mirror="false",graylane_outcome="ok"} 4
graylane_request_duration_seconds_bucket{graylane_service="orders",graylane_kind="server",gray_lane="gray",gray_served="gray",gray_mirror="false",graylane_outcome="ok",le="0.01"} 9
graylane_request_duration_seconds_bucket{graylane_service="orders",graylane_kind="server",gray_lane="gray",gray_served="gray",gray_mirror="false",graylane_outcome="error",le="0.01"} 0
graylane_request_duration_seconds_bucket{graylane_service="orders",graylane_kind="server",gray_lane="gray",gray_served="gray",gray_mirror="false",graylane_outcome="error",le="+Inf"} 1
graylane_request_duration_seconds_bucket{graylane_service="orders",graylane_kind="server",gray_lane="gray",gray_served="gray",gray_mirror="false",graylane_outcome="ok",le="+Inf"} 9
graylane_consumer_records_total{graylane_service="fulfillment",gray_lane="base",graylane_instance="b1",graylane_handled="fallback"} 3
graylane_consumer_partitions{graylane_service="fulfillment",gray_lane="base",graylane_instance="b1",graylane_share="assigned"} 4
graylane_tokens_rejected_total{graylane_service="gateway",graylane_reason="token_forged"} 2
"#;

    #[test]
    fn a_page_sums_outcomes_and_buckets_and_keeps_peered_calls_as_edges() {
        let mut t = Totals::default();
        t.add(samples(PAGE));
        let (key, f) = t.hops.iter().next().unwrap();
        assert_eq!(
            (key.service.as_str(), key.lane.as_str()),
            ("orders", "gray")
        );
        assert_eq!((f.requests, f.errors), (10.0, 1.0));
        assert_eq!(f.buckets, [(0.01, 9.0), (f64::INFINITY, 10.0)]);
        // The call without a peer draws no edge.
        assert_eq!(t.calls.len(), 1);
        assert_eq!(t.calls.values().sum::<f64>(), 10.0);
        let c = &t.consumers[&("fulfillment".into(), "base".into(), "b1".into())];
        assert_eq!((c.records["fallback"], c.assigned), (3.0, 4.0));
        assert_eq!(t.tokens_rejected["token_forged"], 2.0);
        assert_eq!(t.lanes(), ["gray"]);
    }

    #[test]
    fn growth_since_an_earlier_total_counts_a_restart_from_zero() {
        let mut before = Totals::default();
        before.add(samples(PAGE));
        let mut later = before.clone();
        let f = later.hops.values_mut().next().unwrap();
        f.requests = 25.0;
        let d = later.since(&before);
        assert_eq!(d.hops.values().next().unwrap().requests, 15.0);
        let f = later.hops.values_mut().next().unwrap();
        f.requests = 4.0;
        assert_eq!(
            later.since(&before).hops.values().next().unwrap().requests,
            4.0
        );
    }
}
