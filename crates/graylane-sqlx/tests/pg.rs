//! Against the real PostgreSQL (127.0.0.1:5432, database `test`, trust auth; `DATABASE_URL`
//! overrides). Every test works in schemas of its own, with a unique prefix, and drops them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext, LaneFutureExt, task};
use graylane_sqlx::{LanePools, NotProvisioned, ShadowError, Shadows, quote_ident};
use graylane_testkit::services::{postgres_url, unique};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./tests/migrations");

/// A test's own base schema and lanes, removed on drop.
struct Fixture {
    prefix: String,
    spec: LaneSpec,
    base: PgConnectOptions,
}

impl Fixture {
    async fn new(name: &str) -> Fixture {
        let prefix = unique(name);
        let spec = LaneSpec::from_yaml_str(&format!(
            "services: [{{name: orders}}]\n\
             lanes: [{{name: gray, services: [orders]}}, {{name: canary-2, services: [orders]}}]\n\
             data: {{pg_schema: \"{prefix}_{{lane}}\"}}\n"
        ))
        .unwrap();
        let root: PgConnectOptions = postgres_url().parse().unwrap();
        let mut conn = PgConnection::connect_with(&root).await.unwrap();
        let base_schema = format!("{prefix}_base");
        sqlx::query(&format!("CREATE SCHEMA {}", quote_ident(&base_schema)))
            .execute(&mut conn)
            .await
            .unwrap();
        // The base schema gets the same migrations the application runs in production.
        let mut base_conn = PgConnection::connect_with(
            &root
                .clone()
                .options([("search_path", base_schema.as_str())]),
        )
        .await
        .unwrap();
        MIGRATOR.run(&mut base_conn).await.unwrap();
        Fixture {
            base: root.options([("search_path", base_schema.as_str())]),
            prefix,
            spec,
        }
    }

    fn shadows(&self) -> Shadows {
        Shadows::new(&self.spec, self.base.clone())
    }

    async fn count(&self, schema: &str, table: &str) -> i64 {
        let mut conn = PgConnection::connect_with(&self.base).await.unwrap();
        sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {}.{}",
            quote_ident(schema),
            quote_ident(table)
        ))
        .fetch_one(&mut conn)
        .await
        .unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Drop every schema this test made, whatever happened in the test.
        let url = postgres_url();
        let prefix = self.prefix.clone();
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut conn = PgConnection::connect(&url).await.unwrap();
                let schemas: Vec<String> = sqlx::query_scalar(
                    "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)",
                )
                .bind(&prefix)
                .fetch_all(&mut conn)
                .await
                .unwrap();
                for s in schemas {
                    sqlx::query(&format!("DROP SCHEMA {} CASCADE", quote_ident(&s)))
                        .execute(&mut conn)
                        .await
                        .unwrap();
                }
            })
        });
        let _ = done.join();
    }
}

fn gray() -> Lane {
    Lane::new("gray").unwrap()
}

async fn place_order(
    pools: &LanePools,
    customer: &str,
    sku: &str,
) -> Result<i64, Box<dyn std::error::Error>> {
    // The same code path for every lane: the pool of the lane in scope.
    let mut tx = pools.current()?.begin().await?;
    let customer_id: i64 =
        sqlx::query_scalar("INSERT INTO customers (name) VALUES ($1) RETURNING id")
            .bind(customer)
            .fetch_one(&mut *tx)
            .await?;
    let id: i64 =
        sqlx::query_scalar("INSERT INTO orders (customer_id, sku) VALUES ($1, $2) RETURNING id")
            .bind(customer_id)
            .bind(sku)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(id)
}

#[tokio::test]
async fn the_same_code_writes_base_and_gray_rows_apart() {
    let f = Fixture::new("apart").await;
    f.shadows().provision(gray(), &MIGRATOR).await.unwrap();
    let pools = LanePools::connect_lazy(
        &f.spec,
        f.base.clone(),
        PgPoolOptions::new().max_connections(4),
    );

    place_order(&pools, "base-customer", "base-sku")
        .await
        .unwrap();
    async {
        place_order(&pools, "gray-customer", "gray-sku")
            .await
            .unwrap()
    }
    .with_lane(LaneContext::new(gray()))
    .await;
    // Across a spawned task too.
    async {
        task::spawn(async move { place_order(&pools, "gray-2", "gray-sku").await.unwrap() })
            .await
            .unwrap()
    }
    .with_lane(LaneContext::new(gray()))
    .await;

    let base = format!("{}_base", f.prefix);
    let shadow = format!("{}_gray", f.prefix);
    assert_eq!(f.count(&base, "orders").await, 1);
    assert_eq!(f.count(&shadow, "orders").await, 2);
    assert_eq!(f.count(&shadow, "customers").await, 2);
    // Sequences are the shadow's own: both lanes started at id 1.
    let mut conn = PgConnection::connect_with(&f.base).await.unwrap();
    let gray_first: i64 = sqlx::query_scalar(&format!(
        "SELECT min(id) FROM {}.orders",
        quote_ident(&shadow)
    ))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(gray_first, 1);
}

