//! The page's panels, rendered on the server as HTML fragments (SVG for the topology and the
//! chart): the page replaces each panel's content with the fragment pushed to it.
//!
//! - `topology.rs`: the services, versions and lanes' edges;
//! - `chart.rs`: requests per second per lane, the last minutes;
//! - here: the tables (services, Kafka, trust, audit, mirror) and what they share.

mod chart;
mod topology;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use graylane_core::Lane;
use graylane_core::spec::{Exposure, GateFigures, GateSpec, LaneSpec};

use crate::history::History;
use crate::model::{Figures, Totals};

/// The window rates are computed over.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// What one render reads.
pub(crate) struct View<'a> {
    pub(crate) latest: &'a Totals,
    /// Growth over the rate window, and its length.
    pub(crate) growth: Option<(&'a Totals, Duration)>,
    pub(crate) history: &'a History,
    pub(crate) spec: Option<&'a LaneSpec>,
}

impl View<'_> {
    /// The name of the version of `service` that serves lane `served`: the spec's, or the
    /// lane's name without one.
    pub(crate) fn version(&self, service: &str, served: &str) -> String {
        let lane = Lane::new(served).ok();
        match (self.spec, lane) {
            (Some(spec), Some(lane)) if spec.service(service).is_some() => spec
                .serving_version(service, lane)
                .map_or_else(|| served.to_owned(), str::to_owned),
            _ => served.to_owned(),
        }
    }

    /// The lane whose version of `service` serves `lane`, as the spec says (the lane itself
    /// without a spec).
    pub(crate) fn serving(&self, service: &str, lane: &str) -> String {
        match (self.spec, Lane::new(lane)) {
            (Some(spec), Ok(l)) => spec.serving_lane(service, l).as_str().to_owned(),
            _ => lane.to_owned(),
        }
    }
}

/// Every panel's id and content.
pub(crate) fn panels(
    history: &History,
    spec: Option<&LaneSpec>,
    error: Option<&str>,
) -> Vec<(&'static str, String)> {
    let empty = Totals::default();
    let growth = history.growth(RATE_WINDOW);
    let view = View {
        latest: history.latest().unwrap_or(&empty),
        growth: growth.as_ref().map(|(t, d)| (t, *d)),
        history,
        spec,
    };
    let edges = topology::edges(&view);
    vec![
        ("status", status(&view, error)),
        ("topology", topology::svg(&view, &edges)),
        ("lanes", lanes(&view)),
        ("chart", chart::svg(&view)),
        ("services", services(&view)),
        ("kafka", kafka(&view)),
        ("trust", trust(&view)),
        ("audit", audit(&view)),
        ("mirror", mirror(&view)),
        ("release", release(history, spec)),
    ]
}

/// `s` escaped for HTML text and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const PALETTE: [&str; 6] = [
    "#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2",
];

/// A lane's color: base gray, the others from a palette in the order of `lanes`.
pub(crate) fn lane_color(lanes: &[String], lane: &str) -> &'static str {
    if lane == "base" {
        return "#64748b";
    }
    let i = lanes
        .iter()
        .filter(|l| *l != "base")
        .position(|l| l == lane);
    PALETTE[i.unwrap_or(0) % PALETTE.len()]
}

/// A rate for display: `3.2/s`, or `–` before there are two polls.
pub(crate) fn rate(per_second: Option<f64>) -> String {
    match per_second {
        Some(r) if r >= 10.0 => format!("{r:.0}/s"),
        Some(r) => format!("{r:.1}/s"),
        None => "–".to_owned(),
    }
}

fn millis(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "–".to_owned(), |s| format!("{:.1} ms", s * 1000.0))
}

fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

