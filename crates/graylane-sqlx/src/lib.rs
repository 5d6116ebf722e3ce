//! Shadow schemas for gray-release lanes, with sqlx and PostgreSQL.
//!
//! A lane's reads and writes go to its own schema (named by the lane spec's `data.pg_schema`,
//! `lane_<lane>` by default), so gray traffic and mirrored copies never touch base rows:
//!
//! - [`Shadows::provision`] creates the schema and runs **the application's own migrations** in
//!   it (foreign keys, sequences, indexes and later migrations come out right, which `CREATE
//!   TABLE ... LIKE` does not give), idempotently; [`Shadows::seed`] copies chosen tables from
//!   base; [`Shadows::drop`] removes a shadow schema after the release — and refuses base and any
//!   schema it did not create.
//! - [`LanePools`] holds one pool per lane whose connections start with `search_path` set to the
//!   lane's schema (a startup parameter: no extra round trip per query). [`LanePools::current`]
//!   is the pool of the lane in scope; `sqlx::query`, `query_as`, transactions and migrations
//!   work unchanged on it. Each lane connection checks once that it landed in the shadow, and
//!   is refused ([`SearchPathIgnored`]) when a pooler dropped the parameter.
//! - [`LaneTransactions`], behind a transaction pooler (PgBouncer): every transaction starts
//!   `BEGIN; SET LOCAL search_path TO <shadow>` in one round trip.
//!
//! MySQL/MariaDB (feature `mysql`): a shadow *database* per lane, with the same API
//! ([`mysql::MySqlShadows`], [`LanePools::connect_lazy_mysql`]).
//!
//! Lane names never reach SQL text unvalidated: schema names come only from the validated spec
//! (`[a-z_][a-z0-9_]*`), and are quoted on top.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use graylane_core::spec::LaneSpec;
//! use graylane_core::{Lane, LaneContext, LaneFutureExt};
//! use graylane_sqlx::{LanePools, Shadows};
//! use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
//!
//! let spec = LaneSpec::from_path("graylane.yaml")?;
//! let base: PgConnectOptions = "postgres://app@127.0.0.1/shop".parse()?;
//!
//! // At deploy time: shadow schemas from the app's own migrations.
//! let shadows = Shadows::new(&spec, base.clone());
//! // `sqlx::migrate!("./migrations")` works the same; this reads the directory at run time.
//! let migrator = sqlx::migrate::Migrator::new(std::path::Path::new("./migrations")).await?;
//! shadows.provision(Lane::new("gray")?, &migrator).await?;
//!
//! // At run time: the pool of the lane in scope.
//! let pools = LanePools::connect_lazy(&spec, base, PgPoolOptions::new());
//! async {
//!     sqlx::query("INSERT INTO orders (sku) VALUES ($1)")
//!         .bind("book")
//!         .execute(pools.current()?)
//!         .await?;
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! }
//! .with_lane(LaneContext::new(Lane::new("gray")?))
//! .await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub mod mysql;
mod pools;
mod shadows;
mod transactions;

pub use pools::{LanePools, NotProvisioned, SearchPathIgnored, ShadowMissing};
pub use shadows::{SchemaStatus, ShadowError, Shadows, quote_ident};
pub use transactions::LaneTransactions;

/// The comment graylane puts on the PostgreSQL schemas it creates; [`Shadows::drop`] only drops
/// schemas that carry it.
pub const SHADOW_MARKER: &str = "graylane shadow schema";
