//! A PostgreSQL outage in the middle of lane traffic, on a throwaway cluster of the test's own
//! (`initdb` / `pg_ctl` from PostgreSQL's versioned `bin` directory, as the `postgres` user when
//! the test runs as root): requests fail with an error within a bound while it is down (no hang,
//! no panic), the same pools recover when it is back, no lane crosses, and no committed row is
//! lost (an immediate stop is a crash; the WAL keeps what was committed).

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext, LaneFutureExt};
use graylane_sqlx::{LanePools, Shadows};
use graylane_testkit::services::unique;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./tests/migrations");

/// The bound on a request while the server is down: the pool's acquire timeout, and slack.
const DOWN_BOUND: Duration = Duration::from_secs(4);

/// A PostgreSQL cluster in a directory of its own, on `port`.
struct Cluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `program args...` from PostgreSQL's `bin`, as `postgres` when running as root.
fn pg(bin: &Path, program: &str, args: &[&str]) {
    let path = bin.join(program);
    let status = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&path)
            .args(args)
            .output()
    } else {
        Command::new(&path).args(args).output()
    }
    .expect("PostgreSQL's binaries are installed (scripts/services up)");
    assert!(
        status.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
}

impl Cluster {
    fn new() -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("a versioned PostgreSQL bin directory");
        let dir = std::env::temp_dir().join(unique("pgcluster"));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let _ = Command::new("chown").args(["postgres"]).arg(&dir).status();
        }
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.join("data");
        pg(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let cluster = Cluster { dir, port, bin };
        cluster.start();
        cluster
    }

    fn start(&self) {
        let data = self.dir.join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on",
            self.port,
            self.dir.display()
        );
        pg(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                self.dir.join("log").to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    /// An immediate stop: no shutdown checkpoint, as in a crash.
    fn crash(&self) {
        let data = self.dir.join("data");
        pg(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    fn options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username("postgres")
            .database("postgres")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One order in the lane in scope: customer and order in one transaction.
async fn order(pools: &LanePools, n: i64) -> Result<(), Box<dyn std::error::Error>> {
    let mut tx = pools.current()?.begin().await?;
    let customer: i64 = sqlx::query_scalar("INSERT INTO customers (name) VALUES ($1) RETURNING id")
        .bind(format!("c{n}"))
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO orders (customer_id, sku) VALUES ($1, $2)")
        .bind(customer)
        .bind(format!("sku{n}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_fails_fast_recovers_and_loses_nothing() {
    let cluster = Cluster::new();
    let spec = LaneSpec::from_yaml_str("lanes: [{name: gray}]").unwrap();
    let base = cluster.options();
    let mut admin = PgConnection::connect_with(&base).await.unwrap();
    MIGRATOR.run(&mut admin).await.unwrap();
    admin.close().await.unwrap();
    let gray = Lane::new("gray").unwrap();
    Shadows::new(&spec, base.clone())
        .provision(gray, &MIGRATOR)
        .await
        .unwrap();
    let pools = LanePools::connect_lazy(
        &spec,
        base.clone(),
        PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(2)),
    );
    let run = |n: i64| {
        let pools = pools.clone();
        let lane = if n % 2 == 0 { Lane::BASE } else { gray };
        async move {
            let started = Instant::now();
            let ok = order(&pools, n)
                .with_lane(LaneContext::new(lane))
                .await
                .is_ok();
            (lane, ok, started.elapsed())
        }
    };
    let mut acknowledged: Vec<(Lane, i64)> = Vec::new();
    let mut n = 0;
    for _ in 0..60 {
        let (lane, ok, _) = run(n).await;
        assert!(ok, "up: every order commits");
        acknowledged.push((lane, n));
        n += 1;
    }
    cluster.crash();
    for _ in 0..4 {
        let (_, ok, took) = run(n).await;
        assert!(!ok, "an order committed with PostgreSQL down");
        assert!(
            took < DOWN_BOUND,
            "a request took {took:?} while PostgreSQL was down"
        );
        n += 1;
    }
    cluster.start();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (lane, ok, _) = run(n).await;
        n += 1;
        if ok {
            acknowledged.push((lane, n - 1));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pools did not recover within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..60 {
        let (lane, ok, _) = run(n).await;
        assert!(ok, "recovered: every order commits");
        acknowledged.push((lane, n));
        n += 1;
    }
    // Every committed order is there, in its lane's schema, and nowhere else.
    let mut admin = PgConnection::connect_with(&base).await.unwrap();
    for (schema, lane) in [("public", Lane::BASE), ("lane_gray", gray)] {
        let mut skus: Vec<String> = sqlx::query_scalar(&format!("SELECT sku FROM {schema}.orders"))
            .fetch_all(&mut admin)
            .await
            .unwrap();
        skus.sort();
        let mut want: Vec<String> = acknowledged
            .iter()
            .filter(|(l, _)| *l == lane)
            .map(|(_, n)| format!("sku{n}"))
            .collect();
        want.sort();
        assert_eq!(skus, want, "{schema}");
    }
}
