//! `graylane audit`: every place a lane's data can leak to, searched.

use super::*;

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

/// Runs `sql` (several statements) on `url`.
fn run_sql(url: &str, sql: &str) {
    use sqlx::Connection;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if url.starts_with("mysql") {
            let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
            for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
                sqlx::raw_sql(statement).execute(&mut c).await.unwrap();
            }
        } else {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
    })
}

/// A spec whose gray shadow is `{prefix}_gray`.
fn audit_spec(dir: &TempDir, prefix: &str) -> String {
    let path = dir.0.join("graylane.yaml");
    std::fs::write(
        &path,
        format!("lanes: [{{name: gray}}]\ndata: {{pg_schema: \"{prefix}_{{lane}}\"}}\n"),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// The audit's JSON report of `url` (`base` as its base schema, PostgreSQL only), and its exit
/// code and error output.
fn audit_json(
    spec: &str,
    marker: &str,
    url: &str,
    base: Option<&str>,
) -> (i32, serde_json::Value, String) {
    let mut args = vec![
        "audit",
        "--spec",
        spec,
        "--lane",
        "gray",
        "--marker",
        marker,
        "--database-url",
        url,
        "--json",
    ];
    if let Some(base) = base {
        args.extend(["--base-schema", base]);
    }
    let (code, stdout, stderr) = text(&graylane(&args));
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
    (code, report, stderr)
}

/// The places of `report[field]`, sorted.
fn places(report: &serde_json::Value, field: &str) -> Vec<String> {
    let mut v: Vec<String> = report[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn the_audit_searches_every_column_that_can_hold_the_marker() {
    let dir = TempDir::new("audit-types");
    let prefix = unique("audtypes");
    let marker = unique("gray_payload");
    let spec = audit_spec(&dir, &prefix);
    let pg = postgres_url();
    let base = format!("{prefix}_base");
    run_sql(
        &pg,
        &format!(
            "CREATE SCHEMA {base}; CREATE SCHEMA {prefix}_gray;
             CREATE DOMAIN {base}.note AS text;
             CREATE TABLE {base}.events (
                 id bigint, payload jsonb, doc json, tags text[], body bytea, chunks bytea[], page xml,
                 remark {base}.note, blob oid, at timestamptz);
             INSERT INTO {base}.events (id, payload, tags, body, at) VALUES
                 (1, '{{\"user\": \"{marker}\"}}', ARRAY['a', '{marker}'], NULL, now()),
                 (2, NULL, NULL, convert_to('bytes {marker} bytes', 'UTF8'), now()),
                 (3, NULL, NULL, NULL, now());
             UPDATE {base}.events SET chunks = ARRAY[convert_to('x {marker}', 'UTF8')] WHERE id = 2;
             UPDATE {base}.events SET doc = '[\"{marker}\"]', page = '<p>{marker}</p>',
                 remark = 'x {marker}' WHERE id = 3"
        ),
    );
    let (code, report, stderr) = audit_json(&spec, &marker, &pg, Some(&base));
    assert_eq!(code, 1, "{stderr}");
    let at = |c: &str| format!("postgres {base}.events.{c}");
    assert_eq!(
        places(&report, "leaks"),
        ["body", "chunks", "doc", "page", "payload", "remark", "tags"].map(at),
        "{report}"
    );
    // Large objects are not read: said so, never taken as clean.
    assert_eq!(places(&report, "unsearched"), [at("blob")], "{report}");
    run_sql(&pg, &format!("DELETE FROM {base}.events WHERE id <> 0"));
    let (code, _, stderr) = audit_json(&spec, &marker, &pg, Some(&base));
    assert_eq!(code, 1, "no leak, but not clean either");
    assert!(
        stderr.contains("the audit is incomplete: 1 place(s)"),
        "{stderr}"
    );
    run_sql(&pg, &format!("ALTER TABLE {base}.events DROP COLUMN blob"));
    let (code, _, stderr) = audit_json(&spec, &marker, &pg, Some(&base));
    assert_eq!(code, 0, "{stderr}");
    run_sql(
        &pg,
        &format!("DROP SCHEMA {base} CASCADE; DROP SCHEMA {prefix}_gray CASCADE"),
    );
}

#[test]
fn the_mysql_audit_searches_json_and_binary_columns() {
    let dir = TempDir::new("audit-mytypes");
    let prefix = unique("audmy");
    let marker = unique("gray_payload");
    let spec = audit_spec(&dir, &prefix);
    let root = mysql_url();
    let base = format!("{prefix}_base");
    run_sql(
        &root,
        &format!(
            "CREATE DATABASE {base}; CREATE DATABASE {prefix}_gray;
             CREATE TABLE {base}.events (id BIGINT, payload JSON, body BLOB, tag VARBINARY(200),
                 note TINYTEXT, at DATETIME);
             INSERT INTO {base}.events VALUES
                 (1, '{{\"user\": \"{marker}\"}}', NULL, NULL, NULL, NOW()),
                 (2, NULL, CAST('bytes {marker} bytes' AS BINARY), CAST('{marker}' AS BINARY),
                  'a {marker}', NOW())"
        ),
    );
    let url = format!("{}/{base}", root.trim_end_matches('/'));
    let (code, report, stderr) = audit_json(&spec, &marker, &url, None);
    assert_eq!(code, 1, "{stderr}");
    let at = |c: &str| format!("mysql {base}.events.{c}");
    assert_eq!(
        places(&report, "leaks"),
        ["body", "note", "payload", "tag"].map(at),
        "{report}"
    );
    run_sql(
        &root,
        &format!("DROP DATABASE {base}; DROP DATABASE {prefix}_gray"),
    );
}
