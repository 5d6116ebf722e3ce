//! `graylane release finish` against the real PostgreSQL, Redis and broker: it waits for the
//! lane's consumers, refuses on a planted leak, removes only the lane's data, and a second run
//! finds nothing to do.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use graylane_core::spec::LaneSpec;
use graylane_kafka::LaneConsumer;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::*;

graylane_testkit::kafka_tests!(finish_takes_the_lane_offline_and_a_second_run_does_nothing);

/// Runs the CLI off the runtime's workers (the consumers run on them meanwhile).
async fn cli(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        text(&graylane(&args))
    })
    .await
    .unwrap()
}

async fn redis(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn sql(url: &str, q: &str) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(q).execute(&mut c).await.unwrap();
}

async fn finish_takes_the_lane_offline_and_a_second_run_does_nothing(
    broker: graylane_testkit::kafka::TestBroker,
) {
    let dir = TempDir::new("finish");
    let prefix = unique("fin");
    let marker = unique("gray_tester");
    let spec_path = dir.0.join("graylane.yaml");
    let spec_text = format!(
        "\
services:
  - name: orders
lanes:
  - name: gray
    services: [orders]
data:
  pg_schema: \"{prefix}_{{lane}}\"
  redis_prefix: \"{prefix}:{{lane}}:\"
coloring:
  rules:
    - {{ name: beta, lane: gray, match: {{ header: {{ name: x-user-group, exact: beta }} }} }}
"
    );
    std::fs::write(&spec_path, &spec_text).unwrap();
    let spec = spec_path.to_str().unwrap().to_owned();
    let manifests = dir.0.join("manifests");
    let pg = postgres_url();
    let redis_at = redis_url();

    // The lane's data: a shadow schema with a row, Redis keys; base's: a table and keys.
    let base_schema = format!("{prefix}_base");
    sql(
        &pg,
        &format!("CREATE SCHEMA {base_schema}; CREATE TABLE {base_schema}.customers (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL)"),
    )
    .await;
    let (code, out, err) = cli(vec![
        "shadow".into(),
        "provision".into(),
        "--spec".into(),
        spec.clone(),
        "--database-url".into(),
        pg.clone(),
        "--lane".into(),
        "gray".into(),
        "--migrations".into(),
        "crates/graylane-sqlx/tests/migrations".into(),
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    sql(
        &pg,
        &format!("INSERT INTO {prefix}_gray.customers (name) VALUES ('{marker}')"),
    )
    .await;
    let mut r = redis(&redis_at).await;
    let lane_keys: Vec<String> = (0..1_200)
        .map(|i| format!("{prefix}:gray:cart:{marker}:{i}"))
        .collect();
    let kept = [
        format!("{prefix}:base:cart:1"),
        format!("{prefix}:grayish:cart:1"),
        format!("{prefix}:gray"),
    ];
    for key in lane_keys.iter().chain(&kept) {
        let () = redis::cmd("SET")
            .arg(key)
            .arg(1)
            .query_async(&mut r)
            .await
            .unwrap();
    }

    // A base and a gray consumer of group `orders`; the gray one handles a gray record (so its
    // group has a committed offset, and exists on the broker).
    let topic = unique("fin_events");
    let control = unique("fin_control");
    broker.create_topic(&topic, 2).unwrap();
    broker.create_control_topic(&control).unwrap();
    let group = unique("fin_orders");
    let loaded = LaneSpec::from_path(&spec_path).unwrap();
    let handled = Arc::new(AtomicU64::new(0));
    let consumer = |lane: &str| {
        let handled = handled.clone();
        LaneConsumer::from_spec(&loaded, broker.client_config(), &group)
            .lane(graylane_core::Lane::new(lane).unwrap())
            .topic(&topic)
            .control_topic(&control)
            .spawn(move |_| {
                handled.fetch_add(1, Ordering::Relaxed);
                async {}
            })
    };
    let base = consumer("base").await.unwrap();
    let gray = consumer("gray").await.unwrap();
    let producer: BaseProducer = broker.client_config().create().unwrap();
    for i in 0..2 {
        let record = BaseRecord::<str, str>::to(&topic)
            .key("k")
            .payload("{}")
            .partition(i)
            .headers(OwnedHeaders::new().insert(Header {
                key: "x-gray-lane",
                value: Some("gray"),
            }));
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    // An instance that crashed two minutes ago, its last heartbeat claiming a 3 s lease. Base,
    // reading it now, waits out that lease before it takes the lane's partitions back; finish,
    // dating it by its record, knows it is long dead (read afresh on every poll, it would look
    // live for 3 s from each read, for ever).
    let written = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 120_000;
    let stale_key = format!("{group}/hb/gray/crashed-1");
    producer
        .send(
            BaseRecord::<str, str>::to(&control)
                .key(&stale_key)
                .payload("live 3000")
                .timestamp(written),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(5)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while handled.load(Ordering::Relaxed) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the records were not handled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let finish = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "release",
            "finish",
            "--spec",
            &spec,
            "--lane",
            "gray",
            "--marker",
            &marker,
            "--database-url",
            &pg,
            "--base-schema",
            &base_schema,
            "--redis-url",
            &redis_at,
            "--kafka-brokers",
            broker.bootstrap(),
            "--group",
            &group,
            "--control-topic",
            &control,
            "--manifests",
            manifests.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        cli(args)
    };

    // Bad arguments are refused before anything changes.
    let (code, _, err) = cli(vec![
        "release".into(),
        "finish".into(),
        "--spec".into(),
        spec.clone(),
        "--lane".into(),
        "gray".into(),
        "--marker".into(),
        marker.clone(),
    ])
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nothing to audit"), "{err}");
    assert_eq!(std::fs::read_to_string(&spec_path).unwrap(), spec_text);

    // The gray consumer still runs: the lane is out of the spec, but finish waits, then refuses.
    let (code, out, err) = finish(&["--drain-timeout", "2"]).await;
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        out.contains("finish: spec: done: remove coloring.rules[0], remove lanes[0]"),
        "{out}"
    );
    assert!(
        out.contains("finish: consumers: REFUSED: not drained after 2 s"),
        "{out}"
    );
    assert!(
        out.ends_with("teardown=refused steps_done=1 remains=0\n"),
        "{out}"
    );
    let left = LaneSpec::from_path(&spec_path).unwrap();
    assert!(left.lanes.is_empty() && left.coloring.rules.is_empty());
    let orders = std::fs::read_to_string(manifests.join("orders.yaml")).unwrap();
    assert!(!orders.contains("graylane.io/lane: gray"), "{orders}");

    // Its Deployment gone: it stops, and base takes its partitions back.
    gray.stop().await.unwrap();
    // A leak planted in base: the audit refuses, and nothing of the lane's data goes.
    sql(
        &pg,
        &format!("INSERT INTO {base_schema}.customers (name) VALUES ('{marker}')"),
    )
    .await;
    let (code, out, err) = finish(&["--drain-timeout", "20"]).await;
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        !out.contains("crashed-1"),
        "a crashed instance's lease is long over: {out}"
    );
    assert!(
        out.contains("finish: audit: REFUSED: the lane's data is not all in the lane"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "LEAK              1  postgres {base_schema}.customers.name"
        )),
        "{out}"
    );
    assert!(!out.contains("finish: shadow:"), "{out}");
    let n: u64 = redis::cmd("EXISTS")
        .arg(&lane_keys[0])
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(n, 1, "nothing removed after a refusal");

    // The leak cleaned up: the whole teardown.
    sql(&pg, &format!("DELETE FROM {base_schema}.customers")).await;
    let (code, out, err) = finish(&[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("finish: spec: nothing to do: lane gray is not in"),
        "{out}"
    );
    assert!(
        out.contains(&format!("finish: shadow: done: dropped {prefix}_gray")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "finish: redis: done: unlinked 1200 key(s) under \"{prefix}:gray:\""
        )),
        "{out}"
    );
    let lane_group = format!("{group}.lane.gray");
    // librdkafka's mock has no DeleteGroups: there the step is skipped, and says so.
    let (groups, done) = if broker.is_real() {
        (format!("finish: groups: done: deleted {lane_group}"), 4)
    } else {
        (
            format!(
                "finish: groups: skipped: the broker at {} does not delete groups (no DeleteGroups API): delete {lane_group} there",
                broker.bootstrap()
            ),
            3,
        )
    };
    assert!(out.contains(&groups), "{out}");
    assert!(
        out.ends_with(&format!(" teardown=clean steps_done={done} remains=0\n")),
        "{out}"
    );
    for key in &kept {
        let n: u64 = redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut r)
            .await
            .unwrap();
        assert_eq!(n, 1, "{key} is not the lane's");
    }
    let n: u64 = redis::cmd("EXISTS")
        .arg(&lane_keys[..])
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(n, 0);

    // Twice: nothing to do anywhere.
    let (code, out, err) = finish(&["--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["teardown"], "clean");
    for step in report["steps"].as_array().unwrap() {
        assert_ne!(step["outcome"], "done", "{step}");
    }
    base.stop().await.unwrap();
    sql(&pg, &format!("DROP SCHEMA {base_schema} CASCADE")).await;
    let _ = redis::cmd("DEL")
        .arg(&kept[..])
        .query_async::<u64>(&mut r)
        .await;
}

#[test]
fn finish_refuses_a_lane_whose_template_names_reach_another_lanes() {
    let dir = TempDir::new("finish_typo");
    let spec = dir.0.join("graylane.yaml");
    let text = "lanes: [{ name: gray }]\ndata: { redis_prefix: \"lane-{lane}\" }\n";
    std::fs::write(&spec, text).unwrap();
    let out = graylane(&[
        "release",
        "finish",
        "--spec",
        spec.to_str().unwrap(),
        "--lane",
        "gra",
        "--marker",
        "gray-tester",
        "--redis-url",
        "redis://127.0.0.1:1/",
    ]);
    let (code, _, err) = super::text(&out);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("its data names would not be its own"), "{err}");
    assert_eq!(std::fs::read_to_string(&spec).unwrap(), text);
}
