//! `graylane shadow`: create, drop and list the lanes' shadow schemas (PostgreSQL) or databases
//! (MySQL/MariaDB), through `graylane-sqlx`.

use std::path::Path;

use graylane_core::Lane;
use graylane_core::spec::LaneSpec;
use graylane_sqlx::ShadowError;
use graylane_sqlx::mysql::MySqlShadows;

use super::{lane_arg, load, print_json, runtime};
use crate::args::{ShadowAction, ShadowTarget};
use crate::{Fail, bad_input, problem};

/// Runs one action to completion; a refused or failed database operation exits 1.
pub(crate) fn run(action: ShadowAction) -> Result<(), Fail> {
    runtime()?.block_on(async {
        match action {
            ShadowAction::Provision {
                target,
                lane,
                migrations,
            } => provision(&target, &lane, &migrations).await,
            ShadowAction::Drop { target, lane } => drop(&target, &lane).await,
            ShadowAction::Status { target, json } => status(&target, json).await,
        }
    })
}

async fn provision(target: &ShadowTarget, lane: &str, migrations: &Path) -> Result<(), Fail> {
    let (spec, db) = open(target)?;
    let lane = lane_arg(&spec, lane, "the spec")?;
    let migrator = sqlx::migrate::Migrator::new(migrations)
        .await
        .map_err(|e| bad_input(format!("{}: {e}", migrations.display())))?;
    match &db {
        Db::Postgres(s) => s.provision(lane, &migrator).await.map_err(failed)?,
        Db::MySql(s) => s.provision(lane, &migrator).await.map_err(failed)?,
    };
    let name = db.name(lane)?;
    println!(
        "lane {lane}: {name} provisioned ({} migrations known)",
        migrator.iter().count()
    );
    Ok(())
}

async fn drop(target: &ShadowTarget, lane: &str) -> Result<(), Fail> {
    let (spec, db) = open(target)?;
    let lane = lane_arg(&spec, lane, "the spec")?;
    println!(
        "lane {lane}: {}",
        if db.drop_lane(lane).await? {
            "dropped"
        } else {
            "nothing to drop"
        }
    );
    Ok(())
}

/// One lane's shadow, as `status` prints it.
#[derive(serde::Serialize)]
struct StatusRow {
    lane: String,
    name: String,
    exists: bool,
    created_by_graylane: bool,
    migrations: i64,
    tables: i64,
}

async fn status(target: &ShadowTarget, json: bool) -> Result<(), Fail> {
    let (_, db) = open(target)?;
    let status = match &db {
        Db::Postgres(s) => s.status().await.map_err(failed)?,
        Db::MySql(s) => s.status().await.map_err(failed)?,
    };
    let rows: Vec<StatusRow> = status
        .into_iter()
        .map(|s| StatusRow {
            lane: s.lane.to_string(),
            name: s.schema,
            exists: s.exists,
            created_by_graylane: s.ours,
            migrations: s.migrations,
            tables: s.tables,
        })
        .collect();
    if json {
        return print_json(&rows);
    }
    for r in &rows {
        let state = match (r.exists, r.created_by_graylane) {
            (false, _) => "absent".to_owned(),
            (true, false) => "EXISTS BUT NOT CREATED BY GRAYLANE".to_owned(),
            (true, true) => format!("{} migrations, {} tables", r.migrations, r.tables),
        };
        println!("{:<12} {:<30} {state}", r.lane, r.name);
    }
    Ok(())
}

/// The shadow manager for a database URL.
pub(crate) enum Db {
    Postgres(graylane_sqlx::Shadows),
    MySql(MySqlShadows),
}

impl Db {
    /// The shadow manager of `spec`'s lanes for `url` (`mariadb://` is read as `mysql://`).
    pub(crate) fn open(spec: &LaneSpec, url: &str) -> Result<Db, Fail> {
        fn options<T: std::str::FromStr<Err = sqlx::Error>>(url: &str) -> Result<T, Fail> {
            url.parse()
                .map_err(|e| bad_input(format!("--database-url: {e}")))
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Db::Postgres(graylane_sqlx::Shadows::new(
                spec,
                options(url)?,
            )))
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let url = url.replacen("mariadb://", "mysql://", 1);
            Ok(Db::MySql(MySqlShadows::new(spec, options(&url)?)))
        } else {
            Err(bad_input(
                "--database-url must start with postgres:// or mysql://",
            ))
        }
    }

    /// The lane's shadow schema (PostgreSQL) or database (MySQL).
    pub(crate) fn name(&self, lane: Lane) -> Result<String, Fail> {
        match self {
            Db::Postgres(s) => s.schema(lane),
            Db::MySql(s) => s.database(lane),
        }
        .map_err(failed)
    }

    /// The safe drop: refuses base and anything graylane did not create; `false`: nothing
    /// was there.
    pub(crate) async fn drop_lane(&self, lane: Lane) -> Result<bool, Fail> {
        match self {
            Db::Postgres(s) => s.drop(lane).await,
            Db::MySql(s) => s.drop(lane).await,
        }
        .map_err(failed)
    }
}

/// The spec, and the shadow manager for `--database-url`.
fn open(target: &ShadowTarget) -> Result<(LaneSpec, Db), Fail> {
    let spec = load(&target.spec)?;
    let db = Db::open(&spec, &target.database_url)?;
    Ok((spec, db))
}

/// A shadow operation the database refused or failed: exit 1.
fn failed(e: ShadowError) -> Fail {
    problem(e.to_string())
}
