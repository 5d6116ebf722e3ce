//! `cargo run --release -p shop [-- --serve]`: the graylane demo (see the library docs).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    shop::run_demo().await
}
