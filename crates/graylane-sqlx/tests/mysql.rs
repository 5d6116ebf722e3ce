//! Against the real MariaDB/MySQL (127.0.0.1:3306, user root without a password;
//! `MYSQL_URL` overrides). Every test uses databases with a unique prefix and drops them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext, LaneFutureExt};
use graylane_sqlx::mysql::{MySqlShadows, quote_ident};
use graylane_sqlx::{LanePools, ShadowError};
use graylane_testkit::services::{mysql_url, unique};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{Connection, MySql, MySqlConnection};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./tests/migrations-mysql");

struct Fixture {
    prefix: String,
    spec: LaneSpec,
    root: MySqlConnectOptions,
    base: MySqlConnectOptions,
}

impl Fixture {
    async fn new(name: &str) -> Fixture {
        let prefix = unique(name);
        let spec = LaneSpec::from_yaml_str(&format!(
            "lanes: [{{name: gray}}, {{name: blue}}]\ndata: {{pg_schema: \"{prefix}_{{lane}}\"}}\n"
        ))
        .unwrap();
        let root: MySqlConnectOptions = mysql_url().parse().unwrap();
        let mut conn = MySqlConnection::connect_with(&root).await.unwrap();
        let base_db = format!("{prefix}_base");
        sqlx::query(&format!("CREATE DATABASE {}", quote_ident(&base_db)))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = root.clone().database(&base_db);
        let mut base_conn = MySqlConnection::connect_with(&base).await.unwrap();
        MIGRATOR.run(&mut base_conn).await.unwrap();
        Fixture {
            prefix,
            spec,
            root,
            base,
        }
    }

    async fn count(&self, db: &str) -> i64 {
        let mut conn = MySqlConnection::connect_with(&self.root).await.unwrap();
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}.orders", quote_ident(db)))
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }

    async fn cleanup(&self) {
        let mut conn = MySqlConnection::connect_with(&self.root).await.unwrap();
        let dbs: Vec<String> = sqlx::query_scalar(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?",
        )
        .bind(format!("{}%", self.prefix))
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for db in dbs {
            sqlx::query(&format!("DROP DATABASE {}", quote_ident(&db)))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

async fn place_order(
    pools: &LanePools<MySql>,
    sku: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut tx = pools.current()?.begin().await?;
    let customer = sqlx::query("INSERT INTO customers (name) VALUES (?)")
        .bind(sku)
        .execute(&mut *tx)
        .await?
        .last_insert_id();
    sqlx::query("INSERT INTO orders (customer_id, sku) VALUES (?, ?)")
        .bind(customer)
        .bind(sku)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

fn gray() -> Lane {
    Lane::new("gray").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shadow_databases_keep_lanes_apart() {
    let f = Fixture::new("my").await;
    let shadows = MySqlShadows::new(&f.spec, f.root.clone());
    shadows.provision(gray(), &MIGRATOR).await.unwrap();
    shadows.provision(gray(), &MIGRATOR).await.unwrap(); // idempotent
    let pools = Arc::new(LanePools::connect_lazy_mysql(
        &f.spec,
        f.base.clone(),
        MySqlPoolOptions::new().max_connections(8),
    ));
    let n = 1000;
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (pools, next) = (pools.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let lane = if i % 2 == 0 {
                        LaneContext::new(gray())
                    } else {
                        LaneContext::base()
                    };
                    async { place_order(&pools, "x").await.unwrap() }
                        .with_lane(lane)
                        .await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    pools.base().close().await;
    assert_eq!(f.count(&format!("{}_base", f.prefix)).await, 500);
    assert_eq!(f.count(&format!("{}_gray", f.prefix)).await, 500);

    let status = shadows.status().await.unwrap();
    let g = status.iter().find(|s| s.lane == gray()).unwrap();
    assert_eq!(
        (g.exists, g.ours, g.migrations, g.tables),
        (true, true, 2, 2)
    );
    let b = status.iter().find(|s| s.lane == "blue").unwrap();
    assert!(!b.exists);
    f.cleanup().await;
}

#[tokio::test]
async fn drop_refuses_base_and_foreign_databases() {
    let f = Fixture::new("mydrop").await;
    let shadows = MySqlShadows::new(&f.spec, f.root.clone());
    assert!(matches!(
        shadows.drop(Lane::BASE).await,
        Err(ShadowError::Base)
    ));
    // Someone else's database with the lane's name is left alone.
    let mut conn = MySqlConnection::connect_with(&f.root).await.unwrap();
    sqlx::query(&format!(
        "CREATE DATABASE {}",
        quote_ident(&format!("{}_blue", f.prefix))
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let blue = Lane::new("blue").unwrap();
    assert!(matches!(
        shadows.drop(blue).await,
        Err(ShadowError::NotOurs { .. })
    ));
    assert!(matches!(
        shadows.provision(blue, &MIGRATOR).await,
        Err(ShadowError::NotOurs { .. })
    ));
    shadows.provision(gray(), &MIGRATOR).await.unwrap();
    assert!(shadows.drop(gray()).await.unwrap());
    assert!(!shadows.drop(gray()).await.unwrap());
    assert_eq!(
        f.count(&format!("{}_base", f.prefix)).await,
        0,
        "base untouched"
    );
    f.cleanup().await;
}

#[tokio::test]
async fn a_shadow_drop_never_touches_base() {
    let f = Fixture::new("mydeps").await;
    let shadows = MySqlShadows::new(&f.spec, f.root.clone());
    shadows.provision(gray(), &MIGRATOR).await.unwrap();
    let (base, shadow) = (
        quote_ident(&format!("{}_base", f.prefix)),
        quote_ident(&shadows.database(gray()).unwrap()),
    );
    let mut conn = MySqlConnection::connect_with(&f.root).await.unwrap();
    // A base view over a shadow table would be left broken, and a base foreign key into the
    // shadow makes the drop fail half-way.
    for sql in [
        format!("CREATE VIEW {base}.gray_orders AS SELECT id FROM {shadow}.orders"),
        format!(
            "CREATE TABLE {base}.refs (o BIGINT, FOREIGN KEY (o) REFERENCES {shadow}.orders (id))"
        ),
    ] {
        sqlx::query(&sql).execute(&mut conn).await.unwrap();
    }
    let err = shadows.drop(gray()).await.unwrap_err();
    let ShadowError::Dependents { objects, .. } = &err else {
        panic!("{err}")
    };
    for name in ["gray_orders", "refs"] {
        assert!(objects.iter().any(|o| o.contains(name)), "{name}: {err}");
    }
    let tables: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?")
            .bind(shadows.database(gray()).unwrap())
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(tables >= 2, "the shadow is whole: {tables}");
    for sql in [
        format!("DROP VIEW {base}.gray_orders"),
        format!("DROP TABLE {base}.refs"),
    ] {
        sqlx::query(&sql).execute(&mut conn).await.unwrap();
    }
    assert!(shadows.drop(gray()).await.unwrap());
    f.cleanup().await;
}
