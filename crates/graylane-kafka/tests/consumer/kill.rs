//! A lane member killed for real: two gray consumers in child processes share the lane group's
//! partitions; one is SIGKILLed. Its group keeps its partitions until the session times out
//! (12 s here, 45 s by default on Apache Kafka) while the other member goes on heartbeating, so
//! "the lane is live" says nothing about those partitions: base must take them back from their
//! silent holder within its lease, not wait for the group, and grant them again once the
//! survivor holds them.
//!
//! On the mock and the test broker with the tests' timing and a 12 s session; on the stock
//! broker (`GRAYLANE_KILL_STOCK=1`, a measurement for `docs/kafka-lanes.md`: a minute and more)
//! with graylane's default `Timing` and Apache Kafka's own session (45 s).

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::*;

/// The lane group's session: how long the killed member keeps its partitions in the group
/// (on the stock broker: Apache Kafka's default).
fn session(broker: &TestBroker) -> Duration {
    match broker.flavor() {
        Flavor::Stock => Duration::from_secs(45),
        _ => Duration::from_secs(12),
    }
}

/// The tests' timing, or on the stock broker graylane's default.
fn timing_on(broker: &TestBroker) -> Timing {
    match broker.flavor() {
        Flavor::Stock => Timing::default(),
        _ => timing(),
    }
}

/// How the parent tells a child what to run: `{key}={value}` lines.
const CHILD_VAR: &str = "GRAYLANE_KILL_TEST_CHILD";

/// A gray consumer in a child process; killed (SIGKILL) when dropped, so that no child outlives
/// a failing test (it would hold the test runner's output open).
struct LaneChild {
    name: String,
    process: Child,
    /// `{id} {lane} {served}` per record handled, appended as handled.
    ledger: PathBuf,
    /// `{partitions} {granted}`, rewritten every 50 ms.
    status: PathBuf,
}

impl Drop for LaneChild {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_file(&self.ledger);
        let _ = std::fs::remove_file(&self.status);
    }
}

