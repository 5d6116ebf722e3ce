//! A synthetic topology — 50 services in a chain, 5 lanes, each lane with a version in every
//! other service (so every second hop is a fallback) — rendered in headless Chromium: the time
//! from navigation to the page loaded with every panel filled, printed for
//! `docs/benchmarks.md` (measured, not asserted).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use graylane_testkit::browser::Browser;
use graylane_view::{Source, View, ViewConfig};

const SERVICES: usize = 50;
const LANES: [&str; 5] = ["base", "l1", "l2", "l3", "l4"];

/// Whether service `i` has a version in `lane` (base: always).
fn has_version(i: usize, lane: &str) -> bool {
    lane == "base" || i.is_multiple_of(2)
}

fn page() -> String {
    let mut s = String::new();
    for i in 0..SERVICES {
        for (l, lane) in LANES.iter().enumerate() {
            let served = if has_version(i, lane) { lane } else { "base" };
            let n = 100 * (l + 1) + i;
            let _ = writeln!(
                s,
                "graylane_requests_total{{graylane_service=\"s{i}\",graylane_kind=\"server\",gray_lane=\"{lane}\",gray_served=\"{served}\",gray_mirror=\"false\",graylane_outcome=\"ok\"}} {n}"
            );
            for le in ["0.005", "0.05", "+Inf"] {
                let _ = writeln!(
                    s,
                    "graylane_request_duration_seconds_bucket{{graylane_service=\"s{i}\",graylane_kind=\"server\",gray_lane=\"{lane}\",gray_served=\"{served}\",gray_mirror=\"false\",graylane_outcome=\"ok\",le=\"{le}\"}} {n}"
                );
            }
            if i + 1 < SERVICES {
                let _ = writeln!(
                    s,
                    "graylane_requests_total{{graylane_service=\"s{i}\",graylane_kind=\"client\",gray_lane=\"{lane}\",gray_served=\"{served}\",gray_mirror=\"false\",graylane_outcome=\"ok\",graylane_peer=\"s{}\"}} {n}",
                    i + 1
                );
            }
        }
    }
    s
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_services_in_five_lanes_render_in_a_real_browser() {
    let text = page();
    let metrics = serve(Router::new().route(
        "/metrics",
        get(move || {
            let text = text.clone();
            async move { text }
        }),
    ))
    .await;
    let view = View::start(ViewConfig::new(Source::Scrape(vec![format!(
        "http://{metrics}/metrics"
    )])));
    let at = serve(view.router()).await;
    // Two polls, so rates exist and every panel has content.
    let client = reqwest::Client::new();
    let url = format!("http://{at}/lanes/panels.json");
    loop {
        let panels = client.get(&url).send().await.unwrap().text().await.unwrap();
        if panels.contains("2 polls") || panels.contains("3 polls") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = format!("http://{at}/lanes/");
    tokio::task::block_in_place(|| {
        let browser = Browser::start(1600, 1200).unwrap();
        browser.open(&page).unwrap();
        let edges = browser
            .wait_for(
                "var n = document.querySelectorAll('#topology g.edge').length; return n > 0 ? n : null;",
                Duration::from_secs(20),
            )
            .unwrap();
        // Every lane's chain: 49 calls per lane plus the clients' edge into s0.
        assert_eq!(
            edges.as_u64(),
            Some((LANES.len() * SERVICES) as u64),
            "{edges}"
        );
        let rows = browser
            .eval(
                "return document.querySelectorAll('#services tbody tr').length;",
                vec![],
            )
            .unwrap();
        assert_eq!(rows.as_u64(), Some((LANES.len() * SERVICES) as u64));
        let load = browser
            .eval(
                "var n = performance.getEntriesByType('navigation')[0]; \
                 return [n.responseEnd - n.startTime, n.loadEventEnd - n.startTime, n.transferSize];",
                vec![],
            )
            .unwrap();
        println!(
            "view render: services={SERVICES} lanes={} edges={edges} first_byte_to_response_end_ms={:.1} load_ms={:.1} page_bytes={}",
            LANES.len(),
            load[0].as_f64().unwrap_or(f64::NAN),
            load[1].as_f64().unwrap_or(f64::NAN),
            load[2]
        );
    });
}
