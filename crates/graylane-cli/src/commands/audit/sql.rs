//! SQL: every column that can hold the marker, of every table in the base schema (PostgreSQL)
//! or database (MySQL: the one the URL names) and in the lane's shadow.
//!
//! Leaked data sits in payload columns as often as in names: `jsonb`, arrays, `bytea`, `xml`,
//! composites and domains are searched as well as text, through each type's text form (bytes
//! for binary types). Only types that cannot hold text are skipped (numbers, times, booleans,
//! geometry, bit strings, ...); what could not be searched is reported, never passed over.

use graylane_core::Lane;
use graylane_core::spec::{LaneSpec, is_sql_identifier};
use sqlx::{Connection, Row};

use super::Report;
use crate::{Fail, bad_input};

pub(super) async fn search(
    spec: &LaneSpec,
    lane: Lane,
    url: &str,
    base_schema: &str,
    marker: &str,
    report: &mut Report,
) -> Result<(), Fail> {
    let shadow = spec
        .data_names(lane)
        .pg_schema
        .ok_or_else(|| bad_input("the lane has no shadow schema"))?;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        postgres(url, base_schema, shadow, marker, report).await
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        mysql(url, shadow, marker, report).await
    } else {
        Err(bad_input(
            "--database-url must start with postgres:// or mysql://",
        ))
    }
}

/// One table's columns, each with the SQL test for the marker in it (`%I`: the column).
struct Table {
    name: String,
    columns: Vec<(String, String)>,
}

/// Columns by table, from `(table, column, test)` rows ordered by table.
fn tables(
    rows: Vec<(String, String, Option<String>)>,
    place: &str,
    report: &mut Report,
) -> Vec<Table> {
    let mut out: Vec<Table> = Vec::new();
    for (table, column, test) in rows {
        let Some(test) = test else {
            report.unsearched(
                format!("{place}.{table}.{column}"),
                "large object contents are not searched",
            );
            continue;
        };
        match out.last_mut() {
            Some(t) if t.name == table => t.columns.push((column, test)),
            _ => out.push(Table {
                name: table,
                columns: vec![(column, test)],
            }),
        }
    }
    out
}

/// The PostgreSQL test for each column type (`None`: cannot be searched), by the type's (or, for
/// a domain, its base type's) name and category; `$1` is the marker, found as a plain substring
/// of the text form (bytes for `bytea`).
const PG_COLUMNS: &str = "
SELECT c.relname::text, a.attname::text,
       CASE
           WHEN b.typname = 'bytea' THEN 'position(convert_to($1, ''UTF8'') in %I) > 0'
           WHEN b.typname = '_bytea' THEN
               'EXISTS (SELECT 1 FROM unnest(%I) e WHERE position(convert_to($1, ''UTF8'') in e) > 0)'
           WHEN b.typname IN ('oid', 'lo') THEN NULL
           ELSE 'strpos(%I::text, $1) > 0'
       END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition
  AND a.attnum > 0 AND NOT a.attisdropped AND c.relname <> '_sqlx_migrations'
  AND (b.typcategory NOT IN ('N', 'B', 'D', 'T', 'G', 'I', 'V') OR b.typname IN ('oid', 'lo'))
  AND b.typname NOT IN ('uuid', 'pg_lsn', 'money')
ORDER BY 1, a.attnum";

async fn postgres(
    url: &str,
    base_schema: &str,
    shadow: String,
    marker: &str,
    report: &mut Report,
) -> Result<(), Fail> {
    if !is_sql_identifier(base_schema) {
        return Err(bad_input(format!(
            "--base-schema {base_schema:?} is not a plain identifier"
        )));
    }
    let db_err = |e: sqlx::Error| bad_input(format!("{url}: {e}"));
    let mut conn = sqlx::PgConnection::connect(url).await.map_err(db_err)?;
    let q = graylane_sqlx::quote_ident;
    for (schema, is_lane) in [(base_schema.to_owned(), false), (shadow, true)] {
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(PG_COLUMNS)
            .bind(&schema)
            .fetch_all(&mut conn)
            .await
            .map_err(db_err)?;
        let place = format!("postgres {schema}");
        for table in tables(rows, &place, report) {
            // One scan per table: a count per column.
            let counts: Vec<String> = table
                .columns
                .iter()
                .map(|(column, test)| {
                    format!("count(*) FILTER (WHERE {})", test.replace("%I", &q(column)))
                })
                .collect();
            // ONLY: an inheritance child is counted where it lives, not again in its parent.
            let sql = format!(
                "SELECT {} FROM ONLY {}.{}",
                counts.join(", "),
                q(&schema),
                q(&table.name)
            );
            let row = sqlx::query(&sql).bind(marker).fetch_one(&mut conn).await;
            count(report, is_lane, &place, &table, row)?;
        }
    }
    Ok(())
}

