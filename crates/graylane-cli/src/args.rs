//! The command line, as clap sees it: one options struct per subcommand.
//!
//! Each options struct's doc comment is its subcommand's help text (the first line is the
//! summary `graylane --help` lists), and each field's doc comment is its option's help.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// `graylane` and its subcommand.
#[derive(Parser, Debug)]
#[command(
    name = "graylane",
    version,
    about = "Gray-release lanes: manifests, routing, tokens and checks from one lane spec"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands, in the order `graylane --help` lists them.
#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    Manifests(ManifestsArgs),
    Route(RouteArgs),
    Token(TokenArgs),
    #[command(subcommand)]
    Shadow(ShadowAction),
    Audit(AuditArgs),
    Check(CheckArgs),
    #[command(subcommand)]
    Release(ReleaseAction),
    View(ViewArgs),
}

/// Serve the live lane view: a page of every lane's traffic and data, from the metrics.
#[derive(clap::Args, Debug)]
pub(crate) struct ViewArgs {
    /// A Prometheus server scraping the services (its HTTP API, e.g. http://127.0.0.1:9090).
    #[arg(long, conflicts_with = "scrape", required_unless_present = "scrape")]
    pub(crate) prometheus: Option<String>,
    /// The services' metrics pages to read directly (repeat, or separate with commas).
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub(crate) scrape: Vec<String>,
    /// The lane spec, naming the versions and giving the release plans (read again at every
    /// poll); without it, nodes are named by lane.
    #[arg(long)]
    pub(crate) spec: Option<PathBuf>,
    /// Where to serve the page (loopback unless said otherwise).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub(crate) listen: std::net::SocketAddr,
    /// How often to read the metrics, in seconds (through Prometheus: its scrape interval).
    #[arg(long, default_value_t = 1)]
    pub(crate) interval: u64,
    /// A bearer token the page and its events require.
    #[arg(long, env = "GRAYLANE_VIEW_TOKEN")]
    pub(crate) token: Option<String>,
}

/// Release a lane step by step: plan, start, advance, judge, run, roll back, promote (edits of the spec).
#[derive(Subcommand, Debug)]
pub(crate) enum ReleaseAction {
    /// Print the release plan: each step, what it sets, the gates.
    Plan(ReleaseOpts),
    /// Where the release stands: off, or which step.
    Status(ReleaseOpts),
    /// Turn the lane's coloring rules on at the plan's first step.
    Start(ReleaseChangeArgs),
    /// Set the release rule's percent to the next step's.
    Advance(ReleaseChangeArgs),
    /// Exposure to zero at once: the lane's rules and routes off, canary and mirror 0, blue-green on base.
    Rollback(ReleaseChangeArgs),
    /// The lane's versions become base's; its routes, rules and plan go (its data stays).
    Promote(ReleaseChangeArgs),
    /// Take the lane offline: out of the spec and manifests, consumers drained, data audited
    /// and removed, consumer groups deleted (exit 3: the audit found a leak).
    Finish(FinishArgs),
    /// Judge the current step: the lane against base over one window (exit 1: failed or pending).
    Judge(JudgeArgs),
    /// Run the plan from where it stands: apply, bake, judge, advance or roll back.
    Run(RunArgs),
}

