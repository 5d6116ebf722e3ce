//! The view against a stand-in service: a `/metrics` page the test writes (as a service's
//! exposition would read), polled directly and through a real Prometheus server; the panels
//! as the page receives them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use graylane_core::spec::LaneSpec;
use graylane_view::{Source, View, ViewConfig};

const SPEC: &str = "
services:
  - { name: gateway }
  - { name: orders }
  - { name: inventory }
lanes:
  - { name: gray, version: v2, services: [orders] }
";

/// A service's page: `gateway` serves base and gray, calls orders (v2 in gray), which calls
/// inventory (no v2: base serves the gray lane there). `n` scales the counts.
fn page(n: u64) -> String {
    let server = |service: &str, lane: &str, served: &str, count: u64| {
        format!(
            "graylane_requests_total{{graylane_service=\"{service}\",graylane_kind=\"server\",gray_lane=\"{lane}\",gray_served=\"{served}\",gray_mirror=\"false\",graylane_outcome=\"ok\"}} {count}\n"
        )
    };
    let call = |service: &str, served: &str, peer: &str, lane: &str, count: u64| {
        format!(
            "graylane_requests_total{{graylane_service=\"{service}\",graylane_kind=\"client\",gray_lane=\"{lane}\",gray_served=\"{served}\",gray_mirror=\"false\",graylane_outcome=\"ok\",graylane_peer=\"{peer}\"}} {count}\n"
        )
    };
    [
        "# TYPE graylane_requests_total counter\n".to_owned(),
        server("gateway", "base", "base", 3 * n),
        server("gateway", "gray", "base", n),
        call("gateway", "base", "orders", "base", 3 * n),
        call("gateway", "base", "orders", "gray", n),
        server("orders", "base", "base", 3 * n),
        server("orders", "gray", "gray", n),
        call("orders", "base", "inventory", "base", 3 * n),
        call("orders", "gray", "inventory", "gray", n),
        server("inventory", "base", "base", 3 * n),
        server("inventory", "gray", "base", n),
        format!("graylane_lane_headers_stripped_total{{graylane_service=\"gateway\"}} {n}\n"),
    ]
    .concat()
}

