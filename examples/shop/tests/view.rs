//! The live lane view in a real browser (Debian's headless Chromium through chromedriver):
//! the shop runs with its view, the test sends known traffic — base, gray, forged lane
//! headers, gray orders while the gray consumer is stopped — opens `/lanes/` and reads the
//! page as a person would. Real PostgreSQL and Redis, the embedded broker.
//!
//! The screenshot lands in `target/tmp/lanes.png` (a test artifact; the README's is
//! refreshed by `SHOP_VIEW_SCREENSHOT=docs/lanes.png cargo test -p shop --test view`).

use std::time::Duration;

use graylane_testkit::browser::Browser;
use graylane_testkit::services::unique;
use serde_json::Value;
use shop::{Customer, Options};

/// What the test sent, by the lane the edge gave each request (its answer's lane mark).
#[derive(Debug, Default)]
struct Ledger {
    base: u64,
    gray: u64,
    forged: u64,
    /// Gray checkouts sent while the gray consumer was stopped.
    gray_while_stopped: u64,
}

/// Sends checkouts and keeps the ledger.
struct Driver {
    customer: Customer,
    run: String,
    ledger: Ledger,
}

impl Driver {
    /// `n` checkouts with `headers`; a forged lane header (`x-gray-lane`) is counted as such.
    async fn send(&mut self, n: usize, headers: &[(&str, &str)]) {
        for i in 0..n {
            let id = format!("{}-{}", self.run, unique("v"));
            let r = self
                .customer
                .checkout(&id, &format!("viewer-{i}"), headers)
                .await
                .unwrap();
            assert!(r.status.is_success(), "{id}: {}", r.status);
            match r.lane.as_str() {
                "gray" => self.ledger.gray += 1,
                _ => self.ledger.base += 1,
            }
            let forged = headers.iter().any(|(k, _)| *k == "x-gray-lane");
            self.ledger.forged += u64::from(forged);
        }
    }
}

/// A script returning the text of the first element matching `selector`, or null.
fn text_of(selector: &str) -> String {
    format!(
        "var e = document.querySelector({}); return e ? e.textContent.trim() : null;",
        Value::from(selector)
    )
}

fn number(v: &Value) -> f64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_each_lanes_traffic_fallbacks_forgers_and_consumers() {
    let mut shop = shop::start(Options {
        view: true,
        embedded_kafka: true,
        mirror_percent: 0.0,
        ..Options::default()
    })
    .await
    .unwrap();
    shop.fulfillment_ready().await.unwrap();
    let mut driver = Driver {
        customer: Customer::new(shop.gateway()),
        run: unique("view"),
        ledger: Ledger::default(),
    };
    const BETA: &[(&str, &str)] = &[("x-user-group", "beta")];
    driver.send(12, &[]).await;
    driver.send(8, BETA).await;
    driver.send(5, &[("x-gray-lane", "gray")]).await;
    // The gray consumer stopped: base handles the gray lane's records meanwhile.
    shop.stop_gray_fulfillment().await.unwrap();
    let before = driver.ledger.gray;
    driver.send(6, BETA).await;
    driver.ledger.gray_while_stopped = driver.ledger.gray - before;
    shop.start_gray_fulfillment().await.unwrap();
    shop.fulfillment_ready().await.unwrap();
    let ledger = &driver.ledger;
    assert!(ledger.gray_while_stopped > 0, "{ledger:?}");

    let url = format!("http://{}/lanes/", shop.gateway());
    let browser = tokio::task::block_in_place(|| Browser::start(1400, 1800)).unwrap();
    let wait = Duration::from_secs(20);
    tokio::task::block_in_place(|| {
        browser.open(&url).unwrap();
        // The counts per lane at the edge: what the driver's ledger says it sent.
        let gray = format!(
            "var e = document.querySelector('#lanes tr[data-lane=\"gray\"] .total'); \
             return e && e.textContent === '{}' ? e.textContent : null;",
            ledger.gray
        );
        browser.wait_for(&gray, wait).unwrap();
        let base = browser
            .eval(&text_of("#lanes tr[data-lane=\"base\"] .total"), vec![])
            .unwrap();
        assert_eq!(number(&base), ledger.base as f64, "{ledger:?}");
        // The forgers' lane headers, stripped at the edge.
        let stripped = browser
            .eval(&text_of("#trust tr[data-trust=\"stripped\"] .n"), vec![])
            .unwrap();
        assert_eq!(number(&stripped), ledger.forged as f64);
        // In the gray lane, orders v2 calls inventory v1: a fallback to base, drawn as one.
        let fallback = browser
            .wait_for(
                "var e = document.querySelector('#topology g.edge[data-from=\"orders v2\"][data-to=\"inventory v1\"][data-lane=\"gray\"]'); \
                 return e ? e.dataset.fallback + ' ' + e.dataset.total : null;",
                wait,
            )
            .unwrap();
        let (is_fallback, total) = fallback.as_str().unwrap().split_once(' ').unwrap();
        assert_eq!(is_fallback, "true");
        assert_eq!(total.parse::<u64>().unwrap(), ledger.gray);
        // Kafka: base handled gray records while the gray consumer was stopped, and the gray
        // lane is its own again.
        let fallback_records = browser
            .wait_for(
                &format!(
                    "var e = document.querySelector('#kafka tr[data-lane=\"base\"] .fallback'); \
                     return e && Number(e.textContent) >= {} ? e.textContent : null;",
                    ledger.gray_while_stopped
                ),
                wait,
            )
            .unwrap();
        assert!(number(&fallback_records) >= ledger.gray_while_stopped as f64);
        let owner = browser
            .wait_for(
                "var e = document.querySelector('#kafka li[data-lane=\"gray\"]'); \
                 return e && e.dataset.owner === 'lane' ? e.textContent : null;",
                wait,
            )
            .unwrap();
        assert!(owner.as_str().unwrap().contains("handled by"), "{owner}");
        let png = browser.screenshot().unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::write(dir.join("lanes.png"), &png).unwrap();
        if let Ok(path) = std::env::var("SHOP_VIEW_SCREENSHOT") {
            // Relative to the workspace's root, where the command is run (cargo runs the
            // test in the package's directory).
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            std::fs::write(root.join(path), &png).unwrap();
        }
    });

    // A second burst shows up on the open page, pushed (the page is not reloaded).
    let updates = tokio::task::block_in_place(|| {
        browser
            .eval("return Number(document.body.dataset.updates || 0);", vec![])
            .unwrap()
    });
    driver.send(4, BETA).await;
    let ledger = &driver.ledger;
    tokio::task::block_in_place(|| {
        let gray = format!(
            "var e = document.querySelector('#lanes tr[data-lane=\"gray\"] .total'); \
             return e && e.textContent === '{}' ? e.textContent : null;",
            ledger.gray
        );
        browser.wait_for(&gray, wait).unwrap();
        let after = browser
            .eval("return Number(document.body.dataset.updates || 0);", vec![])
            .unwrap();
        assert!(after.as_f64() > updates.as_f64(), "{updates} → {after}");
    });
    drop(browser);
    shop.shutdown().await.unwrap();
}
