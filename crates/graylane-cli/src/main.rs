//! The `graylane` command (see the library's docs for what it does).

use std::process::ExitCode;

fn main() -> ExitCode {
    graylane_cli::run(std::env::args_os())
}
