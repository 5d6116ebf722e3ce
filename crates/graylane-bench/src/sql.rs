//! `sql`: the same indexed SELECT/INSERT mix on PostgreSQL through a plain `PgPool` and through
//! a lane-routed pool in a gray lane (its shadow schema), alternating rounds.
//!
//! `sql-tx`: the same mix, one transaction per request: a plain `BEGIN` vs. `LaneTransactions`
//! in a gray lane (`BEGIN; SET LOCAL search_path TO ...` in the same round trip), as behind a
//! transaction pooler.
//!
//! Uses `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and two schemas of
//! its own, dropped at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext, LaneFutureExt};
use graylane_sqlx::{LanePools, LaneTransactions, Shadows, quote_ident};
use graylane_testkit::services::{postgres_url, unique};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::Args;
use crate::load::{Comparison, WITHOUT_WITH, side_by_side};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS items (id BIGSERIAL PRIMARY KEY, sku TEXT NOT NULL, qty INT NOT NULL);
CREATE INDEX IF NOT EXISTS items_by_sku ON items (sku);";

async fn mix<'e>(pool: impl sqlx::PgExecutor<'e>, n: i64) -> Result<(), String> {
    // Three indexed reads for every write: a typical OLTP mix.
    if n % 4 == 0 {
        sqlx::query("INSERT INTO items (sku, qty) VALUES ($1, $2)")
            .bind(format!("sku-{}", n % 1000))
            .bind((n % 7) as i32)
            .execute(pool)
            .await
            .map_err(|e| e.to_string())?;
    } else {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM items WHERE sku = $1")
            .bind(format!("sku-{}", n % 1000))
            .fetch_one(pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A base schema and a provisioned gray shadow of the benchmark's own.
struct Schemas {
    spec: LaneSpec,
    prefix: String,
    base: PgConnectOptions,
    admin: PgConnection,
    migrations: std::path::PathBuf,
}

impl Schemas {
    async fn new() -> Result<Schemas, String> {
        let url = postgres_url();
        let root: PgConnectOptions = url.parse().map_err(|e| format!("DATABASE_URL: {e}"))?;
        let prefix = unique("bench");
        let spec = LaneSpec::from_yaml_str(&format!(
            "services: [{{name: bench}}]\nlanes: [{{name: gray, services: [bench]}}]\ndata: {{pg_schema: \"{prefix}_{{lane}}\"}}\n"
        ))
        .map_err(|e| e.to_string())?;
        let base_schema = format!("{prefix}_base");
        let mut admin = PgConnection::connect_with(&root)
            .await
            .map_err(|e| format!("cannot reach PostgreSQL at {url}: {e}"))?;
        sqlx::query(&format!("CREATE SCHEMA {}", quote_ident(&base_schema)))
            .execute(&mut admin)
            .await
            .map_err(|e| e.to_string())?;
        let base = root
            .clone()
            .options([("search_path", base_schema.as_str())]);
        let migrations = std::env::temp_dir().join(format!("{prefix}_migrations"));
        std::fs::create_dir_all(&migrations).map_err(|e| e.to_string())?;
        std::fs::write(migrations.join("0001_items.sql"), SCHEMA).map_err(|e| e.to_string())?;
        let migrator = sqlx::migrate::Migrator::new(migrations.as_path())
            .await
            .map_err(|e| e.to_string())?;
        let mut base_conn = PgConnection::connect_with(&base)
            .await
            .map_err(|e| e.to_string())?;
        migrator
            .run(&mut base_conn)
            .await
            .map_err(|e| e.to_string())?;
        Shadows::new(&spec, base.clone())
            .provision(GRAY, &migrator)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Schemas {
            spec,
            prefix,
            base,
            admin,
            migrations,
        })
    }

    async fn drop(mut self) -> Result<(), String> {
        for schema in [
            format!("{}_base", self.prefix),
            format!("{}_gray", self.prefix),
        ] {
            sqlx::query(&format!("DROP SCHEMA {} CASCADE", quote_ident(&schema)))
                .execute(&mut self.admin)
                .await
                .map_err(|e| e.to_string())?;
        }
        let _ = std::fs::remove_dir_all(&self.migrations);
        Ok(())
    }
}

const GRAY: Lane = Lane::from_static("gray");

/// `name` side by side on fresh schemas: `plain(pool, n)` on a plain pool against `lane(n)` in the
/// gray lane, `n` counting requests across both; `lane_side` makes the lane's side from the
/// spec, the base connect options and the pool options.
async fn compare<T, P, PF, L, LF>(
    name: &str,
    args: &Args,
    lane_side: impl FnOnce(&LaneSpec, PgConnectOptions, PgPoolOptions) -> T,
    plain: P,
    lane: L,
) -> Result<Comparison, String>
where
    T: Send + Sync + 'static,
    P: Fn(PgPool, i64) -> PF + Clone + Send + Sync + 'static,
    PF: Future<Output = Result<(), String>> + Send + 'static,
    L: Fn(Arc<T>, i64) -> LF + Clone + Send + Sync + 'static,
    LF: Future<Output = Result<(), String>> + Send + 'static,
{
    let schemas = Schemas::new().await?;
    let options = PgPoolOptions::new().max_connections(args.concurrency.min(16) as u32);
    let pool = options.clone().connect_lazy_with(schemas.base.clone());
    let side = Arc::new(lane_side(&schemas.spec, schemas.base.clone(), options));
    let counter = Arc::new(AtomicI64::new(0));
    let ctx = LaneContext::new(GRAY);
    let (c1, c2) = (counter.clone(), counter);
    let result = side_by_side(
        name,
        WITHOUT_WITH,
        args.rounds,
        args.requests / 4,
        args.concurrency,
        move || plain(pool.clone(), c1.fetch_add(1, Ordering::Relaxed)),
        move || lane(side.clone(), c2.fetch_add(1, Ordering::Relaxed)).with_lane(ctx),
    )
    .await;
    schemas.drop().await?;
    Ok(result)
}

pub(crate) async fn run(args: &Args) -> Result<Comparison, String> {
    compare(
        "sql",
        args,
        LanePools::connect_lazy,
        |pool, n| async move { mix(&pool, n).await },
        |pools: Arc<LanePools>, n| async move {
            let pool = pools.current().map_err(|e| e.to_string())?;
            mix(pool, n).await
        },
    )
    .await
}

pub(crate) async fn run_tx(args: &Args) -> Result<Comparison, String> {
    compare(
        "sql-tx",
        args,
        LaneTransactions::connect_lazy,
        |pool: PgPool, n| async move {
            let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
            mix(&mut *tx, n).await?;
            tx.commit().await.map_err(|e| e.to_string())
        },
        |lanes: Arc<LaneTransactions>, n| async move {
            let mut tx = lanes.begin().await.map_err(|e| e.to_string())?;
            mix(&mut *tx, n).await?;
            tx.commit().await.map_err(|e| e.to_string())
        },
    )
    .await
}
