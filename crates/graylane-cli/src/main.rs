//! `graylane`: operator commands for lane specs.
//!
//! ```text
//! graylane manifests --spec graylane.yaml --out k8s/        write Istio + Kubernetes manifests
//! graylane manifests --spec graylane.yaml --out k8s/ --check   fail if k8s/ differs (CI drift check)
//! graylane route --spec graylane.yaml -H 'x-user-group: beta'  explain where a request goes
//! graylane token --spec graylane.yaml --lane gray --ttl 2h     mint a signed lane token
//! graylane check --spec graylane.yaml [--manifests k8s/]       validate spec and manifests
//! graylane shadow provision --spec graylane.yaml --lane gray --migrations ./migrations
//! graylane shadow status --spec graylane.yaml [--json]         shadow schemas / databases
//! graylane shadow drop --spec graylane.yaml --lane gray        after the release
//! ```
//!
//! `shadow` reads the database from `--database-url` or `DATABASE_URL` (`postgres://...` or
//! `mysql://...`).
//!
//! Exit codes: 0 success; 1 the check found problems (or drift); 2 bad input (usage, spec,
//! files).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

mod audit;

use clap::{Parser, Subcommand};
use graylane_core::coloring::SimpleRequest;
use graylane_core::spec::LaneSpec;
use graylane_core::{Injector, Lane, LaneContext};
use graylane_mesh::model::{Resource, from_yaml};
use graylane_mesh::{Request, Routes, check, generate, validate_upstream};