impl LaneChild {
    fn spawn(w: &World, name: &str) -> LaneChild {
        let dir = std::env::temp_dir();
        let ledger = dir.join(unique(&format!("{name}-ledger")));
        let status = dir.join(unique(&format!("{name}-status")));
        let mut config = w.broker.client_config();
        let defaults = w.broker.flavor() == Flavor::Stock;
        if !defaults {
            config.set(
                "session.timeout.ms",
                session(&w.broker).as_millis().to_string(),
            );
        }
        let settings: Vec<String> = config
            .config_map()
            .iter()
            .map(|(k, v)| format!("config.{k}={v}"))
            .collect();
        let spec = [
            format!("name={name}"),
            format!("topic={}", w.topic),
            format!("control={}", w.control),
            format!("group={}", w.group),
            format!("ledger={}", ledger.display()),
            format!("status={}", status.display()),
            format!("defaults={defaults}"),
        ]
        .into_iter()
        .chain(settings)
        .collect::<Vec<_>>()
        .join("\n");
        let process = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "kill::lane_child", "--ignored", "--nocapture"])
            .env(CHILD_VAR, spec)
            // The child stops gracefully when its stdin closes (the parent stopped it, or died).
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        LaneChild {
            name: name.to_owned(),
            process,
            ledger,
            status,
        }
    }

    /// `(partitions, granted)` as the child last wrote them.
    fn status(&self) -> (u64, u64) {
        let text = std::fs::read_to_string(&self.status).unwrap_or_default();
        let mut n = text.split_whitespace().map(|n| n.parse().unwrap_or(0));
        (n.next().unwrap_or(0), n.next().unwrap_or(0))
    }

    /// The ids it handled, with the lane and served lane its handler saw.
    fn handled(&self) -> Vec<(u64, Lane, Lane)> {
        let lanes = LaneSet::new([gray()]);
        let lane = |s: &str| lanes.get(s.as_bytes());
        std::fs::read_to_string(&self.ledger)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut f = line.split(' ');
                // A record's line cut short by the kill is not a record.
                let parsed = (f.next()?.parse().ok()?, lane(f.next()?)?, lane(f.next()?)?);
                f.next().is_none().then_some(parsed)
            })
            .collect()
    }

    /// Stops it gracefully (its stdin closes), within `within`.
    fn stop(&mut self, within: Duration) {
        drop(self.process.stdin.take());
        let deadline = Instant::now() + within;
        while self.process.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "{} did not stop", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The ids handled so far, by base in this process or by the children.
fn handled(w: &World, children: &[&LaneChild]) -> usize {
    let mut ids: HashSet<u64> = w.ledger.snapshot().into_keys().collect();
    for c in children {
        ids.extend(c.handled().into_iter().map(|(id, ..)| id));
    }
    ids.len()
}

async fn until_handled(w: &World, children: &[&LaneChild], n: usize, within: Duration) -> Duration {
    until("every record handled", within, || handled(w, children) >= n).await
}

async fn a_killed_lane_member_leaves_no_partition_unhandled(broker: TestBroker) {
    if broker.flavor() == Flavor::Stock && std::env::var("GRAYLANE_KILL_STOCK").is_err() {
        eprintln!("skipped on the stock broker: a measurement, run with GRAYLANE_KILL_STOCK=1");
        return;
    }
    let session = session(&broker);
    let w = World::new(broker, "kill");
    let base = w
        .consumer_with("base-1", Lane::BASE, timing_on(&w.broker))
        .await;
    until("base has its partitions", Duration::from_secs(30), || {
        base.stats().partitions == PARTITIONS as u64
    })
    .await;
    let killed = LaneChild::spawn(&w, "gray-1");
    let mut survivor = LaneChild::spawn(&w, "gray-2");
    until(
        "both members hold partitions, all granted",
        Duration::from_secs(60),
        || {
            let (k, s) = (killed.status(), survivor.status());
            k.0 > 0 && s.0 > 0 && k.0 + s.0 == PARTITIONS as u64 && k.1 + s.1 == k.0 + s.0
        },
    )
    .await;
    w.produce(0, 300, Duration::ZERO).await;
    until_handled(&w, &[&killed, &survivor], 300, Duration::from_secs(30)).await;
    let held_by_killed = killed.status().0;
    let (grants_before, releases_before) = (grants(&[&base]), releases(&[&base]));

    // SIGKILL: no final commit, no `stop`, and the group keeps its partitions for `session`.
    let mut killed = killed;
    killed.process.kill().unwrap();
    killed.process.wait().unwrap();
    let at_kill = Instant::now();
    w.produce(300, 600, Duration::ZERO).await;
    let within = session / 2;
    until_handled(&w, &[&killed, &survivor], 600, within).await;
    eprintln!(
        "every record handled {} ms after the kill (the group's session: {} ms)",
        at_kill.elapsed().as_millis(),
        session.as_millis()
    );
    assert!(
        releases(&[&base]) >= releases_before + held_by_killed,
        "base took back the killed member's partitions: {:?}",
        base.stats()
    );

    // The group gives the survivor the killed member's partitions once its session is over;
    // base grants them again.
    until(
        "the survivor holds every partition, all granted",
        session * 4,
        || survivor.status() == (PARTITIONS as u64, PARTITIONS as u64),
    )
    .await;
    assert!(grants(&[&base]) >= grants_before + held_by_killed);
    w.produce(600, 900, Duration::ZERO).await;
    until_handled(&w, &[&killed, &survivor], 900, Duration::from_secs(30)).await;
    survivor.stop(Duration::from_secs(30));
    let bs = base.stop().await.unwrap();
    for c in [&killed, &survivor] {
        for (id, lane, served) in c.handled() {
            w.ledger.record_as(id, &c.name, lane, served);
        }
    }
    let duplicates = w.audit(900, &["gray-1"]);
    eprintln!("base {bs:?}, duplicates {duplicates}");
    let by_survivor = survivor
        .handled()
        .iter()
        .filter(|(id, ..)| *id >= 600)
        .count();
    assert!(
        by_survivor > 0,
        "the survivor handled its lane after the regrant"
    );
}

graylane_testkit::kafka_tests!(stock: a_killed_lane_member_leaves_no_partition_unhandled);

/// The child process's side of [`LaneChild`]: a gray consumer as the parent describes it, until
/// its stdin closes. Not a test of its own (ignored; without the variable it does nothing).
#[test]
#[ignore = "run by a_killed_lane_member_leaves_no_partition_unhandled in a child process"]
fn lane_child() {
    let Ok(spec) = std::env::var(CHILD_VAR) else {
        return;
    };
    let spec: HashMap<&str, &str> = spec.lines().filter_map(|l| l.split_once('=')).collect();
    let mut config = rdkafka::ClientConfig::new();
    for (k, v) in &spec {
        if let Some(k) = k.strip_prefix("config.") {
            config.set(k, *v);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut ledger = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(spec["ledger"])
            .unwrap();
        let handle = LaneConsumer::builder(config, propagator(), spec["group"])
            .lane(gray())
            .topic(spec["topic"])
            .control_topic(spec["control"])
            .timing(if spec["defaults"] == "true" {
                Timing::default()
            } else {
                timing()
            })
            .spawn(move |m| {
                let ctx = LaneContext::current();
                let id = m.payload_view::<str>().unwrap().unwrap().to_owned();
                // One write per record, unbuffered: what was handled before the kill is on disk.
                writeln!(ledger, "{id} {} {}", ctx.lane(), ctx.served()).unwrap();
                async {}
            })
            .await
            .unwrap();
        let (stdin_closed, mut closed) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            let _ = stdin_closed.send(());
        });
        // Bounded however the parent fares.
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline && closed.try_recv().is_err() {
            let s = handle.stats();
            let _ = std::fs::write(spec["status"], format!("{} {}", s.partitions, s.granted));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        handle.stop().await.unwrap();
    });
}
