//! The shop split into one process per service (`shop --role`), the way docker-compose runs
//! it: the services find each other only through their addresses, and the Kafka handover runs
//! between consumer processes. Real PostgreSQL and Redis; each Kafka broker (a mock hosted by
//! the test, and the real one `GRAYLANE_KAFKA_BROKERS` names).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use graylane_testkit::kafka::TestBroker;
use graylane_testkit::services::{postgres_url, unique};
use shop::Customer;

const BASE_PATH: &str = "gateway v1 (lane base, served base) -> orders v1 (lane base, served base) -> inventory v1 (lane base, served base) | shipping: standard\n";
const GRAY_PATH: &str = "gateway v1 (lane gray, served base) -> orders v2 (lane gray, served gray) -> inventory v1 (lane gray, served base) | shipping: express (free)\n";

/// A service process, killed when dropped.
struct Service {
    child: Child,
    role: String,
    /// Where it serves its `GET /metrics`.
    metrics: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    /// Starts `shop --role role` and waits for its first line (`... listening on <addr>`)
    /// and its metrics line.
    fn start(role: &str, envs: &[(&str, &str)]) -> (Service, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shop"))
            .args(["--role", role])
            .env("SHOP_LISTEN", "127.0.0.1:0")
            .env("SHOP_METRICS_LISTEN", "127.0.0.1:0")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let next = |what: &str| {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("{role}: no {what} line in 30 s"));
            line.rsplit(' ').next().unwrap().to_owned()
        };
        let addr = next("start-up");
        let metrics = next("metrics");
        let service = Service {
            child,
            role: role.into(),
            metrics,
        };
        (service, addr)
    }

    /// The `graylane_requests_total` series of its `/metrics` that carry every one of `labels`.
    fn counted(&self, labels: &[&str]) -> Vec<String> {
        get(&self.metrics, "/metrics")
            .lines()
            .filter(|l| l.starts_with("graylane_requests_total{"))
            .filter(|l| labels.iter().all(|label| l.contains(label)))
            .map(str::to_owned)
            .collect()
    }

    /// SIGTERM, as `docker stop` sends: a graceful stop.
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{} exited with {status}", self.role);
    }
}

/// `GET path` from `addr`, the body (HTTP/1.1, one request per connection).
fn get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

async fn checkout(gateway: &str, id: &str, extra: &[(&str, &str)]) -> String {
    let r = Customer::new(gateway)
        .checkout(id, "user-1", extra)
        .await
        .unwrap();
    assert!(r.status.is_success(), "{id}: {}", r.status);
    r.path
}

/// The carrier of `id`'s shipment in `schema`, waiting up to 15 s for it.
async fn shipped(db: &sqlx::PgPool, schema: &str, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let carrier: Option<String> = sqlx::query_scalar(&format!(
            "SELECT carrier FROM {schema}.shipments WHERE request_id = $1"
        ))
        .bind(id)
        .fetch_optional(db)
        .await
        .unwrap();
        if let Some(c) = carrier {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "no shipment for {id} in {schema}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn orders_in(db: &sqlx::PgPool, schema: &str, id: &str) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {schema}.orders WHERE request_id = $1"
    ))
    .bind(id)
    .fetch_one(db)
    .await
    .unwrap()
}

graylane_testkit::kafka_tests!(one_process_per_service_keeps_the_lane);

