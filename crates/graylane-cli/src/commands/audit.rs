//! `graylane audit`: find a lane's data outside the lane's namespace.

use graylane_core::Lane;
use graylane_core::spec::{LaneSpec, is_sql_identifier};
use redis::AsyncCommands;
use sqlx::{Connection, Row};

use super::{lane_arg, load, print_json, runtime};
use crate::args::AuditArgs;
use crate::{Fail, bad_input, problem};

/// Where the marker was found.
#[derive(Debug, Default, serde::Serialize)]
struct Report {
    lane: String,
    marker: String,
    /// `(place, count)` outside the lane: leaks.
    leaks: Vec<(String, i64)>,
    /// `(place, count)` inside the lane's namespace.
    in_lane: Vec<(String, i64)>,
}

impl Report {
    /// Records `count` finds at `place`, in the lane or as a leak; a count of 0 is no find.
    fn add(&mut self, in_lane: bool, place: String, count: i64) {
        if count == 0 {
            return;
        }
        if in_lane {
            self.in_lane.push((place, count));
        } else {
            self.leaks.push((place, count));
        }
    }
}

/// Searches every source given for the marker and prints where it was found; exit 1 on a leak.
pub(crate) fn run(args: &AuditArgs) -> Result<(), Fail> {
    if args.marker.len() < 3 {
        return Err(bad_input(
            "--marker must be at least 3 characters (it is searched everywhere)",
        ));
    }
    if args.database_url.is_none() && args.redis_url.is_none() && args.topics.is_empty() {
        return Err(bad_input(
            "nothing to audit: give --database-url, --redis-url and/or --topic",
        ));
    }
    if !args.topics.is_empty() && args.kafka_brokers.is_none() {
        return Err(bad_input(
            "--topic needs --kafka-brokers (or GRAYLANE_KAFKA_BROKERS)",
        ));
    }
    let spec = load(&args.spec)?;
    let lane = lane_arg(&spec, &args.lane, "the spec")?;
    if lane.is_base() {
        return Err(bad_input("audit a lane, not base"));
    }
    let runtime = runtime()?;
    let mut report = Report {
        lane: lane.to_string(),
        marker: args.marker.clone(),
        ..Report::default()
    };
    runtime.block_on(async {
        if let Some(url) = &args.database_url {
            sql(
                &spec,
                lane,
                url,
                &args.base_schema,
                &args.marker,
                &mut report,
            )
            .await?;
        }
        if let Some(url) = &args.redis_url {
            keys(&spec, lane, url, &args.marker, &mut report).await?;
        }
        Ok::<_, Fail>(())
    })?;
    if let Some(brokers) = &args.kafka_brokers {
        for topic in &args.topics {
            messages(&spec, lane, brokers, topic, &args.marker, &mut report)?;
        }
    }
    let leaked: i64 = report.leaks.iter().map(|(_, n)| n).sum();
    let found: i64 = report.in_lane.iter().map(|(_, n)| n).sum();
    if args.json {
        print_json(&report)?;
    } else {
        for (place, n) in &report.in_lane {
            println!("in lane    {n:>8}  {place}");
        }
        for (place, n) in &report.leaks {
            println!("LEAK       {n:>8}  {place}");
        }
        println!("lane {lane}: {found} in the lane, {leaked} outside it");
    }
    if leaked > 0 {
        return Err(problem(format!(
            "{leaked} item(s) of lane {lane} found outside its namespace"
        )));
    }
    Ok(())
}

/// `%`/`_`-escaped for LIKE, wrapped in `%`.
fn like(marker: &str) -> String {
    let escaped = marker
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Every text column of every table in the base schema (PostgreSQL) or database (MySQL: the
/// one the URL names) and in the lane's shadow.
async fn sql(
    spec: &LaneSpec,
    lane: Lane,
    url: &str,
    base_schema: &str,
    marker: &str,
    report: &mut Report,
) -> Result<(), Fail> {
    let shadow = spec
        .data_names(lane)
        .pg_schema
        .ok_or_else(|| bad_input("the lane has no shadow schema"))?;
    let pattern = like(marker);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        postgres(url, base_schema, shadow, &pattern, report).await
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        mysql(url, shadow, &pattern, report).await
    } else {
        Err(bad_input(
            "--database-url must start with postgres:// or mysql://",
        ))
    }
}

async fn postgres(
    url: &str,
    base_schema: &str,
    shadow: String,
    pattern: &str,
    report: &mut Report,
) -> Result<(), Fail> {
    if !is_sql_identifier(base_schema) {
        return Err(bad_input(format!(
            "--base-schema {base_schema:?} is not a plain identifier"
        )));
    }
    let db_err = |e: sqlx::Error| bad_input(format!("{url}: {e}"));
    let mut conn = sqlx::PgConnection::connect(url).await.map_err(db_err)?;
    for (schema, is_lane) in [(base_schema.to_owned(), false), (shadow, true)] {
        let columns = sqlx::query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = $1 AND data_type IN ('text', 'character varying', 'character') \
             AND table_name <> '_sqlx_migrations' ORDER BY 1, 2",
        )
        .bind(&schema)
        .fetch_all(&mut conn)
        .await
        .map_err(db_err)?;
        for row in columns {
            let (table, column): (String, String) = (row.get(0), row.get(1));
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM {}.{} WHERE {} LIKE $1",
                graylane_sqlx::quote_ident(&schema),
                graylane_sqlx::quote_ident(&table),
                graylane_sqlx::quote_ident(&column)
            ))
            .bind(pattern)
            .fetch_one(&mut conn)
            .await
            .map_err(db_err)?;
            report.add(is_lane, format!("postgres {schema}.{table}.{column}"), n);
        }
    }
    Ok(())
}

