//! The demo is the proof: run it (small traffic) against the real PostgreSQL and Redis, on each
//! Kafka broker (its embedded one, and the real one `GRAYLANE_KAFKA_BROKERS` names), and hold it
//! to its audit line.

use std::process::Command;

use graylane_testkit::kafka::TestBroker;

/// The shop on its embedded broker.
fn shop() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shop"));
    cmd.env_remove("GRAYLANE_KAFKA_BROKERS");
    cmd
}

/// `key=value` fields of the audit line.
fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        .parse()
        .unwrap()
}

graylane_testkit::kafka_tests!(gray_traffic_and_data_stay_gray_and_nothing_is_lost);

/// One demo at a time: each provisions the shop's schemas, and a run is named by the second it
/// started in.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn gray_traffic_and_data_stay_gray_and_nothing_is_lost(broker: TestBroker) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut shop = shop();
    if broker.is_real() {
        shop.env("GRAYLANE_KAFKA_BROKERS", broker.bootstrap());
    }
    let out = shop.env("SHOP_REQUESTS", "160").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        out.status.success(),
        "shop failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(last.starts_with("lane audit: requests=160 "), "{last}");
    assert_eq!(field(last, "lost"), 0, "{stdout}");
    assert_eq!(field(last, "leaks"), 0, "{stdout}");
    assert_eq!(field(last, "idle"), 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("gray consumer share: shipped "), "{stdout}");
    // Beta users, testers and the sticky 10% are gray: well over a third of the traffic.
    assert!(field(last, "gray") >= 160 * 3 / 10, "{last}");
    // gateway and inventory have no gray version: every gray request falls back there.
    assert!(
        field(last, "fallbacks") >= 2 * field(last, "gray"),
        "{last}"
    );
    // 10% mirrored: zero in 160 would be a one-in-20,000 event.
    assert!(field(last, "mirrored") > 0, "{last}");
    // The 200 quotes' mirrored share, compared: shipping differs, the ids and times are noise
    // (none compared of 200 at 10%: one in 10^9).
    let quotes = stdout
        .lines()
        .skip_while(|l| !l.starts_with("  POST /quote "))
        .nth(1)
        .unwrap_or_else(|| panic!("no comparison of POST /quote:\n{stdout}"));
    assert!(quotes.contains(" differing: shipping ("), "{quotes}");
    assert!(quotes.ends_with("; noise: quote_id, quoted_at"), "{quotes}");
    let samples: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("  sample "))
        .collect();
    assert_eq!(samples.len(), 2, "{stdout}");
    // The metrics a dashboard reads tell the same story: one stripped header per forger
    // (every tenth request), one gateway fallback per gray request.
    assert!(
        stdout.contains(r#"graylane_lane_headers_stripped_total{graylane_service="gateway"} 16"#),
        "{stdout}"
    );
    let gateway_fallbacks = format!(
        r#"graylane_fallbacks_total{{gray_lane="gray",graylane_service="gateway"}} {}"#,
        field(last, "gray")
    );
    assert!(stdout.contains(&gateway_fallbacks), "{stdout}");
    // The gray consumer was stopped mid-run: base handled gray messages, in gray.
    assert!(
        stdout.contains("fulfillment  v1  gray             -> base"),
        "{stdout}"
    );
}

/// `shop release [args]` on the embedded broker: its stdout, held to succeed.
async fn release(args: &[&str]) -> String {
    let _turn = ONE_AT_A_TIME.lock().await;
    let out = shop().arg("release").args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "shop release {args:?} failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stdout
}

#[tokio::test]
async fn a_healthy_release_steps_through_its_gates_is_promoted_and_torn_down() {
    let out = release(&[]).await;
    assert_eq!(
        out.lines().last(),
        Some("release: lane=gray steps=3 outcome=promoted rollback_reason=- teardown=clean"),
        "{out}"
    );
    // Each step judged, lane against base, per service; then the promotion's edits.
    assert_eq!(
        out.matches("gates for lane gray (pass):").count(),
        3,
        "{out}"
    );
    assert!(
        out.contains("set coloring.rules[1].match.sticky.percent = 50"),
        "{out}"
    );
    assert!(
        out.contains("set services[1].version = v2 (was v1)"),
        "{out}"
    );
    // The lane's data was found in the lane only, then removed.
    assert!(out.contains("finish: audit: done: clean: in lane"), "{out}");
    assert!(
        out.contains("finish: shadow: done: dropped shop_r"),
        "{out}"
    );
}

#[tokio::test]
async fn a_faulty_release_is_caught_at_its_first_step_and_rolled_back() {
    let out = release(&["--faulty-v2"]).await;
    assert_eq!(
        out.lines().last(),
        Some(
            "release: lane=gray steps=1 outcome=rolled-back rollback_reason=error_ratio(orders) teardown=clean"
        ),
        "{out}"
    );
    assert_eq!(
        out.matches("gates for lane gray (fail):").count(),
        1,
        "{out}"
    );
    assert!(
        !out.contains("percent = 5"),
        "never past the beta group: {out}"
    );
}

#[test]
fn an_unreachable_database_says_what_to_run() {
    let out = shop()
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/test")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("PostgreSQL is not reachable"), "{stderr}");
    assert!(stderr.contains("scripts/services up"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
