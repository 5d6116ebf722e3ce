//! What the gates judge: per service and lane, the server requests, their errors and their
//! latency histogram over a window — from two scrapes of the services' `/metrics` (the
//! difference), or from Prometheus (`increase(..[window])`).
//!
//! The series are graylane's own (`docs/observability.md`): `graylane_requests_total` and
//! `graylane_request_duration_seconds_bucket` with `graylane_kind="server"`, so each service
//! counts the requests it served, fallback hops included (`gray_lane` is the request's lane
//! whoever served it).

use std::collections::BTreeMap;
use std::time::Duration;

use graylane_view::exposition::{quantile, sample};

use super::Release;
use crate::{Fail, bad_input};

/// One service's figures for one lane over a window.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Figures {
    pub(crate) requests: f64,
    pub(crate) errors: f64,
    /// Cumulative bucket counts by upper bound (`le`), `+Inf` as `f64::INFINITY`.
    pub(crate) buckets: Vec<(f64, f64)>,
    /// The 99th percentile when a source computed it (Prometheus); else from `buckets`.
    pub(crate) p99: Option<f64>,
}

impl Figures {
    pub(crate) fn error_ratio(&self) -> f64 {
        if self.requests > 0.0 {
            self.errors / self.requests
        } else {
            0.0
        }
    }

    /// The 99th percentile in seconds, interpolated within its bucket as Prometheus's
    /// `histogram_quantile` does; `None` without observations.
    pub(crate) fn p99(&self) -> Option<f64> {
        self.p99.or_else(|| quantile(0.99, &self.buckets))
    }
}

/// Figures by `(service, lane)`.
pub(crate) type Table = BTreeMap<(String, String), Figures>;

/// The graylane server series of one or more targets' `/metrics`, each target's kept apart
/// (so that one restarting does not cancel another's growth).
#[derive(Clone, Debug, Default)]
pub(crate) struct Scrape {
    targets: Vec<Series>,
}

/// One target's series.
#[derive(Clone, Debug, Default)]
struct Series {
    /// `(service, lane, outcome)` → requests.
    requests: BTreeMap<(String, String, String), f64>,
    /// `(service, lane, le)` → cumulative count; `le` as text, to key exactly.
    buckets: BTreeMap<(String, String, String), f64>,
}

/// How much a counter grew from `was` to `now`: a drop is a restart, after which it counted
/// `now` from zero (what Prometheus's `increase` assumes too).
fn growth(was: f64, now: f64) -> f64 {
    if now >= was { now - was } else { now }
}

impl Scrape {
    /// Adds the next target's exposition text (targets are matched by their order).
    pub(crate) fn add(&mut self, text: &str) {
        let mut series = Series::default();
        for line in text.lines() {
            let Some(sample) = sample(line) else {
                continue;
            };
            let (name, value) = (sample.name, sample.value);
            let label = |k: &str| sample.label(k).map(str::to_owned);
            if label("graylane_kind").as_deref() != Some("server") {
                continue;
            }
            let (Some(service), Some(lane)) = (label("graylane_service"), label("gray_lane"))
            else {
                continue;
            };
            match name {
                "graylane_requests_total" => {
                    let outcome = label("graylane_outcome").unwrap_or_default();
                    *series.requests.entry((service, lane, outcome)).or_default() += value;
                }
                "graylane_request_duration_seconds_bucket" => {
                    if let Some(le) = label("le") {
                        *series.buckets.entry((service, lane, le)).or_default() += value;
                    }
                }
                _ => {}
            }
        }
        self.targets.push(series);
    }

