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

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use bytes::Bytes;
use graylane_core::coloring::SimpleRequest;
use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext};
use graylane_grpc::unary::{ServiceName, unary_fn};
use graylane_grpc::{LaneRequestExt, status_from_error};
use graylane_http::{
    BoxError, LaneLayer, LaneRouterLayer, LaneSwitch, MirrorConfig, MirrorLayer,
    PropagateLaneLayer, RequestLane,
};
use graylane_kafka::{ConsumerHandle, ConsumerStats, LaneConsumer, LaneProducer};
use graylane_otel::prometheus::Exposition;
use graylane_otel::{LaneMetrics, LaneTraceLayer};
use graylane_redis::{LaneRedis, Namespaces};
use graylane_sqlx::{LanePools, Shadows, quote_ident};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry::metrics::MeterProvider as _;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use redis::AsyncCommands;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tower::{ServiceBuilder, ServiceExt};

const SPEC: &str = include_str!("../graylane.yaml");
const BASE_SCHEMA: &str = "shop";
const TOPIC: &str = "shop.orders";
const CONTROL_TOPIC: &str = "shop.graylane-control";
const GROUP: &str = "shop.fulfillment";
/// Partitions of the orders topic (the embedded broker; docker-compose creates it the same).
const PARTITIONS: i32 = 4;

type HttpClient = Client<HttpConnector, Full<Bytes>>;
type Cache = LaneRedis<redis::aio::MultiplexedConnection>;

/// Requests per (service, version, requested lane, served lane), for the report.
#[derive(Clone, Default)]
struct Hops(Arc<Mutex<BTreeMap<Hop, u64>>>);

/// (service, version, requested lane, served lane).
type Hop = (&'static str, &'static str, String, String);

impl Hops {
    fn record(&self, service: &'static str, version: &'static str, ctx: LaneContext) -> String {
        let mut lane = ctx.lane().to_string();
        if ctx.is_mirror() {
            lane.push_str(" (mirror)");
        }
        let served = ctx.served().to_string();
        *self
            .0
            .lock()
            .unwrap()
            .entry((service, version, lane.clone(), served.clone()))
            .or_default() += 1;
        format!("{service} {version} (lane {lane}, served {served})")
    }
}

/// What every service shares: the spec, the lane-routed data handles, the report.
#[derive(Clone)]
struct Shared {
    spec: LaneSpec,
    pools: LanePools,
    cache: Cache,
    hops: Hops,
    http: HttpClient,
    inventory: LaneRouterLayer,
    /// Per-lane metrics (OpenTelemetry), served as Prometheus text at `GET /metrics`.
    exposition: Exposition,
}

impl Shared {
    /// The lane metrics of `service`, on the shop's meter provider.
    fn metrics(&self, service: &'static str) -> LaneMetrics {
        LaneMetrics::new(&self.exposition.provider().meter("graylane"), service)
    }

    /// Spans and metrics for `service`'s server side.
    fn traced(&self, service: &'static str) -> LaneTraceLayer {
        LaneTraceLayer::server(service, self.spec.propagator()).metrics(self.metrics(service))
    }
}

impl Shared {
    /// Calls `inventory` (base only: gray requests fall back to v1 and keep their lane).
    async fn inventory(&self, path: &str, body: String) -> Result<String, BoxError> {
        let client = ServiceBuilder::new()
            .layer(self.inventory.clone())
            .layer(PropagateLaneLayer::new(self.spec.propagator()))
            .service(self.http.clone());
        let req = http::Request::post(format!("http://inventory{path}"))
            .body(Full::new(Bytes::from(body)))?;
        let res = client.oneshot(req).await?;
        let ok = res.status().is_success();
        let body = String::from_utf8(res.into_body().collect().await?.to_bytes().to_vec())?;
        if ok { Ok(body) } else { Err(body.into()) }
    }
}

// ---------------------------------------------------------------------------------------------
// inventory v1 (HTTP): reserves stock in the lane's schema.

async fn reserve(
    State(s): State<Shared>,
    RequestLane(ctx): RequestLane,
    body: String,
) -> Result<String, (http::StatusCode, String)> {
    let fail = |e: &dyn std::fmt::Display| (http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let mut words = body.split_whitespace();
    let (Some(purpose), Some(request_id), Some(item)) = (words.next(), words.next(), words.next())
    else {
        return Err((
            http::StatusCode::BAD_REQUEST,
            "expected: purpose request_id item".into(),
        ));
    };
    let pool = s.pools.current().map_err(|e| fail(&e))?;
    let mut tx = pool.begin().await.map_err(|e| fail(&e))?;
    sqlx::query("UPDATE stock SET quantity = quantity - 1 WHERE item = $1")
        .bind(item)
        .execute(&mut *tx)
        .await
        .map_err(|e| fail(&e))?;
    sqlx::query(
        "INSERT INTO reservations (request_id, item, purpose, mirror) VALUES ($1, $2, $3, $4)",
    )
    .bind(request_id)
    .bind(item)
    .bind(purpose)
    .bind(ctx.is_mirror())
    .execute(&mut *tx)
    .await
    .map_err(|e| fail(&e))?;
    tx.commit().await.map_err(|e| fail(&e))?;
    Ok(s.hops.record("inventory", "v1", ctx))
}

// ---------------------------------------------------------------------------------------------
// orders v1 / v2 (gRPC through `graylane_grpc::unary::unary_fn`: no protoc).

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
    #[prost(string, tag = "1")]
    path: String,
    #[prost(string, tag = "2")]
    shipping: String,
}

