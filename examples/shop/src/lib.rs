//! The graylane demo shop: one gray lane kept end to end — traffic *and* data — through HTTP,
//! gRPC, Kafka, Redis and PostgreSQL, with fallback and re-entry, while base is untouched.
//!
//! ```text
//! client ─HTTP─► gateway v1 (edge) ─gRPC─► orders v1 | v2 ──HTTP──► inventory v1 (no v2)
//!                   │ mirror 10%             │ PostgreSQL orders, Redis status
//!                   ▼                        └─Kafka─► fulfillment v1 | v2 ──HTTP──► inventory v1
//!             gateway (internal)                         PostgreSQL shipments, Redis counter
//! ```
//!
//! `cargo run --release -p shop` starts everything on loopback (an embedded Kafka broker unless
//! `GRAYLANE_KAFKA_BROKERS` is set; PostgreSQL and Redis from `DATABASE_URL` / `REDIS_URL`),
//! drives a traffic mix, stops and restarts the gray `fulfillment` consumer half-way, and ends
//! with a lane report and an audit. `-- --serve` keeps it running for `curl`.
//!
//! As a library, [`start`] brings the whole topology up for tests (`tests/tests/shop.rs`
//! asserts, request by request, the path taken and where the data landed).
//!
//! `shop --role <role>` ([`run_role`]) runs one service per process instead, as
//! docker-compose's `split` profile and a cluster do; `tests/roles.rs` runs it that way.
//!
//! # Where things are
//!
//! | module | what |
//! |---|---|
//! | `app` | the state a process builds once: the spec, its one propagator and edge, data handles, clients |
//! | `services` | gateway, orders, inventory, fulfillment: handlers, their layers, their clients |
//! | `infra` | PostgreSQL, Redis, schemas, Kafka |
//! | `topology` | the whole shop in one process ([`start`], [`Shop`]) |
//! | `roles` | one service per process ([`run_role`]) |
//! | `demo` | the demo run ([`run`]): traffic, report, audit, and the hop bookkeeping |

mod app;
mod demo;
mod infra;
mod roles;
mod services;
mod topology;

use std::process::ExitCode;

pub use demo::release::{ReleaseDemo, release};
pub use demo::traffic::{Checkout, Customer};
pub use demo::{Demo, run};
pub use roles::{ROLES, run_role};
pub use topology::{Options, Shop, start};

/// The demo with default settings, or `--serve` when the command line has it. The `shop`
/// binary reads its own arguments (`--role` too) and calls [`run`] or [`run_role`].
#[deprecated(note = "call `shop::run` (the demo) or `shop::run_role` (one service)")]
pub async fn run_demo() -> ExitCode {
    let serve = std::env::args().any(|a| a == "--serve");
    run(Demo {
        serve,
        ..Demo::default()
    })
    .await
    .unwrap_or_else(|e| {
        eprintln!("shop: {e}");
        ExitCode::from(2)
    })
}
