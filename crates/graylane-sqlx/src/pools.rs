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

/// One sqlx pool per lane: base uses the options as given; every other lane's connections open
/// in the lane's shadow namespace — PostgreSQL: `search_path` set to the shadow schema; MySQL:
/// the shadow database — as part of the connection handshake, so queries pay no extra round
/// trip. Cheap to clone.
#[derive(Debug)]
pub struct LanePools<DB: Database = Postgres> {
    base: Pool<DB>,
    lanes: Vec<(Lane, Pool<DB>)>,
}

impl<DB: Database> Clone for LanePools<DB> {
    fn clone(&self) -> Self {
        LanePools {
            base: self.base.clone(),
            lanes: self.lanes.clone(),
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
        let lanes = spec
            .lane_set()
            .non_base()
            .filter_map(|lane| {
                let schema = spec.data_names(lane).pg_schema?;
                let opts = base.clone().options([("search_path", schema.as_str())]);
                Some((lane, options.clone().connect_lazy_with(opts)))
            })
            .collect();
        LanePools {
            base: options.connect_lazy_with(base),
            lanes,
        }
    }
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
        let lanes = spec
            .lane_set()
            .non_base()
            .filter_map(|lane| {
                let database = spec.data_names(lane).pg_schema?;
                Some((
                    lane,
                    options
                        .clone()
                        .connect_lazy_with(base.clone().database(&database)),
                ))
            })
            .collect();
        LanePools {
            base: options.connect_lazy_with(base),
            lanes,
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