#[derive(Clone)]
struct Orders {
    version: &'static str,
    shared: Shared,
    producer: LaneProducer,
    published: Arc<AtomicU64>,
}

/// The gRPC service name of [`Orders`], for `unary_fn`.
struct OrdersName;

impl ServiceName for OrdersName {
    const NAME: &'static str = "shop.Orders";
}

impl Orders {
    /// `shop.Orders/Place`.
    async fn place(
        self,
        req: tonic::Request<Order>,
    ) -> Result<tonic::Response<Receipt>, tonic::Status> {
        let ctx = req.lane_context();
        let order = req.into_inner();
        let internal = |e: &dyn std::fmt::Display| tonic::Status::internal(e.to_string());
        // The application's code: no lane in sight beyond the handles it was given.
        let pool = self.shared.pools.current().map_err(|e| internal(&e))?;
        sqlx::query(
                "INSERT INTO orders (request_id, user_id, item, version, mirror) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&order.request_id)
            .bind(&order.user_id)
            .bind(&order.item)
            .bind(self.version)
            .bind(ctx.is_mirror())
            .execute(pool)
            .await
            .map_err(|e| internal(&e))?;
        let mut cache = self.shared.cache.clone();
        cache
            .set::<_, _, ()>(format!("shop:order:{}", order.request_id), self.version)
            .await
            .map_err(|e| internal(&e))?;
        let reserved = self
            .shared
            .inventory(
                "/reserve",
                format!("order {} {}", order.request_id, order.item),
            )
            .await
            .map_err(status_from_error)?;
        self.producer
            .send(
                FutureRecord::to(TOPIC)
                    .key(&order.request_id)
                    .payload(&order.request_id),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| internal(&e))?;
        self.published.fetch_add(1, Ordering::Relaxed);
        let me = self.shared.hops.record("orders", self.version, ctx);
        Ok(tonic::Response::new(Receipt {
            path: format!("{me} -> {reserved}"),
            // v2's visible change.
            shipping: if self.version == "v2" {
                "express (free)"
            } else {
                "standard"
            }
            .into(),
        }))
    }
}

async fn serve_orders(orders: Orders, serving: Lane, addr: &str) -> Result<SocketAddr, BoxError> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let server = tonic::transport::Server::builder()
        .layer(LaneLayer::mesh(orders.shared.spec.propagator()).serving(serving))
        .layer(orders.shared.traced("orders"))
        .add_service(unary_fn::<OrdersName, _, _, _, _>(move |req| {
            orders.clone().place(req)
        }))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    Ok(addr)
}

// ---------------------------------------------------------------------------------------------
// gateway v1 (the edge): coloring, trust, mirroring; calls orders over gRPC.

#[derive(Clone)]
struct Gateway {
    shared: Shared,
    orders: LaneSwitch<tonic::transport::Channel>,
}