#[derive(Parser, Debug)]
#[command(
    name = "graylane",
    version,
    about = "Gray-release lanes: manifests, routing, tokens and checks from one lane spec"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write the Istio and Kubernetes manifests for a spec (one file per service).
    Manifests {
        /// The lane spec (YAML, or TOML for .toml).
        #[arg(long, default_value = "graylane.yaml")]
        spec: PathBuf,
        /// Directory to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Write nothing; exit 1 if the directory differs from what would be written.
        #[arg(long)]
        check: bool,
    },
    /// Explain where a request goes: the edge's lane decision, then each service's route.
    Route {
        /// The lane spec.
        #[arg(long, default_value = "graylane.yaml")]
        spec: PathBuf,
        /// Read routes from these manifests instead of generating them from the spec.
        #[arg(long)]
        manifests: Option<PathBuf>,
        /// A request header, `name: value` (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// A cookie, `name=value` (repeatable).
        #[arg(long = "cookie")]
        cookies: Vec<String>,
        /// The request path.
        #[arg(long, default_value = "/")]
        path: String,
        /// A query parameter, `name=value` (repeatable).
        #[arg(long = "query")]
        query: Vec<String>,
        /// Only these services (repeatable); default: every service in the spec.
        #[arg(long = "service")]
        services: Vec<String>,
        /// Skip the edge: route the headers as given (a request inside the mesh).
        #[arg(long)]
        no_edge: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mint a signed lane token for a tester (key from the spec's `trust.token`).
    Token {
        /// The lane spec.
        #[arg(long, default_value = "graylane.yaml")]
        spec: PathBuf,
        /// The lane the token grants.
        #[arg(long)]
        lane: String,
        /// Validity, e.g. 90s, 30m, 2h, 1d.
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
    /// Manage the lanes' shadow schemas (PostgreSQL) or databases (MySQL/MariaDB).
    Shadow {
        #[command(subcommand)]
        action: ShadowAction,
    },
    /// Leak check: where does a lane's data appear outside the lane's namespace?
    ///
    /// The marker identifies the lane's data (e.g. the user ids of a gray test run). Every text
    /// column of every table in the base schema/database and the lane's shadow, every Redis key,
    /// and every record of the given Kafka topics is searched for it. Exit 1 when any is found
    /// outside the lane (for Kafka: on a record that does not carry the lane).
    Audit {
        /// The lane spec.
        #[arg(long, default_value = "graylane.yaml")]
        spec: PathBuf,
        /// The lane.
        #[arg(long)]
        lane: String,
        /// A string only the lane's data contains (matched as a substring).
        #[arg(long)]
        marker: String,
        /// The database (`postgres://...` or `mysql://...`); default: `DATABASE_URL`.
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
        /// The PostgreSQL schema holding base data.
        #[arg(long, default_value = "public")]
        base_schema: String,
        /// The Redis server; default: `REDIS_URL`.
        #[arg(long, env = "REDIS_URL")]
        redis_url: Option<String>,
        /// Kafka bootstrap servers, for `--topic`; default: `GRAYLANE_KAFKA_BROKERS`.
        #[arg(long, env = "GRAYLANE_KAFKA_BROKERS")]
        kafka_brokers: Option<String>,
        /// A Kafka topic to read in full (repeatable): records with the marker must carry the lane.
        #[arg(long = "topic")]
        topics: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate a spec and its manifests: upstream schemas, cross-checks, drift.
    Check {
        /// The lane spec.
        #[arg(long, default_value = "graylane.yaml")]
        spec: PathBuf,
        /// Manifests to check (default: check the generated ones).
        #[arg(long)]
        manifests: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
struct ShadowTarget {
    /// The lane spec.
    #[arg(long, default_value = "graylane.yaml")]
    spec: PathBuf,
    /// The database (`postgres://...` or `mysql://...`); default: `DATABASE_URL`.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

#[derive(Subcommand, Debug)]
enum ShadowAction {
    /// Create a lane's shadow and run the application's migrations in it (idempotent).
    Provision {
        #[command(flatten)]
        target: ShadowTarget,
        /// The lane.
        #[arg(long)]
        lane: String,
        /// The application's sqlx migrations directory.
        #[arg(long, default_value = "migrations")]
        migrations: PathBuf,
    },
    /// Drop a lane's shadow (refuses base and anything graylane did not create).
    Drop {
        #[command(flatten)]
        target: ShadowTarget,
        /// The lane.
        #[arg(long)]
        lane: String,
    },
    /// Show every lane's shadow: exists, created by graylane, migrations, tables.
    Status {
        #[command(flatten)]
        target: ShadowTarget,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A failure that ends the command: the message, and the exit code.
pub(crate) struct Fail(String, u8);

pub(crate) fn bad_input(message: impl Into<String>) -> Fail {
    Fail(message.into(), 2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Manifests { spec, out, check } => manifests(&spec, &out, check),
        Command::Route {
            spec,
            manifests,
            headers,
            cookies,
            path,
            query,
            services,
            no_edge,
            json,
        } => route(RouteArgs {
            spec,
            manifests,
            headers,
            cookies,
            path,
            query,
            services,
            no_edge,
            json,
        }),
        Command::Token { spec, lane, ttl } => token(&spec, &lane, &ttl),
        Command::Check {
            spec,
            manifests,
            json,
        } => check_cmd(&spec, manifests.as_deref(), json),
        Command::Shadow { action } => shadow(action),
        Command::Audit {
            spec,
            lane,
            marker,
            database_url,
            base_schema,
            redis_url,
            kafka_brokers,
            topics,
            json,
        } => audit::run(audit::Args {
            spec,
            lane,
            marker,
            database_url,
            base_schema,
            redis_url,
            kafka_brokers,
            topics,
            json,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(message, code)) => {
            eprintln!("graylane: {message}");
            ExitCode::from(code)
        }
    }
}

pub(crate) fn load(spec: &Path) -> Result<LaneSpec, Fail> {
    LaneSpec::from_path(spec).map_err(|e| bad_input(e.to_string()))
}

fn manifests(spec_path: &Path, out: &Path, check_only: bool) -> Result<(), Fail> {
    let spec = load(spec_path)?;
    let rendered = generate(&spec).render();
    if check_only {
        let drift = drift(out, &rendered)?;
        if drift.is_empty() {
            println!("{}: up to date ({} files)", out.display(), rendered.len());
            return Ok(());
        }
        for d in &drift {
            eprintln!("{d}");
        }
        return Err(Fail(
            format!(
                "{} differs from the spec: run `graylane manifests --spec {} --out {}`",
                out.display(),
                spec_path.display(),
                out.display()
            ),
            1,
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| bad_input(format!("{}: {e}", out.display())))?;
    for (name, yaml) in &rendered {
        let path = out.join(name);
        std::fs::write(&path, yaml).map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Files in `dir` that differ from `rendered`: missing, changed, or extra `.yaml` files.
fn drift(dir: &Path, rendered: &[(String, String)]) -> Result<Vec<String>, Fail> {
    let mut problems = Vec::new();
    for (name, yaml) in rendered {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(existing) if existing == *yaml => {}
            Ok(_) => problems.push(format!(
                "{}: differs from the generated manifests",
                path.display()
            )),
            Err(_) => problems.push(format!("{}: missing", path.display())),
        }
    }
    for entry in read_yaml_files(dir)? {
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !rendered.iter().any(|(n, _)| *n == name) {
            problems.push(format!("{}: not generated from the spec", entry.display()));
        }
    }
    Ok(problems)
}

fn read_yaml_files(dir: &Path) -> Result<Vec<PathBuf>, Fail> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| bad_input(format!("{}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Every document of every YAML file in `dir`, parsed (unknown kinds and fields are errors).
fn read_manifests(dir: &Path) -> Result<Vec<(PathBuf, Vec<Resource>, String)>, Fail> {
    read_yaml_files(dir)?
        .into_iter()
        .map(|path| {
            let src = std::fs::read_to_string(&path)
                .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
            let docs =
                from_yaml(&src).map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
            Ok((path, docs, src))
        })
        .collect()
}

struct RouteArgs {
    spec: PathBuf,
    manifests: Option<PathBuf>,
    headers: Vec<String>,
    cookies: Vec<String>,
    path: String,
    query: Vec<String>,
    services: Vec<String>,
    no_edge: bool,
    json: bool,
}

fn split_pair<'a>(s: &'a str, sep: char, what: &str) -> Result<(&'a str, &'a str), Fail> {
    s.split_once(sep)
        .map(|(k, v)| (k.trim(), v.trim()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| bad_input(format!("{what} {s:?} must look like name{sep}value")))
}

#[derive(serde::Serialize)]
struct RouteReport {
    lane: String,
    decided_by: String,
    hops: Vec<graylane_mesh::Hop>,
}

fn route(args: RouteArgs) -> Result<(), Fail> {
    let spec = load(&args.spec)?;
    let routes = match &args.manifests {
        Some(dir) => Routes::new(
            read_manifests(dir)?
                .into_iter()
                .flat_map(|(_, docs, _)| docs),
        ),
        None => Routes::new(generate(&spec).resources().cloned()),
    };
    let mut request = Request::default().path(&args.path);
    let mut edge_request = SimpleRequest::new(&match args.query.is_empty() {
        true => args.path.clone(),
        false => format!("{}?{}", args.path, args.query.join("&")),
    });
    for h in &args.headers {
        let (k, v) = split_pair(h, ':', "header")?;
        request = request.header(k, v);
        edge_request = edge_request.header(k, v);
    }
    for c in &args.cookies {
        let (k, v) = split_pair(c, '=', "cookie")?;
        request = request.cookie(k, v);
    }
    if let Some(cookie) = request.headers.get("cookie") {
        edge_request = edge_request.header("cookie", cookie);
    }
    for q in &args.query {
        let (k, v) = split_pair(q, '=', "query parameter")?;
        request = request.query(k, v);
    }

    // The edge service decides the lane (tokens, coloring, stripping), unless skipped.
    let (lane, decided_by) = if args.no_edge {
        let ctx = spec.propagator().extract(
            &request
                .headers
                .clone()
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
        (
            ctx.lane(),
            "the request's own lane header (--no-edge)".to_owned(),
        )
    } else {
        let edge = spec.edge().map_err(|e| bad_input(e.to_string()))?;
        let admission = edge.admit(&mut edge_request);
        let by = match (admission.rule(), admission.token()) {
            (_, Some(Ok(()))) => "a signed lane token".to_owned(),
            (Some(rule), _) => format!("coloring rule {rule:?}"),
            (None, Some(Err(r))) => format!("no rule matched (token refused: {r})"),
            (None, None) if admission.stripped() => {
                "no rule matched (client lane headers stripped)".to_owned()
            }
            (None, None) => "no rule matched".to_owned(),
        };
        // Inside the mesh the lane travels as the edge wrote it.
        let mut headers = BTreeMap::new();
        for (k, v) in &request.headers {
            if *k != spec.wire.header && *k != spec.wire.mirror_header {
                headers.insert(k.clone(), v.clone());
            }
        }
        request.headers = headers;
        let mut carrier = LaneCarrier(&mut request.headers);
        spec.propagator()
            .inject(&LaneContext::new(admission.context().lane()), &mut carrier);
        (admission.context().lane(), by)
    };

    let services: Vec<String> = if args.services.is_empty() {
        spec.services.iter().map(|s| s.name.clone()).collect()
    } else {
        args.services.clone()
    };
    let hops = services
        .iter()
        .map(|s| {
            routes
                .resolve(s, &request)
                .map_err(|e| bad_input(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if args.json {
        let report = RouteReport {
            lane: lane.to_string(),
            decided_by,
            hops,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| bad_input(e.to_string()))?
        );
        return Ok(());
    }
    println!("lane: {lane} (decided by {decided_by})");
    for hop in &hops {
        let dests: Vec<String> = hop
            .destinations
            .iter()
            .map(|d| {
                format!(
                    "{} ({}) {}%",
                    d.subset.as_deref().unwrap_or("*"),
                    d.version.as_deref().unwrap_or("?"),
                    d.weight
                )
            })
            .collect();
        let mut line = format!(
            "  {:<14} route {:<18} -> {}",
            hop.service,
            hop.route,
            dests.join(", ")
        );
        if let Some((m, pct)) = &hop.mirror {
            line.push_str(&format!(
                "; mirror {pct}% to {} ({})",
                m.subset.as_deref().unwrap_or("*"),
                m.version.as_deref().unwrap_or("?")
            ));
        }
        println!("{line}");
    }
    Ok(())
}

/// The routing request's headers as a lane carrier.
struct LaneCarrier<'a>(&'a mut BTreeMap<String, String>);

impl graylane_core::Extractor for LaneCarrier<'_> {
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.0.get(key).map(|v| v.as_bytes())
    }
}

impl Injector for LaneCarrier<'_> {
    fn set(&mut self, key: &'static str, value: std::borrow::Cow<'static, str>) {
        self.0.insert(key.to_owned(), value.into_owned());
    }
    fn remove(&mut self, key: &str) {
        self.0.remove(key);
    }
}

fn parse_ttl(s: &str) -> Result<Duration, Fail> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| bad_input(format!("ttl {s:?}: expected a number and a unit, e.g. 30m")))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        other => {
            return Err(bad_input(format!(
                "ttl {s:?}: unknown unit {other:?} (s, m, h, d)"
            )));
        }
    };
    if secs == 0 {
        return Err(bad_input("ttl must be positive"));
    }
    Ok(Duration::from_secs(secs))
}

fn token(spec_path: &Path, lane: &str, ttl: &str) -> Result<(), Fail> {
    let spec = load(spec_path)?;
    let lane = Lane::new(lane).map_err(|e| bad_input(format!("--lane {lane:?}: {e}")))?;
    if !spec.lane_set().contains(lane) {
        return Err(bad_input(format!(
            "lane {lane} is not in {}",
            spec_path.display()
        )));
    }
    let settings = spec.trust.token.as_ref().ok_or_else(|| {
        bad_input(format!(
            "{}: tokens are off (set trust.token)",
            spec_path.display()
        ))
    })?;
    let ttl = parse_ttl(ttl)?;
    if ttl.as_secs() > settings.max_ttl_secs {
        return Err(bad_input(format!(
            "ttl {}s exceeds trust.token.max_ttl_secs ({}s): the edge would refuse the token",
            ttl.as_secs(),
            settings.max_ttl_secs
        )));
    }
    let key = settings.load_key().map_err(|e| bad_input(e.to_string()))?;
    println!("{}", key.mint(lane, SystemTime::now() + ttl));
    Ok(())
}

#[derive(serde::Serialize)]
struct CheckReport {
    ok: bool,
    problems: Vec<String>,
}

fn check_cmd(spec_path: &Path, dir: Option<&Path>, json: bool) -> Result<(), Fail> {
    let spec = load(spec_path)?;
    let rendered = generate(&spec).render();
    let mut problems = Vec::new();
    let (files, resources): (Vec<(String, String)>, Vec<Resource>) = match dir {
        Some(dir) => {
            let read = read_manifests(dir)?;
            problems.extend(drift(dir, &rendered)?);
            (
                read.iter()
                    .map(|(p, _, src)| (p.display().to_string(), src.clone()))
                    .collect(),
                read.into_iter().flat_map(|(_, docs, _)| docs).collect(),
            )
        }
        None => (
            rendered.clone(),
            generate(&spec).resources().cloned().collect(),
        ),
    };
    for (file, src) in &files {
        for (doc, kind, error) in validate_upstream(src) {
            problems.push(format!("{file}: document {doc} ({kind}): {error}"));
        }
    }
    problems.extend(check(&resources).iter().map(ToString::to_string));
    if json {
        let report = CheckReport {
            ok: problems.is_empty(),
            problems: problems.clone(),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| bad_input(e.to_string()))?
        );
    } else if problems.is_empty() {
        println!(
            "{}: ok ({} lanes, {} services, {} manifest documents)",
            spec_path.display(),
            spec.lanes.len(),
            spec.services.len(),
            resources.len()
        );
    } else {
        for p in &problems {
            println!("{p}");
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Fail(format!("{} problem(s) found", problems.len()), 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("90").ok().map(|d| d.as_secs()), Some(90));
        assert_eq!(parse_ttl("30m").ok().map(|d| d.as_secs()), Some(1800));
        assert_eq!(parse_ttl("2h").ok().map(|d| d.as_secs()), Some(7200));
        assert_eq!(parse_ttl("1d").ok().map(|d| d.as_secs()), Some(86_400));
        for bad in ["", "h", "0s", "5w", "-1h"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

fn shadow(action: ShadowAction) -> Result<(), Fail> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| bad_input(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(shadow_async(action))
}

/// The shadow manager for a database URL.
enum Db {
    Postgres(graylane_sqlx::Shadows),
    MySql(graylane_sqlx::mysql::MySqlShadows),
}

fn open_db(target: &ShadowTarget) -> Result<(LaneSpec, Db), Fail> {
    let spec = load(&target.spec)?;
    let url = target.database_url.as_str();
    let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let opts = url
            .parse()
            .map_err(|e| bad_input(format!("--database-url: {e}")))?;
        Db::Postgres(graylane_sqlx::Shadows::new(&spec, opts))
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        let opts = url
            .replacen("mariadb://", "mysql://", 1)
            .parse()
            .map_err(|e| bad_input(format!("--database-url: {e}")))?;
        Db::MySql(graylane_sqlx::mysql::MySqlShadows::new(&spec, opts))
    } else {
        return Err(bad_input(
            "--database-url must start with postgres:// or mysql://",
        ));
    };
    Ok((spec, db))
}

pub(crate) fn lane_arg(spec: &LaneSpec, lane: &str) -> Result<Lane, Fail> {
    let lane = Lane::new(lane).map_err(|e| bad_input(format!("--lane {lane:?}: {e}")))?;
    if !spec.lane_set().contains(lane) {
        return Err(bad_input(format!("lane {lane} is not in the spec")));
    }
    Ok(lane)
}

#[derive(serde::Serialize)]
struct StatusRow {
    lane: String,
    name: String,
    exists: bool,
    created_by_graylane: bool,
    migrations: i64,
    tables: i64,
}

async fn shadow_async(action: ShadowAction) -> Result<(), Fail> {
    let failed = |e: graylane_sqlx::ShadowError| Fail(e.to_string(), 1);
    match action {
        ShadowAction::Provision {
            target,
            lane,
            migrations,
        } => {
            let (spec, db) = open_db(&target)?;
            let lane = lane_arg(&spec, &lane)?;
            let migrator = sqlx::migrate::Migrator::new(migrations.as_path())
                .await
                .map_err(|e| bad_input(format!("{}: {e}", migrations.display())))?;
            let name = match &db {
                Db::Postgres(s) => {
                    s.provision(lane, &migrator).await.map_err(failed)?;
                    s.schema(lane).map_err(failed)?
                }
                Db::MySql(s) => {
                    s.provision(lane, &migrator).await.map_err(failed)?;
                    s.database(lane).map_err(failed)?
                }
            };
            println!(
                "lane {lane}: {name} provisioned ({} migrations known)",
                migrator.iter().count()
            );
        }
        ShadowAction::Drop { target, lane } => {
            let (spec, db) = open_db(&target)?;
            let lane = lane_arg(&spec, &lane)?;
            let dropped = match &db {
                Db::Postgres(s) => s.drop(lane).await.map_err(failed)?,
                Db::MySql(s) => s.drop(lane).await.map_err(failed)?,
            };
            println!(
                "lane {lane}: {}",
                if dropped {
                    "dropped"
                } else {
                    "nothing to drop"
                }
            );
        }
        ShadowAction::Status { target, json } => {
            let (_, db) = open_db(&target)?;
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
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).map_err(|e| bad_input(e.to_string()))?
                );
            } else {
                for r in &rows {
                    let state = match (r.exists, r.created_by_graylane) {
                        (false, _) => "absent".to_owned(),
                        (true, false) => "EXISTS BUT NOT CREATED BY GRAYLANE".to_owned(),
                        (true, true) => format!("{} migrations, {} tables", r.migrations, r.tables),
                    };
                    println!("{:<12} {:<30} {state}", r.lane, r.name);
                }
            }
        }
    }
    Ok(())
}
