//! What the shop runs on: PostgreSQL and Redis ([`connect`]), the schemas ([`provision`]),
//! Kafka ([`broker`]), and serving an axum router on a bound listener ([`spawn_http`]).
//!
//! Configured by environment: `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), `REDIS_URL` (default
//! `redis://127.0.0.1:6379/`), `GRAYLANE_KAFKA_BROKERS` (default: an embedded broker),
//! `SHOP_MIGRATIONS` (default: the crate's `migrations/`).

use std::time::Duration;

use axum::Router;
use graylane::http::BoxError;
use graylane::spec::LaneSpec;
use graylane::sqlx::{Shadows, quote_ident};
use graylane_testkit::kafka::MockBroker;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::net::TcpListener;

/// The base schema; each lane's shadow is named by the spec (`shop_lane_gray`).
pub(crate) const BASE_SCHEMA: &str = "shop";
/// Where orders publish and fulfillment consumes.
pub(crate) const TOPIC: &str = "shop.orders";
/// graylane's control topic of the fulfillment group (the lane handover).
pub(crate) const CONTROL_TOPIC: &str = "shop.graylane-control";
/// fulfillment's base consumer group; lane groups add the spec's suffix.
pub(crate) const GROUP: &str = "shop.fulfillment";
/// Partitions of the orders topic (the embedded broker; docker-compose creates it the same).
pub(crate) const PARTITIONS: i32 = 4;

/// What [`connect`] returns: a small admin pool, the connect options it was made from, and a
/// Redis connection.
pub(crate) type Connections = (
    sqlx::PgPool,
    PgConnectOptions,
    redis::aio::MultiplexedConnection,
);

fn unreachable(what: &str, url: &str, e: impl std::fmt::Display) -> BoxError {
    format!(
        "{what} is not reachable at {url}: {e}\n\
         start it with:  scripts/services up   (or: docker compose up -d postgres redis)\n\
         or point the shop elsewhere with DATABASE_URL / REDIS_URL"
    )
    .into()
}

/// The database the shop runs on: `DATABASE_URL`, else the local PostgreSQL's `test`.
pub(crate) fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The Redis the shop runs on: `REDIS_URL`, else the local one.
pub(crate) fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// Connects to PostgreSQL and Redis, or says what to start.
pub(crate) async fn connect() -> Result<Connections, BoxError> {
    let db_url = database_url();
    let root: PgConnectOptions = db_url.parse()?;
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(root.clone())
        .await
        .map_err(|e| unreachable("PostgreSQL", &db_url, e))?;
    let redis_url = redis_url();
    let redis = tokio::time::timeout(Duration::from_secs(5), async {
        redis::Client::open(redis_url.as_str())?
            .get_multiplexed_async_connection()
            .await
    })
    .await
    .map_err(|e| unreachable("Redis", &redis_url, e))?
    .map_err(|e| unreachable("Redis", &redis_url, e))?;
    Ok((admin, root, redis))
}

/// The base schema and every lane's shadow, from the shop's own migrations (idempotent);
/// returns the connect options of the base schema.
pub(crate) async fn provision(
    spec: &LaneSpec,
    admin: &sqlx::PgPool,
    root: &PgConnectOptions,
) -> Result<PgConnectOptions, BoxError> {
    let migrations = std::env::var("SHOP_MIGRATIONS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/migrations").into());
    let migrator = sqlx::migrate::Migrator::new(std::path::Path::new(&migrations)).await?;
    sqlx::query(&format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        quote_ident(BASE_SCHEMA)
    ))
    .execute(admin)
    .await?;
    let base = base_options(root);
    {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect_with(&base).await?;
        migrator.run(&mut conn).await?;
    }
    for lane in spec.lane_set().non_base() {
        Shadows::new(spec, base.clone())
            .provision(lane, &migrator)
            .await?;
    }
    Ok(base)
}

/// The base schema's connect options (lanes get theirs from `LanePools`).
pub(crate) fn base_options(root: &PgConnectOptions) -> PgConnectOptions {
    root.clone().options([("search_path", BASE_SCHEMA)])
}

