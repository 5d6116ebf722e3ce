//! One pool per lane, picked by the lane in scope.

use std::fmt;

use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Database, Pool, Postgres};

/// The lane in scope has no pool: it is not a lane of the spec these pools were made from.
///
/// Returned instead of falling back to base, so that a misconfigured lane can never write base
/// data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotProvisioned(pub Lane);

impl fmt::Display for NotProvisioned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lane {} has no shadow pool (it is not in the lane spec); refusing to use base",
            self.0
        )
    }
}

impl std::error::Error for NotProvisioned {}

/// A lane's shadow schema does not exist yet: what [`LanePools::verify`] says, instead of the
/// bare `relation "…" does not exist` a lane's first query would get from PostgreSQL (which
/// accepts a `search_path` naming a schema that is not there), naming neither the lane nor the
/// fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShadowMissing {
    /// The lane whose connection was refused.
    pub lane: Lane,
    /// Its shadow schema (`data.pg_schema`).
    pub schema: String,
}

impl fmt::Display for ShadowMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lane {}: its shadow schema {:?} does not exist yet; provision it with the \
             application's migrations first (`graylane shadow provision --lane {}`, or \
             `Shadows::provision`)",
            self.lane, self.schema, self.lane
        )
    }
}

impl std::error::Error for ShadowMissing {}

/// One sqlx pool per lane: base uses the options as given; every other lane's connections open
/// in the lane's shadow namespace — PostgreSQL: `search_path` set to the shadow schema; MySQL:
/// the shadow database — as part of the connection handshake, so queries pay no extra round
/// trip. Cheap to clone.
///
/// PostgreSQL accepts a `search_path` naming a schema that does not exist: call
/// [`verify`](LanePools::verify) at start-up (or in a readiness check) to learn of a lane whose
/// shadow schema is not provisioned before its requests fail.
#[derive(Debug)]
pub struct LanePools<DB: Database = Postgres> {
    base: Pool<DB>,
    lanes: Vec<(Lane, Pool<DB>)>,
    /// Each lane's shadow schema (PostgreSQL) or database (MySQL).
    namespaces: Vec<(Lane, String)>,
}

impl<DB: Database> Clone for LanePools<DB> {
    fn clone(&self) -> Self {
        LanePools {
            base: self.base.clone(),
            lanes: self.lanes.clone(),
            namespaces: self.namespaces.clone(),
        }
    }
}

impl LanePools<Postgres> {
    /// Pools for every lane of `spec`, connecting lazily (no connection is opened until a query
    /// needs one, so unused lanes cost nothing).
    pub fn connect_lazy(
        spec: &LaneSpec,
        base: PgConnectOptions,
        options: PgPoolOptions,
    ) -> LanePools {
        let namespaces = namespaces(spec);
        let lanes = namespaces
            .iter()
            .map(|(lane, schema)| {
                let opts = base.clone().options([("search_path", schema.as_str())]);
                (*lane, options.clone().connect_lazy_with(opts))
            })
            .collect();
        LanePools {
            base: options.connect_lazy_with(base),
            lanes,
            namespaces,
        }
    }

    /// Checks that every lane's shadow schema exists (one query on the base pool): the first
    /// missing one is a [`ShadowMissing`] inside `sqlx::Error::Configuration`.
    ///
    /// ```no_run
    /// # async fn f(spec: &graylane_core::spec::LaneSpec, base: sqlx::postgres::PgConnectOptions) -> sqlx::Result<()> {
    /// let pools = graylane_sqlx::LanePools::connect_lazy(spec, base, Default::default());
    /// pools.verify().await?; // "lane gray: its shadow schema "lane_gray" does not exist yet; ..."
    /// # Ok(()) }
    /// ```
    pub async fn verify(&self) -> sqlx::Result<()> {
        let schemas: Vec<&str> = self.namespaces.iter().map(|(_, s)| s.as_str()).collect();
        let found: Vec<String> =
            sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)")
                .bind(&schemas)
                .fetch_all(&self.base)
                .await?;
        match self.namespaces.iter().find(|(_, s)| !found.contains(s)) {
            None => Ok(()),
            Some((lane, schema)) => Err(sqlx::Error::Configuration(Box::new(ShadowMissing {
                lane: *lane,
                schema: schema.clone(),
            }))),
        }
    }
}

/// Each non-base lane's shadow namespace (`data.pg_schema`).
fn namespaces(spec: &LaneSpec) -> Vec<(Lane, String)> {
    spec.lane_set()
        .non_base()
        .filter_map(|lane| Some((lane, spec.data_names(lane).pg_schema?)))
        .collect()
}

#[cfg(feature = "mysql")]
impl LanePools<sqlx::MySql> {
    /// MySQL/MariaDB pools for every lane of `spec`: each lane's connections use its shadow
    /// database (named like the PostgreSQL schema, `data.pg_schema`). Lazy, as
    /// [`LanePools::connect_lazy`].
    pub fn connect_lazy_mysql(
        spec: &LaneSpec,
        base: sqlx::mysql::MySqlConnectOptions,
        options: sqlx::pool::PoolOptions<sqlx::MySql>,
    ) -> LanePools<sqlx::MySql> {
        let namespaces = namespaces(spec);
        let lanes = namespaces
            .iter()
            .map(|(lane, database)| {
                let opts = base.clone().database(database);
                (*lane, options.clone().connect_lazy_with(opts))
            })
            .collect();
        LanePools {
            base: options.connect_lazy_with(base),
            lanes,
            namespaces,
        }
    }
}

impl<DB: Database> LanePools<DB> {
    /// The pool of the lane in scope ([`LaneContext::current`]).
    pub fn current(&self) -> Result<&Pool<DB>, NotProvisioned> {
        self.for_lane(LaneContext::current().lane())
    }

    /// The pool of `lane`.
    pub fn for_lane(&self, lane: Lane) -> Result<&Pool<DB>, NotProvisioned> {
        if lane.is_base() {
            return Ok(&self.base);
        }
        self.lanes
            .iter()
            .find(|(l, _)| *l == lane)
            .map(|(_, p)| p)
            .ok_or(NotProvisioned(lane))
    }

    /// The base pool.
    pub fn base(&self) -> &Pool<DB> {
        &self.base
    }

    /// Closes every pool.
    pub async fn close(&self) {
        self.base.close().await;
        for (_, pool) in &self.lanes {
            pool.close().await;
        }
    }
}
