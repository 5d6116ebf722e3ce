//! `release judge` and `release run`: the lane against base on the same services over the
//! same window, from Prometheus (`--prometheus URL`, its HTTP API) or from the services'
//! `/metrics` directly (`--scrape URL...`, two scrapes a window apart).
//!
//! Every service the lane's requests reached in the window is judged, fallback hops included;
//! one failing service fails the step:
//!
//! - error ratio: the lane's at most base's plus `max_error_ratio_increase` (absolute);
//! - p99 latency: the lane's at most `max_p99_ratio` times base's, or at most
//!   `p99_tolerance_ms` above it (not judged without base traffic on that service);
//! - a service with fewer than `min_requests` lane requests is not judged yet: the step is
//!   pending; `run` waits, and fails the step as "not enough traffic" after three bake times;
//! - each PromQL gate's every series at most its `max`.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use graylane_core::spec::GateFigures;

use super::figures::{Figures, Scrape, Table};
use super::{Change, Release, change_file, describe};
use crate::args::{JudgeArgs, RunArgs, Source};
use crate::{Fail, bad_input, problem};

/// One service's figures, lane and base, and what the gates made of them.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ServiceVerdict {
    service: String,
    lane_requests: f64,
    lane_error_ratio: f64,
    base_requests: f64,
    base_error_ratio: f64,
    lane_p99_ms: Option<f64>,
    base_p99_ms: Option<f64>,
    /// `pass`, `pending`, or the failed gate: `error_ratio`, `p99`.
    outcome: String,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Verdict {
    /// `pass`, `pending` or `fail`.
    pub(crate) outcome: String,
    /// The first failure, as `gate(service)`, or `not_enough_traffic(service)`; `-` otherwise.
    pub(crate) reason: String,
    pub(crate) services: Vec<ServiceVerdict>,
    pub(crate) promql: Vec<(String, f64, bool)>,
}

/// Judges `table` (figures by service and lane) for `release`'s lane.
pub(crate) fn verdict(
    release: &Release,
    table: &Table,
    promql: Vec<(String, f64, bool)>,
) -> Verdict {
    let lane = release.lane().to_string();
    let gates = &release.plan.gates;
    let none = Figures::default();
    let mut services = Vec::new();
    for ((service, l), lane_f) in table {
        if *l != lane || lane_f.requests <= 0.0 {
            continue;
        }
        let base_f = table
            .get(&(service.clone(), "base".to_owned()))
            .unwrap_or(&none);
        let ms = |f: &Figures| f.p99().map(|s| s * 1000.0);
        let (lane_p99, base_p99) = (ms(lane_f), ms(base_f));
        let figures = |f: &Figures, p99_ms| GateFigures {
            requests: f.requests,
            errors: f.errors,
            p99_ms,
        };
        let outcome = gates
            .judge(&figures(lane_f, lane_p99), &figures(base_f, base_p99))
            .as_str();
        services.push(ServiceVerdict {
            service: service.clone(),
            lane_requests: lane_f.requests,
            lane_error_ratio: lane_f.error_ratio(),
            base_requests: base_f.requests,
            base_error_ratio: base_f.error_ratio(),
            lane_p99_ms: lane_p99,
            base_p99_ms: base_p99,
            outcome: outcome.into(),
        });
    }
    // The reason names a failing service that runs the lane's own version before a fallback
    // hop (base's code serving the lane): a hop in front of a failing version fails with it.
    let own = |s: &&ServiceVerdict| release.spec.has_version(&s.service, release.lane());
    let failing = || {
        services
            .iter()
            .filter(|s| s.outcome != "pass" && s.outcome != "pending")
    };
    let failed = failing()
        .find(own)
        .or_else(|| failing().next())
        .map(|s| format!("{}({})", s.outcome, s.service))
        .or_else(|| {
            promql
                .iter()
                .find(|q| !q.2)
                .map(|q| format!("promql({})", q.0))
        });
    let pending = services
        .iter()
        .find(|s| s.outcome == "pending")
        .map(|s| s.service.clone());
    let (outcome, reason) = match (failed, pending) {
        (Some(reason), _) => ("fail", reason),
        (None, Some(service)) => ("pending", format!("not_enough_traffic({service})")),
        (None, None) if services.is_empty() => ("pending", "not_enough_traffic(-)".to_owned()),
        (None, None) => ("pass", "-".to_owned()),
    };
    Verdict {
        outcome: outcome.into(),
        reason,
        services,
        promql,
    }
}

