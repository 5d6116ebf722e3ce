//! `shop`: the graylane demo shop.
//!
//! ```text
//! shop [--serve]                the demo (SHOP_REQUESTS requests, default 400); --serve keeps it running
//! shop release [--faulty-v2]    a release of the gray lane: steps, gates, promotion or rollback, teardown
//! shop --role ROLE              one service of the shop (see `shop::run_role`)
//! ```
//!
//! Exit code 0 when the demo's audit is clean (or the release ended as it should, or the role
//! ran), 1 when not, 2 when the shop could not run, with a message saying why.

use std::process::ExitCode;

use shop::{Demo, ROLES, ReleaseDemo};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().position(|a| a == "--role") {
        Some(i) => match args.get(i + 1) {
            Some(role) => shop::run_role(role).await.map(|()| ExitCode::SUCCESS),
            None => Err(format!("--role needs one of: {}", ROLES.join(", ")).into()),
        },
        None if args.first().is_some_and(|a| a == "release") => {
            shop::release(ReleaseDemo {
                faulty_v2: args.iter().any(|a| a == "--faulty-v2"),
            })
            .await
        }
        None => {
            let requests = std::env::var("SHOP_REQUESTS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(Demo::default().requests);
            shop::run(Demo {
                serve: args.iter().any(|a| a == "--serve"),
                requests,
                ..Demo::default()
            })
            .await
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shop: {e}");
            ExitCode::from(2)
        }
    }
}