async fn checkout(
    State(g): State<Gateway>,
    RequestLane(ctx): RequestLane,
    headers: http::HeaderMap,
    body: String,
) -> (http::StatusCode, [(&'static str, String); 1], String) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let me = g.shared.hops.record("gateway", "v1", ctx);
    let lane = [("x-shop-lane", ctx.lane().to_string())];
    let svc = ServiceBuilder::new()
        .layer(PropagateLaneLayer::new(g.shared.spec.propagator()))
        .service(g.orders.clone());
    let mut grpc = tonic::client::Grpc::new(svc);
    let order = Order {
        request_id: header("x-request-id"),
        user_id: header("x-user-id"),
        item: if body.is_empty() { "book".into() } else { body },
    };
    let placed = async {
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let path = http::uri::PathAndQuery::from_static("/shop.Orders/Place");
        let codec = tonic_prost::ProstCodec::<Order, Receipt>::default();
        grpc.unary(tonic::Request::new(order), path, codec).await
    }
    .await;
    match placed {
        Ok(r) => {
            let r = r.into_inner();
            (
                http::StatusCode::OK,
                lane,
                format!("{me} -> {} | shipping: {}\n", r.path, r.shipping),
            )
        }
        Err(status) => (
            http::StatusCode::BAD_GATEWAY,
            lane,
            format!("{me} -> error {status}\n"),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// fulfillment v1 / v2 (Kafka consumers): ship, count, pick stock.

async fn spawn_fulfillment(
    shared: &Shared,
    kafka: &rdkafka::ClientConfig,
    lane: Lane,
) -> Result<ConsumerHandle, BoxError> {
    let version = if lane.is_base() { "v1" } else { "v2" };
    let shared = shared.clone();
    let metrics = shared.metrics("fulfillment");
    Ok(
        LaneConsumer::from_spec(&shared.spec.clone(), kafka.clone(), GROUP)
            .lane(lane)
            .topic(TOPIC)
            .control_topic(CONTROL_TOPIC)
            .spawn(move |message| {
                let s = shared.clone();
                let metrics = metrics.clone();
                let ctx = LaneContext::current().with_served(lane);
                async move {
                    let started = Instant::now();
                    let result = ship(&s, version, &message).await;
                    if let Err(e) = &result {
                        eprintln!("fulfillment {version}: {e}");
                    }
                    metrics.record(
                        graylane_otel::Kind::Consumer,
                        ctx,
                        started.elapsed(),
                        result.is_err(),
                    );
                }
            })
            .await?,
    )
}

async fn ship(
    s: &Shared,
    version: &'static str,
    m: &rdkafka::message::OwnedMessage,
) -> Result<(), BoxError> {
    // The message's lane is in scope: this is ordinary application code.
    let ctx = LaneContext::current();
    let request_id = m.payload_view::<str>().ok_or("empty message")??.to_owned();
    let carrier = if version == "v2" { "drone" } else { "truck" };
    s.inventory("/pick", format!("pick {request_id} book"))
        .await?;
    let mut cache = s.cache.clone();
    cache.incr::<_, _, ()>("shop:shipped", 1).await?;
    // The shipment row is written last: once it exists, the whole fulfillment has happened
    // (readers such as the end-to-end test wait for it).
    let pool = s.pools.current()?;
    sqlx::query(
        "INSERT INTO shipments (request_id, carrier, version, mirror) VALUES ($1, $2, $3, $4)",
    )
    .bind(&request_id)
    .bind(carrier)
    .bind(version)
    .bind(ctx.is_mirror())
    .execute(pool)
    .await?;
    s.hops.record("fulfillment", version, ctx);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Start-up: services, data, broker.

async fn serve_http(app: Router, addr: &str) -> Result<SocketAddr, BoxError> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

fn unreachable(what: &str, url: &str, e: impl std::fmt::Display) -> BoxError {
    format!(
        "{what} is not reachable at {url}: {e}\n\
         start it with:  docker compose up -d postgres redis\n\
         or point the shop elsewhere with DATABASE_URL / REDIS_URL"
    )
    .into()
}

/// The embedded broker, unless `GRAYLANE_KAFKA_BROKERS` names a real one.
fn kafka() -> Result<
    (
        rdkafka::ClientConfig,
        Option<graylane_testkit::kafka::MockBroker>,
        String,
    ),
    BoxError,
> {
    if let Ok(brokers) = std::env::var("GRAYLANE_KAFKA_BROKERS") {
        let mut config = rdkafka::ClientConfig::new();
        config
            .set("bootstrap.servers", &brokers)
            .set("fetch.wait.max.ms", "10")
            .set("linger.ms", "0");
        return Ok((config, None, brokers));
    }
    let broker = graylane_testkit::kafka::MockBroker::start(1)?;
    broker.create_topic(TOPIC, PARTITIONS)?;
    broker.create_topic(CONTROL_TOPIC, 1)?;
    let bootstrap = format!("embedded mock broker {}", broker.bootstrap());
    Ok((broker.client_config(), Some(broker), bootstrap))
}

/// How to start the shop.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Bind the gateway to `SHOP_ADDR` or `127.0.0.1:8080` (otherwise an ephemeral port).
    pub serve: bool,
    /// The share of gateway traffic mirrored to the gray lane, 0 to 100.
    pub mirror_percent: f64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            serve: false,
            mirror_percent: 10.0,
        }
    }
}

/// The running shop: every service on loopback, base and gray versions.
pub struct Shop {
    shared: Shared,
    gateway: SocketAddr,
    mirror: MirrorLayer<HttpClient>,
    published: Arc<AtomicU64>,
    kafka: rdkafka::ClientConfig,
    _broker: Option<graylane_testkit::kafka::MockBroker>,
    fulfillment: Vec<ConsumerHandle>,
    /// Messages handled by gray consumers that have since stopped (their handles are gone).
    gray_before: u64,
    redis: redis::aio::MultiplexedConnection,
    admin: sqlx::PgPool,
}

impl std::fmt::Debug for Shop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shop")
            .field("gateway", &self.gateway)
            .finish_non_exhaustive()
    }
}

impl Shop {
    /// The public gateway (the edge): `POST /checkout`, `GET /metrics`.
    pub fn gateway(&self) -> SocketAddr {
        self.gateway
    }

    /// The shop's lane spec.
    pub fn spec(&self) -> &LaneSpec {
        &self.shared.spec
    }

    /// A pool on the database holding the base schema (`shop`) and the shadows.
    pub fn admin(&self) -> &sqlx::PgPool {
        &self.admin
    }

    /// A plain Redis connection (no lane namespacing).
    pub fn redis(&self) -> redis::aio::MultiplexedConnection {
        self.redis.clone()
    }

    /// Stops the gray `fulfillment` consumer gracefully (base takes its messages over).
    pub async fn stop_gray_fulfillment(&mut self) -> Result<(), BoxError> {
        let gray = Lane::new("gray")?;
        if let Some(i) = self.fulfillment.iter().position(|h| h.lane() == gray) {
            let stats = self.fulfillment.remove(i).stop().await?;
            self.gray_before += stats.processed;
        }
        Ok(())
    }

    /// Starts the gray `fulfillment` consumer (again).
    pub async fn start_gray_fulfillment(&mut self) -> Result<(), BoxError> {
        let kafka = self.kafka.clone();
        let handle = spawn_fulfillment(&self.shared, &kafka, Lane::new("gray")?).await?;
        self.fulfillment.push(handle);
        Ok(())
    }

    /// Waits until base has granted the gray consumer every partition (right after
    /// [`start`](Self::start_gray_fulfillment), gray messages are still base's).
    pub async fn gray_fulfillment_ready(&self) -> Result<(), BoxError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let base = self.fulfillment.iter().find(|h| h.lane().is_base());
            let stats = base.map(ConsumerHandle::stats).unwrap_or_default();
            if stats.grants.saturating_sub(stats.releases) >= PARTITIONS as u64 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("the gray consumer was not granted its partitions in 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the consumers gracefully.
    pub async fn shutdown(mut self) -> Result<(), BoxError> {
        for h in self.fulfillment.drain(..) {
            h.stop().await?;
        }
        Ok(())
    }
}

/// Starts every service of the shop (see the crate docs), after provisioning the schemas.
pub async fn start(options: Options) -> Result<Shop, BoxError> {
    let spec = LaneSpec::from_yaml_str(SPEC)?;
    let gray = Lane::new("gray")?;
    let (admin, root, redis) = connect().await?;
    let base = provision(&spec, &admin, &root).await?;
    let mut shared = shared(&spec, base, &redis, "http://127.0.0.1:1")?;

    // inventory v1 only.
    let inventory = serve_inventory(&shared, "127.0.0.1:0").await?;
    shared.inventory = LaneRouterLayer::builder(&spec, "inventory")
        .base(format!("http://{inventory}").parse()?)
        .build()?;

    // Kafka, then orders v1 and v2.
    let (kafka, broker, bootstrap) = kafka()?;
    eprintln!("kafka: {bootstrap}");
    let producer = LaneProducer::new(kafka.create()?, spec.propagator());
    let published = Arc::new(AtomicU64::new(0));
    let orders = |version| Orders {
        version,
        shared: shared.clone(),
        producer: producer.clone(),
        published: published.clone(),
    };
    let v1 = serve_orders(orders("v1"), Lane::BASE, "127.0.0.1:0").await?;
    let v2 = serve_orders(orders("v2"), gray, "127.0.0.1:0").await?;
    observe_refusals(&shared);
    let switch = orders_switch(&spec, &format!("base=http://{v1},gray=http://{v2}"))?;

    // fulfillment: base first (it grants the gray lane its partitions), then gray.
    let fulfillment = vec![
        spawn_fulfillment(&shared, &kafka, Lane::BASE).await?,
        spawn_fulfillment(&shared, &kafka, gray).await?,
    ];

    let addr = std::env::var("SHOP_ADDR").unwrap_or_else(|_| {
        if options.serve {
            "127.0.0.1:8080"
        } else {
            "127.0.0.1:0"
        }
        .into()
    });
    let (gateway, mirror) = serve_gateway(&shared, switch, options.mirror_percent, &addr).await?;
    Ok(Shop {
        shared,
        gateway,
        mirror,
        published,
        kafka,
        _broker: broker,
        fulfillment,
        gray_before: 0,
        redis,
        admin,
    })
}

/// Counts the orders service's Redis refusals in its metrics (once per process).
fn observe_refusals(shared: &Shared) {
    let cache = shared.cache.clone();
    shared
        .metrics("orders")
        .observe_refusals("redis", move || cache.refused());
}

/// Connects to PostgreSQL and Redis, or says what to start.
async fn connect() -> Result<
    (
        sqlx::PgPool,
        PgConnectOptions,
        redis::aio::MultiplexedConnection,
    ),
    BoxError,
> {
    let db_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let root: PgConnectOptions = db_url.parse()?;
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(root.clone())
        .await
        .map_err(|e| unreachable("PostgreSQL", &db_url, e))?;
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let redis = tokio::time::timeout(Duration::from_secs(5), async {
        redis::Client::open(redis_url.as_str())?
            .get_multiplexed_async_connection()
            .await
    })
    .await
    .map_err(|e| unreachable("Redis", &redis_url, e))?
    .map_err(|e| unreachable("Redis", &redis_url, e))?;
    Ok((admin, root, redis))
}

/// The base schema and every lane's shadow, from the shop's own migrations (idempotent);
/// returns the connect options of the base schema.
async fn provision(
    spec: &LaneSpec,
    admin: &sqlx::PgPool,
    root: &PgConnectOptions,
) -> Result<PgConnectOptions, BoxError> {
    let migrations = std::env::var("SHOP_MIGRATIONS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/migrations").into());
    let migrator = sqlx::migrate::Migrator::new(std::path::Path::new(&migrations)).await?;
    sqlx::query(&format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        quote_ident(BASE_SCHEMA)
    ))
    .execute(admin)
    .await?;
    let base = base_options(root);
    {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect_with(&base).await?;
        migrator.run(&mut conn).await?;
    }
    for lane in spec.lane_set().non_base() {
        Shadows::new(spec, base.clone())
            .provision(lane, &migrator)
            .await?;
    }
    Ok(base)
}

