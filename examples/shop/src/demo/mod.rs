//! The demo run: start the shop, [drive](traffic::drive) a traffic mix through it, wait for
//! Kafka to drain, print the [report](report::report) and its [audit](audit); with `--serve`,
//! keep the shop running for `curl`.

pub(crate) mod audit;
pub(crate) mod hops;
pub(crate) mod release;
pub(crate) mod report;
pub(crate) mod traffic;

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use graylane::http::BoxError;

use crate::topology::{self, Options, Shop};

/// What the demo does.
#[derive(Clone, Copy, Debug)]
pub struct Demo {
    /// Keep the shop on `SHOP_ADDR` or `127.0.0.1:8080` after the report, until Ctrl-C.
    pub serve: bool,
    /// How many checkouts the traffic mix sends.
    pub requests: usize,
    /// How many quotes it sends after them (stored nowhere; mirrored and compared).
    pub quotes: usize,
}

impl Default for Demo {
    fn default() -> Demo {
        Demo {
            serve: false,
            requests: 400,
            quotes: 200,
        }
    }
}

/// What `--serve` suggests trying, after `curl -s -XPOST <gateway>/checkout`: the same
/// requests as README.md's "The demo shop".
const TRY: [&str; 4] = [
    "-H 'x-user-id: alice' -d book",
    "-H 'x-user-id: alice' -H 'x-user-group: beta' -d book",
    "-H 'x-user-id: alice' -H 'x-gray-lane: gray' -d book",
    "-H 'x-user-id: alice' -d chair",
];

/// Runs the demo: exit code 0 when the audit is clean, 1 when not; an error when the shop
/// could not run.
pub async fn run(demo: Demo) -> Result<ExitCode, BoxError> {
    let mut shop = topology::start(Options {
        serve: demo.serve,
        ..Options::default()
    })
    .await?;
    // Traffic waits for the consumer groups: a lane version that misses its lane's traffic
    // would make the run say nothing about it (and the audit counts it idle).
    shop.fulfillment_ready().await?;
    let run = format!(
        "r{}",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)?
            .as_secs()
    );
    eprintln!(
        "shop up: gateway http://{}/checkout, run {run}, {} requests",
        shop.gateway(),
        demo.requests
    );
    let sent = traffic::drive(&mut shop, &run, demo.requests).await?;
    traffic::quotes(&shop, &run, demo.quotes).await?;
    wait_for_kafka(&shop).await?;
    wait_for_mirror(&shop).await?;
    let code = report::report(&mut shop, &run, &sent).await?;
    if demo.serve {
        println!(
            "\nserving on http://{} (Ctrl-C to stop); try:",
            shop.gateway()
        );
        for args in TRY {
            println!("  curl -s -XPOST {}/checkout {args}", shop.gateway());
        }
        println!("the lanes, live: http://{}/lanes/", shop.gateway());
        std::future::pending::<()>().await;
    }
    shop.shutdown().await?;
    Ok(code)
}

/// Waits until fulfillment has handled every order published (each order that orders placed
/// published one message).
async fn wait_for_kafka(shop: &Shop) -> Result<(), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let shipped = || {
        let handled: u64 = shop
            .fulfillment
            .iter()
            .map(|h| {
                let s = h.stats();
                s.processed + s.fallback
            })
            .sum();
        handled + shop.gray_before
    };
    // Mirror copies publish too, a little later than the primaries.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while shipped() < shop.hops.handled("orders") {
        if Instant::now() > deadline {
            return Err("kafka queues did not drain in 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Waits until no mirror copy or comparison is running: the report reads them settled.
async fn wait_for_mirror(shop: &Shop) -> Result<(), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while shop.mirror.stats().in_flight > 0 {
        if Instant::now() > deadline {
            return Err("mirror copies still running after 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn serve_suggests_what_the_readme_shows() {
        let readme = include_str!("../../../../README.md");
        for args in super::TRY {
            let command = format!("$ curl -s -XPOST localhost:8080/checkout {args}\n");
            assert!(readme.contains(&command), "README.md lacks {command:?}");
        }
    }
}
