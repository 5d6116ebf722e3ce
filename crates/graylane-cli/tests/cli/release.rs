//! `graylane release`: each step a minimal edit of a spec file, and the gates judged on a real
//! service's lane metrics — scraped directly, and through a real Prometheus.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use graylane_core::{Lane, LaneSet, Propagator, current_lane};
use graylane_http::LaneLayer;
use graylane_otel::prometheus::Exposition;
use graylane_otel::{LaneMetrics, LaneTraceLayer};
use graylane_testkit::prometheus::Prometheus;
use opentelemetry::metrics::MeterProvider as _;

use super::*;

/// A spec whose gray lane has not been exposed yet: both of its rules are off.
const SPEC_TEXT: &str = "\
services:
  - name: gateway
  - name: orders
    routing:
      canary: { lane: gray, weight: 10 }
  - name: cart
    routing:
      blue_green: { active: gray }
      content:
        - { lane: gray, match: { header: { name: x-debug, exact: 'on' } } }
lanes:
  - { name: gray, version: v2, services: [orders, cart] }
coloring:
  rules:
    # Testers first.
    - name: beta
      lane: gray
      enabled: false
      match: { header: { name: x-user-group, exact: beta } }
    - { name: some-users, lane: gray, enabled: false, match: { sticky: { percent: 0, by: { header: x-user-id } } } }
releases:
  - lane: gray
    rule: some-users
    steps: [0, 5, 25, 100]
    bake_secs: 1
    # A shared 2-core machine delays a request by several milliseconds now and then: a p99
    # within 20 ms of base's is noise here (the slow case is 60 ms slower).
    gates: { min_requests: 20, p99_tolerance_ms: 20 }
";