/// The base schema's connect options (lanes get theirs from `LanePools`).
fn base_options(root: &PgConnectOptions) -> PgConnectOptions {
    root.clone().options([("search_path", BASE_SCHEMA)])
}

/// The handles every service shares; `inventory` is where inventory v1 listens.
fn shared(
    spec: &LaneSpec,
    base: PgConnectOptions,
    redis: &redis::aio::MultiplexedConnection,
    inventory: &str,
) -> Result<Shared, BoxError> {
    Ok(Shared {
        spec: spec.clone(),
        pools: LanePools::connect_lazy(spec, base, PgPoolOptions::new().max_connections(8)),
        cache: LaneRedis::new(redis.clone(), Namespaces::from_spec(spec)),
        hops: Hops::default(),
        http: Client::builder(TokioExecutor::new()).build_http(),
        inventory: LaneRouterLayer::builder(spec, "inventory")
            .base(inventory.parse()?)
            .build()?,
        exposition: Exposition::new()?,
    })
}

async fn serve_inventory(shared: &Shared, addr: &str) -> Result<SocketAddr, BoxError> {
    let inventory = Router::new()
        .route("/reserve", post(reserve))
        .route("/pick", post(reserve))
        .with_state(shared.clone())
        .layer(shared.traced("inventory"))
        .layer(LaneLayer::mesh(shared.spec.propagator()));
    serve_http(inventory, addr).await
}