/// The MySQL test for each column type (text types and JSON by their text, binary ones by their
/// bytes), a plain substring search (`LOCATE`: no `LIKE` escapes, which `NO_BACKSLASH_ESCAPES`
/// would switch off); types that cannot hold text are left out.
const MYSQL_COLUMNS: &str = "
SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR),
       CAST(CASE
           WHEN DATA_TYPE IN ('binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob')
               THEN 'LOCATE(CAST(? AS BINARY), %I) > 0'
           ELSE 'LOCATE(?, CAST(%I AS CHAR)) > 0'
       END AS CHAR)
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = ? AND TABLE_NAME NOT IN ('_sqlx_migrations', '_graylane_shadow')
  AND DATA_TYPE IN ('char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'json',
                    'enum', 'set', 'binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob',
                    'longblob')
  AND TABLE_NAME IN (SELECT TABLE_NAME FROM information_schema.TABLES
                     WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE')
ORDER BY 1, ORDINAL_POSITION";

async fn mysql(url: &str, shadow: String, marker: &str, report: &mut Report) -> Result<(), Fail> {
    // Errors name the URL as given, `mariadb://` included.
    let db_err = |e: sqlx::Error| bad_input(format!("{url}: {e}"));
    let opts: sqlx::mysql::MySqlConnectOptions = url
        .replacen("mariadb://", "mysql://", 1)
        .parse()
        .map_err(db_err)?;
    let base_db = opts
        .get_database()
        .ok_or_else(|| bad_input("the MySQL URL must name the base database"))?
        .to_owned();
    let mut conn = sqlx::MySqlConnection::connect_with(&opts)
        .await
        .map_err(db_err)?;
    let q = graylane_sqlx::mysql::quote_ident;
    for (db, is_lane) in [(base_db, false), (shadow, true)] {
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(MYSQL_COLUMNS)
            .bind(&db)
            .bind(&db)
            .fetch_all(&mut conn)
            .await
            .map_err(db_err)?;
        let place = format!("mysql {db}");
        for table in tables(rows, &place, report) {
            let counts: Vec<String> = table
                .columns
                .iter()
                .map(|(column, test)| format!("SUM({})", test.replace("%I", &q(column))))
                .collect();
            let sql = format!(
                "SELECT {} FROM {}.{}",
                counts
                    .iter()
                    .map(|c| format!("CAST(COALESCE({c}, 0) AS SIGNED)"))
                    .collect::<Vec<_>>()
                    .join(", "),
                q(&db),
                q(&table.name)
            );
            // Positional parameters: one per column, the marker as bytes or as text.
            let mut query = sqlx::query(&sql);
            for (_, test) in &table.columns {
                query = if test.contains("AS BINARY") {
                    query.bind(marker.as_bytes())
                } else {
                    query.bind(marker)
                };
            }
            let row = query.fetch_one(&mut conn).await;
            count(report, is_lane, &place, &table, row)?;
        }
    }
    Ok(())
}

/// Adds one table's counts to the report; a table that could not be read is reported as not
/// searched (a permission, a broken view), not as clean.
fn count<R: Row>(
    report: &mut Report,
    is_lane: bool,
    place: &str,
    table: &Table,
    row: sqlx::Result<R>,
) -> Result<(), Fail>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let row = match row {
        Ok(row) => row,
        Err(e) => {
            report.unsearched(format!("{place}.{}", table.name), e.to_string());
            return Ok(());
        }
    };
    for (i, (column, _)) in table.columns.iter().enumerate() {
        let n: i64 = row
            .try_get(i)
            .map_err(|e| bad_input(format!("{place}.{}.{column}: {e}", table.name)))?;
        report.add(is_lane, format!("{place}.{}.{column}", table.name), n);
    }
    Ok(())
}
