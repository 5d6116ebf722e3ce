//! Behind a real PgBouncer (Debian's 1.18), in session and transaction mode, in front of the
//! local PostgreSQL: a pooler that drops the `search_path` startup parameter must never make a
//! lane write base, and `LaneTransactions` keeps lanes exact where `LanePools` cannot.

use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext, LaneFutureExt};
use graylane_sqlx::{LanePools, LaneTransactions, SearchPathIgnored, Shadows, quote_ident};
use graylane_testkit::pgbouncer::{PgBouncer, PoolMode};
use graylane_testkit::services::{postgres_url, unique};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, Row};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./tests/migrations");

/// A base schema and a provisioned gray shadow of the test's own (made directly, not through
/// the pooler), dropped at the end.
struct Schemas {
    prefix: String,
    spec: LaneSpec,
}

impl Schemas {
    async fn new(name: &str) -> Schemas {
        let prefix = unique(name);
        let spec = LaneSpec::from_yaml_str(&format!(
            "lanes: [{{name: gray}}]\ndata: {{pg_schema: \"{prefix}_{{lane}}\"}}\n"
        ))
        .unwrap();
        let root: PgConnectOptions = postgres_url().parse().unwrap();
        let base = format!("{prefix}_base");
        let mut conn = PgConnection::connect_with(&root).await.unwrap();
        sqlx::query(&format!("CREATE SCHEMA {}", quote_ident(&base)))
            .execute(&mut conn)
            .await
            .unwrap();
        let mut in_base =
            PgConnection::connect_with(&root.clone().options([("search_path", base.as_str())]))
                .await
                .unwrap();
        MIGRATOR.run(&mut in_base).await.unwrap();
        Shadows::new(&spec, root)
            .provision(gray(), &MIGRATOR)
            .await
            .unwrap();
        Schemas { prefix, spec }
    }

    fn base(&self) -> String {
        format!("{}_base", self.prefix)
    }

    /// Rows of `customers` in `schema`, counted directly.
    async fn customers(&self, schema: &str) -> i64 {
        let mut conn = PgConnection::connect(&postgres_url()).await.unwrap();
        sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {}.customers",
            quote_ident(schema)
        ))
        .fetch_one(&mut conn)
        .await
        .unwrap()
    }

    async fn drop(self) {
        let mut conn = PgConnection::connect(&postgres_url()).await.unwrap();
        for s in [self.base(), format!("{}_gray", self.prefix)] {
            sqlx::query(&format!("DROP SCHEMA {} CASCADE", quote_ident(&s)))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

fn gray() -> Lane {
    Lane::new("gray").unwrap()
}

#[tokio::test]
async fn a_pooler_that_drops_search_path_never_makes_a_lane_write_base() {
    let s = Schemas::new("dropped").await;
    for mode in [PoolMode::Session, PoolMode::Transaction] {
        let bouncer = PgBouncer::start(mode, true);
        let through: PgConnectOptions = bouncer.url().parse().unwrap();
        let pools = LanePools::connect_lazy(
            &s.spec,
            through.options([("search_path", s.base().as_str())]),
            PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(std::time::Duration::from_secs(1)),
        );
        // Refused at start, naming the lane and the cause.
        let err = pools.verify().await.unwrap_err();
        let sqlx::Error::Configuration(cause) = &err else {
            panic!("{mode:?}: {err}")
        };
        let ignored = cause
            .downcast_ref::<SearchPathIgnored>()
            .unwrap_or_else(|| panic!("{mode:?}: {err}"));
        assert_eq!(
            (ignored.lane, ignored.expected.as_str()),
            (gray(), format!("{}_gray", s.prefix).as_str())
        );
        assert!(
            err.to_string().contains("ignore_startup_parameters"),
            "{err}"
        );
        // And every lane query fails closed: nothing lands anywhere.
        let insert = async {
            sqlx::query("INSERT INTO customers (name) VALUES ('gray')")
                .execute(pools.current().unwrap())
                .await
        }
        .with_lane(LaneContext::new(gray()))
        .await;
        assert!(insert.is_err(), "{mode:?}");
        pools.close().await;
    }
    // Without `ignore_startup_parameters`, PgBouncer refuses the parameter itself: closed too.
    let bouncer = PgBouncer::start(PoolMode::Transaction, false);
    let pools = LanePools::connect_lazy(
        &s.spec,
        bouncer.url().parse().unwrap(),
        PgPoolOptions::new().max_connections(2),
    );
    let err = pools.verify().await.unwrap_err();
    assert!(
        err.to_string().contains("unsupported startup parameter"),
        "{err}"
    );
    assert_eq!(s.customers(&s.base()).await, 0, "base untouched");
    assert_eq!(s.customers(&format!("{}_gray", s.prefix)).await, 0);
    s.drop().await;
}

#[tokio::test]
async fn lane_transactions_stay_exact_behind_a_transaction_pooler() {
    let s = Schemas::new("exact").await;
    let shadow = format!("{}_gray", s.prefix);
    for mode in [PoolMode::Transaction, PoolMode::Session] {
        let bouncer = PgBouncer::start(mode, true);
        // In transaction mode, more clients than PgBouncer's two server connections: they do
        // share them. (In session mode a client holds its server for good.)
        let clients = if mode == PoolMode::Transaction { 6 } else { 2 };
        let lanes = LaneTransactions::connect_lazy(
            &s.spec,
            bouncer.url().parse().unwrap(),
            PgPoolOptions::new().max_connections(clients),
        )
        .base_search_path(&s.base())
        .unwrap();
        let mut tasks = Vec::new();
        for t in 0..6 {
            let lanes = lanes.clone();
            let shadow = shadow.clone();
            let base = s.base();
            tasks.push(tokio::spawn(async move {
                for i in 0..40 {
                    let lane = if (t + i) % 2 == 0 { Lane::BASE } else { gray() };
                    async {
                        let mut tx = lanes.begin().await.unwrap();
                        let path: String =
                            sqlx::query_scalar("SELECT current_setting('search_path')")
                                .persistent(false)
                                .fetch_one(&mut *tx)
                                .await
                                .unwrap();
                        let want = if lane.is_base() { &base } else { &shadow };
                        assert_eq!(&path, want, "{lane}");
                        // PgBouncer 1.18 keeps no prepared statements between clients.
                        sqlx::query("INSERT INTO customers (name) VALUES ($1)")
                            .bind(lane.as_str())
                            .persistent(false)
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                        tx.commit().await.unwrap();
                    }
                    .with_lane(LaneContext::new(lane))
                    .await;
                    // Between transactions, no server connection is left in the lane. (A
                    // simple query: outside a transaction PgBouncer 1.18 may send the two steps
                    // of an extended one to different servers.)
                    let path: String = sqlx::raw_sql("SELECT current_setting('search_path')")
                        .fetch_one(lanes.base())
                        .await
                        .unwrap()
                        .get(0);
                    assert!(!path.contains(&shadow), "{path}");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        lanes.close().await;
    }
    assert_eq!(s.customers(&s.base()).await, 240);
    assert_eq!(s.customers(&shadow).await, 240);
    // A lane the spec does not have is refused, never base.
    let bouncer = PgBouncer::start(PoolMode::Transaction, true);
    let lanes = LaneTransactions::connect_lazy(
        &s.spec,
        bouncer.url().parse().unwrap(),
        PgPoolOptions::new(),
    );
    let err = lanes
        .begin_for(Lane::new("blue").unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("lane blue has no shadow pool"),
        "{err}"
    );
    s.drop().await;
}