/// Lane routing to the orders versions, from `lane=url,...` (base required): what the mesh
/// does in Kubernetes, done by the caller where there is no mesh.
fn orders_switch(
    spec: &LaneSpec,
    versions: &str,
) -> Result<LaneSwitch<tonic::transport::Channel>, BoxError> {
    let mut switch = LaneSwitch::builder(spec, "orders");
    for entry in versions.split(',').filter(|e| !e.trim().is_empty()) {
        let (lane, url) = entry
            .split_once('=')
            .ok_or_else(|| format!("orders versions: expected lane=url, got {entry:?}"))?;
        let channel =
            tonic::transport::Endpoint::from_shared(url.trim().to_owned())?.connect_lazy();
        let lane = Lane::new(lane.trim())?;
        switch = if lane.is_base() {
            switch.base(channel)
        } else {
            switch.lane(lane, channel)
        };
    }
    Ok(switch.build()?)
}

/// The gateway: the public edge on `addr`, and an internal listener (mesh: trusts lane marks)
/// that receives the mirror copies.
async fn serve_gateway(
    shared: &Shared,
    orders: LaneSwitch<tonic::transport::Channel>,
    mirror_percent: f64,
    addr: &str,
) -> Result<(SocketAddr, MirrorLayer<HttpClient>), BoxError> {
    let spec = &shared.spec;
    let gray = Lane::new("gray")?;
    let app = || {
        Router::new()
            .route("/checkout", post(checkout))
            .with_state(Gateway {
                shared: shared.clone(),
                orders: orders.clone(),
            })
    };
    let internal = serve_http(
        app().layer(LaneLayer::mesh(spec.propagator())),
        "127.0.0.1:0",
    )
    .await?;
    let mirror = MirrorLayer::new(
        shared.http.clone(),
        spec.propagator(),
        MirrorConfig::new(format!("http://{internal}").parse()?, gray).percent(mirror_percent),
    );
    // The edge's counters (stripped headers, rejected tokens) and the mirror's copies, in the
    // gateway's metrics.
    let edge = spec.edge()?;
    let gateway_metrics = shared.metrics("gateway");
    let copies = mirror.clone();
    gateway_metrics
        .observe_propagator(edge.propagator())
        .observe_mirror(move || {
            let s = copies.stats();
            (s.sent, s.failed, s.skipped_busy + s.skipped_body)
        });
    let exposition = shared.exposition.clone();
    let public = app()
        .layer(
            ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |e: BoxError| async move { (http::StatusCode::BAD_GATEWAY, e.to_string()) },
                ))
                .layer(mirror.clone()),
        )
        .layer(LaneTraceLayer::server("gateway", spec.propagator()).metrics(gateway_metrics))
        .layer(LaneLayer::edge(edge))
        .route(
            "/metrics",
            axum::routing::get(move || async move {
                exposition
                    .render()
                    .unwrap_or_else(|e| format!("# metrics unavailable: {e}\n"))
            }),
        );
    Ok((serve_http(public, addr).await?, mirror))
}

// ---------------------------------------------------------------------------------------------
// Traffic, report, audit.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ordinary,
    Beta,
    Tester,
    Forger,
}

struct Sent {
    request_id: String,
    user_id: String,
    kind: Kind,
    lane: String,
    ok: bool,
}

/// A client of the shop's public gateway: what the demo's traffic and the tests send.
#[derive(Clone, Debug)]
pub struct Customer {
    client: HttpClient,
    gateway: String,
}

/// What the gateway answered a checkout.
#[derive(Clone, Debug)]
pub struct Checkout {
    /// The HTTP status.
    pub status: http::StatusCode,
    /// The lane the edge gave the request (`x-shop-lane`).
    pub lane: String,
    /// The body: the path the request took, hop by hop.
    pub path: String,
}

impl Customer {
    /// A client of the gateway at `gateway` (`host:port`).
    pub fn new(gateway: impl std::fmt::Display) -> Customer {
        Customer {
            client: Client::builder(TokioExecutor::new()).build_http(),
            gateway: gateway.to_string(),
        }
    }

    /// `POST /checkout` of a book, as `user_id`, with `extra` headers (a beta group, a token,
    /// a forged lane ...).
    pub async fn checkout(
        &self,
        request_id: &str,
        user_id: &str,
        extra: &[(&str, &str)],
    ) -> Result<Checkout, BoxError> {
        let mut req = http::Request::post(format!("http://{}/checkout", self.gateway))
            .header("x-request-id", request_id)
            .header("x-user-id", user_id);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let res = self
            .client
            .request(req.body(Full::new(Bytes::from_static(b"book")))?)
            .await?;
        let status = res.status();
        let lane = res
            .headers()
            .get("x-shop-lane")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_owned();
        let path = String::from_utf8(res.into_body().collect().await?.to_bytes().to_vec())?;
        Ok(Checkout { status, lane, path })
    }
}