async fn one_process_per_service_keeps_the_lane(broker: TestBroker) {
    // One run at a time: both runs migrate and share the shop's schemas.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    // A real broker gets the shop's topics from the shop itself, as users' brokers do.
    if !broker.is_real() {
        broker.create_topic("shop.orders", 4).unwrap();
        broker.create_topic("shop.graylane-control", 1).unwrap();
    }
    let kafka = [("GRAYLANE_KAFKA_BROKERS", broker.bootstrap())];

    let migrate = Command::new(env!("CARGO_BIN_EXE_shop"))
        .args(["--role", "migrate"])
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{migrate:?}");

    let (inventory_v1, inventory) = Service::start("inventory", &[]);
    let inventory = format!("http://{inventory}");
    let with = |lane: &'static str| {
        let mut e = vec![
            ("GRAYLANE_SERVING_LANE", lane),
            ("SHOP_INVENTORY_URL", inventory.as_str()),
        ];
        e.extend(kafka);
        e
    };
    let (_orders_v1, v1) = Service::start("orders", &with("base"));
    let (orders_v2, v2) = Service::start("orders", &with("gray"));
    let (_fulfillment_v1, _) = Service::start("fulfillment", &with("base"));
    let (fulfillment_v2, _) = Service::start("fulfillment", &with("gray"));
    let orders = format!("base=http://{v1},gray=http://{v2}");
    let (_gateway, gateway) = Service::start(
        "gateway",
        &[
            ("SHOP_ORDERS_URLS", orders.as_str()),
            ("SHOP_MIRROR_PERCENT", "0"),
        ],
    );

    let db = sqlx::PgPool::connect(&postgres_url()).await.unwrap();
    let run = unique("roles");
    let beta = [("x-user-group", "beta")];

    // Base, across four processes.
    let id = format!("{run}-base");
    assert_eq!(checkout(&gateway, &id, &[]).await, BASE_PATH);
    assert_eq!(shipped(&db, "shop", &id).await, "truck");
    assert_eq!(orders_in(&db, "shop_lane_gray", &id).await, 0);

    // Gray: the fulfillment v2 process gets its partitions from the base process through the
    // control topic; until then base ships gray orders (in gray data). Then v2 ships them.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    loop {
        n += 1;
        let id = format!("{run}-gray-{n}");
        assert_eq!(checkout(&gateway, &id, &beta).await, GRAY_PATH);
        assert_eq!(
            orders_in(&db, "shop", &id).await,
            0,
            "{id}: no gray order in base"
        );
        if shipped(&db, "shop_lane_gray", &id).await == "drone" {
            break;
        }
        assert!(Instant::now() < deadline, "fulfillment v2 never took over");
    }

    // Each process serves its own metrics: the gray lane at orders v2, served gray; at
    // inventory, served by base; and fulfillment v2 handling the lane's records.
    let served = |lane: &str, served: &str| {
        [
            format!(r#"gray_lane="{lane}""#),
            format!(r#"gray_served="{served}""#),
        ]
    };
    for (service, kind, lane, by) in [
        (&orders_v2, "server", "gray", "gray"),
        (&inventory_v1, "server", "gray", "base"),
        (&fulfillment_v2, "consumer", "gray", "gray"),
    ] {
        let [l, s] = served(lane, by);
        let kind = format!(r#"graylane_kind="{kind}""#);
        let found = service.counted(&[&kind, &l, &s]);
        assert!(
            !found.is_empty(),
            "{}: no {kind} {l} {s} series",
            service.role
        );
    }

    // A forged header from outside stays base.
    let id = format!("{run}-forged");
    assert_eq!(
        checkout(&gateway, &id, &[("x-gray-lane", "gray")]).await,
        BASE_PATH
    );
    assert_eq!(shipped(&db, "shop", &id).await, "truck");

    // `docker stop` of fulfillment v2: it hands its partitions back, and the base process ships
    // the next gray order at once, in gray data (v1's truck).
    fulfillment_v2.terminate();
    let id = format!("{run}-gray-after-stop");
    assert_eq!(checkout(&gateway, &id, &beta).await, GRAY_PATH);
    assert_eq!(shipped(&db, "shop_lane_gray", &id).await, "truck");
    assert_eq!(orders_in(&db, "shop", &id).await, 0);
}

#[test]
fn a_role_without_what_it_needs_says_so() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_shop"))
            .args(args)
            .env_remove("GRAYLANE_KAFKA_BROKERS")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--role", "cashier"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("migrate, gateway, orders, inventory, fulfillment"),
        "{err}"
    );
    let (code, err) = run(&["--role"]);
    assert_eq!(code, Some(2), "{err}");
    // Orders publish to Kafka: one broker shared by every process, never an embedded one.
    let (code, err) = run(&["--role", "orders"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("GRAYLANE_KAFKA_BROKERS"), "{err}");
}

/// A gateway started on a copy of the shop's spec file (`GRAYLANE_SPEC`) follows edits of it
/// without a restart: the beta group's rule goes, and beta requests are base from the next
/// revision on; a broken edit keeps it, and both are on its `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_follows_its_spec_file_without_a_restart() {
    let dir = std::env::temp_dir().join(unique("shop_live_spec"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("graylane.yaml");
    let shipped = include_str!("../graylane.yaml");
    std::fs::write(&path, shipped).unwrap();
    // Nothing listens behind it: the edge decides the lane, and the answer (502) says which.
    let dead = "base=http://127.0.0.1:1,gray=http://127.0.0.1:1";
    let (_gateway, gateway) = Service::start(
        "gateway",
        &[
            ("GRAYLANE_SPEC", path.to_str().unwrap()),
            ("GRAYLANE_SPEC_POLL_MS", "50"),
            ("SHOP_ORDERS_URLS", dead),
            ("SHOP_MIRROR_PERCENT", "0"),
        ],
    );
    let customer = Customer::new(&gateway);
    let lane_of_beta = || async {
        let r = customer
            .checkout("live-spec", "user-1", &[("x-user-group", "beta")])
            .await
            .unwrap();
        r.lane
    };
    assert_eq!(lane_of_beta().await, "gray");

    // A release step's kind of edit: the beta rule now wants a group nobody is in.
    let edited = shipped.replace("exact: beta }", "exact: nobody }");
    assert_ne!(edited, shipped);
    std::fs::write(&path, &edited).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lane_of_beta().await != "base" {
        assert!(Instant::now() < deadline, "the edit was not applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A broken edit: the spec in force stays.
    std::fs::write(&path, edited.replace("lane: gray", "lane: nope")).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(lane_of_beta().await, "base");
    let metrics = get(&gateway, "/metrics");
    let value = |name: &str, label: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains(label))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    };
    assert_eq!(
        value("graylane_spec_revision", "gateway").as_deref(),
        Some("2"),
        "{metrics}"
    );
    assert_eq!(
        value("graylane_spec_changes_total", "outcome=\"invalid\"").as_deref(),
        Some("1"),
        "{metrics}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
