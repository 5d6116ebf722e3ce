//! Lanes behind a transaction pooler: every transaction starts in its lane's schema.

use std::borrow::Cow;

use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::pools::NotProvisioned;
use crate::shadows::quote_ident;

/// Lane transactions for a database behind a transaction pooler (PgBouncer with
/// `pool_mode = transaction`, the usual set-up), where [`LanePools`](crate::LanePools) cannot
/// work: the pooler drops startup parameters, and a session `SET` would stay on a server
/// connection that other clients get next.
///
/// Every transaction starts with `BEGIN; SET LOCAL search_path TO <shadow>` in one round trip,
/// so the setting holds exactly for the transaction, on whichever server connection it runs,
/// and ends with it. One pool serves every lane. Lane work runs in transactions only: there is
/// no lane pool to hand out, since a query outside a transaction would run wherever the
/// pooler's last client left the server connection.
///
/// Prepared statements behind a transaction pooler are sqlx's usual matter, not a lane's:
/// PgBouncer before 1.21 does not carry them between server connections, so queries there are
/// `.persistent(false)`; from 1.21 on, `max_prepared_statements` lets sqlx cache them.
///
/// ```no_run
/// # async fn f(spec: &graylane_core::spec::LaneSpec) -> Result<(), Box<dyn std::error::Error>> {
/// use graylane_sqlx::LaneTransactions;
///
/// let lanes = LaneTransactions::connect_lazy(
///     spec,
///     "postgres://app@pgbouncer:6432/shop".parse()?,
///     Default::default(),
/// )
/// .base_search_path("shop")?; // base's schema, if not the role's default
/// let mut tx = lanes.begin().await?; // in the lane in scope
/// sqlx::query("INSERT INTO orders (sku) VALUES ($1)")
///     .bind("book")
///     .persistent(false) // PgBouncer < 1.21
///     .execute(&mut *tx)
///     .await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct LaneTransactions {
    pool: PgPool,
    /// The statement that begins a base transaction.
    base: Cow<'static, str>,
    /// The statement that begins each lane's.
    lanes: Vec<(Lane, Cow<'static, str>)>,
}

impl LaneTransactions {
    /// Transactions for every lane of `spec`, on one pool connecting lazily.
    pub fn connect_lazy(
        spec: &LaneSpec,
        base: PgConnectOptions,
        options: PgPoolOptions,
    ) -> LaneTransactions {
        let lanes = spec
            .lane_set()
            .non_base()
            .filter_map(|lane| Some((lane, begin_in(&spec.data_names(lane).pg_schema?))))
            .collect();
        LaneTransactions {
            pool: options.connect_lazy_with(base),
            base: Cow::Borrowed("BEGIN"),
            lanes,
        }
    }

    /// Base transactions start in `schema` too (behind a pooler, a `search_path` in the
    /// connection options is dropped like any startup parameter). By default they use the
    /// server's default for the role.
    ///
    /// # Errors
    ///
    /// `schema` is not a plain SQL identifier.
    pub fn base_search_path(mut self, schema: &str) -> Result<LaneTransactions, sqlx::Error> {
        if !graylane_core::spec::is_sql_identifier(schema) {
            return Err(sqlx::Error::Configuration(
                format!("{schema:?} is not a plain SQL identifier").into(),
            ));
        }
        self.base = begin_in(schema);
        Ok(self)
    }

    /// A transaction in the lane in scope ([`LaneContext::current`]).
    ///
    /// # Errors
    ///
    /// A lane not in the spec ([`NotProvisioned`], inside `sqlx::Error::Configuration`: never
    /// base), or the database's error.
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.begin_for(LaneContext::current().lane()).await
    }

    /// A transaction in `lane`.
    ///
    /// # Errors
    ///
    /// As [`begin`](Self::begin).
    pub async fn begin_for(
        &self,
        lane: Lane,
    ) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let statement = if lane.is_base() {
            &self.base
        } else {
            self.lanes
                .iter()
                .find(|(l, _)| *l == lane)
                .map(|(_, s)| s)
                .ok_or_else(|| sqlx::Error::Configuration(Box::new(NotProvisioned(lane))))?
        };
        self.pool.begin_with(statement.clone()).await
    }

    /// The pool, for base work outside transactions.
    pub fn base(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `BEGIN` and the transaction's search path, one simple query (one round trip).
fn begin_in(schema: &str) -> Cow<'static, str> {
    Cow::Owned(format!(
        "BEGIN; SET LOCAL search_path TO {}",
        quote_ident(schema)
    ))
}