/// The variable naming a Kafka broker shared by every process of the shop.
const BROKERS: &str = "GRAYLANE_KAFKA_BROKERS";

/// Kafka: the broker [`BROKERS`] names (with the shop's topics created when missing), or else
/// (or when `embedded`) an embedded one with the shop's topics (kept alive by the returned
/// [`MockBroker`]); and a line saying which.
pub(crate) async fn broker(
    embedded: bool,
) -> Result<(rdkafka::ClientConfig, Option<MockBroker>, String), BoxError> {
    if !embedded && let Some(config) = shared_broker().await? {
        let brokers = config
            .get("bootstrap.servers")
            .unwrap_or_default()
            .to_owned();
        return Ok((config, None, brokers));
    }
    let broker = MockBroker::start(1)?;
    broker.create_topic(TOPIC, PARTITIONS)?;
    broker.create_topic(CONTROL_TOPIC, 1)?;
    let bootstrap = format!("embedded mock broker {}", broker.bootstrap());
    Ok((broker.client_config(), Some(broker), bootstrap))
}

/// The broker [`BROKERS`] names, if it names one (set and non-empty), with the shop's topics
/// created when missing: one service per process needs one broker for them all, never an
/// embedded one.
pub(crate) async fn shared_broker() -> Result<Option<rdkafka::ClientConfig>, BoxError> {
    let Some(brokers) = std::env::var(BROKERS).ok().filter(|b| !b.trim().is_empty()) else {
        return Ok(None);
    };
    let config = client_config(brokers.trim());
    create_topics(&config).await?;
    Ok(Some(config))
}

/// Creates the orders topic and the control topic (compacted, one partition) unless they exist,
/// as docker-compose's `kafka-init` does: every process of the shop may be first. Existing
/// topics are left alone (and never asked for: the mock broker's Admin API does not answer);
/// new ones are waited on until each partition has a leader.
async fn create_topics(config: &rdkafka::ClientConfig) -> Result<(), BoxError> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;

    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let admin = std::sync::Arc::new(admin);
    // (name, partitions) of the shop's topics that are there, every partition led.
    let present = {
        let admin = admin.clone();
        move || -> Result<Vec<(String, usize)>, BoxError> {
            let metadata = admin
                .inner()
                .fetch_metadata(None, Duration::from_secs(10))?;
            Ok(metadata
                .topics()
                .iter()
                .filter(|t| t.error().is_none() && t.partitions().iter().all(|p| p.leader() >= 0))
                .map(|t| (t.name().to_owned(), t.partitions().len()))
                .collect())
        }
    };
    let wanted = [(TOPIC, PARTITIONS), (CONTROL_TOPIC, 1)];
    let missing = |present: &[(String, usize)]| {
        wanted
            .iter()
            .filter(|(name, n)| !present.iter().any(|(p, m)| p == name && *m == *n as usize))
            .copied()
            .collect::<Vec<_>>()
    };
    let first = tokio::task::spawn_blocking(present.clone()).await??;
    let to_create: Vec<NewTopic<'_>> = missing(&first)
        .into_iter()
        .map(|(name, partitions)| {
            let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
            if name == CONTROL_TOPIC {
                graylane::kafka::CONTROL_TOPIC_SETTINGS
                    .iter()
                    .fold(topic, |topic, (key, value)| topic.set(key, value))
            } else {
                topic
            }
        })
        .collect();
    if to_create.is_empty() {
        return Ok(());
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&to_create, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(format!("creating topic {topic}: {code}").into()),
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !missing(&tokio::task::spawn_blocking(present.clone()).await??).is_empty() {
        if std::time::Instant::now() > deadline {
            return Err("the shop's topics have no partition leaders after 15 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn client_config(brokers: &str) -> rdkafka::ClientConfig {
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("fetch.wait.max.ms", "10")
        .set("linger.ms", "0");
    config
}

/// Serves `router` on `listener`, in the background.
pub(crate) fn spawn_http(listener: TcpListener, router: Router) {
    tokio::spawn(async move { axum::serve(listener, router).await });
}