async fn drive(shop: &mut Shop, run: &str, n: usize) -> Result<Vec<Sent>, BoxError> {
    let key = shop
        .shared
        .spec
        .trust
        .token
        .as_ref()
        .ok_or("the spec has no token settings")?
        .load_key()?;
    let token = key.mint(
        Lane::new("gray")?,
        SystemTime::now() + Duration::from_secs(600),
    );
    let customer = Customer::new(shop.gateway);
    let mut sent = Vec::with_capacity(n);
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        // Stop the gray fulfillment consumer at 40% and bring it back at 70%: base takes its
        // messages over in between, in the gray lane, and hands them back, exactly.
        if chunk.contains(&(n * 4 / 10)) {
            shop.stop_gray_fulfillment().await?;
            eprintln!(
                "  gray fulfillment stopped after {} messages",
                shop.gray_before
            );
        }
        if chunk.contains(&(n * 7 / 10)) {
            shop.start_gray_fulfillment().await?;
            eprintln!("  gray fulfillment restarted");
        }
        let calls = chunk.iter().map(|&i| {
            let kind = match i % 10 {
                0..=5 => Kind::Ordinary,
                6 | 7 => Kind::Beta,
                8 => Kind::Tester,
                _ => Kind::Forger,
            };
            let request_id = format!("{run}-{i}");
            let user_id = format!("user-{}", i % 97);
            let extra = match kind {
                Kind::Ordinary => None,
                Kind::Beta => Some(("x-user-group", "beta".to_owned())),
                Kind::Tester => Some(("x-gray-lane-token", token.clone())),
                Kind::Forger => Some(("x-gray-lane", "gray".to_owned())),
            };
            let customer = customer.clone();
            async move {
                let extra: Vec<(&str, &str)> =
                    extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let r = customer.checkout(&request_id, &user_id, &extra).await?;
                Ok::<_, BoxError>(Sent {
                    request_id,
                    user_id,
                    kind,
                    lane: r.lane,
                    ok: r.status.is_success(),
                })
            }
        });
        for s in futures_join(calls).await {
            sent.push(s?);
        }
        let done = sent.len();
        let width = 30;
        let filled = done * width / n;
        let bar = format!(
            "  traffic [{}{}] {done}/{n}",
            "#".repeat(filled),
            ".".repeat(width - filled)
        );
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprint!("\r{bar}");
            if done == n {
                eprintln!();
            }
        } else if (done - chunk.len()) * 4 / n != done * 4 / n {
            // Logs get a line per quarter, not a wall of carriage returns.
            eprintln!("{bar}");
        }
    }
    eprintln!("  traffic done in {:.1?}", started.elapsed());
    Ok(sent)
}

/// Runs futures concurrently and collects their outputs in order.
async fn futures_join<F: Future + Send + 'static>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("request task panicked"));
    }
    out
}

async fn count(
    pool: &sqlx::PgPool,
    schema: &str,
    table: &str,
    run: &str,
    mirror: bool,
) -> Result<i64, BoxError> {
    let sql = format!(
        "SELECT count(*) FROM {}.{} WHERE request_id LIKE $1 AND mirror = $2",
        quote_ident(schema),
        quote_ident(table)
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(format!("{run}-%"))
        .bind(mirror)
        .fetch_one(pool)
        .await?)
}

async fn ids(
    pool: &sqlx::PgPool,
    schema: &str,
    table: &str,
    run: &str,
    mirror: bool,
) -> Result<Vec<String>, BoxError> {
    let sql = format!(
        "SELECT request_id FROM {}.{} WHERE request_id LIKE $1 AND mirror = $2",
        quote_ident(schema),
        quote_ident(table)
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(format!("{run}-%"))
        .bind(mirror)
        .fetch_all(pool)
        .await?)
}

async fn keys(
    redis: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
) -> Result<Vec<String>, BoxError> {
    let mut out = Vec::new();
    let mut iter: redis::AsyncIter<'_, String> = redis.scan_match(pattern).await?;
    while let Some(k) = iter.next_item().await {
        out.push(k?);
    }
    Ok(out)
}

