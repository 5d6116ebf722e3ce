//! The demo shop's topology on loopback, request by request: for each way a request gets (or
//! does not get) its lane, the exact path it took and where every piece of its data landed —
//! rows in the base schema or the gray shadow, its cached status in Redis, its shipment written
//! by the fulfillment version that owned its Kafka message. Real PostgreSQL and Redis, the mock
//! Kafka broker. Request ids are unique per run; the shop's own schemas are shared with the demo.

use std::time::{Duration, Instant, SystemTime};

use graylane::Lane;
use graylane::coloring::SimpleRequest;
use graylane::sqlx::quote_ident;
use graylane_testkit::services::unique;
use redis::AsyncCommands;
use shop::{Customer, Options, Shop};

/// (case, user, headers, expected path, expected lane, expected carrier)
type Case<'a> = (
    &'a str,
    &'a str,
    Vec<(&'a str, &'a str)>,
    &'a str,
    &'a str,
    &'a str,
);

const BASE_PATH: &str = "gateway v1 (lane base, served base) -> orders v1 (lane base, served base) -> inventory v1 (lane base, served base) | shipping: standard\n";
// gateway and inventory have no gray version: fallback, and the lane re-enters v2 at orders.
const GRAY_PATH: &str = "gateway v1 (lane gray, served base) -> orders v2 (lane gray, served gray) -> inventory v1 (lane gray, served base) | shipping: express (free)\n";

/// Starts a shop; one at a time, since each provisions the same schemas at start-up.
async fn start(mirror_percent: f64) -> Shop {
    static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = STARTING.lock().await;
    // Shops of concurrent tests would share the real broker's consumer groups: each gets an
    // embedded one (the demo's test and the roles test run the shop on the real broker).
    let shop = shop::start(Options {
        mirror_percent,
        embedded_kafka: true,
        ..Options::default()
    })
    .await
    .unwrap();
    shop.fulfillment_ready().await.unwrap();
    shop
}

/// A user the sticky 10% rule puts on gray, or one it leaves on base.
fn user(shop: &Shop, gray: bool) -> String {
    let edge = shop.spec().edge().unwrap();
    (0..10_000)
        .map(|i| format!("user-{i}"))
        .find(|u| {
            let mut req = SimpleRequest::new("/checkout").header("x-user-id", u);
            edge.admit(&mut req).context().lane().is_base() != gray
        })
        .unwrap()
}

async fn checkout(shop: &Shop, id: &str, user: &str, extra: &[(&str, &str)]) -> String {
    let r = Customer::new(shop.gateway())
        .checkout(id, user, extra)
        .await
        .unwrap();
    assert!(r.status.is_success(), "{id}: {}", r.status);
    r.path
}

/// `(schema, mirror)` -> how many rows of `table` the request has there.
async fn rows(shop: &Shop, table: &str, id: &str, schema: &str, mirror: bool) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {}.{} WHERE request_id = $1 AND mirror = $2",
        quote_ident(schema),
        quote_ident(table)
    ))
    .bind(id)
    .bind(mirror)
    .fetch_one(shop.admin())
    .await
    .unwrap()
}