/// Where the figures of a window come from.
enum Window {
    /// Two scrapes: this one, taken when the window opened, and one when it is read.
    Scrape {
        client: reqwest::Client,
        targets: Vec<String>,
        opened: Scrape,
    },
    /// Prometheus, looking back over the window when it is read.
    Prometheus {
        client: reqwest::Client,
        url: String,
    },
}

impl Window {
    async fn open(source: &Source) -> Result<Window, Fail> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| bad_input(format!("an HTTP client: {e}")))?;
        if let Some(url) = &source.prometheus {
            return Ok(Window::Prometheus {
                client,
                url: url.clone(),
            });
        }
        if source.scrape.is_empty() {
            return Err(bad_input(
                "say where the metrics are: --prometheus URL or --scrape URL...",
            ));
        }
        let opened = scrape(&client, &source.scrape).await?;
        Ok(Window::Scrape {
            client,
            targets: source.scrape.clone(),
            opened,
        })
    }

    /// The figures since the window opened, `length` ago.
    async fn read(
        &self,
        release: &Release,
        length: Duration,
    ) -> Result<(Table, Vec<(String, f64, bool)>), Fail> {
        match self {
            Window::Prometheus { client, url } => {
                super::figures::from_prometheus(client, url, release, length).await
            }
            Window::Scrape {
                client,
                targets,
                opened,
            } => {
                if !release.plan.gates.promql.is_empty() {
                    eprintln!(
                        "graylane: the PromQL gates need --prometheus; not judged with --scrape"
                    );
                }
                Ok((scrape(client, targets).await?.since(opened), Vec::new()))
            }
        }
    }
}

async fn scrape(client: &reqwest::Client, targets: &[String]) -> Result<Scrape, Fail> {
    let mut all = Scrape::default();
    for url in targets {
        all.add(&super::figures::get_text(client, url).await?);
    }
    Ok(all)
}

fn print_verdict(release: &Release, v: &Verdict) {
    println!("gates for lane {} ({}):", release.lane(), v.outcome);
    for s in &v.services {
        let p99 = |p: Option<f64>| p.map_or("-".to_owned(), |p| format!("{p:.1} ms"));
        println!(
            "  {:<14} lane {:>6} req, errors {:>6.2}%, p99 {:>9} | base {:>6} req, errors {:>6.2}%, p99 {:>9} | {}",
            s.service,
            s.lane_requests,
            s.lane_error_ratio * 100.0,
            p99(s.lane_p99_ms),
            s.base_requests,
            s.base_error_ratio * 100.0,
            p99(s.base_p99_ms),
            s.outcome
        );
    }
    for (name, value, ok) in &v.promql {
        println!(
            "  promql {name}: {value} {}",
            if *ok { "pass" } else { "fail" }
        );
    }
    if v.outcome != "pass" {
        println!("  reason: {}", v.reason);
    }
}

/// `release judge`: one window (`--window`, default the plan's bake time); exit 0 when the
/// gates pass, 1 when they fail or cannot judge yet (pending).
pub(crate) fn judge(args: &JudgeArgs) -> Result<(), Fail> {
    let release = Release::of(
        super::super::load(&args.opts.spec)?,
        args.opts.lane.as_deref(),
    )?;
    let window = Duration::from_secs(args.window.unwrap_or(release.plan.bake_secs));
    let runtime = super::super::runtime()?;
    let (table, promql) = runtime.block_on(async {
        let opened = Window::open(&args.source).await?;
        if matches!(opened, Window::Scrape { .. }) {
            tokio::time::sleep(window).await;
        }
        opened.read(&release, window).await
    })?;
    let v = verdict(&release, &table, promql);
    if args.opts.json {
        super::super::print_json(&v)?;
    } else {
        print_verdict(&release, &v);
    }
    match v.outcome.as_str() {
        "pass" => Ok(()),
        _ => Err(problem(format!("gates {}: {}", v.outcome, v.reason))),
    }
}