fn spec_file(dir: &TempDir, text: &str) -> String {
    let path = dir.0.join("graylane.yaml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The lines of `after` that differ from `before`, as `(before, after)`.
fn diff(before: &str, after: &str) -> Vec<(String, String)> {
    assert_eq!(before.lines().count(), after.lines().count(), "{after}");
    before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| (a.trim().to_owned(), b.trim().to_owned()))
        .collect()
}

/// The manifests `graylane manifests` writes for the spec at `spec`, concatenated.
fn manifests_of(spec: &str) -> String {
    let dir = TempDir::new("release_manifests");
    let out = graylane(&["manifests", "--spec", spec, "--out", dir.path()]);
    assert_eq!(text(&out).0, 0, "{:?}", text(&out));
    let mut all = String::new();
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        all.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    all
}

fn release(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["release"];
    all.extend_from_slice(args);
    text(&graylane(&all))
}

#[test]
fn each_release_step_is_a_one_line_edit_of_the_spec() {
    let dir = TempDir::new("release_steps");
    let spec = spec_file(&dir, SPEC_TEXT);
    let read = || std::fs::read_to_string(&spec).unwrap();
    let (code, out, err) = release(&["status", "--spec", &spec]);
    assert_eq!(
        (code, out.trim()),
        (0, "release of lane gray: off (no exposure)"),
        "{err}"
    );
    let (code, out, _) = release(&["plan", "--spec", &spec]);
    assert_eq!(code, 0);
    assert!(
        out.contains("step 4: coloring.rules[1].match.sticky.percent = 100"),
        "{out}"
    );

    // start: the two rules on, at step 1 (0%).
    let (code, out, err) = release(&["start", "--spec", &spec]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        diff(SPEC_TEXT, &read()),
        [
            ("enabled: false".into(), "enabled: true".into()),
            (
                "- { name: some-users, lane: gray, enabled: false, match: { sticky: { percent: 0, by: { header: x-user-id } } } }".into(),
                "- { name: some-users, lane: gray, enabled: true, match: { sticky: { percent: 0, by: { header: x-user-id } } } }".into()
            ),
        ]
    );
    assert!(
        out.ends_with("release of lane gray: step 1 of 4 (0%)\n"),
        "{out}"
    );

    // A dry run says what it would do and writes nothing.
    let started = read();
    let (code, out, _) = release(&["advance", "--spec", &spec, "--dry-run"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("would set coloring.rules[1].match.sticky.percent = 5"),
        "{out}"
    );
    assert_eq!(read(), started);

    // advance: 0 becomes 5, and nothing else changes; the manifests follow.
    let manifests = dir.0.join("manifests");
    let (code, _, err) = release(&[
        "advance",
        "--spec",
        &spec,
        "--manifests",
        manifests.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let changed = diff(&started, &read());
    assert_eq!(changed.len(), 1);
    assert!(
        changed[0].0.contains("percent: 0,") && changed[0].1.contains("percent: 5,"),
        "{changed:?}"
    );
    let check = graylane(&[
        "manifests",
        "--spec",
        &spec,
        "--out",
        manifests.to_str().unwrap(),
        "--check",
    ]);
    assert_eq!(text(&check).0, 0, "{:?}", text(&check));

    for _ in 0..2 {
        assert_eq!(release(&["advance", "--spec", &spec]).0, 0);
    }
    let (code, _, err) = release(&["advance", "--spec", &spec]);
    assert_eq!(code, 3, "past the last step is refused: {err}");
    assert!(err.contains("the last step"), "{err}");

    // rollback: both rules off and the canary to 0, at once; a second one changes nothing.
    assert!(manifests_of(&spec).contains("content-0-gray"));
    let at_100 = read();
    let (code, out, _) = release(&["rollback", "--spec", &spec, "--json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["state"]["exposed"], false);
    let changed = diff(&at_100, &read());
    assert_eq!(changed.len(), 5, "{changed:?}");
    assert!(
        changed
            .iter()
            .any(|(a, b)| a.contains("weight: 10") && b.contains("weight: 0"))
    );
    assert!(
        changed
            .iter()
            .any(|(a, b)| a.contains("active: gray") && b.contains("active: base"))
    );
    assert!(
        changed.iter().any(
            |(_, b)| b.contains("lane: gray, enabled: false, match: { header: { name: x-debug")
        )
    );
    assert!(
        !manifests_of(&spec).contains("content-0-gray"),
        "the content route is gone from the manifests"
    );
    let (code, out, _) = release(&["rollback", "--spec", &spec]);
    assert_eq!(code, 0);
    assert!(out.starts_with("nothing to change"), "{out}");
}

/// Compares `actual` with the expected file `name` under `tests/cli/expected/`; with
/// `GRAYLANE_BLESS=1`, writes it instead (then review the diff).
fn expect_file(name: &str, actual: &str) {
    let path = workspace()
        .join("crates/graylane-cli/tests/cli/expected")
        .join(name);
    if std::env::var_os("GRAYLANE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (GRAYLANE_BLESS=1 writes it)", path.display()));
    assert_eq!(actual, expected, "{} differs", path.display());
}

#[test]
fn promote_makes_the_lanes_versions_base_and_its_routes_rules_and_plan_go() {
    let dir = TempDir::new("release_promote");
    let spec = spec_file(&dir, SPEC_TEXT);
    let read = || std::fs::read_to_string(&spec).unwrap();
    // A release that is off is not promoted.
    let (code, _, err) = release(&["promote", "--spec", &spec]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(read(), SPEC_TEXT);
    assert_eq!(release(&["start", "--spec", &spec]).0, 0);
    assert_eq!(release(&["advance", "--spec", &spec]).0, 0);
    let manifests = dir.0.join("manifests");
    let (code, out, err) = release(&[
        "promote",
        "--spec",
        &spec,
        "--manifests",
        manifests.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("set services[1].version = v2 (was v1)"),
        "{out}"
    );
    assert!(
        out.ends_with("never merged into base) until `release finish`\n"),
        "{out}"
    );
    expect_file("promoted/graylane.yaml", &read());
    let mut files: Vec<_> = std::fs::read_dir(&manifests)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3);
    for file in files {
        let name = file.file_name().unwrap().to_str().unwrap();
        expect_file(
            &format!("promoted/manifests/{name}"),
            &std::fs::read_to_string(&file).unwrap(),
        );
    }
}

/// orders, as a user runs it: a mesh server layer, its lane metrics exposed at `/metrics`. Gray
/// requests fail one in `gray_fails_every` (0: never) and take `gray_delay`.
async fn orders(gray_fails_every: u64, gray_delay: Duration) -> SocketAddr {
    let gray = Lane::new("gray").unwrap();
    let propagator = Propagator::new(LaneSet::new([gray]));
    let exposition = Exposition::new().unwrap();
    let metrics = LaneMetrics::new(&exposition.provider().meter("graylane"), "orders");
    let count = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/",
            get(move || {
                let count = count.clone();
                async move {
                    if current_lane().is_base() {
                        return StatusCode::OK;
                    }
                    // (A zero sleep still waits for the timer's next tick.)
                    if !gray_delay.is_zero() {
                        tokio::time::sleep(gray_delay).await;
                    }
                    let n = count.fetch_add(1, Ordering::Relaxed) + 1;
                    if gray_fails_every > 0 && n.is_multiple_of(gray_fails_every) {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        )
        .layer(LaneTraceLayer::server("orders", propagator.clone()).metrics(metrics))
        .layer(LaneLayer::mesh(propagator))
        .route(
            "/metrics",
            get(move || {
                let exposition = exposition.clone();
                async move { exposition.render().unwrap() }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Sends base and gray requests to `addr`, each lane on its own, about 100 a second each (fewer
/// when the lane is slow), until `stop`.
fn traffic(addr: SocketAddr, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let lanes = [None, Some("gray")].map(|lane| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let mut req = client.get(format!("http://{addr}/"));
                    if let Some(lane) = lane {
                        req = req.header("x-gray-lane", lane);
                    }
                    let _ = req.send().await;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        });
        for lane in lanes {
            lane.await.unwrap();
        }
    })
}

/// Runs `graylane release <args>` off the runtime while traffic flows.
async fn release_async(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        release(&args)
    })
    .await
    .unwrap()
}

fn started_spec(dir: &TempDir, min_requests: u64) -> String {
    let text = SPEC_TEXT
        .replace("enabled: false", "enabled: true")
        .replace("min_requests: 20", &format!("min_requests: {min_requests}"));
    spec_file(dir, &text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_pass_fail_on_errors_or_latency_and_wait_for_traffic_on_scraped_metrics() {
    let dir = TempDir::new("release_gates");
    let cases = [
        ("healthy", 0, Duration::ZERO, 20, 0, "pass", "-"),
        (
            "failing",
            5,
            Duration::ZERO,
            20,
            1,
            "fail",
            "error_ratio(orders)",
        ),
        (
            "slow",
            0,
            Duration::from_millis(60),
            20,
            1,
            "fail",
            "p99(orders)",
        ),
        (
            "quiet",
            0,
            Duration::ZERO,
            1_000_000,
            1,
            "pending",
            "not_enough_traffic(orders)",
        ),
    ];
    for (name, fails_every, delay, min_requests, code_wanted, outcome, reason) in cases {
        let spec = started_spec(&dir, min_requests);
        let addr = orders(fails_every, delay).await;
        let stop = Arc::new(AtomicBool::new(false));
        let load = traffic(addr, stop.clone());
        let args = [
            "judge",
            "--spec",
            &spec,
            "--scrape",
            &format!("http://{addr}/metrics"),
            "--window",
            "3",
            "--json",
        ];
        let (code, out, err) = release_async(args.iter().map(|s| s.to_string()).collect()).await;
        stop.store(true, Ordering::Relaxed);
        load.await.unwrap();
        assert_eq!(code, code_wanted, "{name}: {out}{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (v["outcome"].as_str(), v["reason"].as_str()),
            (Some(outcome), Some(reason)),
            "{name}: {out}"
        );
        let orders = &v["services"][0];
        assert_eq!(orders["service"], "orders");
        assert!(
            orders["lane_requests"].as_f64().unwrap() >= 20.0,
            "{name}: {out}"
        );
        assert!(
            orders["base_requests"].as_f64().unwrap() > 50.0,
            "{name}: {out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_read_a_real_prometheus() {
    let dir = TempDir::new("release_prometheus");
    let spec = started_spec(&dir, 20);
    let addr = orders(4, Duration::ZERO).await;
    let prometheus = Prometheus::start(&[&addr.to_string()]);
    let stop = Arc::new(AtomicBool::new(false));
    let load = traffic(addr, stop.clone());
    // `increase` needs samples in the window: wait until Prometheus has scraped the traffic
    // a few times (it scrapes every second, from an offset, and slower on a busy machine).
    let samples = format!(
        "{}/api/v1/query?query=min(count_over_time(graylane_requests_total%7Bgraylane_kind%3D%22server%22%7D%5B10s%5D))",
        prometheus.url()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let body = reqwest::get(&samples).await.unwrap().text().await.unwrap();
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let n = answer["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok());
        if n.is_some_and(|n| n >= 4.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Prometheus scraped too few samples: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let args = [
        "judge",
        "--spec",
        &spec,
        "--prometheus",
        prometheus.url(),
        "--window",
        "10",
        "--json",
    ];
    let (code, out, err) = release_async(args.iter().map(|s| s.to_string()).collect()).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert_eq!(code, 1, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["reason"], "error_ratio(orders)", "{out}");
    let ratio = v["services"][0]["lane_error_ratio"].as_f64().unwrap();
    assert!(
        (0.15..0.35).contains(&ratio),
        "one in four gray requests fail: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_rolls_back_at_the_first_failing_step_and_promotes_a_healthy_release() {
    for (fails_every, code_wanted, last) in [
        (
            3,
            1,
            "release: lane=gray steps=1 outcome=rolled-back rollback_reason=error_ratio(orders)",
        ),
        (
            0,
            0,
            "release: lane=gray steps=4 outcome=promoted rollback_reason=-",
        ),
    ] {
        let dir = TempDir::new("release_run");
        let spec = spec_file(&dir, SPEC_TEXT);
        let addr = orders(fails_every, Duration::ZERO).await;
        let stop = Arc::new(AtomicBool::new(false));
        let load = traffic(addr, stop.clone());
        let args = [
            "run",
            "--spec",
            &spec,
            "--scrape",
            &format!("http://{addr}/metrics"),
            "--promote",
        ];
        let (code, out, err) = release_async(args.iter().map(|s| s.to_string()).collect()).await;
        stop.store(true, Ordering::Relaxed);
        load.await.unwrap();
        assert_eq!(code, code_wanted, "{out}{err}");
        assert_eq!(out.lines().last(), Some(last), "{out}");
        let after = graylane_core::spec::LaneSpec::from_path(&spec).unwrap();
        // Rolled back: the rules stay, off. Promoted: they are gone, and orders runs v2 as base.
        assert!(after.coloring.rules.iter().all(|r| !r.enabled), "{out}");
        assert_eq!(after.coloring.rules.is_empty(), code_wanted == 0, "{out}");
        let orders = after.service("orders").unwrap();
        assert_eq!(orders.version, if code_wanted == 0 { "v2" } else { "v1" });
    }
}

#[test]
fn run_rolls_back_when_the_metrics_cannot_be_read() {
    let dir = TempDir::new("release_no_metrics");
    let spec = spec_file(&dir, SPEC_TEXT);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // Nothing listens there once the listener is dropped.
    let url = format!("http://{dead}/metrics");
    let (code, out, err) = release(&["run", "--spec", &spec, "--scrape", &url]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        out.lines().last(),
        Some("release: lane=gray steps=1 outcome=rolled-back rollback_reason=metrics_unavailable"),
        "{out}{err}"
    );
    assert!(err.contains("trying again"), "{err}");
    let after = graylane_core::spec::LaneSpec::from_path(&spec).unwrap();
    assert!(after.coloring.rules.iter().all(|r| !r.enabled));
}