/// The shipment `(carrier, version)` fulfillment wrote for `id` in `schema`, waiting for it.
async fn shipment(shop: &Shop, id: &str, schema: &str) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found: Option<(String, String)> = sqlx::query_as(&format!(
            "SELECT carrier, version FROM {}.shipments WHERE request_id = $1 AND NOT mirror",
            quote_ident(schema)
        ))
        .bind(id)
        .fetch_optional(shop.admin())
        .await
        .unwrap();
        if let Some(found) = found {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no shipment for {id} in {schema}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that `id`'s data is all in `lane`'s storage and none in the other lane's.
async fn landed(shop: &Shop, id: &str, lane: &str, carrier: &str) {
    let (home, away) = if lane == "gray" {
        ("shop_lane_gray", "shop")
    } else {
        ("shop", "shop_lane_gray")
    };
    let (home_prefix, away_prefix) = if lane == "gray" {
        ("shop:lane:gray:", "")
    } else {
        ("", "shop:lane:gray:")
    };
    let (got_carrier, _) = shipment(shop, id, home).await;
    assert_eq!(
        got_carrier, carrier,
        "{id}: the fulfillment version that shipped it"
    );
    for (table, n) in [("orders", 1), ("reservations", 2), ("shipments", 1)] {
        assert_eq!(
            rows(shop, table, id, home, false).await,
            n,
            "{id}: {table} in {home}"
        );
        assert_eq!(
            rows(shop, table, id, away, false).await,
            0,
            "{id}: {table} in {away}"
        );
    }
    let mut redis = shop.redis();
    let home_key: Option<String> = redis
        .get(format!("{home_prefix}shop:order:{id}"))
        .await
        .unwrap();
    let away_key: Option<String> = redis
        .get(format!("{away_prefix}shop:order:{id}"))
        .await
        .unwrap();
    assert!(
        home_key.is_some(),
        "{id}: status cached in the {lane} namespace"
    );
    assert!(away_key.is_none(), "{id}: nothing in the other namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_into_a_lane_request_by_request() {
    let mut shop = start(0.0).await;
    let run = unique("e2e");
    let (base_user, sticky_user) = (user(&shop, false), user(&shop, true));
    let key = shop
        .spec()
        .trust
        .token
        .as_ref()
        .unwrap()
        .load_key()
        .unwrap();
    let token = key.mint(
        Lane::new("gray").unwrap(),
        SystemTime::now() + Duration::from_secs(300),
    );

    let cases: [Case<'_>; 5] = [
        ("base", &base_user, vec![], BASE_PATH, "base", "truck"),
        (
            "header",
            &base_user,
            vec![("x-user-group", "beta")],
            GRAY_PATH,
            "gray",
            "drone",
        ),
        ("sticky", &sticky_user, vec![], GRAY_PATH, "gray", "drone"),
        (
            "token",
            &base_user,
            vec![("x-gray-lane-token", &token)],
            GRAY_PATH,
            "gray",
            "drone",
        ),
        (
            "forged",
            &base_user,
            vec![("x-gray-lane", "gray")],
            BASE_PATH,
            "base",
            "truck",
        ),
    ];
    for (case, user, headers, path, lane, carrier) in &cases {
        let id = format!("{run}-{case}");
        assert_eq!(checkout(&shop, &id, user, headers).await, *path, "{case}");
        // gray: re-entry after the inventory fallback, through Kafka, to fulfillment v2.
        landed(&shop, &id, lane, carrier).await;
    }

    // The gray consumer stops: base fulfills the gray order, in gray data (v1's truck); it
    // comes back: v2's drone again.
    shop.stop_gray_fulfillment().await.unwrap();
    let id = format!("{run}-while-stopped");
    assert_eq!(
        checkout(&shop, &id, &base_user, &[("x-user-group", "beta")]).await,
        GRAY_PATH
    );
    landed(&shop, &id, "gray", "truck").await;
    shop.start_gray_fulfillment().await.unwrap();
    shop.fulfillment_ready().await.unwrap();
    let id = format!("{run}-restarted");
    assert_eq!(
        checkout(&shop, &id, &base_user, &[("x-user-group", "beta")]).await,
        GRAY_PATH
    );
    landed(&shop, &id, "gray", "drone").await;
    shop.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirrored_copy_writes_shadow_data_only() {
    let shop = start(100.0).await;
    let id = format!("{}-mirrored", unique("e2e"));
    let user = user(&shop, false);
    // The client sees the live (base) path; the copy runs on the gray lane in the background.
    assert_eq!(checkout(&shop, &id, &user, &[]).await, BASE_PATH);
    assert_eq!(shipment(&shop, &id, "shop").await.0, "truck");
    for (table, n) in [("orders", 1), ("reservations", 2), ("shipments", 1)] {
        assert_eq!(
            rows(&shop, table, &id, "shop", false).await,
            n,
            "live {table} in base"
        );
        assert_eq!(
            rows(&shop, table, &id, "shop_lane_gray", false).await,
            0,
            "{table}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while rows(&shop, "shipments", &id, "shop_lane_gray", true).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the mirror copy was not fulfilled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (table, n) in [("orders", 1), ("reservations", 2), ("shipments", 1)] {
        assert_eq!(
            rows(&shop, table, &id, "shop_lane_gray", true).await,
            n,
            "mirror {table}"
        );
        assert_eq!(
            rows(&shop, table, &id, "shop", true).await,
            0,
            "no mirror {table} in base"
        );
    }
    shop.shutdown().await.unwrap();
}
