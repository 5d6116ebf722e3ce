//! The `graylane` binary, run as users run it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use graylane_testkit::services::{mysql_url, postgres_url, redis_url, unique};

fn graylane(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graylane"))
        .args(args)
        .current_dir(workspace())
        .env_remove("GRAYLANE_TOKEN_KEY")
        .output()
        .expect("the binary runs")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SPEC: &str = "examples/mesh/graylane.yaml";
const MANIFESTS: &str = "examples/mesh/manifests";

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique(name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn committed_example_manifests_match_the_spec() {
    // The CI drift check: regenerate and compare byte for byte, for every committed example.
    for (spec, manifests, summary) in [
        (
            SPEC,
            MANIFESTS,
            "ok (3 lanes, 4 services, 21 manifest documents)",
        ),
        (
            "examples/shop/graylane.yaml",
            "examples/shop/manifests",
            "ok (1 lanes, 4 services, 18 manifest documents)",
        ),
    ] {
        let (code, stdout, stderr) = text(&graylane(&[
            "manifests",
            "--spec",
            spec,
            "--out",
            manifests,
            "--check",
        ]));
        assert_eq!(code, 0, "{spec}: {stdout}{stderr}");
        let (code, stdout, stderr) = text(&graylane(&[
            "check",
            "--spec",
            spec,
            "--manifests",
            manifests,
        ]));
        assert_eq!(code, 0, "{spec}: {stdout}{stderr}");
        assert!(stdout.contains(summary), "{spec}: {stdout}");
    }
}

#[test]
fn drift_and_broken_manifests_fail_with_exit_1() {
    let dir = TempDir::new("drift");
    let (code, _, stderr) = text(&graylane(&[
        "manifests",
        "--spec",
        SPEC,
        "--out",
        dir.path(),
    ]));
    assert_eq!(code, 0, "{stderr}");
    let orders = dir.0.join("orders.yaml");
    let yaml = std::fs::read_to_string(&orders).unwrap();
    std::fs::write(&orders, yaml.replace("weight: 90", "weight: 80")).unwrap();
    std::fs::write(dir.0.join("stray.yaml"), "---\n").unwrap();

    let (code, _, stderr) = text(&graylane(&[
        "manifests",
        "--spec",
        SPEC,
        "--out",
        dir.path(),
        "--check",
    ]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("orders.yaml: differs from the generated manifests"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stray.yaml: not generated from the spec"),
        "{stderr}"
    );

    let (code, stdout, _) = text(&graylane(&[
        "check",
        "--spec",
        SPEC,
        "--manifests",
        dir.path(),
        "--json",
    ]));
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], false);
    let problems: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(problems.iter().any(|p| p.contains("VirtualService/orders: route default: weights sum to 90, not 100")), "{problems:#?}");
}

#[test]
fn route_explains_the_path_of_a_request() {
    let (code, stdout, stderr) = text(&graylane(&[
        "route",
        "--spec",
        SPEC,
        "-H",
        "x-user-group: beta",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("lane: gray (decided by coloring rule \"beta-testers\")"),
        "{stdout}"
    );
    assert!(
        stdout.contains("orders         route lane-gray          -> gray (v2) 100%"),
        "{stdout}"
    );
    assert!(
        stdout.contains("inventory      route fallback-gray      -> base (v1) 100%"),
        "{stdout}"
    );

    // A forged header is stripped at the edge.
    let (_, stdout, _) = text(&graylane(&[
        "route",
        "--spec",
        SPEC,
        "-H",
        "x-gray-lane: gray",
        "--service",
        "orders",
        "--json",
    ]));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["lane"], "base");
    assert_eq!(report["hops"][0]["route"], "default");
    assert_eq!(report["hops"][0]["destinations"][1]["weight"], 10.0);
    assert_eq!(report["hops"][0]["mirror"][1], 5.0);

    let (code, _, stderr) = text(&graylane(&["route", "--spec", SPEC, "-H", "no-colon"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("must look like name:value"), "{stderr}");
}

#[test]
fn tokens_minted_by_the_cli_are_accepted_by_the_edge() {
    let (code, token, stderr) = text(&graylane(&[
        "token", "--spec", SPEC, "--lane", "gray", "--ttl", "10m",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let header = format!("x-gray-lane-token: {}", token.trim());
    let (_, stdout, _) = text(&graylane(&[
        "route",
        "--spec",
        SPEC,
        "-H",
        &header,
        "--service",
        "orders",
    ]));
    assert!(
        stdout.starts_with("lane: gray (decided by a signed lane token)"),
        "{stdout}"
    );

    let (code, _, stderr) = text(&graylane(&[
        "token", "--spec", SPEC, "--lane", "gray", "--ttl", "30d",
    ]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("exceeds trust.token.max_ttl_secs"),
        "{stderr}"
    );
    let (code, _, stderr) = text(&graylane(&["token", "--spec", SPEC, "--lane", "purple"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("lane purple is not in"), "{stderr}");
}

#[test]
fn spec_errors_name_file_line_and_field() {
    let dir = TempDir::new("bad");
    let spec = dir.0.join("graylane.yaml");
    std::fs::write(
        &spec,
        "services: [{name: a}]\nlanes:\n  - name: gray\n    services: [a, ghost]\n",
    )
    .unwrap();
    let (code, _, stderr) = text(&graylane(&["check", "--spec", spec.to_str().unwrap()]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains(&format!(
            "{}:4:19: lanes[0].services[1]: unknown service \"ghost\"",
            spec.display()
        )),
        "{stderr}"
    );
}

#[test]
fn help_lists_the_commands() {
    let (code, stdout, _) = text(&graylane(&["--help"]));
    assert_eq!(code, 0);
    for command in ["manifests", "route", "token", "check"] {
        assert!(stdout.contains(command), "{stdout}");
    }
    let (code, _, _) = text(&graylane(&["frobnicate"]));
    assert_eq!(code, 2);
}

#[test]
fn shadow_provision_status_drop_on_postgres_and_mariadb() {
    let dir = TempDir::new("shadow");
    let prefix = unique("cli");
    let spec = dir.0.join("graylane.yaml");
    std::fs::write(
        &spec,
        format!("lanes: [{{name: gray}}]\ndata: {{pg_schema: \"{prefix}_{{lane}}\"}}\n"),
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    let cases = [
        (postgres_url(), "crates/graylane-sqlx/tests/migrations"),
        (mysql_url(), "crates/graylane-sqlx/tests/migrations-mysql"),
    ];
    for (url, migrations) in cases {
        let url = url.as_str();
        let run = |args: &[&str]| {
            let mut all = vec!["shadow"];
            all.extend_from_slice(&args[..1]);
            all.extend_from_slice(&["--spec", spec, "--database-url", url]);
            all.extend_from_slice(&args[1..]);
            text(&graylane(&all))
        };
        let (code, stdout, stderr) =
            run(&["provision", "--lane", "gray", "--migrations", migrations]);
        assert_eq!(code, 0, "{url}: {stdout}{stderr}");
        assert!(
            stdout.contains(&format!(
                "lane gray: {prefix}_gray provisioned (2 migrations known)"
            )),
            "{stdout}"
        );
        let (code, stdout, _) = run(&["status", "--json"]);
        assert_eq!(code, 0);
        let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(rows[0]["exists"], true, "{url}");
        assert_eq!(rows[0]["created_by_graylane"], true);
        assert_eq!(rows[0]["migrations"], 2);
        let (code, _, stderr) = run(&["drop", "--lane", "base"]);
        assert_eq!(code, 1);
        assert!(stderr.contains("refusing to touch base"), "{stderr}");
        let (code, stdout, _) = run(&["drop", "--lane", "gray"]);
        assert_eq!((code, stdout.trim()), (0, "lane gray: dropped"), "{url}");
        let (_, stdout, _) = run(&["status"]);
        assert!(stdout.contains("absent"), "{stdout}");
    }
    let (code, _, stderr) = text(&graylane(&[
        "shadow",
        "status",
        "--spec",
        spec,
        "--database-url",
        "redis://x",
    ]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("must start with postgres:// or mysql://"),
        "{stderr}"
    );
}

#[test]
fn audit_finds_lane_data_outside_the_lane() {
    use sqlx::Connection;
    let dir = TempDir::new("audit");
    let prefix = unique("audit");
    let marker = unique("gray_user");
    let spec_path = dir.0.join("graylane.yaml");
    std::fs::write(
        &spec_path,
        format!("lanes: [{{name: gray}}]\ndata: {{pg_schema: \"{prefix}_{{lane}}\", redis_prefix: \"{prefix}:{{lane}}:\"}}\n"),
    )
    .unwrap();
    let spec = spec_path.to_str().unwrap();
    let pg = postgres_url();
    let pg = pg.as_str();
    let redis_at = redis_url();
    let base_schema = format!("{prefix}_base");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sql = |q: String| {
        rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(pg).await.unwrap();
            sqlx::raw_sql(&q).execute(&mut c).await.unwrap();
        })
    };
    let redis_set = |k: String| {
        rt.block_on(async {
            let mut c = redis::Client::open(redis_at.as_str())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let () = redis::cmd("SET")
                .arg(k)
                .arg(1)
                .query_async(&mut c)
                .await
                .unwrap();
        })
    };
    sql(format!(
        "CREATE SCHEMA {base_schema}; CREATE TABLE {base_schema}.customers (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL)"
    ));
    let migrations = "crates/graylane-sqlx/tests/migrations";
    let (code, _, stderr) = text(&graylane(&[
        "shadow",
        "provision",
        "--spec",
        spec,
        "--database-url",
        pg,
        "--lane",
        "gray",
        "--migrations",
        migrations,
    ]));
    assert_eq!(code, 0, "{stderr}");
    // The lane's own data, where it belongs.
    sql(format!(
        "INSERT INTO {prefix}_gray.customers (name) VALUES ('{marker}-a')"
    ));
    redis_set(format!("{prefix}:gray:{marker}:cart"));
    let audit = |json: bool| {
        let mut args = vec![
            "audit",
            "--spec",
            spec,
            "--lane",
            "gray",
            "--marker",
            &marker,
            "--database-url",
            pg,
            "--base-schema",
            &base_schema,
            "--redis-url",
            &redis_at,
        ];
        if json {
            args.push("--json");
        }
        text(&graylane(&args))
    };
    let (code, stdout, stderr) = audit(false);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.ends_with("lane gray: 2 in the lane, 0 outside it\n"),
        "{stdout}"
    );

    // A leak in base rows and one in base keys.
    sql(format!(
        "INSERT INTO {base_schema}.customers (name) VALUES ('{marker}-leaked')"
    ));
    redis_set(format!("{marker}:leaked"));
    let (code, stdout, stderr) = audit(true);
    assert_eq!(code, 1, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let leaks = report["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 2, "{report}");
    assert!(
        stderr.contains("2 item(s) of lane gray found outside its namespace"),
        "{stderr}"
    );

    // Clean up: schemas and keys.
    sql(format!(
        "DROP SCHEMA {base_schema} CASCADE; DROP SCHEMA {prefix}_gray CASCADE"
    ));
    rt.block_on(async {
        let mut c = redis::Client::open(redis_at.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let () = redis::cmd("DEL")
            .arg(format!("{prefix}:gray:{marker}:cart"))
            .arg(format!("{marker}:leaked"))
            .query_async(&mut c)
            .await
            .unwrap();
    });
    let (code, _, stderr) = text(&graylane(&[
        "audit", "--spec", spec, "--lane", "gray", "--marker", "ab",
    ]));
    assert_eq!(code, 2);
    assert!(stderr.contains("at least 3 characters"), "{stderr}");
}

graylane_testkit::kafka_tests!(audit_finds_lane_records_without_the_lane_on_kafka);

async fn audit_finds_lane_records_without_the_lane_on_kafka(
    broker: graylane_testkit::kafka::TestBroker,
) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    let dir = TempDir::new("audit-kafka");
    let spec_path = dir.0.join("graylane.yaml");
    std::fs::write(&spec_path, "lanes: [{name: gray}]\n").unwrap();
    let spec = spec_path.to_str().unwrap();
    let topic = &graylane_testkit::services::unique("orders");
    broker.create_topic(topic, 3).unwrap();
    let producer: BaseProducer = broker.client_config().create().unwrap();
    let gray = || {
        OwnedHeaders::new().insert(Header {
            key: "x-gray-lane",
            value: Some("gray"),
        })
    };
    // (key, payload, stamped gray): two in the lane, one leaked, two unrelated.
    for (i, (key, payload, stamped)) in [
        ("k1", "{\"user\":\"tester-7\"}", true),
        ("tester-7", "{}", true),
        ("k3", "{\"user\":\"tester-7\"}", false),
        ("k4", "{\"user\":\"alice\"}", false),
        ("k5", "{\"user\":\"bob\"}", true),
    ]
    .into_iter()
    .enumerate()
    {
        let mut record = BaseRecord::<str, str>::to(topic)
            .key(key)
            .payload(payload)
            .partition(i32::try_from(i % 3).unwrap());
        if stamped {
            record = record.headers(gray());
        }
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(std::time::Duration::from_secs(5)).unwrap();

    let bootstrap = broker.bootstrap();
    let args = [
        "audit",
        "--spec",
        spec,
        "--lane",
        "gray",
        "--marker",
        "tester-7",
        "--kafka-brokers",
        bootstrap,
        "--topic",
        topic,
    ];
    let (code, stdout, stderr) = text(&graylane(&args));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("2  kafka topic {topic}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "LEAK              1  kafka topic {topic} (records without the lane)"
        )),
        "{stdout}"
    );
    // A topic that does not exist is an input error, not a clean audit.
    let (code, _, stderr) = text(&graylane(&[
        "audit",
        "--spec",
        spec,
        "--lane",
        "gray",
        "--marker",
        "tester-7",
        "--kafka-brokers",
        bootstrap,
        "--topic",
        "nope",
    ]));
    assert_eq!(code, 2, "{stderr}");
}