/// `release run`: from where the release stands, each step in turn — apply it, bake, judge
/// (waiting up to three bake times for enough traffic) — and roll back at the first failure.
/// Exit 0 when the last step passed (promote next), 1 when it rolled back.
pub(crate) fn run_loop(args: &RunArgs) -> Result<(), Fail> {
    let summary = run_release(args)?;
    match summary.outcome.as_str() {
        "rolled-back" => Err(problem(format!("rolled back: {}", summary.rollback_reason))),
        _ => Ok(()),
    }
}

/// How a release run ended, as its last line says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    /// The lane released.
    pub lane: String,
    /// The steps baked and judged.
    pub steps: usize,
    /// `complete`, `promoted` or `rolled-back`.
    pub outcome: String,
    /// The first failure (`error_ratio(orders)`, `metrics_unavailable`, ...), `-` when none.
    pub rollback_reason: String,
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "release: lane={} steps={} outcome={} rollback_reason={}",
            self.lane, self.steps, self.outcome, self.rollback_reason
        )
    }
}

/// `release run`: the loop; prints each step and, last, the [`RunSummary`] line.
pub(crate) fn run_release(args: &RunArgs) -> Result<RunSummary, Fail> {
    let opts = &args.opts;
    let lane = opts.lane.as_deref();
    let runtime = super::super::runtime()?;
    let name = Release::of(super::super::load(&opts.spec)?, lane)?.lane();
    let summary = |steps: usize, outcome: &str, reason: &str| {
        let summary = RunSummary {
            lane: name.to_string(),
            steps,
            outcome: outcome.into(),
            rollback_reason: reason.into(),
        };
        println!("{summary}");
        summary
    };
    let rollback = |reason: &str, steps: usize| -> Result<RunSummary, Fail> {
        change_file(
            &opts.spec,
            lane,
            Change::Rollback,
            false,
            args.manifests.as_deref(),
        )?;
        Ok(summary(steps, "rolled-back", reason))
    };
    let mut steps = 0;
    loop {
        let state = Release::of(super::super::load(&opts.spec)?, lane)?.state();
        let change = match (steps, state.exposed, state.step) {
            // From where it stands: a step in force is baked and judged as it is.
            (0, true, Some(_)) => None,
            (0, _, _) => Some(Change::Start),
            // Someone rolled it back while this run baked: that is not a pass.
            (_, false, _) => return Ok(summary(steps, "rolled-back", "rolled-back-elsewhere")),
            (_, true, Some(i)) if i + 1 == state.steps.len() => break,
            (_, true, _) => Some(Change::Advance),
        };
        if let Some(change) = change {
            for e in change_file(&opts.spec, lane, change, false, args.manifests.as_deref())?.edits
            {
                println!("set {e}");
            }
        }
        let release = Release::of(super::super::load(&opts.spec)?, lane)?;
        steps += 1;
        println!(
            "{}: baking {} s",
            describe(&release.state()),
            release.plan.bake_secs
        );
        let bake = Duration::from_secs(release.plan.bake_secs);
        // One window from the step's start, read after each bake time: a service short of
        // its minimum after three is not enough traffic. Metrics that cannot be read (after a
        // few tries) are no verdict: the lane is rolled back rather than left exposed unjudged.
        let judged = runtime.block_on(async {
            let window = retry(|| Window::open(&args.source)).await?;
            let mut length = Duration::ZERO;
            loop {
                tokio::time::sleep(bake).await;
                length += bake;
                let (table, promql) = retry(|| window.read(&release, length)).await?;
                let v = verdict(&release, &table, promql);
                if v.outcome != "pending" || length >= bake * 3 {
                    return Ok::<_, Fail>(v);
                }
            }
        });
        let v = match judged {
            Ok(v) => v,
            Err(crate::Fail(message, _)) => {
                eprintln!("graylane: {message}");
                return rollback("metrics_unavailable", steps);
            }
        };
        print_verdict(&release, &v);
        if v.outcome != "pass" {
            return rollback(&v.reason, steps);
        }
    }
    let outcome = if args.promote {
        let promoted =
            super::promote::promote_file(&opts.spec, lane, false, args.manifests.as_deref())?;
        for e in &promoted.edits {
            println!("{e}");
        }
        "promoted"
    } else {
        "complete"
    };
    Ok(summary(steps, outcome, "-"))
}