async fn mysql(url: &str, shadow: String, pattern: &str, report: &mut Report) -> Result<(), Fail> {
    // Errors name the URL as given, `mariadb://` included.
    let db_err = |e: sqlx::Error| bad_input(format!("{url}: {e}"));
    let opts: sqlx::mysql::MySqlConnectOptions = url
        .replacen("mariadb://", "mysql://", 1)
        .parse()
        .map_err(db_err)?;
    let base_db = opts
        .get_database()
        .ok_or_else(|| bad_input("the MySQL URL must name the base database"))?
        .to_owned();
    let mut conn = sqlx::MySqlConnection::connect_with(&opts)
        .await
        .map_err(db_err)?;
    for (db, is_lane) in [(base_db, false), (shadow, true)] {
        let columns = sqlx::query(
            "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR) FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND DATA_TYPE IN ('varchar', 'char', 'text', 'mediumtext', 'longtext') \
             AND TABLE_NAME NOT IN ('_sqlx_migrations', '_graylane_shadow') ORDER BY 1, 2",
        )
        .bind(&db)
        .fetch_all(&mut conn)
        .await
        .map_err(db_err)?;
        for row in columns {
            let (table, column): (String, String) = (row.get(0), row.get(1));
            let q = graylane_sqlx::mysql::quote_ident;
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM {}.{} WHERE {} LIKE ?",
                q(&db),
                q(&table),
                q(&column)
            ))
            .bind(pattern)
            .fetch_one(&mut conn)
            .await
            .map_err(db_err)?;
            report.add(is_lane, format!("mysql {db}.{table}.{column}"), n);
        }
    }
    Ok(())
}

async fn keys(
    spec: &LaneSpec,
    lane: Lane,
    url: &str,
    marker: &str,
    report: &mut Report,
) -> Result<(), Fail> {
    let redis_err = |e: redis::RedisError| bad_input(format!("{url}: {e}"));
    let mut conn = redis::Client::open(url)
        .map_err(redis_err)?
        .get_multiplexed_async_connection()
        .await
        .map_err(redis_err)?;
    let mut glob = String::from("*");
    for c in marker.chars() {
        if "*?[]\\".contains(c) {
            glob.push('\\');
        }
        glob.push(c);
    }
    glob.push('*');
    let prefix = spec.data_names(lane).redis_prefix;
    let mut found: Vec<String> = Vec::new();
    {
        let mut iter: redis::AsyncIter<'_, String> =
            conn.scan_match(&glob).await.map_err(redis_err)?;
        while let Some(key) = iter.next_item().await {
            found.push(key.map_err(redis_err)?);
        }
    }
    let (inside, outside): (Vec<&String>, Vec<&String>) =
        found.iter().partition(|k| k.starts_with(&prefix));
    report.add(
        true,
        format!("redis keys under {prefix:?}"),
        inside.len() as i64,
    );
    for key in outside {
        report.add(false, format!("redis key {key:?}"), 1);
    }
    Ok(())
}

/// Every record of `topic` (all partitions, from the start to the high watermarks at the time of
/// the audit) whose key or value contains the marker: in the lane when the record carries the
/// lane (header or baggage, as consumers read it), a leak otherwise — base consumers would
/// handle it as base, and write base data.
fn messages(
    spec: &LaneSpec,
    lane: Lane,
    brokers: &str,
    topic: &str,
    marker: &str,
    report: &mut Report,
) -> Result<(), Fail> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use std::time::{Duration, Instant};

    let kafka_err = |e: rdkafka::error::KafkaError| bad_input(format!("{brokers}: {e}"));
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "graylane-audit")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .map_err(kafka_err)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(kafka_err)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(bad_input(format!("{brokers}: no topic {topic:?}")));
    }
    // Read each partition up to its high watermark now: records arriving later are not audited.
    let mut remaining = 0i64;
    let mut ends = std::collections::HashMap::new();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .map_err(kafka_err)?;
        if high > low {
            remaining += high - low;
            ends.insert(p, high);
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(low))
                .map_err(kafka_err)?;
        }
    }
    consumer.assign(&tpl).map_err(kafka_err)?;
    let propagator = spec.propagator();
    let (mut in_lane, mut leaked) = (0i64, 0i64);
    let deadline = Instant::now() + Duration::from_secs(60);
    while remaining > 0 {
        if Instant::now() > deadline {
            return Err(bad_input(format!(
                "{brokers}: {topic}: {remaining} record(s) not read within 60 s"
            )));
        }
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m.map_err(kafka_err)?;
        if ends
            .get(&m.partition())
            .is_none_or(|&end| m.offset() >= end)
        {
            continue;
        }
        remaining -= 1;
        let hit = |b: Option<&[u8]>| {
            b.is_some_and(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes()))
        };
        if hit(m.key()) || hit(m.payload()) {
            if graylane_kafka::lane_of(&propagator, &m).lane() == lane {
                in_lane += 1;
            } else {
                leaked += 1;
            }
        }
    }
    let place = format!("kafka topic {topic}");
    report.add(true, place.clone(), in_lane);
    report.add(false, format!("{place} (records without the lane)"), leaked);
    Ok(())
}
