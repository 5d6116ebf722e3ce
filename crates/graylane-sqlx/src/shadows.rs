//! Provisioning, seeding, inspecting and dropping shadow schemas.

use std::fmt;

use graylane_core::Lane;
use graylane_core::spec::{LaneSpec, is_sql_identifier};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Row};

use crate::SHADOW_MARKER;

/// A quoted SQL identifier: `"name"`, with inner quotes doubled.
///
/// graylane only ever quotes names that passed the spec's identifier check; quoting on top
/// means even a bug upstream cannot turn a name into SQL.
///
/// ```
/// assert_eq!(graylane_sqlx::quote_ident("lane_gray"), "\"lane_gray\"");
/// assert_eq!(graylane_sqlx::quote_ident("x\"; DROP SCHEMA public; --"), "\"x\"\"; DROP SCHEMA public; --\"");
/// ```
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Why a shadow operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ShadowError {
    /// The lane is base: base data is never provisioned, seeded or dropped by graylane.
    Base,
    /// The lane is not in the spec.
    UnknownLane(Lane),
    /// The schema exists but graylane did not create it; it is left alone.
    NotOurs {
        /// The schema.
        schema: String,
    },
    /// Objects outside the shadow depend on objects in it (a base view over a shadow table, a
    /// base column default using a shadow sequence, a foreign key, ...): dropping it would
    /// drop or change them, so it is refused.
    Dependents {
        /// The shadow schema (PostgreSQL) or database (MySQL).
        schema: String,
        /// Each dependent object, as the database names it (`view public.v`, ...).
        objects: Vec<String>,
    },
    /// A name is not a plain identifier.
    BadIdentifier(String),
    /// A database error.
    Sql(sqlx::Error),
    /// A migration error.
    Migrate(sqlx::migrate::MigrateError),
}

impl fmt::Display for ShadowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShadowError::Base => {
                f.write_str("refusing to touch base: graylane only manages shadow schemas")
            }
            ShadowError::UnknownLane(l) => write!(f, "lane {l} is not in the lane spec"),
            ShadowError::NotOurs { schema } => write!(
                f,
                "{schema} exists but was not created by graylane (no '{SHADOW_MARKER}' mark); refusing"
            ),
            ShadowError::Dependents { schema, objects } => write!(
                f,
                "refusing to drop {schema}: objects outside it depend on it and would be dropped \
                 or changed with it: {}; drop or change them first",
                objects.join(", ")
            ),
            ShadowError::BadIdentifier(s) => write!(f, "{s:?} is not a plain SQL identifier"),
            ShadowError::Sql(e) => write!(f, "database error: {e}"),
            ShadowError::Migrate(e) => write!(f, "migration error: {e}"),
        }
    }
}

impl std::error::Error for ShadowError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShadowError::Sql(e) => Some(e),
            ShadowError::Migrate(e) => Some(e),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for ShadowError {
    fn from(e: sqlx::Error) -> Self {
        ShadowError::Sql(e)
    }
}

impl From<sqlx::migrate::MigrateError> for ShadowError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        ShadowError::Migrate(e)
    }
}

/// What a lane's schema looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The lane.
    pub lane: Lane,
    /// Its schema.
    pub schema: String,
    /// Whether the schema exists.
    pub exists: bool,
    /// Whether graylane created it.
    pub ours: bool,
    /// Migrations applied in it.
    pub migrations: i64,
    /// Tables in it (the migrations table excluded).
    pub tables: i64,
}

/// Shadow schema management for one database.
#[derive(Clone, Debug)]
pub struct Shadows {
    spec: LaneSpec,
    base: PgConnectOptions,
}

/// The shadow schema (PostgreSQL) or database (MySQL) name of `lane`; refuses base and lanes
/// not in the spec.
pub(crate) fn shadow_name(spec: &LaneSpec, lane: Lane) -> Result<String, ShadowError> {
    if lane.is_base() {
        return Err(ShadowError::Base);
    }
    if !spec.lane_set().contains(lane) {
        return Err(ShadowError::UnknownLane(lane));
    }
    let name = spec
        .data_names(lane)
        .pg_schema
        .ok_or(ShadowError::UnknownLane(lane))?;
    // Validated by the spec already; checked again because it is about to become SQL.
    if !is_sql_identifier(&name)
        || [
            "public",
            "mysql",
            "sys",
            "information_schema",
            "performance_schema",
        ]
        .contains(&name.as_str())
        || name.starts_with("pg_")
    {
        return Err(ShadowError::BadIdentifier(name));
    }
    Ok(name)
}

