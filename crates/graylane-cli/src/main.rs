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
//! graylane release plan|status|start|advance|rollback|judge|run --spec graylane.yaml
//! ```
//!
//! `shadow` reads the database from `--database-url` or `DATABASE_URL` (`postgres://...` or
//! `mysql://...`).
//!
//! Exit codes: 0 success (a gate passed, a release complete); 1 the check found problems (drift,
//! a failed gate, a release rolled back); 2 bad input (usage, spec, files); 3 refused (a release
//! step the plan does not allow).

use std::process::ExitCode;

use clap::Parser;

mod args;
mod commands;
mod manifest_dir;

use args::{Cli, Command};

/// A failure that ends the command: the message, and the exit code.
pub(crate) struct Fail(String, u8);

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

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Manifests(args) => commands::manifests::run(&args),
        Command::Route(args) => commands::route::run(&args),
        Command::Token(args) => commands::token::run(&args),
        Command::Shadow(action) => commands::shadow::run(action),
        Command::Audit(args) => commands::audit::run(&args),
        Command::Check(args) => commands::check::run(&args),
        Command::Release(action) => commands::release::run(action),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(message, code)) => {
            eprintln!("graylane: {message}");
            ExitCode::from(code)
        }
    }
}