/// `attempt`, up to three times a second apart.
async fn retry<T, F: Future<Output = Result<T, Fail>>>(
    mut attempt: impl FnMut() -> F,
) -> Result<T, Fail> {
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if tries < 2 => {
                tries += 1;
                eprintln!("graylane: {} (trying again)", e.0);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graylane_core::spec::LaneSpec;

    fn release() -> Release {
        let spec = LaneSpec::from_yaml_str(
            "services: [{name: orders}]\nlanes: [{name: gray, services: [orders]}]\n\
             coloring: {rules: [{name: some, lane: gray, match: {sticky: {percent: 5, by: {header: u}}}}]}\n\
             releases: [{lane: gray, rule: some, steps: [5, 50], gates: {min_requests: 50}}]",
        )
        .unwrap();
        Release::of(spec, None).expect("the release of gray")
    }

    fn table(lane: (f64, f64), base: (f64, f64)) -> Table {
        let f = |(requests, errors)| Figures {
            requests,
            errors,
            ..Figures::default()
        };
        Table::from([
            (("orders".to_owned(), "gray".to_owned()), f(lane)),
            (("orders".to_owned(), "base".to_owned()), f(base)),
        ])
    }

    #[test]
    fn short_of_the_minimum_is_pending_unless_the_errors_already_decide() {
        let r = release();
        // 10 of the 50 needed, no error: wait for more.
        assert_eq!(
            verdict(&r, &table((10.0, 0.0), (1000.0, 0.0)), vec![]).outcome,
            "pending"
        );
        // 10 of 50, all failed: at least 20% at the minimum, whatever comes next.
        let v = verdict(&r, &table((10.0, 10.0), (1000.0, 0.0)), vec![]);
        assert_eq!(
            (v.outcome.as_str(), v.reason.as_str()),
            ("fail", "error_ratio(orders)")
        );
        // Enough, within base's ratio plus one point: a pass.
        assert_eq!(
            verdict(&r, &table((100.0, 2.0), (1000.0, 15.0)), vec![]).outcome,
            "pass"
        );
        assert_eq!(
            verdict(&r, &table((100.0, 3.0), (1000.0, 15.0)), vec![]).outcome,
            "fail"
        );
        // A failing PromQL gate fails the step.
        let v = verdict(
            &r,
            &table((100.0, 0.0), (1000.0, 0.0)),
            vec![("5xx".into(), f64::NAN, false)],
        );
        assert_eq!(v.reason, "promql(5xx)");
    }

    #[test]
    fn the_reason_names_the_lanes_own_version_before_a_fallback_hop_in_front_of_it() {
        let r = release();
        let mut t = table((100.0, 30.0), (1000.0, 0.0));
        // gateway has no gray version: it serves the lane with base's code, and fails because
        // orders v2 behind it does. It sorts first, but orders is named.
        let f = |requests, errors| Figures {
            requests,
            errors,
            ..Figures::default()
        };
        t.insert(("gateway".into(), "gray".into()), f(100.0, 30.0));
        t.insert(("gateway".into(), "base".into()), f(1000.0, 0.0));
        let v = verdict(&r, &t, vec![]);
        assert_eq!(v.reason, "error_ratio(orders)");
        // Only the hop failing: it is named.
        t.insert(("orders".into(), "gray".into()), f(100.0, 0.0));
        assert_eq!(verdict(&r, &t, vec![]).reason, "error_ratio(gateway)");
    }
}
