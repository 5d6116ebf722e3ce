//! `graylane`: operator commands for lane specs, as a command (`src/main.rs`) and a library
//! that runs them in-process ([`run`]; the demo shop's release mode calls [`release_run`] and
//! [`release_finish`]).
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
//! graylane release plan|status|start|advance|rollback|judge|run|promote --spec graylane.yaml
//! graylane release finish --spec graylane.yaml --lane gray --marker M [stores...]
//! ```
//!
//! `shadow` reads the database from `--database-url` or `DATABASE_URL` (`postgres://...` or
//! `mysql://...`).
//!
//! Exit codes: 0 success (a gate passed, a release complete or promoted, a clean teardown); 1
//! the check found problems (drift, a failed gate, a release rolled back, something of a lane
//! remaining); 2 bad input (usage, spec, files); 3 refused (a release step the plan does not
//! allow, a leak or an undrained lane at `finish`).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

mod args;
mod commands;
mod manifest_dir;

use args::{Cli, Command};

pub use commands::release::{RunSummary, release_finish, release_run};

/// A failure that ends the command: the message, and the exit code.
#[derive(Debug)]
pub struct Fail(pub String, pub u8);

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (exit {})", self.0, self.1)
    }
}

impl std::error::Error for Fail {}

/// The command could not run as asked (the spec, a file, an argument, a connection): exit 2.
pub(crate) fn bad_input(message: impl Into<String>) -> Fail {
    Fail(message.into(), 2)
}

/// The command ran and found problems (drift, leaks, a refused shadow operation): exit 1.
pub(crate) fn problem(message: impl Into<String>) -> Fail {
    Fail(message.into(), 1)
}

/// The command was refused on purpose (a release step the plan does not allow): exit 3.
pub(crate) fn refused(message: impl Into<String>) -> Fail {
    Fail(message.into(), 3)
}

/// Runs the command line `args` (its first item is the program name) as the `graylane`
/// command does, printing what it prints; the exit code. Blocking: commands that talk to
/// databases and brokers start a runtime of their own, so call it off an async runtime.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("graylane-cli-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let spec = dir.join("graylane.yaml");
/// std::fs::write(&spec, "services: [{ name: orders }]\nlanes: [{ name: gray, services: [orders] }]\n")?;
/// let out = dir.join("manifests");
/// let code = graylane_cli::run([
///     "graylane".as_ref(), "manifests".as_ref(), "--spec".as_ref(), spec.as_os_str(),
///     "--out".as_ref(), out.as_os_str(),
/// ] as [&std::ffi::OsStr; 6]);
/// assert_eq!(code, std::process::ExitCode::SUCCESS);
/// assert!(out.join("orders.yaml").exists());
/// # std::fs::remove_dir_all(dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Manifests(args) => commands::manifests::run(&args),
        Command::Route(args) => commands::route::run(&args),
        Command::Token(args) => commands::token::run(&args),
        Command::Shadow(action) => commands::shadow::run(action),
        Command::Audit(args) => commands::audit::run(&args),
        Command::Check(args) => commands::check::run(&args),
        Command::Release(action) => commands::release::run(action),
        Command::View(args) => commands::view::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(message, code)) => {
            eprintln!("graylane: {message}");
            ExitCode::from(code)
        }
    }
}