async fn report(shop: &mut Shop, run: &str, sent: &[Sent]) -> Result<ExitCode, BoxError> {
    let gray = Lane::new("gray")?;
    let schemas = [
        ("base", BASE_SCHEMA.to_owned()),
        (
            "gray",
            shop.shared
                .spec
                .data_names(gray)
                .pg_schema
                .ok_or("the gray lane has no schema")?,
        ),
    ];
    let prefixes = [
        ("base", String::new()),
        (
            "gray",
            String::from_utf8_lossy(
                Namespaces::from_spec(&shop.shared.spec)
                    .prefix(gray)
                    .unwrap_or_default(),
            )
            .into_owned(),
        ),
    ];

    println!("\nrequests per service and version (requested lane -> served lane):");
    let hops = shop.shared.hops.0.lock().unwrap().clone();
    let mut fallbacks = 0;
    for ((service, version, lane, served), n) in &hops {
        let fallback = !lane.starts_with(served.as_str());
        if fallback {
            fallbacks += n;
        }
        println!(
            "  {service:<12} {version}  {lane:<16} -> {served:<5} {n:>5}{}",
            if fallback { "  (fallback)" } else { "" }
        );
    }
    let mirror = shop.mirror.stats();
    println!(
        "mirror copies: sent={} failed={}",
        mirror.sent, mirror.failed
    );

    // The same story in the metrics a dashboard reads (GET /metrics).
    println!("metrics (excerpt of GET /metrics):");
    let text = shop.shared.exposition.render()?;
    for line in text.lines().filter(|l| {
        l.starts_with("graylane_fallbacks_total")
            || l.starts_with("graylane_lane_headers_stripped_total")
            || l.starts_with("graylane_mirror_copies_total")
    }) {
        println!("  {line}");
    }

    println!("kafka messages handled per consumer:");
    let gray_before = shop.gray_before;
    for h in &shop.fulfillment {
        let s: ConsumerStats = h.stats();
        println!(
            "  fulfillment {:<4} own={} fallback={} (replayed {}) skipped={} grants={} releases={}",
            h.lane(),
            s.processed + if h.lane().is_base() { 0 } else { gray_before },
            s.fallback,
            s.replayed,
            s.skipped,
            s.grants,
            s.releases
        );
    }

    println!("rows per schema (this run; live / mirror copies):");
    for (name, schema) in &schemas {
        let mut line = format!("  {name:<5} {schema:<16}");
        for table in ["orders", "reservations", "shipments"] {
            let live = count(&shop.admin, schema, table, run, false).await?;
            let mirrored = count(&shop.admin, schema, table, run, true).await?;
            line.push_str(&format!(" {table}={live}/{mirrored}"));
        }
        println!("{line}");
    }
    println!("keys per namespace (this run):");
    let mut key_sets = Vec::new();
    for (name, prefix) in &prefixes {
        let found = keys(&mut shop.redis, &format!("{prefix}shop:order:{run}-*")).await?;
        println!("  {name:<5} '{prefix}shop:order:*' {}", found.len());
        key_sets.push(found);
    }

    // The audit: every request's data in its lane's storage only, nothing lost.
    let mut lost = 0u64;
    let mut leaks = 0u64;
    let mut rows: Vec<Vec<(String, Vec<String>)>> = Vec::new();
    for (_, schema) in &schemas {
        let mut per_table = Vec::new();
        for table in ["orders", "reservations", "shipments"] {
            per_table.push((
                table.to_owned(),
                ids(&shop.admin, schema, table, run, false).await?,
            ));
        }
        rows.push(per_table);
    }
    let gray_requests = sent.iter().filter(|s| s.lane == "gray").count();
    let edge = shop.shared.spec.edge()?;
    let mirrored = ids(&shop.admin, &schemas[1].1, "orders", run, true).await?;
    for s in sent {
        if !s.ok {
            lost += 1;
            continue;
        }
        if s.kind == Kind::Forger {
            // A forged header must change nothing: the lane is what the edge gives the same
            // request without it (a forger may still be in the sticky 10%).
            let mut honest = SimpleRequest::new("/checkout").header("x-user-id", &s.user_id);
            let expected = edge.admit(&mut honest).context().lane();
            if s.lane != expected.as_str() {
                eprintln!("leak: forged {} landed on {}", s.request_id, s.lane);
                leaks += 1;
            }
        }
        let (home, away) = if s.lane == "gray" { (1, 0) } else { (0, 1) };
        for (t, expected) in [(0, 1), (1, 2), (2, 1)] {
            let found = rows[home][t]
                .1
                .iter()
                .filter(|r| **r == s.request_id)
                .count();
            if found < expected {
                lost += 1;
            }
            if rows[away][t].1.contains(&s.request_id) {
                leaks += 1;
            }
        }
        let key = |i: usize| format!("{}shop:order:{}", prefixes[i].1, s.request_id);
        if !key_sets[home].contains(&key(home)) {
            lost += 1;
        }
        // A mirror copy of a base request writes the gray namespace, as it should; Redis keys
        // do not say whether a mirror wrote them, the orders rows do.
        let mirrored_here = away == 1 && mirrored.contains(&s.request_id);
        if key_sets[away].contains(&key(away)) && !mirrored_here {
            eprintln!(
                "leak: {} ({:?}, lane {}) has key {}",
                s.request_id,
                s.kind,
                s.lane,
                key(away)
            );
            leaks += 1;
        }
    }
    // Mirror copies write shadow (gray) data only.
    for table in ["orders", "reservations", "shipments"] {
        leaks += count(&shop.admin, BASE_SCHEMA, table, run, true).await? as u64;
    }
    println!(
        "lane audit: requests={} gray={} fallbacks={} mirrored={} lost={} leaks={}",
        sent.len(),
        gray_requests,
        fallbacks,
        mirror.sent,
        lost,
        leaks
    );
    Ok(if lost == 0 && leaks == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

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
    while shipped() < shop.published.load(Ordering::Relaxed) {
        if Instant::now() > deadline {
            return Err("kafka queues did not drain in 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// One service per process: `shop --role <role>` (docker-compose, Kubernetes).

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
/// | `GRAYLANE_KAFKA_BROKERS` | orders, fulfillment | required |
///
/// plus `DATABASE_URL`, `REDIS_URL` and `SHOP_MIGRATIONS` as for the demo. Each service prints
/// `shop <role> <version> (lane <lane>) listening on <addr>` once it serves. Schemas are
/// provisioned by `migrate` only, so that services never race each other doing it.
pub async fn run_role(role: &str) -> Result<(), BoxError> {
    if !ROLES.contains(&role) {
        return Err(format!("unknown role {role:?}; roles: {}", ROLES.join(", ")).into());
    }
    let spec = LaneSpec::from_yaml_str(SPEC)?;
    let lane = Lane::new(env_or("GRAYLANE_SERVING_LANE", "base").as_str())?;
    if !spec.lane_set().contains(lane) {
        return Err(format!("GRAYLANE_SERVING_LANE: {lane} is not a lane of the spec").into());
    }
    let version = if lane.is_base() { "v1" } else { "v2" };
    let (admin, root, redis) = connect().await?;
    if role == "migrate" {
        provision(&spec, &admin, &root).await?;
        println!("shop migrate: schemas {BASE_SCHEMA} and its shadows are ready");
        return Ok(());
    }
    // The spec's port, which the generated Kubernetes Service targets.
    let port = spec.service(role).map_or(8080, |s| s.port);
    let listen = env_or("SHOP_LISTEN", &format!("0.0.0.0:{port}"));
    let inventory = env_or("SHOP_INVENTORY_URL", "http://inventory:8080");
    let shared = shared(&spec, base_options(&root), &redis, &inventory)?;
    let broker_config = || -> Result<rdkafka::ClientConfig, BoxError> {
        match kafka()? {
            (config, None, _) => Ok(config),
            _ => Err(format!("role {role} needs GRAYLANE_KAFKA_BROKERS (a shared broker)").into()),
        }
    };
    // Standard output is line-buffered: whoever waits for this line gets it at once.
    let serving = |addr: SocketAddr, version: &str, lane: Lane| {
        println!("shop {role} {version} (lane {lane}) listening on {addr}");
    };
    let mut consumer = None;
    match role {
        "inventory" => serving(serve_inventory(&shared, &listen).await?, "v1", Lane::BASE),
        "orders" => {
            let orders = Orders {
                version,
                shared: shared.clone(),
                producer: LaneProducer::new(broker_config()?.create()?, spec.propagator()),
                published: Arc::default(),
            };
            observe_refusals(&shared);
            serving(serve_orders(orders, lane, &listen).await?, version, lane);
        }
        "fulfillment" => {
            consumer = Some(spawn_fulfillment(&shared, &broker_config()?, lane).await?);
            println!("shop fulfillment {version} (lane {lane}) consuming {TOPIC}");
        }
        _ => {
            let versions = env_or(
                "SHOP_ORDERS_URLS",
                "base=http://orders-v1:50051,gray=http://orders-v2:50051",
            );
            let percent: f64 = env_or("SHOP_MIRROR_PERCENT", "10")
                .parse()
                .map_err(|e| format!("SHOP_MIRROR_PERCENT: {e}"))?;
            let switch = orders_switch(&spec, &versions)?;
            let (addr, _mirror) = serve_gateway(&shared, switch, percent, &listen).await?;
            serving(addr, "v1", Lane::BASE);
        }
    }
    shutdown_signal().await?;
    // A lane consumer that stops gracefully hands its partitions back at once.
    if let Some(c) = consumer {
        c.stop().await?;
    }
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

async fn run() -> Result<ExitCode, BoxError> {
    let serve = std::env::args().any(|a| a == "--serve");
    let n: usize = std::env::var("SHOP_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let mut shop = start(Options {
        serve,
        ..Options::default()
    })
    .await?;
    let run = format!(
        "r{}",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)?
            .as_secs()
    );
    eprintln!(
        "shop up: gateway http://{}/checkout, run {run}, {n} requests",
        shop.gateway
    );
    let sent = drive(&mut shop, &run, n).await?;
    wait_for_kafka(&shop).await?;
    let code = report(&mut shop, &run, &sent).await?;
    if serve {
        println!(
            "\nserving on http://{} (Ctrl-C to stop); try:",
            shop.gateway
        );
        println!(
            "  curl -s -XPOST http://{}/checkout -H 'x-request-id: demo-1' -d book",
            shop.gateway
        );
        println!(
            "  curl -s -XPOST http://{}/checkout -H 'x-request-id: demo-2' -H 'x-user-group: beta' -d book",
            shop.gateway
        );
        println!(
            "  curl -s -XPOST http://{}/checkout -H 'x-request-id: demo-3' -H 'x-gray-lane: gray' -d book",
            shop.gateway
        );
        std::future::pending::<()>().await;
    }
    shop.shutdown().await?;
    Ok(code)
}

/// The demo, as `cargo run -p shop` runs it: exit code 0 when the audit is clean, 1 when not,
/// 2 when the shop could not run (with a message saying why). With `--role <role>`, one
/// service instead (see [`run_role`]).
pub async fn run_demo() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.iter().position(|a| a == "--role") {
        Some(i) => match args.get(i + 1) {
            Some(role) => run_role(role).await.map(|()| ExitCode::SUCCESS),
            None => Err(format!("--role needs one of: {}", ROLES.join(", ")).into()),
        },
        None => run().await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shop: {e}");
            ExitCode::from(2)
        }
    }
}