fn status(view: &View<'_>, error: Option<&str>) -> String {
    let polls = view.history.steps().count() + usize::from(view.history.latest().is_some());
    match error {
        Some(e) => format!(
            r#"<span class="error" data-polls="{polls}">last poll failed: {}</span>"#,
            esc(e)
        ),
        None => format!(r#"<span data-polls="{polls}">{polls} polls</span>"#),
    }
}

/// The entry services' requests per lane: what the clients sent.
fn lanes(view: &View<'_>) -> String {
    let totals = view.latest;
    let entries = totals.entry_services();
    let entry = |k: &crate::model::HopKey| Totals::is_entry(&entries, k);
    let mut by_lane: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (k, f) in totals.hops.iter().filter(|(k, _)| entry(k)) {
        by_lane.entry(k.lane.clone()).or_default().0 += f.requests;
    }
    if let Some((g, _)) = view.growth {
        for (k, f) in g.hops.iter().filter(|(k, _)| entry(k)) {
            by_lane.entry(k.lane.clone()).or_default().1 += f.requests;
        }
    }
    let seconds = view.growth.map(|(_, d)| d.as_secs_f64());
    let lanes = totals.lanes();
    let mut s = String::from(
        "<table><thead><tr><th>lane</th><th>requests</th><th>rate</th></tr></thead><tbody>",
    );
    for lane in &lanes {
        let (total, grew) = by_lane.get(lane).copied().unwrap_or_default();
        let _ = write!(
            s,
            r#"<tr data-lane="{l}"><td><span class="swatch" style="background:{c}"></span>{l}</td><td class="total">{total:.0}</td><td class="rate">{r}</td></tr>"#,
            l = esc(lane),
            c = lane_color(&lanes, lane),
            r = rate(seconds.filter(|s| *s > 0.0).map(|s| grew / s)),
        );
    }
    s.push_str("</tbody></table>");
    s
}

/// Per service, version and lane, and the lane beside base as the release gates see it.
fn services(view: &View<'_>) -> String {
    type Key = (String, String, String, String);
    let mut rows: BTreeMap<Key, (Figures, f64)> = BTreeMap::new();
    for (k, f) in view.latest.hops.iter().filter(|(k, _)| !k.mirror) {
        let key = (
            k.service.clone(),
            k.kind.clone(),
            view.version(&k.service, &k.served),
            k.lane.clone(),
        );
        let row = rows.entry(key).or_default();
        row.0 = Figures::sum([&row.0, f]);
        if let Some((g, _)) = view.growth {
            row.1 += g.hops.get(k).map_or(0.0, |f| f.requests);
        }
    }
    let seconds = view.growth.map(|(_, d)| d.as_secs_f64());
    let mut s = String::from(
        "<table><thead><tr><th>service</th><th>version</th><th>lane</th><th>rate</th><th>requests</th><th>errors</th><th>p50</th><th>p99</th><th>fallbacks</th><th>base errors</th><th>base p99</th></tr></thead><tbody>",
    );
    for ((service, kind, version, lane), (f, grew)) in &rows {
        let base = Figures::sum(
            rows.iter()
                .filter(|((s, k, _, l), _)| s == service && k == kind && l == "base")
                .map(|(_, (f, _))| f),
        );
        let fallbacks = view
            .latest
            .fallbacks
            .get(&(service.clone(), lane.clone()))
            .copied()
            .unwrap_or(0.0);
        let fallbacks = if view.version(service, lane) == *version || lane == "base" {
            0.0
        } else {
            fallbacks
        };
        let _ = write!(
            s,
            r#"<tr data-service="{sv}" data-version="{v}" data-lane="{l}"><td>{sv}</td><td>{v}</td><td>{l}</td><td class="rate">{r}</td><td class="requests">{req:.0}</td><td class="errors">{err}</td><td>{p50}</td><td>{p99}</td><td class="fallbacks">{fb:.0}</td><td>{berr}</td><td>{bp99}</td></tr>"#,
            sv = esc(service),
            v = esc(version),
            l = esc(lane),
            r = rate(seconds.filter(|s| *s > 0.0).map(|s| grew / s)),
            req = f.requests,
            err = percent(f.error_ratio()),
            p50 = millis(f.quantile(0.5)),
            p99 = millis(f.quantile(0.99)),
            fb = fallbacks,
            berr = percent(base.error_ratio()),
            bp99 = millis(base.quantile(0.99)),
        );
    }
    s.push_str("</tbody></table>");
    s
}

fn kafka(view: &View<'_>) -> String {
    let consumers = &view.latest.consumers;
    if consumers.is_empty() {
        return "<p>No lane consumers report here.</p>".to_owned();
    }
    let mut s = String::from(
        "<table><thead><tr><th>service</th><th>lane</th><th>instance</th><th>own</th><th>fallback</th><th>replayed</th><th>skipped</th><th>grants</th><th>releases</th><th>partitions</th><th>granted</th></tr></thead><tbody>",
    );
    let n = |m: &BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    for ((service, lane, instance), c) in consumers {
        let _ = write!(
            s,
            r#"<tr data-service="{sv}" data-lane="{l}" data-instance="{i}"><td>{sv}</td><td>{l}</td><td>{i}</td><td class="own">{own:.0}</td><td class="fallback">{fb:.0}</td><td>{rp:.0}</td><td>{sk:.0}</td><td class="grants">{gr:.0}</td><td class="releases">{rl:.0}</td><td>{pa:.0}</td><td class="granted">{gd:.0}</td></tr>"#,
            sv = esc(service),
            l = esc(lane),
            i = esc(instance),
            own = n(&c.records, "own"),
            fb = n(&c.records, "fallback"),
            rp = n(&c.records, "replayed"),
            sk = n(&c.records, "skipped"),
            gr = n(&c.handovers, "grant"),
            rl = n(&c.handovers, "release"),
            pa = c.assigned,
            gd = c.granted,
        );
    }
    s.push_str("</tbody></table><ul class=\"owners\">");
    // Who handles each lane's records now: a live instance of the lane holding granted
    // partitions, or else base.
    let mut lanes: Vec<(&str, &str)> = consumers
        .keys()
        .filter(|(_, l, _)| l != "base")
        .map(|(s, l, _)| (s.as_str(), l.as_str()))
        .collect();
    for k in view
        .latest
        .hops
        .keys()
        .filter(|k| k.kind == "consumer" && k.lane != "base")
    {
        lanes.push((k.service.as_str(), k.lane.as_str()));
    }
    lanes.sort();
    lanes.dedup();
    for (service, lane) in lanes {
        let owners: Vec<&str> = consumers
            .iter()
            .filter(|((s, l, _), c)| s == service && l == lane && c.granted > 0.0)
            .map(|((_, _, i), _)| i.as_str())
            .collect();
        let owner = if owners.is_empty() {
            "base".to_owned()
        } else {
            owners.join(", ")
        };
        let _ = write!(
            s,
            r#"<li data-service="{sv}" data-lane="{l}" data-owner="{o}">{sv}: lane {l} handled by {who}</li>"#,
            sv = esc(service),
            l = esc(lane),
            o = if owners.is_empty() { "base" } else { "lane" },
            who = esc(&owner),
        );
    }
    s.push_str("</ul>");
    s
}

fn trust(view: &View<'_>) -> String {
    let t = view.latest;
    let mut s = format!(
        r#"<table><tbody><tr data-trust="stripped"><td>forged lane headers stripped</td><td class="n">{:.0}</td></tr>"#,
        t.stripped
    );
    for (what, map) in [
        ("tokens rejected", &t.tokens_rejected),
        ("lane values read as base", &t.values_rejected),
    ] {
        for (reason, n) in map {
            let _ = write!(
                s,
                r#"<tr data-trust="{r}"><td>{what}: {r}</td><td class="n">{n:.0}</td></tr>"#,
                r = esc(reason)
            );
        }
    }
    s.push_str("</tbody></table>");
    s
}

fn audit(view: &View<'_>) -> String {
    let t = view.latest;
    let Some(runs) = t.audit_runs.filter(|r| *r > 0.0) else {
        return "<p data-audit=\"none\">No leak audit has reported yet.</p>".to_owned();
    };
    let found: f64 = t.findings.values().sum();
    let mut s = format!(
        r#"<p data-audit="{state}" data-runs="{runs:.0}">{runs:.0} audits, the latest {state}</p><table><tbody>"#,
        state = if found > 0.0 { "found" } else { "clean" },
    );
    for (finding, n) in &t.findings {
        let _ = write!(
            s,
            r#"<tr data-finding="{f}"><td>{f}</td><td class="n">{n:.0}</td></tr>"#,
            f = esc(finding)
        );
    }
    s.push_str("</tbody></table>");
    s
}

/// Each release of the spec: where it stands, and its gates on the figures of its bake time
/// (as much of it as the history holds), service by service, as `graylane release judge`
/// sees them. PromQL gates are Prometheus's to answer: listed, not judged here.
fn release(history: &History, spec: Option<&LaneSpec>) -> String {
    let Some(spec) = spec.filter(|s| !s.releases.is_empty()) else {
        return "<p>No release plan in the spec (<code>releases:</code>, see docs/releases.md).</p>".to_owned();
    };
    let mut s = String::new();
    for plan in &spec.releases {
        let lane = plan.lane.as_str();
        let at = match plan.exposure(spec) {
            Some(e) if !e.exposed => "off (no exposure)".to_owned(),
            Some(Exposure {
                step: Some(i),
                percent,
                ..
            }) => {
                format!("step {} of {} ({percent}%)", i + 1, plan.steps.len())
            }
            Some(e) => format!("exposed at {}%, which is no step of the plan", e.percent),
            None => "its rule is not in the spec".to_owned(),
        };
        let window = Duration::from_secs(plan.bake_secs.max(1));
        let grown = history.growth(window);
        let (figures, took) = match &grown {
            Some((t, d)) => (t, *d),
            None => match history.latest() {
                Some(t) => (t, Duration::ZERO),
                None => continue,
            },
        };
        let _ = write!(
            s,
            r#"<p data-release="{l}">release of lane {l}: {at}; gates over the last {secs:.0} s</p><p class="thresholds">{g}</p><table><thead><tr><th>service</th><th>lane requests</th><th>lane errors</th><th>base errors</th><th>lane p99</th><th>base p99</th><th>gate</th></tr></thead><tbody>"#,
            l = esc(lane),
            at = esc(&at),
            secs = took.as_secs_f64(),
            g = thresholds(&plan.gates),
        );
        let of = |service: &str, lane: &str| {
            let f = Figures::sum(
                figures
                    .hops
                    .iter()
                    .filter(|(k, _)| {
                        k.kind == "server" && !k.mirror && k.service == service && k.lane == lane
                    })
                    .map(|(_, f)| f),
            );
            let gate = GateFigures {
                requests: f.requests,
                errors: f.errors,
                p99_ms: f.quantile(0.99).map(|s| s * 1000.0),
            };
            (gate, f)
        };
        let services: std::collections::BTreeSet<&str> = figures
            .hops
            .iter()
            .filter(|(k, f)| k.kind == "server" && !k.mirror && k.lane == lane && f.requests > 0.0)
            .map(|(k, _)| k.service.as_str())
            .collect();
        for service in services {
            let (lane_g, lane_f) = of(service, lane);
            let (base_g, base_f) = of(service, "base");
            let outcome = plan.gates.judge(&lane_g, &base_g);
            let _ = write!(
                s,
                r#"<tr data-service="{sv}" data-gate="{o}"><td>{sv}</td><td>{n:.0}</td><td>{le}</td><td>{be}</td><td>{lp}</td><td>{bp}</td><td class="gate">{o}</td></tr>"#,
                sv = esc(service),
                n = lane_g.requests,
                le = percent(lane_f.error_ratio()),
                be = percent(base_f.error_ratio()),
                lp = millis(lane_f.quantile(0.99)),
                bp = millis(base_f.quantile(0.99)),
                o = outcome.as_str(),
            );
        }
        s.push_str("</tbody></table>");
        for gate in &plan.gates.promql {
            let _ = write!(
                s,
                "<p>PromQL gate {} (at most {}): judged by <code>graylane release judge</code></p>",
                esc(&gate.name),
                gate.max
            );
        }
    }
    s
}

/// What a step must show, in words beside the figures judged against it.
fn thresholds(g: &GateSpec) -> String {
    format!(
        "pass: lane errors at most base's + {:.1} points; lane p99 at most {}× base's or {} ms above it; judged from {} lane requests on",
        g.max_error_ratio_increase * 100.0,
        g.max_p99_ratio,
        g.p99_tolerance_ms,
        g.min_requests
    )
}

fn mirror(view: &View<'_>) -> String {
    let t = view.latest;
    if t.compared.is_empty() && t.copies.is_empty() {
        return "<p>No mirror reports here.</p>".to_owned();
    }
    let copies = |k: &str| t.copies.get(k).copied().unwrap_or(0.0);
    let mut s = format!(
        r#"<p>copies sent {:.0}, failed {:.0}, skipped {:.0}</p><table><thead><tr><th>route</th><th>compared</th><th>identical</th><th>different</th><th>diff rate</th></tr></thead><tbody>"#,
        copies("sent"),
        copies("failed"),
        copies("skipped")
    );
    for (route, results) in &t.compared {
        let n = |k: &str| results.get(k).copied().unwrap_or(0.0);
        let different = n("status") + n("header") + n("body");
        let compared = n("identical") + different;
        let ratio = if compared > 0.0 {
            different / compared
        } else {
            0.0
        };
        let _ = write!(
            s,
            r#"<tr data-route="{r}"><td>{r}</td><td>{compared:.0}</td><td>{:.0}</td><td>{different:.0}</td><td class="diff-rate">{}</td></tr>"#,
            n("identical"),
            percent(ratio),
            r = esc(route),
        );
    }
    s.push_str("</tbody></table>");
    s
}