/// What `DROP SCHEMA $1 CASCADE` would drop outside the schema: every object that depends,
/// directly or through others, on the schema, whose own schema (or, for objects without one —
/// rules, column defaults, triggers —, that of the object they belong to) is another one.
/// Objects internal to another doomed object (a foreign key's triggers) are left out: the
/// object they belong to is named.
const OUTSIDE_DEPENDENTS: &str = "
WITH RECURSIVE doomed(classid, objid) AS (
    SELECT 'pg_namespace'::regclass::oid, oid FROM pg_namespace WHERE nspname = $1
    UNION
    SELECT d.classid, d.objid
    FROM pg_depend d JOIN doomed o ON d.refclassid = o.classid AND d.refobjid = o.objid
    WHERE d.deptype IN ('n', 'a', 'i')
)
SELECT DISTINCT CASE
           -- A view's rule: name the view.
           WHEN it.type = 'rule' AND owner.identity IS NOT NULL
               THEN owner.type || ' ' || owner.identity
           ELSE it.type || ' ' || it.identity
       END
FROM doomed p
CROSS JOIN LATERAL pg_identify_object(p.classid, p.objid, 0) it
LEFT JOIN LATERAL (
    SELECT o.type, o.schema, o.identity
    FROM pg_depend d, LATERAL pg_identify_object(d.refclassid, d.refobjid, 0) o
    WHERE d.classid = p.classid AND d.objid = p.objid AND d.deptype IN ('a', 'i')
    ORDER BY d.refclassid, d.refobjid
    LIMIT 1
) owner ON true
CROSS JOIN LATERAL (
    -- Where the object lives: its schema, its owner's, or the schema it belongs to itself
    -- (default privileges `IN SCHEMA`).
    SELECT coalesce(it.schema, owner.schema,
                    CASE WHEN owner.type = 'schema' THEN owner.identity END) AS schema
) place
WHERE place.schema IS DISTINCT FROM $1
  AND place.schema IS DISTINCT FROM 'pg_toast'
  AND p.classid <> 'pg_namespace'::regclass
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend d JOIN doomed o ON d.refclassid = o.classid AND d.refobjid = o.objid
      WHERE d.classid = p.classid AND d.objid = p.objid AND d.deptype = 'i')
ORDER BY 1";

impl Shadows {
    /// Shadow schemas named by `spec`, in the database `base` connects to.
    pub fn new(spec: &LaneSpec, base: PgConnectOptions) -> Shadows {
        Shadows {
            spec: spec.clone(),
            base,
        }
    }

    /// The schema of `lane`; refuses base and unknown lanes.
    pub fn schema(&self, lane: Lane) -> Result<String, ShadowError> {
        shadow_name(&self.spec, lane)
    }

    async fn admin(&self) -> Result<PgConnection, ShadowError> {
        Ok(PgConnection::connect_with(&self.base).await?)
    }

    /// `Some(true)`: ours; `Some(false)`: exists, not ours; `None`: does not exist.
    async fn owned(conn: &mut PgConnection, schema: &str) -> Result<Option<bool>, ShadowError> {
        let row = sqlx::query(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1",
        )
        .bind(schema)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(row.map(|r| {
            r.get::<Option<String>, _>(0)
                .is_some_and(|c| c.starts_with(SHADOW_MARKER))
        }))
    }