/// What every `release` subcommand takes.
#[derive(clap::Args, Debug)]
pub(crate) struct ReleaseOpts {
    /// The lane spec, with its `releases[]` plan.
    #[arg(long, default_value = "graylane.yaml")]
    pub(crate) spec: PathBuf,
    /// The lane released (needed when the spec plans several).
    #[arg(long)]
    pub(crate) lane: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// A change to the spec file.
#[derive(clap::Args, Debug)]
pub(crate) struct ReleaseChangeArgs {
    #[command(flatten)]
    pub(crate) opts: ReleaseOpts,
    /// Print the edits; write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Regenerate the manifests into this directory after the edit.
    #[arg(long)]
    pub(crate) manifests: Option<PathBuf>,
}

/// `release finish`: what the lane's teardown reaches.
#[derive(clap::Args, Debug)]
pub(crate) struct FinishArgs {
    /// The lane spec.
    #[arg(long, default_value = "graylane.yaml")]
    pub(crate) spec: PathBuf,
    /// The lane (required: after `promote`, the spec's only release may be another lane's).
    #[arg(long)]
    pub(crate) lane: String,
    /// A string only the lane's data contains, for the leak audit before anything is dropped.
    #[arg(long)]
    pub(crate) marker: String,
    #[command(flatten)]
    pub(crate) stores: Stores,
    /// A base consumer group with lane consumers (repeatable): its control records are waited
    /// on, and its lane group is deleted.
    #[arg(long = "group")]
    pub(crate) groups: Vec<String>,
    /// The control topic of those groups.
    #[arg(long, default_value = graylane_kafka::DEFAULT_CONTROL_TOPIC)]
    pub(crate) control_topic: String,
    /// How long to wait for the lane's consumers to hand their partitions back, in seconds.
    #[arg(long, default_value_t = 300)]
    pub(crate) drain_timeout: u64,
    /// Regenerate the manifests into this directory (without the lane).
    #[arg(long)]
    pub(crate) manifests: Option<PathBuf>,
    /// Go on past a leak, an incomplete audit, a lane that did not drain or a missing control
    /// topic, or finish without any store to audit; the reason is printed with the report.
    #[arg(long, value_name = "REASON")]
    pub(crate) force: Option<String>,
    /// Say what would be removed; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Where the metrics are.
#[derive(clap::Args, Debug)]
pub(crate) struct Source {
    /// A Prometheus server (its HTTP API; `http://` only).
    #[arg(long, conflicts_with = "scrape")]
    pub(crate) prometheus: Option<String>,
    /// The services' `/metrics` URLs, scraped directly (repeatable).
    #[arg(long)]
    pub(crate) scrape: Vec<String>,
}

/// `release judge`.
#[derive(clap::Args, Debug)]
pub(crate) struct JudgeArgs {
    #[command(flatten)]
    pub(crate) opts: ReleaseOpts,
    #[command(flatten)]
    pub(crate) source: Source,
    /// The window, in seconds (default: the plan's bake time).
    #[arg(long)]
    pub(crate) window: Option<u64>,
}

/// `release run`.
#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) opts: ReleaseOpts,
    #[command(flatten)]
    pub(crate) source: Source,
    /// Regenerate the manifests into this directory after each edit.
    #[arg(long)]
    pub(crate) manifests: Option<PathBuf>,
    /// Promote the lane once its last step passes (`release promote`).
    #[arg(long)]
    pub(crate) promote: bool,
}

/// Write the Istio and Kubernetes manifests for a spec (one file per service).
#[derive(clap::Args, Debug)]
pub(crate) struct ManifestsArgs {
    /// The lane spec (YAML, or TOML for .toml).
    #[arg(long, default_value = "graylane.yaml")]
    pub(crate) spec: PathBuf,
    /// Directory to write into (created if missing).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Write nothing; exit 1 if the directory differs from what would be written.
    #[arg(long)]
    pub(crate) check: bool,
}

/// Explain where a request goes: the edge's lane decision, then each service's route.
#[derive(clap::Args, Debug)]
pub(crate) struct RouteArgs {
    /// The lane spec.
    #[arg(long, default_value = "graylane.yaml")]
    pub(crate) spec: PathBuf,
    /// Read routes from these manifests instead of generating them from the spec.
    #[arg(long)]
    pub(crate) manifests: Option<PathBuf>,
    /// A request header, `name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    pub(crate) headers: Vec<String>,
    /// A cookie, `name=value` (repeatable).
    #[arg(long = "cookie")]
    pub(crate) cookies: Vec<String>,
    /// The request path.
    #[arg(long, default_value = "/")]
    pub(crate) path: String,
    /// A query parameter, `name=value` (repeatable).
    #[arg(long = "query")]
    pub(crate) query: Vec<String>,
    /// Only these services (repeatable); default: every service in the spec.
    #[arg(long = "service")]
    pub(crate) services: Vec<String>,
    /// Skip the edge: route the headers as given (a request inside the mesh).
    #[arg(long)]
    pub(crate) no_edge: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Mint a signed lane token for a tester (key from the spec's `trust.token`).
#[derive(clap::Args, Debug)]
pub(crate) struct TokenArgs {
    /// The lane spec.
    #[arg(long, default_value = "graylane.yaml")]
    pub(crate) spec: PathBuf,
    /// The lane the token grants.
    #[arg(long)]
    pub(crate) lane: String,
    /// Validity, e.g. 90s, 30m, 2h, 1d.
    #[arg(long, default_value = "1h")]
    pub(crate) ttl: String,
}

/// Manage the lanes' shadow schemas (PostgreSQL) or databases (MySQL/MariaDB).
#[derive(Subcommand, Debug)]
pub(crate) enum ShadowAction {
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

/// The spec and database every `shadow` action works on.
#[derive(clap::Args, Debug)]
pub(crate) struct ShadowTarget {
    /// The lane spec.
    #[arg(long, default_value = "graylane.yaml")]
    pub(crate) spec: PathBuf,
    /// The database (`postgres://...` or `mysql://...`); default: `DATABASE_URL`.
    #[arg(long, env = "DATABASE_URL")]
    pub(crate) database_url: String,
}

/// Leak check: where does a lane's data appear outside the lane's namespace?
///
/// The marker identifies the lane's data (e.g. the user ids of a gray test run). Every text
/// column of every table in the base schema/database and the lane's shadow, every Redis key,
/// and every record of the given Kafka topics is searched for it. Exit 1 when any is found
/// outside the lane (for Kafka: on a record that does not carry the lane).
#[derive(clap::Args, Debug)]
pub(crate) struct AuditArgs {
    /// The lane spec.
    #[arg(long, default_value = "graylane.yaml")]
    pub(crate) spec: PathBuf,
    /// The lane.
    #[arg(long)]
    pub(crate) lane: String,
    /// A string only the lane's data contains (matched as a substring).
    #[arg(long)]
    pub(crate) marker: String,
    #[command(flatten)]
    pub(crate) stores: Stores,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Where a lane's data is: what `audit` searches and `release finish` audits and removes.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Stores {
    /// The database (`postgres://...` or `mysql://...`); default: `DATABASE_URL`.
    #[arg(long, env = "DATABASE_URL")]
    pub(crate) database_url: Option<String>,
    /// The PostgreSQL schema holding base data.
    #[arg(long, default_value = "public")]
    pub(crate) base_schema: String,
    /// The Redis server; default: `REDIS_URL`.
    #[arg(long, env = "REDIS_URL")]
    pub(crate) redis_url: Option<String>,
    /// Kafka bootstrap servers; default: `GRAYLANE_KAFKA_BROKERS`.
    #[arg(long, env = "GRAYLANE_KAFKA_BROKERS")]
    pub(crate) kafka_brokers: Option<String>,
    /// A Kafka topic to read in full (repeatable): records with the marker must carry the lane.
    #[arg(long = "topic")]
    pub(crate) topics: Vec<String>,
}

impl Stores {
    /// Whether any store to search is given.
    pub(crate) fn any(&self) -> bool {
        self.database_url.is_some() || self.redis_url.is_some() || !self.topics.is_empty()
    }
}

/// Validate a spec and its manifests: upstream schemas, cross-checks, drift.
#[derive(clap::Args, Debug)]
pub(crate) struct CheckArgs {
    /// The lane spec.
    #[arg(long, default_value = "graylane.yaml")]
    pub(crate) spec: PathBuf,
    /// Manifests to check (default: check the generated ones).
    #[arg(long)]
    pub(crate) manifests: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
