//! One module per subcommand, each with a `run` that prints the command's output and returns
//! how it ended; and what several of them share: loading the spec, naming a lane, JSON output.

use std::fmt::Display;
use std::path::Path;

use graylane_core::Lane;
use graylane_core::spec::LaneSpec;

use crate::{Fail, bad_input};

pub(crate) mod audit;
pub(crate) mod check;
pub(crate) mod manifests;
pub(crate) mod release;
pub(crate) mod route;
pub(crate) mod shadow;
pub(crate) mod token;
pub(crate) mod view;

/// The lane spec at `spec`; a spec error (file, line and field) is bad input.
fn load(spec: &Path) -> Result<LaneSpec, Fail> {
    LaneSpec::from_path(spec).map_err(|e| bad_input(e.to_string()))
}

/// The `--lane` argument, which must name a lane of `spec` (`spec_name` says which, in the
/// error).
fn lane_arg(spec: &LaneSpec, lane: &str, spec_name: impl Display) -> Result<Lane, Fail> {
    let lane = Lane::new(lane).map_err(|e| bad_input(format!("--lane {lane:?}: {e}")))?;
    if !spec.lane_set().contains(lane) {
        return Err(bad_input(format!("lane {lane} is not in {spec_name}")));
    }
    Ok(lane)
}

/// Prints `value` as pretty JSON on stdout (the `--json` output of every command).
fn print_json(value: &impl serde::Serialize) -> Result<(), Fail> {
    let json = serde_json::to_string_pretty(value).map_err(|e| bad_input(e.to_string()))?;
    println!("{json}");
    Ok(())
}

/// A current-thread runtime for the commands that talk to databases and Redis.
fn runtime() -> Result<tokio::runtime::Runtime, Fail> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| bad_input(format!("cannot start the runtime: {e}")))
}