    /// Creates the lane's schema (if missing) and runs `migrator` in it. Idempotent: applied
    /// migrations are recorded in the schema's own `_sqlx_migrations` table.
    pub async fn provision(&self, lane: Lane, migrator: &Migrator) -> Result<(), ShadowError> {
        let schema = self.schema(lane)?;
        let mut conn = self.admin().await?;
        match Self::owned(&mut conn, &schema).await? {
            Some(false) => return Err(ShadowError::NotOurs { schema }),
            Some(true) => {}
            None => {
                let q = quote_ident(&schema);
                let mut tx = conn.begin().await?;
                sqlx::query(&format!("CREATE SCHEMA {q}"))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&format!(
                    "COMMENT ON SCHEMA {q} IS '{SHADOW_MARKER} for lane {lane}'"
                ))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                tracing::info!(%lane, %schema, "created shadow schema");
            }
        }
        conn.close().await?;
        // Migrations run on a connection whose search_path is the shadow schema only, so every
        // unqualified name they create lands there.
        let mut shadow = PgConnection::connect_with(
            &self
                .base
                .clone()
                .options([("search_path", schema.as_str())]),
        )
        .await?;
        migrator.run(&mut shadow).await?;
        shadow.close().await?;
        Ok(())
    }

    /// Copies every row of `tables` from the base schema `base_schema` into the lane's schema
    /// (for reference data a gray version needs to start with). Tables must exist in both.
    pub async fn seed(
        &self,
        lane: Lane,
        base_schema: &str,
        tables: &[&str],
    ) -> Result<u64, ShadowError> {
        let schema = self.schema(lane)?;
        for name in std::iter::once(&base_schema).chain(tables) {
            if !is_sql_identifier(name) {
                return Err(ShadowError::BadIdentifier((*name).to_owned()));
            }
        }
        let mut conn = self.admin().await?;
        if Self::owned(&mut conn, &schema).await? != Some(true) {
            return Err(ShadowError::NotOurs { schema });
        }
        let mut tx = conn.begin().await?;
        let mut copied = 0;
        for table in tables {
            let done = sqlx::query(&format!(
                "INSERT INTO {}.{t} SELECT * FROM {}.{t}",
                quote_ident(&schema),
                quote_ident(base_schema),
                t = quote_ident(table)
            ))
            .execute(&mut *tx)
            .await?;
            copied += done.rows_affected();
        }
        tx.commit().await?;
        Ok(copied)
    }

    /// Drops the lane's schema and everything in it. Refuses base, unknown lanes, schemas
    /// graylane did not create, and schemas that objects outside them depend on
    /// ([`ShadowError::Dependents`], naming them): `DROP SCHEMA ... CASCADE` would drop a base
    /// view over a shadow table, or a base column's default that uses a shadow sequence.
    /// Dropping a schema that does not exist is a no-op.
    pub async fn drop(&self, lane: Lane) -> Result<bool, ShadowError> {
        let schema = self.schema(lane)?;
        let mut conn = self.admin().await?;
        match Self::owned(&mut conn, &schema).await? {
            None => Ok(false),
            Some(false) => Err(ShadowError::NotOurs { schema }),
            Some(true) => {
                // The check and the drop in one transaction.
                let mut tx = conn.begin().await?;
                let q = quote_ident(&schema);
                let objects: Vec<String> = sqlx::query_scalar(OUTSIDE_DEPENDENTS)
                    .bind(&schema)
                    .fetch_all(&mut *tx)
                    .await?;
                if !objects.is_empty() {
                    return Err(ShadowError::Dependents { schema, objects });
                }
                sqlx::query(&format!("DROP SCHEMA {q} CASCADE"))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                tracing::info!(%lane, %schema, "dropped shadow schema");
                Ok(true)
            }
        }
    }

    /// The state of every lane's schema.
    pub async fn status(&self) -> Result<Vec<SchemaStatus>, ShadowError> {
        let mut conn = self.admin().await?;
        let mut out = Vec::new();
        for lane in self.spec.lane_set().non_base() {
            let schema = self.schema(lane)?;
            let owned = Self::owned(&mut conn, &schema).await?;
            let (mut migrations, mut tables) = (0, 0);
            if owned.is_some() {
                tables = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename <> '_sqlx_migrations'",
                )
                .bind(&schema)
                .fetch_one(&mut conn)
                .await?;
                let has_migrations: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = '_sqlx_migrations')",
                )
                .bind(&schema)
                .fetch_one(&mut conn)
                .await?;
                if has_migrations {
                    migrations = sqlx::query_scalar(&format!(
                        "SELECT count(*) FROM {}._sqlx_migrations WHERE success",
                        quote_ident(&schema)
                    ))
                    .fetch_one(&mut conn)
                    .await?;
                }
            }
            out.push(SchemaStatus {
                lane,
                schema,
                exists: owned.is_some(),
                ours: owned == Some(true),
                migrations,
                tables,
            });
        }
        Ok(out)
    }
}
