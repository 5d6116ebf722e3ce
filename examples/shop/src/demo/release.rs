//! `shop release [--faulty-v2]`: a release of the gray lane, the way an operator runs one —
//! `graylane release run` then `graylane release finish`, in-process, on a copy of the shop's
//! spec and manifests under `target/` — while customers keep the shop busy.
//!
//! The copy's release plan exposes gray to the beta group, then to 5% and 50% of users; each
//! step bakes, and its gates compare the lane with base from the shop's own `/metrics` (no
//! Prometheus needed). Healthy, the release is promoted; with `--faulty-v2`, orders v2 fails
//! one order in four, the gate catches it at the first step, and the release rolls back. Either
//! way `finish` then takes the lane offline: out of the spec and manifests, its consumer
//! drained, its data audited (`drone`, what only fulfillment v2 writes, must be nowhere but the
//! lane's shadow) and removed.
//!
//! The shop's processes follow the spec file (they were started on it), as a ConfigMap-mounted
//! spec is followed in a cluster; `kubectl apply` of the regenerated manifests is played by
//! the demo: when they no longer hold the gray fulfillment Deployment, its consumer stops.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use graylane::http::BoxError;
use graylane::spec::SpecText;

use super::traffic::Customer;
use crate::infra::{BASE_SCHEMA, CONTROL_TOPIC, GROUP};
use crate::topology::{self, Options, Shop};

/// What the release demo does.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReleaseDemo {
    /// orders v2 fails one order in four: the release must roll back at its first step.
    pub faulty_v2: bool,
}

/// The release plan the demo adds to its copy of the spec.
const PLAN: &str = "
# The demo's release of gray: the beta group first, then 5% and 50% of users by a sticky hash.
releases:
  - lane: gray
    rule: some-users
    steps: [0, 5, 50]
    bake_secs: 4
    # A busy shared machine delays a request by tens of milliseconds now and then.
    gates: { min_requests: 30, p99_tolerance_ms: 50 }
";

/// Runs the demo: exit 0 when the release ended as it should (promoted when healthy, rolled
/// back with `--faulty-v2`) and the teardown is clean.
pub async fn release(demo: ReleaseDemo) -> Result<ExitCode, BoxError> {
    let run = format!(
        "r{}",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)?
            .as_secs()
    );
    let dir = target_dir()?.join("shop-release").join(&run);
    let manifests = dir.join("manifests");
    let spec = dir.join("graylane.yaml");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(&spec, spec_copy(&run)?)?;
    eprintln!("release: working on {}", dir.display());
    cli(vec![
        "graylane".into(),
        "manifests".into(),
        "--spec".into(),
        path(&spec),
        "--out".into(),
        path(&manifests),
    ])
    .await?;

    let mut shop = topology::start(Options {
        spec: Some(spec.clone()),
        faulty_v2: if demo.faulty_v2 { 4 } else { 0 },
        ..Options::default()
    })
    .await?;
    shop.fulfillment_ready().await?;
    let customers = Customers::start(&shop, &run);
    println!(
        "release of lane gray on {}{}",
        spec.display(),
        if demo.faulty_v2 {
            " (orders v2 fails one order in four)"
        } else {
            ""
        }
    );
    // A Prometheus of the user's (scraping the gateway at SHOP_ADDR), else the shop's
    // `/metrics` read directly.
    let source = match std::env::var("PROMETHEUS_URL") {
        Ok(url) if !url.trim().is_empty() => ["--prometheus".to_owned(), url.trim().to_owned()],
        _ => [
            "--scrape".to_owned(),
            format!("http://{}/metrics", shop.gateway()),
        ],
    };
    let mut run_args = vec!["--spec".to_owned(), path(&spec)];
    run_args.extend(source);
    run_args.extend(["--manifests".into(), path(&manifests), "--promote".into()]);
    let summary = operate(&mut shop, &manifests, move || {
        graylane_cli::release_run(run_args)
    })
    .await??;
    let sent = customers.stop().await;
    eprintln!("release: {sent} checkouts sent during the release");

    let finish_args = vec![
        "--spec".to_owned(),
        path(&spec),
        "--lane".into(),
        "gray".into(),
        "--marker".into(),
        "drone".into(),
        "--database-url".into(),
        crate::infra::database_url(),
        "--base-schema".into(),
        BASE_SCHEMA.into(),
        "--redis-url".into(),
        crate::infra::redis_url(),
        "--kafka-brokers".into(),
        shop.kafka_bootstrap(),
        "--group".into(),
        GROUP.into(),
        "--control-topic".into(),
        CONTROL_TOPIC.into(),
        "--manifests".into(),
        path(&manifests),
        "--drain-timeout".into(),
        "60".into(),
    ];
    let teardown = operate(&mut shop, &manifests, move || {
        graylane_cli::release_finish(finish_args)
    })
    .await??;
    shop.shutdown().await?;
    println!("{summary} teardown={teardown}");
    let expected = if demo.faulty_v2 {
        "rolled-back"
    } else {
        "promoted"
    };
    Ok(if summary.outcome == expected && teardown == "clean" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The shop's spec, made ready for a release: its gray rules off (the sticky one at 0% and
/// renamed for what it now does), the run's own data names (so that `finish` removes this
/// run's data and nothing of another's), and the release plan.
fn spec_copy(run: &str) -> Result<String, BoxError> {
    let mut text = SpecText::yaml(crate::app::SPEC.to_owned())?;
    text.set("coloring.rules[1].name", "some-users")?;
    text.set("coloring.rules[1].match.sticky.percent", "0")?;
    for i in 0..2 {
        text.set_beside(&format!("coloring.rules[{i}].lane"), "enabled", "false")?;
    }
    text.set("data.pg_schema", &format!("\"shop_{run}_lane_{{lane}}\""))?;
    text.set(
        "data.redis_prefix",
        &format!("\"shop:{run}:lane:{{lane}}:\""),
    )?;
    let with_plan = format!("{}{PLAN}", text.text());
    // The plan loads with the rest, or the copy is not written.
    Ok(SpecText::yaml(with_plan)?.text().to_owned())
}

/// Where cargo builds: the directory above the one holding this executable
/// (`target/release/shop` → `target`).
fn target_dir() -> Result<PathBuf, BoxError> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("no target directory above {}", exe.display()).into())
}