async fn target(text: Arc<Mutex<String>>) -> SocketAddr {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let text = text.lock().unwrap().clone();
            async move { text }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn serve(view: &View) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = view.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Polls the view's panels until `ready` holds of them (bounded).
async fn panels_until(
    client: &reqwest::Client,
    url: &str,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = client.get(url).send().await.unwrap();
        let panels: serde_json::Value =
            serde_json::from_str(&res.text().await.unwrap()).unwrap_or_default();
        if ready(&panels) {
            return panels;
        }
        assert!(Instant::now() < deadline, "not ready in 30 s: {panels}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn panel<'a>(panels: &'a serde_json::Value, id: &str) -> &'a str {
    panels[id].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scraped_service_draws_its_lanes_edges_and_fallbacks_and_follows_its_counts() {
    let text = Arc::new(Mutex::new(page(10)));
    let metrics = target(text.clone()).await;
    let view = View::start(
        ViewConfig::new(Source::Scrape(vec![format!("http://{metrics}/metrics")]))
            .interval(Duration::from_millis(100))
            .spec(LaneSpec::from_yaml_str(SPEC).unwrap()),
    );
    let at = serve(&view).await;
    let client = reqwest::Client::new();
    let url = format!("http://{at}/lanes/panels.json");
    let panels = panels_until(&client, &url, |p| {
        panel(p, "topology").contains("inventory")
    })
    .await;
    let topology = panel(&panels, "topology");
    // Named by the spec's versions; gray reaches orders v2, then falls back to inventory v1.
    assert!(
        topology.contains(r#"data-from="orders v2" data-to="inventory v1" data-lane="gray" data-fallback="true" data-total="10""#),
        "{topology}"
    );
    assert!(
        topology.contains(
            r#"data-from="gateway v1" data-to="orders v2" data-lane="gray" data-fallback="false""#
        ),
        "{topology}"
    );
    assert!(
        topology.contains(r#"data-from="clients" data-to="gateway v1" data-lane="base" data-fallback="false" data-total="30""#),
        "{topology}"
    );
    assert!(panel(&panels, "trust").contains(r#"<td class="n">10</td>"#));
    assert!(panel(&panels, "chart").starts_with("<svg"));

    // The service counts on; the next polls show it.
    *text.lock().unwrap() = page(25);
    let panels = panels_until(&client, &url, |p| {
        panel(p, "lanes").contains(r#"<td class="total">25</td>"#)
    })
    .await;
    assert!(panel(&panels, "lanes").contains(r#"<td class="total">75</td>"#));
}

/// The `panels` events of an event stream, parsed, as they come (bounded by the caller).
struct Events {
    res: reqwest::Response,
    buf: String,
}

impl Events {
    async fn next(&mut self) -> serde_json::Map<String, serde_json::Value> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                    return serde_json::from_str(data).unwrap();
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.res.chunk())
                .await
                .expect("an event within 10 s")
                .unwrap()
                .expect("the stream stays open");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_every_panel_then_only_those_that_changed() {
    let text = Arc::new(Mutex::new(page(1)));
    let metrics = target(text.clone()).await;
    let view = View::start(
        ViewConfig::new(Source::Scrape(vec![format!("http://{metrics}/metrics")]))
            .interval(Duration::from_millis(200)),
    );
    let at = serve(&view).await;
    let res = reqwest::get(format!("http://{at}/lanes/events"))
        .await
        .unwrap();
    let mut events = Events {
        res,
        buf: String::new(),
    };
    let first = events.next().await;
    for id in ["status", "topology", "lanes", "trust", "kafka", "audit"] {
        assert!(first.contains_key(id), "{id} missing from the first event");
    }
    // Polls go on (the status counts them); the trust panel's figures stay put, so later
    // events leave it out.
    let mut quiet = false;
    for _ in 0..20 {
        let e = events.next().await;
        assert!(e.contains_key("status"), "{e:?}");
        if !e.contains_key("trust") && !e.contains_key("kafka") {
            quiet = true;
            break;
        }
    }
    assert!(quiet, "every event carried every panel");
    // New figures: the panels they change come again.
    *text.lock().unwrap() = page(5);
    let mut seen = false;
    for _ in 0..20 {
        let e = events.next().await;
        if let Some(trust) = e.get("trust").and_then(|t| t.as_str()) {
            assert!(trust.contains(r#"<td class="n">5</td>"#), "{trust}");
            seen = true;
            break;
        }
    }
    assert!(seen, "the trust panel's new count never came");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_the_page_its_events_and_its_panels() {
    let text = Arc::new(Mutex::new(page(1)));
    let metrics = target(text).await;
    let view = View::start(
        ViewConfig::new(Source::Scrape(vec![format!("http://{metrics}/metrics")]))
            .token("s3cret+/="),
    );
    let at = serve(&view).await;
    let client = reqwest::Client::new();
    // The script shows nothing: a page loaded with `?token=` fetches it without one.
    let script = client
        .get(format!("http://{at}/lanes/view.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status().as_u16(), 200);
    for path in ["/lanes/", "/lanes/panels.json", "/lanes/events"] {
        let url = format!("http://{at}{path}");
        let status = |r: reqwest::Response| r.status().as_u16();
        assert_eq!(
            status(client.get(&url).send().await.unwrap()),
            401,
            "{path}"
        );
        let wrong = client
            .get(&url)
            .bearer_auth("s3creT+/=")
            .send()
            .await
            .unwrap();
        assert_eq!(status(wrong), 401, "{path}");
        if path != "/lanes/events" {
            let ok = client
                .get(&url)
                .bearer_auth("s3cret+/=")
                .send()
                .await
                .unwrap();
            assert_eq!(status(ok), 200, "{path}");
            // In a link the token is percent-encoded (`+` would read as a space).
            let by_query = client
                .get(format!("{url}?token=s3cret%2B%2F%3D"))
                .send()
                .await
                .unwrap();
            assert_eq!(status(by_query), 200, "{path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_real_prometheus_the_view_reads_what_it_scraped() {
    let text = Arc::new(Mutex::new(page(7)));
    let metrics = target(text).await;
    let prometheus = tokio::task::spawn_blocking(move || {
        graylane_testkit::prometheus::Prometheus::start(&[&metrics.to_string()])
    })
    .await
    .unwrap();
    let view = View::start(
        ViewConfig::new(Source::Prometheus(prometheus.url().to_owned()))
            .interval(Duration::from_millis(500))
            .spec(LaneSpec::from_yaml_str(SPEC).unwrap()),
    );
    let at = serve(&view).await;
    let client = reqwest::Client::new();
    let url = format!("http://{at}/lanes/panels.json");
    let panels = panels_until(&client, &url, |p| {
        panel(p, "lanes").contains(r#"<td class="total">7</td>"#)
    })
    .await;
    assert!(panel(&panels, "topology").contains(
        r#"data-from="orders v2" data-to="inventory v1" data-lane="gray" data-fallback="true" data-total="7""#
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_panel_follows_the_spec_file_and_judges_its_gates() {
    let spec = |percent: u32| {
        format!(
            "{SPEC}coloring:\n  rules:\n    - {{ name: some-users, lane: gray, match: {{ sticky: {{ percent: {percent}, by: {{ header: x-user-id }} }} }} }}\n\
             releases:\n  - {{ lane: gray, rule: some-users, steps: [5, 50], bake_secs: 60, gates: {{ min_requests: 5 }} }}\n"
        )
    };
    let dir = std::env::temp_dir().join(graylane_testkit::services::unique("view_release"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("graylane.yaml");
    std::fs::write(&file, spec(5)).unwrap();
    // Traffic that goes on: every scrape shows 10 more requests per series, so the gates'
    // window (growth over the bake time) always holds some.
    let scrapes = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let n = scrapes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move { page(10 * n) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let view = View::start(
        ViewConfig::new(Source::Scrape(vec![format!("http://{metrics}/metrics")]))
            .interval(Duration::from_millis(100))
            .spec_file(&file),
    );
    let at = serve(&view).await;
    let client = reqwest::Client::new();
    let url = format!("http://{at}/lanes/panels.json");
    let panels = panels_until(&client, &url, |p| {
        let release = panel(p, "release");
        release.contains("step 1 of 2") && release.contains(r#"data-service="orders""#)
    })
    .await;
    let release = panel(&panels, "release");
    // orders serves gray requests without errors, and base three times as many: the gates
    // pass; gateway and inventory served the lane too (base's versions), judged as well.
    assert!(
        release.contains(r#"<tr data-service="orders" data-gate="pass">"#),
        "{release}"
    );
    assert!(
        release.contains(r#"<tr data-service="inventory" data-gate="pass">"#),
        "{release}"
    );
    // The release moves on (what `graylane release advance` writes): the page follows.
    std::fs::write(&file, spec(50)).unwrap();
    panels_until(&client, &url, |p| {
        panel(p, "release").contains("step 2 of 2 (50%)")
    })
    .await;
    // A broken spec keeps the last good one, and says so.
    std::fs::write(&file, "lanes: [").unwrap();
    let panels = panels_until(&client, &url, |p| {
        panel(p, "status").contains("last poll failed")
    })
    .await;
    assert!(panel(&panels, "release").contains("step 2 of 2"));
    let _ = std::fs::remove_dir_all(&dir);
}