    /// What happened between `before` and `self`, target by target, summed.
    pub(crate) fn since(&self, before: &Scrape) -> Table {
        let none = Series::default();
        let mut table = Table::new();
        for (i, now) in self.targets.iter().enumerate() {
            let was = before.targets.get(i).unwrap_or(&none);
            for (key, n) in &now.requests {
                let delta = growth(was.requests.get(key).copied().unwrap_or(0.0), *n);
                let (service, lane, outcome) = key;
                let f = table.entry((service.clone(), lane.clone())).or_default();
                f.requests += delta;
                if outcome == "error" {
                    f.errors += delta;
                }
            }
            for (key, n) in &now.buckets {
                let delta = growth(was.buckets.get(key).copied().unwrap_or(0.0), *n);
                let (service, lane, le) = key;
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::NAN)
                };
                if bound.is_nan() {
                    continue;
                }
                let f = table.entry((service.clone(), lane.clone())).or_default();
                match f.buckets.iter_mut().find(|(b, _)| *b == bound) {
                    Some((_, count)) => *count += delta,
                    None => f.buckets.push((bound, delta)),
                }
            }
        }
        for f in table.values_mut() {
            f.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        table
    }
}

/// The body of `GET url`, an error naming the URL otherwise.
pub(crate) async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, Fail> {
    let fail = |e: &dyn std::fmt::Display| bad_input(format!("GET {url}: {e}"));
    let res = client.get(url).send().await.map_err(|e| fail(&e))?;
    if !res.status().is_success() {
        return Err(fail(&res.status()));
    }
    res.text().await.map_err(|e| fail(&e))
}

/// The figures of the last `window` from Prometheus's HTTP API, and the PromQL gates' values
/// (each series of a gate's query compared with its `max`).
pub(crate) async fn from_prometheus(
    client: &reqwest::Client,
    base: &str,
    release: &Release,
    window: Duration,
) -> Result<(Table, Vec<(String, f64, bool)>), Fail> {
    let range = format!("{}s", window.as_secs().max(1));
    let requests = format!(
        "sum by (graylane_service, gray_lane, graylane_outcome) \
         (increase(graylane_requests_total{{graylane_kind=\"server\"}}[{range}]))"
    );
    let p99 = format!(
        "histogram_quantile(0.99, sum by (le, graylane_service, gray_lane) \
         (increase(graylane_request_duration_seconds_bucket{{graylane_kind=\"server\"}}[{range}])))"
    );
    let mut table = Table::new();
    for (labels, value) in query(client, base, &requests).await? {
        let get = |k: &str| label(&labels, k);
        let f = table
            .entry((get("graylane_service"), get("gray_lane")))
            .or_default();
        f.requests += value;
        if get("graylane_outcome") == "error" {
            f.errors += value;
        }
    }
    for (labels, value) in query(client, base, &p99).await? {
        let get = |k: &str| label(&labels, k);
        if value.is_finite() {
            table
                .entry((get("graylane_service"), get("gray_lane")))
                .or_default()
                .p99 = Some(value);
        }
    }
    let mut gates = Vec::new();
    for gate in &release.plan.gates.promql {
        let q = gate.query.replace("{window}", &range);
        let values: Vec<f64> = query(client, base, &q)
            .await?
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        // No series reads as 0 (a rate of errors where there were none has no series); a NaN
        // (a ratio of nothing) cannot pass.
        let worst = if values.is_empty() {
            0.0
        } else if values.iter().any(|v| v.is_nan()) {
            f64::NAN
        } else {
            values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        };
        gates.push((gate.name.clone(), worst, worst <= gate.max));
    }
    Ok((table, gates))
}

