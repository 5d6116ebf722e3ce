//! Istio mirroring, made safe: a stand-in for Envoy's mirror sends a copy of an order — the host
//! suffixed `-shadow`, no header of graylane's — to the orders deployment of a mirror lane. That
//! deployment runs pinned, so the copy and everything after it (inventory over HTTP, the Kafka
//! record, the fulfillment consumer's shipment) is on the mirror lane and writes only its shadow
//! data; the audit finds nothing of it in base. Real PostgreSQL and Redis, the embedded broker.

use std::time::{Duration, Instant};

use graylane_testkit::services::unique;
use http::uri::PathAndQuery;
use shop::Options;

/// The shop's own `shop.Orders/Place` request, as a client outside the shop writes it.
#[derive(Clone, PartialEq, prost::Message)]
struct Order {
    #[prost(string, tag = "1")]
    request_id: String,
    #[prost(string, tag = "2")]
    user_id: String,
    #[prost(string, tag = "3")]
    item: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Receipt {
    #[prost(string, tag = "2")]
    shipping: String,
}

/// The shop's spec with a mirror lane `shadow` for orders, as Istio's mirror target.
fn spec_with_a_mirror_lane(dir: &std::path::Path) -> std::path::PathBuf {
    let shop = include_str!("../graylane.yaml");
    let with = shop
        .replace(
            "    services: [orders, fulfillment]\n",
            "    services: [orders, fulfillment]\n  - name: shadow\n    mirror: true\n    version: v2-shadow\n    services: [orders]\n",
        )
        .replace(
            "    protocol: grpc\n",
            "    protocol: grpc\n    routing:\n      mirror: { lane: shadow, percent: 10 }\n",
        );
    assert_ne!(with, shop);
    let path = dir.join("graylane.yaml");
    std::fs::write(&path, with).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envoy_mirror_copy_writes_only_the_mirror_lanes_data() {
    let dir = std::env::temp_dir().join(unique("shop_mirror"));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = spec_with_a_mirror_lane(&dir);
    let shop = shop::start(Options {
        spec: Some(spec.clone()),
        embedded_kafka: true,
        mirror_percent: 0.0,
        ..Options::default()
    })
    .await
    .unwrap();
    shop.fulfillment_ready().await.unwrap();
    let shadow = graylane::Lane::new("shadow").unwrap();
    let pinned = shop
        .pinned_orders(shadow)
        .expect("a pinned orders for the mirror lane");

    // Envoy's copy: to the shadow subset, its authority suffixed, no lane header.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{pinned}"))
        .unwrap()
        .origin("http://orders-shadow:50051".parse().unwrap())
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let id = unique("mirrored");
    let order = Order {
        request_id: id.clone(),
        user_id: "mirrored-user".into(),
        item: "book".into(),
    };
    let receipt: tonic::Response<Receipt> = grpc
        .unary(
            tonic::Request::new(order),
            PathAndQuery::from_static("/shop.Orders/Place"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap();
    assert_eq!(receipt.into_inner().shipping, "express (free)");

    // The order, its reservation and, after Kafka, its shipment: all in the shadow lane's
    // schema, the shipment marked a mirror copy.
    let count = |table: &'static str, schema: &'static str| {
        let (admin, id) = (shop.admin().clone(), id.clone());
        async move {
            sqlx::query_scalar::<_, i64>(&format!(
                "SELECT count(*) FROM {schema}.{table} WHERE request_id = $1"
            ))
            .bind(id)
            .fetch_one(&admin)
            .await
            .unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while count("shipments", "shop_lane_shadow").await == 0 {
        assert!(Instant::now() < deadline, "no shadow shipment in 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // (Two reservations: the order's, at orders, and the pick's, at fulfillment.)
    for (table, n) in [("orders", 1), ("reservations", 2), ("shipments", 1)] {
        assert_eq!(count(table, "shop_lane_shadow").await, n, "{table}");
        assert_eq!(count(table, "shop").await, 0, "{table} in base");
    }
    let mirror: bool =
        sqlx::query_scalar("SELECT mirror FROM shop_lane_shadow.shipments WHERE request_id = $1")
            .bind(&id)
            .fetch_one(shop.admin())
            .await
            .unwrap();
    assert!(mirror, "the shipment is marked a mirror copy");

    // The audit, as an operator runs it: everything of the copy in the lane, nothing outside.
    let database_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let args = [
        "graylane",
        "audit",
        "--spec",
        spec.to_str().unwrap(),
        "--lane",
        "shadow",
        "--marker",
        &id,
        "--database-url",
        &database_url,
        "--base-schema",
        "shop",
        "--redis-url",
        &redis_url,
    ]
    .map(str::to_owned);
    let code = tokio::task::spawn_blocking(move || graylane_cli::run(args))
        .await
        .unwrap();
    assert_eq!(
        code,
        std::process::ExitCode::SUCCESS,
        "the audit found a leak"
    );
    shop.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

/// The in-process mirror's comparison, as the demo shows it: every quote mirrored to the gray
/// lane, where orders v2 quotes express shipping. The comparison finds exactly that — every
/// compared quote differs in `shipping` and in nothing else — once it has learned `quote_id`
/// and `quoted_at` (fresh in every quote, v1's as much as v2's) as noise from its base copies;
/// `GET /graylane/mirror` and `GET /metrics` say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrored_quotes_differ_in_shipping_and_nothing_else() {
    let shop = shop::start(Options {
        embedded_kafka: true,
        mirror_percent: 100.0,
        ..Options::default()
    })
    .await
    .unwrap();
    let customer = shop::Customer::new(shop.gateway());
    const QUOTES: u64 = 30;
    for i in 0..QUOTES {
        let quote = customer.quote(&format!("quote-{i}")).await.unwrap();
        assert_eq!(quote["shipping"], "standard", "production quotes are v1's");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        let report = customer.mirror_report().await.unwrap();
        let route = &report["routes"].as_array().unwrap().first().cloned();
        let done = route.as_ref().map_or(0, |r| {
            r["compared"].as_u64().unwrap() + r["skipped"].as_u64().unwrap()
        });
        if done >= QUOTES {
            break report;
        }
        assert!(
            Instant::now() < deadline,
            "comparisons not settled: {report}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let route = &report["routes"][0];
    assert_eq!(route["route"], "POST /quote", "{report}");
    for (count, n) in [
        ("compared", QUOTES),
        ("different_body", QUOTES),
        ("identical", 0),
        ("different_status", 0),
        ("skipped", 0),
    ] {
        assert_eq!(route[count], n, "{count}: {report}");
    }
    assert_eq!(
        route["fields"],
        serde_json::json!({ "shipping": QUOTES }),
        "{report}"
    );
    assert_eq!(
        route["noise"],
        serde_json::json!(["quote_id", "quoted_at"]),
        "{report}"
    );
    assert!(
        route["noise_copies"].as_u64().unwrap() >= 10,
        "the warm-up: {report}"
    );
    let sample = &report["samples"].as_array().unwrap().last().unwrap()["fields"][0];
    assert_eq!(
        (&sample["path"], &sample["primary"], &sample["mirror"]),
        (
            &"shipping".into(),
            &"\"standard\"".into(),
            &"\"express (free)\"".into()
        ),
        "{report}"
    );
    let metrics = customer.get("/metrics").await.unwrap();
    let line = format!(
        r#"graylane_mirror_compared_total{{graylane_result="body",graylane_route="POST /quote",graylane_service="gateway"}} {QUOTES}"#
    );
    assert!(metrics.contains(&line), "{metrics}");
    shop.shutdown().await.unwrap();
}