#[tokio::test]
async fn foreign_keys_indexes_and_later_migrations_exist_in_the_shadow() {
    let f = Fixture::new("schema").await;
    f.shadows().provision(gray(), &MIGRATOR).await.unwrap();
    let shadow = format!("{}_gray", f.prefix);
    let mut conn = PgConnection::connect_with(&f.base).await.unwrap();
    let fks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
         WHERE n.nspname = $1 AND c.contype = 'f'",
    )
    .bind(&shadow)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(fks, 1);
    let index: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = 'orders_by_customer')",
    )
    .bind(&shadow)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(index);
    let status_col: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'orders' AND column_name = 'status')",
    )
    .bind(&shadow)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(status_col, "the second migration ran in the shadow");
    // A foreign key in the shadow points at the shadow's table, not base's.
    let pools = LanePools::connect_lazy(&f.spec, f.base.clone(), PgPoolOptions::new());
    let err = async {
        sqlx::query("INSERT INTO orders (customer_id, sku) VALUES (424242, 'x')")
            .execute(pools.current().unwrap())
            .await
    }
    .with_lane(LaneContext::new(gray()))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("foreign key"), "{err}");
}

#[tokio::test]
async fn provisioning_twice_is_a_no_op_and_status_reports() {
    let f = Fixture::new("twice").await;
    let shadows = f.shadows();
    shadows.provision(gray(), &MIGRATOR).await.unwrap();
    let pools = LanePools::connect_lazy(&f.spec, f.base.clone(), PgPoolOptions::new());
    async { place_order(&pools, "kept", "kept").await.unwrap() }
        .with_lane(LaneContext::new(gray()))
        .await;
    shadows.provision(gray(), &MIGRATOR).await.unwrap();
    assert_eq!(
        f.count(&format!("{}_gray", f.prefix), "orders").await,
        1,
        "data kept"
    );
    let status = shadows.status().await.unwrap();
    let gray_status = status.iter().find(|s| s.lane == gray()).unwrap();
    assert!(gray_status.exists && gray_status.ours);
    assert_eq!((gray_status.migrations, gray_status.tables), (2, 2));
    let canary = status.iter().find(|s| s.lane == "canary-2").unwrap();
    assert_eq!(canary.schema, format!("{}_canary_2", f.prefix));
    assert!(!canary.exists);
}

#[tokio::test]
async fn a_shadow_drop_never_touches_base() {
    let f = Fixture::new("dropdeps").await;
    let shadows = f.shadows();
    shadows.provision(gray(), &MIGRATOR).await.unwrap();
    let (base, shadow) = (
        quote_ident(&format!("{}_base", f.prefix)),
        quote_ident(&shadows.schema(gray()).unwrap()),
    );
    let mut conn = PgConnection::connect_with(&f.base).await.unwrap();
    // Base objects that lean on the shadow: CASCADE would drop the view and the default.
    for sql in [
        format!("CREATE VIEW {base}.gray_orders AS SELECT id FROM {shadow}.orders"),
        format!("CREATE SEQUENCE {shadow}.ticket"),
        format!("CREATE TABLE {base}.tickets (n bigint DEFAULT nextval('{shadow}.ticket'))"),
        format!("CREATE TABLE {base}.refs (o bigint REFERENCES {shadow}.orders (id))"),
        // Inside the shadow, not a dependent: never a reason to refuse.
        format!("ALTER DEFAULT PRIVILEGES IN SCHEMA {shadow} GRANT SELECT ON TABLES TO PUBLIC"),
    ] {
        sqlx::query(&sql).execute(&mut conn).await.unwrap();
    }
    let err = shadows.drop(gray()).await.unwrap_err();
    let ShadowError::Dependents { objects, .. } = &err else {
        panic!("{err}")
    };
    let text = err.to_string();
    for name in ["gray_orders", "tickets", "refs_o_fkey"] {
        assert!(
            objects.iter().any(|o| o.contains(name)),
            "{name} is named: {text}"
        );
    }
    let view: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {base}.gray_orders"))
        .fetch_one(&mut conn)
        .await
        .expect("the base view is still there");
    assert_eq!(view, 0);
    let default: Option<String> = sqlx::query_scalar(
        "SELECT column_default FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'tickets'",
    )
    .bind(format!("{}_base", f.prefix))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(
        default.is_some_and(|d| d.contains("nextval")),
        "the default is still there"
    );
    let status = shadows.status().await.unwrap();
    let gray_status = status.iter().find(|s| s.lane == gray()).unwrap();
    assert_eq!(gray_status.tables, 2, "and the shadow too");
    // Once base stops leaning on it, the shadow drops.
    for sql in [
        format!("DROP VIEW {base}.gray_orders"),
        format!("DROP TABLE {base}.tickets"),
        format!("DROP TABLE {base}.refs"),
    ] {
        sqlx::query(&sql).execute(&mut conn).await.unwrap();
    }
    assert!(shadows.drop(gray()).await.unwrap());
}

