//! Full-link gray, traffic *and* data: an edge colors requests; `orders` (base and gray
//! versions, routed per lane) writes each order to PostgreSQL through the lane-routed pool and
//! caches it in Redis through the lane-aware connection. Base orders must land only in base
//! rows and keys, gray ones only in the gray shadow schema and key namespace.
//!
//! Real servers on loopback ports, the real PostgreSQL and Redis; unique names, cleaned up.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use bytes::Bytes;
use graylane::http::{LaneLayer, LaneRouterLayer, PropagateLaneLayer, RequestLane};
use graylane::redis::{LaneRedis, Namespaces};
use graylane::spec::LaneSpec;
use graylane::sqlx::{LanePools, Shadows, quote_ident};
use graylane::{Lane, task};
use graylane_testkit::services::{postgres_url, redis_url, unique};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use redis::AsyncCommands;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tower::{ServiceBuilder, ServiceExt};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

#[derive(Clone)]
struct Orders {
    version: &'static str,
    pools: LanePools,
    cache: LaneRedis<redis::aio::MultiplexedConnection>,
    nonce: String,
}

async fn place(State(o): State<Orders>, RequestLane(ctx): RequestLane, body: String) -> String {
    // The application's code: no lane in sight, beyond the handles it was given.
    let pool = o.pools.current().expect("the lane has a pool");
    let id: i64 = sqlx::query_scalar("INSERT INTO customers (name) VALUES ($1) RETURNING id")
        .bind(&body)
        .fetch_one(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO orders (customer_id, sku) VALUES ($1, $2)")
        .bind(id)
        .bind(&body)
        .execute(pool)
        .await
        .unwrap();
    // Cache from a spawned task: the lane must follow.
    let mut cache = o.cache.clone();
    let key = format!("{}:order:{body}", o.nonce);
    task::spawn(async move { cache.set::<_, _, ()>(key, "placed").await.unwrap() })
        .await
        .unwrap();
    format!(
        "orders {} lane={} served={}",
        o.version,
        ctx.lane(),
        ctx.served()
    )
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[derive(Clone)]
struct Gateway {
    spec: LaneSpec,
    orders: LaneRouterLayer,
    client: HttpClient,
}

async fn checkout(State(g): State<Gateway>, body: String) -> String {
    let client = ServiceBuilder::new()
        .layer(g.orders.clone())
        .layer(PropagateLaneLayer::new(g.spec.propagator()))
        .service(g.client.clone());
    let req = http::Request::post("http://orders/")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let res = client.oneshot(req).await.unwrap();
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gray_traffic_and_gray_data_stay_on_the_gray_lane() {
    let nonce = unique("full");
    let spec = LaneSpec::from_yaml_str(&format!(
        "services: [{{name: gateway}}, {{name: orders}}]\n\
         lanes: [{{name: gray, version: v2, services: [orders]}}]\n\
         data: {{pg_schema: \"{nonce}_{{lane}}\", redis_prefix: \"{nonce}:lane:{{lane}}:\"}}\n\
         coloring: {{rules: [{{lane: gray, match: {{header: {{name: x-user-group, exact: beta}}}}}}]}}\n"
    ))
    .unwrap();

    // Base schema with the application's migrations, and the gray shadow from the same ones.
    let root: PgConnectOptions = postgres_url().parse().unwrap();
    let base_schema = format!("{nonce}_base");
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/graylane-sqlx/tests/migrations");
    let migrator = sqlx::migrate::Migrator::new(migrations.as_path())
        .await
        .unwrap();
    let mut admin = sqlx::PgConnection::connect_with(&root).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA {}", quote_ident(&base_schema)))
        .execute(&mut admin)
        .await
        .unwrap();
    let base = root
        .clone()
        .options([("search_path", base_schema.as_str())]);
    let mut base_conn = sqlx::PgConnection::connect_with(&base).await.unwrap();
    migrator.run(&mut base_conn).await.unwrap();
    let gray = Lane::new("gray").unwrap();
    Shadows::new(&spec, base.clone())
        .provision(gray, &migrator)
        .await
        .unwrap();

    let redis_conn = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let pools =
        LanePools::connect_lazy(&spec, base.clone(), PgPoolOptions::new().max_connections(4));
    let cache = LaneRedis::new(redis_conn.clone(), Namespaces::from_spec(&spec));

    let orders = |version, serving| {
        let state = Orders {
            version,
            pools: pools.clone(),
            cache: cache.clone(),
            nonce: nonce.clone(),
        };
        Router::new()
            .route("/", post(place))
            .with_state(state)
            .layer(LaneLayer::mesh(spec.propagator()).serving(serving))
    };
    let v1 = serve(orders("v1", Lane::BASE)).await;
    let v2 = serve(orders("v2", gray)).await;
    let router = LaneRouterLayer::builder(&spec, "orders")
        .base(format!("http://{v1}").parse().unwrap())
        .lane(gray, format!("http://{v2}").parse().unwrap())
        .build()
        .unwrap();
    let gateway = serve(
        Router::new()
            .route("/checkout", post(checkout))
            .with_state(Gateway {
                spec: spec.clone(),
                orders: router,
                client: Client::builder(TokioExecutor::new()).build_http(),
            })
            .layer(LaneLayer::edge(spec.edge().unwrap())),
    )
    .await;

    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut expect = Vec::new();
    for (i, (header, lane)) in [
        (None, "base"),
        (Some(("x-user-group", "beta")), "gray"),
        (Some(("x-gray-lane", "gray")), "base"), // forged: stripped at the edge
        (Some(("x-user-group", "beta")), "gray"),
        (None, "base"),
    ]
    .into_iter()
    .enumerate()
    {
        let sku = format!("sku-{i}");
        let mut req = http::Request::post(format!("http://{gateway}/checkout"));
        if let Some((k, v)) = header {
            req = req.header(k, v);
        }
        let res = client
            .request(req.body(Full::new(Bytes::from(sku.clone()))).unwrap())
            .await
            .unwrap();
        let text = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec())
            .unwrap();
        let version = if lane == "gray" { "v2" } else { "v1" };
        assert_eq!(
            text,
            format!("orders {version} lane={lane} served={lane}"),
            "request {i}"
        );
        expect.push((sku, lane));
    }

    // Data: every order in its lane's schema and key namespace, nowhere else.
    let skus = |schema: String| {
        let base = base.clone();
        async move {
            let mut c = sqlx::PgConnection::connect_with(&base).await.unwrap();
            let mut v: Vec<String> =
                sqlx::query_scalar(&format!("SELECT sku FROM {}.orders", quote_ident(&schema)))
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
            v.sort();
            v
        }
    };
    let want = |l: &str| {
        expect
            .iter()
            .filter(|(_, lane)| *lane == l)
            .map(|(s, _)| s.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(skus(base_schema.clone()).await, want("base"));
    assert_eq!(skus(format!("{nonce}_gray")).await, want("gray"));
    let mut raw = redis_conn.clone();
    let mut keys: Vec<String> = raw.keys(format!("*{nonce}*")).await.unwrap();
    keys.sort();
    let mut want_keys: Vec<String> = expect
        .iter()
        .map(|(sku, lane)| match *lane {
            "gray" => format!("{nonce}:lane:gray:{nonce}:order:{sku}"),
            _ => format!("{nonce}:order:{sku}"),
        })
        .collect();
    want_keys.sort();
    assert_eq!(keys, want_keys);

    // Clean up.
    pools.close().await;
    let () = raw.del(keys).await.unwrap();
    for schema in [base_schema, format!("{nonce}_gray")] {
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", quote_ident(&schema)))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}
