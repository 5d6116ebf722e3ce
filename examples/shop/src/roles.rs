//! One service per process: `shop --role <role>`, as docker-compose's `split` profile and a
//! cluster run the shop. Each process builds its own [`App`] (the peers' addresses from the
//! environment) and serves its one service; schemas are provisioned by `migrate` alone.

use std::net::SocketAddr;
use std::sync::Arc;

use graylane::Lane;
use graylane::http::BoxError;
use graylane::spec::LaneSpec;
use tokio::net::TcpListener;

use crate::app::{App, Peers, version_of};
use crate::demo::hops::{self, Hops};
use crate::infra::{self, BASE_SCHEMA, TOPIC, spawn_http};
use crate::services::orders::{self, Orders};
use crate::services::{fulfillment, gateway, inventory};

/// The roles `shop --role` accepts.
pub const ROLES: &[&str] = &["migrate", "gateway", "orders", "inventory", "fulfillment"];

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.into())
}

/// Runs one service of the shop in this process, until SIGINT or SIGTERM (`migrate` runs
/// once). Configured by environment, with docker-compose's service names as defaults:
///
/// | variable | roles | default |
/// |---|---|---|
/// | `SHOP_LISTEN` | gateway, orders, inventory | `0.0.0.0:<the service's port in the spec>` |
/// | `GRAYLANE_SERVING_LANE` | orders, fulfillment | `base` (v1); `gray` is v2 |
/// | `SHOP_INVENTORY_URL` | orders, fulfillment | `http://inventory:8080` |
/// | `SHOP_ORDERS_URLS` | gateway | `base=http://orders-v1:50051,gray=http://orders-v2:50051` |
/// | `SHOP_MIRROR_PERCENT` | gateway | `10` |
/// | `SHOP_METRICS_LISTEN` | all | `0.0.0.0:9464`: `GET /metrics`, this process's lane metrics (the gateway also serves them on its own port) |
/// | `GRAYLANE_KAFKA_BROKERS` | orders, fulfillment | required |
/// | `GRAYLANE_SPEC` | all | the embedded spec; a path: the spec file, followed while it runs |
/// | `GRAYLANE_SPEC_POLL_MS` | all | `1000`: how often that file is read |
///
/// plus `DATABASE_URL`, `REDIS_URL` and `SHOP_MIGRATIONS` as for the demo. Each service prints
/// `shop <role> <version> (lane <lane>) listening on <addr>` once it serves (fulfillment:
/// `... consuming <topic>`), then `shop <role> metrics on <addr>`. Schemas are
/// provisioned by `migrate` only, so that services never race each other doing it.
pub async fn run_role(role: &str) -> Result<(), BoxError> {
    if !ROLES.contains(&role) {
        return Err(format!("unknown role {role:?}; roles: {}", ROLES.join(", ")).into());
    }
    let live = crate::app::live_spec(None)?;
    let spec = live.0.current().spec().clone();
    let lane = serving_lane(&spec)?;
    let (admin, root, redis) = infra::connect().await?;
    if role == "migrate" {
        infra::provision(&spec, &admin, &root).await?;
        println!("shop migrate: schemas {BASE_SCHEMA} and its shadows are ready");
        return Ok(());
    }
    let peers = Peers {
        inventory: env_or("SHOP_INVENTORY_URL", "http://inventory:8080"),
        orders: env_or(
            "SHOP_ORDERS_URLS",
            "base=http://orders-v1:50051,gray=http://orders-v2:50051",
        ),
    };
    let app = Arc::new(App::new(live, infra::base_options(&root), redis, &peers)?);
    let hops = Hops::default();
    // The spec's port is the one the generated Kubernetes Service targets.
    let port = app.spec.service(role).map_or(8080, |s| s.port);
    let listen = env_or("SHOP_LISTEN", &format!("0.0.0.0:{port}"));
    let mut consumer = None;
    match role {
        "inventory" => serve_inventory(&app, &hops, &listen).await?,
        "orders" => serve_orders(&app, &hops, &listen, lane).await?,
        "fulfillment" => {
            consumer =
                Some(fulfillment::spawn(&app, &shared_broker(role).await?, lane, &hops).await?);
            println!(
                "shop fulfillment {} (lane {lane}) consuming {TOPIC}",
                version_of(lane)
            );
        }
        _ => serve_gateway(&app, &hops, &listen).await?,
    }
    // Every process has metrics of its own: what Prometheus (or `graylane view --scrape`)
    // reads of each service.
    let metrics = TcpListener::bind(env_or("SHOP_METRICS_LISTEN", "0.0.0.0:9464")).await?;
    println!("shop {role} metrics on {}", metrics.local_addr()?);
    spawn_http(metrics, crate::services::metrics_router(&app));
    shutdown_signal().await?;
    // A lane consumer that stops gracefully hands its partitions back at once.
    if let Some(c) = consumer {
        c.stop().await?;
    }
    Ok(())
}

