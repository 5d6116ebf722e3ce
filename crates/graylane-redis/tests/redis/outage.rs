//! A Redis outage in the middle of lane traffic, on a server of the test's own: requests fail
//! with an error within a bound ([`DOWN_BOUND`], 2 s) while it is down (no hang, no panic), the same client recovers
//! when it is back, no lane crosses, and nothing acknowledged is lost (append-only file, fsync
//! on every write, so what was acknowledged survives a kill).

use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::*;

/// A `redis-server` on `port`, its data in `dir`.
struct Server(Child);

impl Server {
    fn start(port: u16, dir: &std::path::Path) -> Server {
        let server = Server(
            Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--appendonly", "yes", "--appendfsync", "always"])
                .args(["--save", ""])
                .arg("--dir")
                .arg(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server is installed (scripts/services up)"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let url = format!("redis://127.0.0.1:{port}/");
        loop {
            let up = redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if up.is_ok() {
                return server;
            }
            // On the way out the server is dropped: killed and waited for.
            assert!(
                Instant::now() < deadline,
                "redis-server did not come up on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Killed, as in a crash.
    fn kill(self) {
        drop(self);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The bound on a request while the server is down.
const DOWN_BOUND: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_fails_fast_recovers_and_loses_nothing() {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(unique("redis_outage"));
    std::fs::create_dir_all(&dir).unwrap();
    let server = Server::start(port, &dir);
    let url = format!("redis://127.0.0.1:{port}/");
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_millis(500)))
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(200));
    let manager =
        ConnectionManager::new_with_config(redis::Client::open(url.as_str()).unwrap(), config)
            .await
            .unwrap();
    let spec = LaneSpec::from_yaml_str("lanes: [{name: gray}]").unwrap();
    let conn = LaneRedis::new(manager, Namespaces::from_spec(&spec));
    // `(lane, i)` of every write that was acknowledged.
    let mut acknowledged: Vec<(Lane, usize)> = Vec::new();
    let gray = Lane::new("gray").unwrap();
    let write = |i: usize| {
        let mut conn = conn.clone();
        let lane = if i.is_multiple_of(2) {
            Lane::BASE
        } else {
            gray
        };
        async move {
            let started = Instant::now();
            let r: redis::RedisResult<()> = conn
                .set(format!("k{i}"), lane.as_str())
                .with_lane(LaneContext::new(lane))
                .await;
            (lane, r.is_ok(), started.elapsed())
        }
    };
    let mut i = 0;
    for _ in 0..100 {
        let (lane, ok, _) = write(i).await;
        assert!(ok, "up: every write succeeds");
        acknowledged.push((lane, i));
        i += 1;
    }
    server.kill();
    // Down: every request fails, each within the bound.
    for _ in 0..10 {
        let (_, ok, took) = write(i).await;
        assert!(!ok, "a write succeeded with Redis down");
        assert!(
            took < DOWN_BOUND,
            "a request took {took:?} while Redis was down"
        );
        i += 1;
    }
    let server = Server::start(port, &dir);
    // Back: the same client recovers, without a restart.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (lane, ok, _) = write(i).await;
        i += 1;
        if ok {
            acknowledged.push((lane, i - 1));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the client did not recover within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..100 {
        let (lane, ok, _) = write(i).await;
        assert!(ok, "recovered: every write succeeds");
        acknowledged.push((lane, i));
        i += 1;
    }
    // Nothing acknowledged is lost, and every key is in its lane's namespace.
    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for (lane, n) in &acknowledged {
        let key = if lane.is_base() {
            format!("k{n}")
        } else {
            format!("lane:gray:k{n}")
        };
        let value: Option<String> = raw.get(&key).await.unwrap();
        assert_eq!(value.as_deref(), Some(lane.as_str()), "{key}");
    }
    let keys: Vec<String> = raw.keys("*").await.unwrap();
    for key in &keys {
        let n: usize = key
            .trim_start_matches("lane:gray:")
            .trim_start_matches('k')
            .parse()
            .unwrap();
        let base = !key.starts_with("lane:gray:");
        assert_eq!(
            base,
            n.is_multiple_of(2),
            "{key} is in the other lane's namespace"
        );
    }
    assert!(acknowledged.len() >= 201, "{}", acknowledged.len());
    server.kill();
    let _ = std::fs::remove_dir_all(&dir);
}
