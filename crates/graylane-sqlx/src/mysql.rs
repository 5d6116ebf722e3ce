//! MySQL / MariaDB (feature `mysql`): a shadow *database* per lane, same API as PostgreSQL.
//!
//! The database is named like the PostgreSQL schema (`data.pg_schema`, `lane_<lane>` by
//! default). MySQL has no schema comments, so graylane marks the databases it creates with a
//! one-row table `_graylane_shadow`; [`MySqlShadows::drop`] drops only databases carrying it.
//! Lane pools come from [`LanePools::connect_lazy_mysql`](crate::LanePools::connect_lazy_mysql).

use graylane_core::Lane;
use graylane_core::spec::LaneSpec;
use sqlx::migrate::Migrator;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::{Connection, MySqlConnection};

use crate::shadows::shadow_name;
use crate::{SchemaStatus, ShadowError};

/// The table that marks a database as a graylane shadow.
pub const MARKER_TABLE: &str = "_graylane_shadow";

/// A quoted MySQL identifier: `` `name` ``, with inner backticks doubled.
///
/// ```
/// assert_eq!(graylane_sqlx::mysql::quote_ident("lane_gray"), "`lane_gray`");
/// assert_eq!(graylane_sqlx::mysql::quote_ident("a`b"), "`a``b`");
/// ```
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Shadow database management for one MySQL/MariaDB server.
#[derive(Clone, Debug)]
pub struct MySqlShadows {
    spec: LaneSpec,
    base: MySqlConnectOptions,
}

/// Objects outside database `?` that depend on it: foreign keys into it, and views whose
/// definition names one of its tables (the server stores view definitions with every name
/// qualified and quoted, so the text search is exact).
const OUTSIDE_DEPENDENTS: &str = "
SELECT CONCAT('foreign key ', CONSTRAINT_NAME, ' on ', TABLE_SCHEMA, '.', TABLE_NAME)
FROM information_schema.KEY_COLUMN_USAGE
WHERE REFERENCED_TABLE_SCHEMA = ? AND TABLE_SCHEMA <> ?
UNION
SELECT CONCAT('view ', TABLE_SCHEMA, '.', TABLE_NAME)
FROM information_schema.VIEWS
WHERE LOCATE(CONCAT('`', REPLACE(?, '`', '``'), '`.'), VIEW_DEFINITION) > 0 AND TABLE_SCHEMA <> ?
ORDER BY 1";

impl MySqlShadows {
    /// Shadow databases named by `spec`, on the server `base` connects to.
    pub fn new(spec: &LaneSpec, base: MySqlConnectOptions) -> MySqlShadows {
        MySqlShadows {
            spec: spec.clone(),
            base,
        }
    }

    /// The shadow database of `lane`; refuses base and unknown lanes.
    pub fn database(&self, lane: Lane) -> Result<String, ShadowError> {
        shadow_name(&self.spec, lane)
    }

    async fn owned(conn: &mut MySqlConnection, db: &str) -> Result<Option<bool>, ShadowError> {
        let exists: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
        )
        .bind(db)
        .fetch_one(&mut *conn)
        .await?;
        if exists == 0 {
            return Ok(None);
        }
        let marked: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
        )
        .bind(db)
        .bind(MARKER_TABLE)
        .fetch_one(&mut *conn)
        .await?;
        Ok(Some(marked > 0))
    }

    /// Creates the lane's database (if missing) and runs `migrator` in it. Idempotent.
    pub async fn provision(&self, lane: Lane, migrator: &Migrator) -> Result<(), ShadowError> {
        let db = self.database(lane)?;
        let mut conn = MySqlConnection::connect_with(&self.base).await?;
        match Self::owned(&mut conn, &db).await? {
            Some(false) => return Err(ShadowError::NotOurs { schema: db }),
            Some(true) => {}
            None => {
                let q = quote_ident(&db);
                // DDL commits implicitly in MySQL: create, then mark; a crash in between leaves
                // an unmarked database that `provision` refuses and an operator removes.
                sqlx::query(&format!("CREATE DATABASE {q}"))
                    .execute(&mut conn)
                    .await?;
                sqlx::query(&format!(
                    "CREATE TABLE {q}.{} (lane VARCHAR(64) NOT NULL)",
                    quote_ident(MARKER_TABLE)
                ))
                .execute(&mut conn)
                .await?;
                sqlx::query(&format!(
                    "INSERT INTO {q}.{} (lane) VALUES (?)",
                    quote_ident(MARKER_TABLE)
                ))
                .bind(lane.as_str())
                .execute(&mut conn)
                .await?;
            }
        }
        conn.close().await?;
        let mut shadow = MySqlConnection::connect_with(&self.base.clone().database(&db)).await?;
        migrator.run(&mut shadow).await?;
        shadow.close().await?;
        Ok(())
    }

    /// Drops the lane's database. Refuses base, unknown lanes, unmarked databases, and
    /// databases that objects elsewhere depend on ([`ShadowError::Dependents`]: a view over
    /// one of its tables would be left broken, and a foreign key into it would make the drop
    /// fail half-way). A missing database is a no-op (`false`).
    pub async fn drop(&self, lane: Lane) -> Result<bool, ShadowError> {
        let db = self.database(lane)?;
        let mut conn = MySqlConnection::connect_with(&self.base).await?;
        match Self::owned(&mut conn, &db).await? {
            None => Ok(false),
            Some(false) => Err(ShadowError::NotOurs { schema: db }),
            Some(true) => {
                let objects: Vec<String> = sqlx::query_scalar(OUTSIDE_DEPENDENTS)
                    .bind(&db)
                    .bind(&db)
                    .bind(&db)
                    .bind(&db)
                    .fetch_all(&mut conn)
                    .await?;
                if !objects.is_empty() {
                    return Err(ShadowError::Dependents {
                        schema: db,
                        objects,
                    });
                }
                sqlx::query(&format!("DROP DATABASE {}", quote_ident(&db)))
                    .execute(&mut conn)
                    .await?;
                Ok(true)
            }
        }
    }

    /// The state of every lane's database.
    pub async fn status(&self) -> Result<Vec<SchemaStatus>, ShadowError> {
        let mut conn = MySqlConnection::connect_with(&self.base).await?;
        let mut out = Vec::new();
        for lane in self.spec.lane_set().non_base() {
            let db = self.database(lane)?;
            let owned = Self::owned(&mut conn, &db).await?;
            let (mut migrations, mut tables) = (0, 0);
            if owned.is_some() {
                tables = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME NOT IN ('_sqlx_migrations', ?)",
                )
                .bind(&db)
                .bind(MARKER_TABLE)
                .fetch_one(&mut conn)
                .await?;
                let has: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = '_sqlx_migrations'",
                )
                .bind(&db)
                .fetch_one(&mut conn)
                .await?;
                if has > 0 {
                    migrations = sqlx::query_scalar(&format!(
                        "SELECT COUNT(*) FROM {}._sqlx_migrations WHERE success",
                        quote_ident(&db)
                    ))
                    .fetch_one(&mut conn)
                    .await?;
                }
            }
            out.push(SchemaStatus {
                lane,
                schema: db,
                exists: owned.is_some(),
                ours: owned == Some(true),
                migrations,
                tables,
            });
        }
        Ok(out)
    }
}