/// `GRAYLANE_SERVING_LANE`: the lane this process's version serves.
fn serving_lane(spec: &LaneSpec) -> Result<Lane, BoxError> {
    let lane = Lane::new(env_or("GRAYLANE_SERVING_LANE", "base").as_str())?;
    if !spec.lane_set().contains(lane) {
        return Err(format!("GRAYLANE_SERVING_LANE: {lane} is not a lane of the spec").into());
    }
    Ok(lane)
}

/// Orders publish to Kafka, fulfillment consumes: one broker shared by every process.
async fn shared_broker(role: &str) -> Result<rdkafka::ClientConfig, BoxError> {
    infra::shared_broker()
        .await?
        .ok_or_else(|| format!("role {role} needs GRAYLANE_KAFKA_BROKERS (a shared broker)").into())
}

/// The start-up line the tests and operators wait for. Standard output is line-buffered:
/// whoever waits for it gets it at once.
fn serving(role: &str, addr: SocketAddr, lane: Lane) {
    println!(
        "shop {role} {} (lane {lane}) listening on {addr}",
        version_of(lane)
    );
}

async fn serve_inventory(app: &Arc<App>, hops: &Hops, listen: &str) -> Result<(), BoxError> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    spawn_http(
        listener,
        inventory::router(app, hops.layer("inventory", "v1")),
    );
    serving("inventory", addr, Lane::BASE);
    Ok(())
}

async fn serve_orders(
    app: &Arc<App>,
    hops: &Hops,
    listen: &str,
    lane: Lane,
) -> Result<(), BoxError> {
    let version = version_of(lane);
    let producer = app.producer(&shared_broker("orders").await?)?;
    orders::observe_refusals(app);
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let orders = Orders::new(app, version, producer, 0);
    tokio::spawn(orders::serve(
        listener,
        orders,
        lane,
        hops.layer("orders", version),
    ));
    serving("orders", addr, lane);
    Ok(())
}

async fn serve_gateway(app: &Arc<App>, hops: &Hops, listen: &str) -> Result<(), BoxError> {
    let percent: f64 = env_or("SHOP_MIRROR_PERCENT", "10")
        .parse()
        .map_err(|e| format!("SHOP_MIRROR_PERCENT: {e}"))?;
    // The mirror target: this process's internal listener, inside the mesh.
    let internal = TcpListener::bind("127.0.0.1:0").await?;
    let mirror = gateway::mirror(app, internal.local_addr()?, percent)?;
    spawn_http(
        internal,
        gateway::internal(app, hops.layer("gateway", "v1")),
    );
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let public = gateway::public(app, hops.layer("gateway", "v1"), mirror);
    spawn_http(listener, hops::show(public));
    serving("gateway", addr, Lane::BASE);
    Ok(())
}

async fn shutdown_signal() -> Result<(), BoxError> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