/// Runs the `graylane` command line `args` off the runtime; an error unless it succeeds.
async fn cli(args: Vec<String>) -> Result<(), BoxError> {
    let code = tokio::task::spawn_blocking(move || graylane_cli::run(args)).await?;
    if code != ExitCode::SUCCESS {
        return Err(format!("graylane: {code:?}").into());
    }
    Ok(())
}

/// Runs `command` off the runtime while playing `kubectl apply` of `manifests`: once they no
/// longer hold the gray fulfillment Deployment, its consumer stops (as its pod would).
async fn operate<T: Send + 'static>(
    shop: &mut Shop,
    manifests: &Path,
    command: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BoxError> {
    let mut task = tokio::task::spawn_blocking(command);
    loop {
        tokio::select! {
            done = &mut task => return Ok(done?),
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if shop.gray_fulfillment_runs() && !gray_fulfillment_deployed(manifests) {
            println!("kubectl apply: the gray fulfillment Deployment is gone; its consumer stops");
            shop.stop_gray_fulfillment().await?;
        }
    }
}

/// Whether the manifests still deploy fulfillment's gray version.
fn gray_fulfillment_deployed(manifests: &Path) -> bool {
    std::fs::read_to_string(manifests.join("fulfillment.yaml"))
        .is_ok_and(|m| m.contains("graylane.io/lane: gray"))
}

/// Customers checking out while the release runs: ordinary users, and a beta group (a
/// quarter of the requests) whom the lane's first step reaches.
struct Customers {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Customers {
    fn start(shop: &Shop, run: &str) -> Customers {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let workers = (0..4)
            .map(|w| {
                let customer = Customer::new(shop.gateway());
                let (stop, sent, run) = (stop.clone(), sent.clone(), run.to_owned());
                tokio::spawn(async move {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let id = format!("{run}-rel-{w}-{i}");
                        let user = format!("user-{}", fastrand::u32(0..400));
                        let beta = i.is_multiple_of(4);
                        let extra: &[(&str, &str)] = if beta {
                            &[("x-user-group", "beta")]
                        } else {
                            &[]
                        };
                        // A failed checkout is what the gates are for: it is counted there.
                        let _ = customer.checkout(&id, &user, extra).await;
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Customers {
            stop,
            sent,
            workers,
        }
    }

    /// Stops the customers; how many checkouts they sent.
    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            let _ = w.await;
        }
        self.sent.load(Ordering::Relaxed)
    }
}