/// A series' label `k`, empty when it has none.
fn label(labels: &serde_json::Map<String, serde_json::Value>, k: &str) -> String {
    labels
        .get(k)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// An instant query's vector: each series' labels and value.
async fn query(
    client: &reqwest::Client,
    base: &str,
    promql: &str,
) -> Result<Vec<(serde_json::Map<String, serde_json::Value>, f64)>, Fail> {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v1/query", base.trim_end_matches('/')),
        &[("query", promql)],
    )
    .map_err(|e| bad_input(format!("--prometheus {base}: {e}")))?;
    let text = get_text(client, url.as_str()).await?;
    let bad = |what: &str| bad_input(format!("Prometheus answered {what} to {promql}: {text}"));
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|_| bad("no JSON"))?;
    if json["status"] != "success" {
        return Err(bad("an error"));
    }
    let Some(result) = json["data"]["result"].as_array() else {
        return Err(bad("no vector"));
    };
    let mut out = Vec::new();
    for series in result {
        let labels = series["metric"].as_object().cloned().unwrap_or_default();
        let value = series["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok());
        if let Some(value) = value {
            out.push((labels, value));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"
# HELP graylane_requests_total Requests
# TYPE graylane_requests_total counter
graylane_requests_total{graylane_service="orders",graylane_kind="server",gray_lane="gray",gray_served="gray",gray_mirror="false",graylane_outcome="ok",otel_scope_name="graylane"} 10
graylane_requests_total{graylane_service="orders",graylane_kind="client",gray_lane="gray",graylane_outcome="error"} 99
graylane_request_duration_seconds_bucket{graylane_service="orders",graylane_kind="server",gray_lane="gray",le="0.1"} 10
graylane_request_duration_seconds_bucket{graylane_service="orders",graylane_kind="server",gray_lane="gray",le="0.5"} 10
graylane_request_duration_seconds_bucket{graylane_service="orders",graylane_kind="server",gray_lane="gray",le="+Inf"} 10
"#;

    const AFTER: &str = r#"
graylane_requests_total{graylane_service="orders",graylane_kind="server",gray_lane="gray",gray_served="gray",gray_mirror="false",graylane_outcome="ok",otel_scope_name="graylane"} 100
graylane_requests_total{graylane_service="orders",graylane_kind="server",gray_lane="gray",gray_served="base",gray_mirror="false",graylane_outcome="error",otel_scope_name="graylane"} 10
graylane_request_duration_seconds_bucket{graylane_service="orders",graylane_kind="server",gray_lane="gray",le="0.1"} 60
graylane_request_duration_seconds_bucket{graylane_service="orders",graylane_kind="server",gray_lane="gray",le="0.5"} 110
graylane_request_duration_seconds_bucket{graylane_service="orders",graylane_kind="server",gray_lane="gray",le="+Inf"} 110
"#;

    #[test]
    fn a_window_is_the_difference_of_two_scrapes_of_server_series() {
        let (mut a, mut b) = (Scrape::default(), Scrape::default());
        a.add(BEFORE);
        b.add(AFTER);
        let table = b.since(&a);
        let f = &table[&("orders".to_owned(), "gray".to_owned())];
        // 90 ok + 10 errors (of the fallback hop too); the client series is not the service's.
        assert_eq!((f.requests, f.errors), (100.0, 10.0));
        assert!((f.error_ratio() - 0.1).abs() < 1e-9);
        assert_eq!(
            f.buckets,
            [(0.1, 50.0), (0.5, 100.0), (f64::INFINITY, 100.0)]
        );
        // Rank 99 of 100 falls in (0.1, 0.5]: 0.1 + 0.4 * 49/50.
        assert!((f.p99().unwrap() - 0.492).abs() < 1e-9, "{:?}", f.p99());
    }

    #[test]
    fn a_restarted_target_counts_from_zero_and_does_not_cancel_another() {
        let line = |ok: u64, errors: u64| {
            format!(
                "graylane_requests_total{{graylane_service=\"orders\",graylane_kind=\"server\",gray_lane=\"gray\",graylane_outcome=\"ok\"}} {ok}\n\
                 graylane_requests_total{{graylane_service=\"orders\",graylane_kind=\"server\",gray_lane=\"gray\",graylane_outcome=\"error\"}} {errors}\n"
            )
        };
        let (mut a, mut b) = (Scrape::default(), Scrape::default());
        // Pod one grows by 1,000; pod two restarted and counted 100 ok and 10 errors since.
        a.add(&line(1000, 0));
        a.add(&line(1000, 0));
        b.add(&line(2000, 0));
        b.add(&line(100, 10));
        let f = &b.since(&a)[&("orders".to_owned(), "gray".to_owned())];
        assert_eq!((f.requests, f.errors), (1110.0, 10.0));
    }
}
