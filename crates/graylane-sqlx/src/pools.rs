//! One pool per lane, picked by the lane in scope.

use std::fmt;

use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Database, PgConnection, Pool, Postgres, Row};

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

/// A lane connection is not in the lane's shadow namespace although it asked to be: the server
/// or a pooler in between ignored the startup parameter (PgBouncer drops `options`, and with it
/// `search_path`, when `ignore_startup_parameters = options`). The connection is refused, so
/// that lane code never runs on base tables; behind a transaction pooler use
/// [`LaneTransactions`](crate::LaneTransactions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPathIgnored {
    /// The lane whose connection was refused.
    pub lane: Lane,
    /// The shadow schema (PostgreSQL) or database (MySQL) asked for.
    pub expected: String,
    /// What the connection has instead.
    pub found: String,
}

impl fmt::Display for SearchPathIgnored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lane {}: the connection is in {:?}, not in the shadow {:?}: the server or a pooler \
             in between ignored the startup parameter (PgBouncer drops it with \
             `ignore_startup_parameters = options`); refusing the connection, so that lane code \
             never runs on base tables. Behind a transaction pooler, use LaneTransactions",
            self.lane, self.found, self.expected
        )
    }
}

impl std::error::Error for SearchPathIgnored {}

/// One sqlx pool per lane: base uses the options as given; every other lane's connections open
/// in the lane's shadow namespace — PostgreSQL: `search_path` set to the shadow schema; MySQL:
/// the shadow database — as part of the connection handshake, so queries pay no extra round
/// trip. Cheap to clone.
///
/// Each new lane connection checks, once, that it did land in the shadow (an `after_connect`
/// hook on the lane pools: no per-query round trip). One that did not, because a pooler dropped
/// the startup parameter, is refused: a lane never writes base. sqlx logs the refusal
/// (`error returned from after_connect`) and retries, so the lane's queries fail with
/// `PoolTimedOut` after the pool's `acquire_timeout`; [`verify`](LanePools::verify) names the
/// cause ([`SearchPathIgnored`]). (The lane pools' `after_connect` is graylane's; the base pool
/// keeps the options as given.)
///
/// PostgreSQL accepts a `search_path` naming a schema that does not exist: call
/// [`verify`](LanePools::verify) at start-up (or in a readiness check) to learn of a lane whose
/// shadow schema is not provisioned, or whose connections are refused, before its requests fail.
///
/// Lane code must not `SET search_path` itself: the setting stays on the pooled connection and
/// follows it to the lane's next request (the pool cannot see the SQL it runs). `SET LOCAL`
/// inside a transaction ends with the transaction.
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
                let (lane, expected) = (*lane, schema.clone());
                let options = options.clone().after_connect(move |conn, _| {
                    let expected = expected.clone();
                    Box::pin(async move { pg_landed(conn, lane, expected).await })
                });
                (lane, options.connect_lazy_with(opts))
            })
            .collect();
        LanePools {
            base: options.connect_lazy_with(base),
            lanes,
            namespaces,
        }
    }

    /// Checks that every lane's shadow schema exists (one query on the base pool), and that each
    /// lane pool's connections land in it (one connection per lane): the first missing schema is
    /// a [`ShadowMissing`] inside `sqlx::Error::Configuration`, the first lane whose connections
    /// are refused a [`SearchPathIgnored`] (or the pooler's own refusal).
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
        if let Some((lane, schema)) = self.namespaces.iter().find(|(_, s)| !found.contains(s)) {
            return Err(sqlx::Error::Configuration(Box::new(ShadowMissing {
                lane: *lane,
                schema: schema.clone(),
            })));
        }
        // Connections of their own, not the pools': a pool retries a connection its
        // `after_connect` refused until `acquire_timeout`, and then reports only a timeout.
        for ((lane, pool), (_, schema)) in self.lanes.iter().zip(&self.namespaces) {
            let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
            pg_landed(&mut conn, *lane, schema.clone()).await?;
            conn.close().await?;
        }
        Ok(())
    }
}

/// Whether a lane connection's `search_path` is its shadow schema alone. A simple query: no
/// prepared statement left on a server connection a pooler may hand to other clients.
async fn pg_landed(conn: &mut PgConnection, lane: Lane, expected: String) -> sqlx::Result<()> {
    // A bare `&str` runs as a simple query.
    let found: String =
        sqlx::Executor::fetch_one(&mut *conn, "SELECT current_setting('search_path')")
            .await?
            .try_get(0)?;
    landed(lane, expected, found)
}

/// `Ok` if a connection of `lane` found itself in `expected`, else the refusal.
fn landed(lane: Lane, expected: String, found: String) -> sqlx::Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(sqlx::Error::Configuration(Box::new(SearchPathIgnored {
            lane,
            expected,
            found,
        })))
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
                let (lane, expected) = (*lane, database.clone());
                // The same check as PostgreSQL's: a proxy may pick the database itself.
                let options = options.clone().after_connect(move |conn, _| {
                    let expected = expected.clone();
                    Box::pin(async move {
                        let found: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
                            .fetch_one(&mut *conn)
                            .await?;
                        landed(lane, expected, found.unwrap_or_default())
                    })
                });
                (lane, options.connect_lazy_with(opts))
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