#[tokio::test]
async fn drop_refuses_base_and_foreign_schemas() {
    let f = Fixture::new("drop").await;
    let shadows = f.shadows();
    assert!(matches!(
        shadows.drop(Lane::BASE).await,
        Err(ShadowError::Base)
    ));
    assert!(matches!(
        shadows.provision(Lane::BASE, &MIGRATOR).await,
        Err(ShadowError::Base)
    ));
    assert!(matches!(
        shadows.drop(Lane::new("nope").unwrap()).await,
        Err(ShadowError::UnknownLane(_))
    ));
    // A schema that happens to have the lane's name, made by someone else, is left alone.
    let squatter = format!("{}_canary_2", f.prefix);
    let mut conn = PgConnection::connect_with(&f.base).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA {}", quote_ident(&squatter)))
        .execute(&mut conn)
        .await
        .unwrap();
    let canary = Lane::new("canary-2").unwrap();
    let err = shadows.drop(canary).await.unwrap_err();
    assert!(
        err.to_string().contains("was not created by graylane"),
        "{err}"
    );
    assert!(matches!(
        shadows.provision(canary, &MIGRATOR).await,
        Err(ShadowError::NotOurs { .. })
    ));

    shadows.provision(gray(), &MIGRATOR).await.unwrap();
    assert!(shadows.drop(gray()).await.unwrap());
    assert!(
        !shadows.drop(gray()).await.unwrap(),
        "dropping again is a no-op"
    );
    assert_eq!(
        f.count(&format!("{}_base", f.prefix), "orders").await,
        0,
        "base untouched"
    );
}

#[tokio::test]
async fn seed_copies_chosen_tables_only() {
    let f = Fixture::new("seed").await;
    let pools = LanePools::connect_lazy(&f.spec, f.base.clone(), PgPoolOptions::new());
    place_order(&pools, "alice", "book").await.unwrap();
    let shadows = f.shadows();
    shadows.provision(gray(), &MIGRATOR).await.unwrap();
    let copied = shadows
        .seed(gray(), &format!("{}_base", f.prefix), &["customers"])
        .await
        .unwrap();
    assert_eq!(copied, 1);
    assert_eq!(f.count(&format!("{}_gray", f.prefix), "customers").await, 1);
    assert_eq!(f.count(&format!("{}_gray", f.prefix), "orders").await, 0);
    let err = shadows
        .seed(gray(), "public", &["orders; DROP TABLE orders"])
        .await
        .unwrap_err();
    assert!(matches!(err, ShadowError::BadIdentifier(_)), "{err}");
}

#[tokio::test]
async fn hostile_lane_names_cannot_reach_sql() {
    // Lane names are grammar-checked; schema overrides are identifier-checked by the spec.
    for hostile in [
        "gray; DROP SCHEMA public",
        "gray\"--",
        "x' OR '1'='1",
        "GRAY",
    ] {
        assert!(Lane::new(hostile).is_err(), "{hostile}");
    }
    let e = LaneSpec::from_yaml_str(
        "lanes: [{name: gray, data: {pg_schema: \"x; DROP SCHEMA public CASCADE\"}}]",
    )
    .unwrap_err();
    assert_eq!(e.path, "lanes[0].data.pg_schema");
    // And a lane context the pools were not built for is refused, not sent to base.
    let f = Fixture::new("hostile").await;
    let pools = LanePools::connect_lazy(&f.spec, f.base.clone(), PgPoolOptions::new());
    let stranger = Lane::new("stranger").unwrap();
    let refused = LaneContext::new(stranger).scope(|| pools.current().map(|_| ()));
    assert_eq!(refused, Err(NotProvisioned(stranger)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_interleaved_requests_on_one_pool_never_cross() {
    let f = Fixture::new("interleave").await;
    f.shadows().provision(gray(), &MIGRATOR).await.unwrap();
    let pools = Arc::new(LanePools::connect_lazy(
        &f.spec,
        f.base.clone(),
        PgPoolOptions::new().max_connections(8),
    ));
    let n = 2000;
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (pools, next) = (pools.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let (lane, sku) = if i % 2 == 0 {
                        (gray(), "gray")
                    } else {
                        (Lane::BASE, "base")
                    };
                    async { place_order(&pools, sku, sku).await.unwrap() }
                        .with_lane(LaneContext::new(lane))
                        .await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let mut conn = PgConnection::connect_with(&f.base).await.unwrap();
    for (schema, sku) in [
        (format!("{}_base", f.prefix), "base"),
        (format!("{}_gray", f.prefix), "gray"),
    ] {
        let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT sku, count(*) FROM {}.orders GROUP BY sku",
            quote_ident(&schema)
        ))
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(rows, vec![(sku.to_owned(), (n / 2) as i64)], "{schema}");
    }
    pools.close().await;
}
