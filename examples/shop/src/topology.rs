//! The whole shop in one process, on loopback: [`start`] binds every listener, builds the
//! [`App`] with the addresses that serve, then serves inventory v1, orders v1 and v2, the
//! gateway (public edge and internal mirror target) and runs fulfillment v1 and v2.
//!
//! Bind before you advertise: a client is only ever built with an address that is already
//! listening, so there is no placeholder to replace and no window in which a request could
//! go to the wrong place.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use graylane::Lane;
use graylane::http::{BoxError, MirrorLayer};
use graylane::kafka::ConsumerHandle;
use graylane::spec::LaneSpec;
use graylane_testkit::kafka::MockBroker;
use graylane_view::{Source, View, ViewConfig};
use tokio::net::TcpListener;

use crate::app::{App, HttpClient, Peers, version_of};
use crate::demo::hops::{self, Hops};
use crate::infra::{self, PARTITIONS, spawn_http};
use crate::services::orders::{self, Orders};
use crate::services::{fulfillment, gateway, inventory};

/// How to start the shop.
#[derive(Clone, Debug)]
pub struct Options {
    /// Bind the gateway to `SHOP_ADDR` or `127.0.0.1:8080` (otherwise an ephemeral port).
    pub serve: bool,
    /// Serve the live lane view at the gateway's `/lanes/` (on with `serve`).
    pub view: bool,
    /// The share of gateway traffic mirrored to the gray lane, 0 to 100.
    pub mirror_percent: f64,
    /// Use the embedded broker even when `GRAYLANE_KAFKA_BROKERS` names one: for several shops
    /// in one process (each would otherwise join the same consumer groups on the real broker
    /// and share its partitions).
    pub embedded_kafka: bool,
    /// The spec file to follow while running (a release edits it); default: `GRAYLANE_SPEC`,
    /// else the embedded spec.
    pub spec: Option<std::path::PathBuf>,
    /// orders v2 fails one order in this many (`INTERNAL`, before it stores anything); 0:
    /// never. What `shop release --faulty-v2` releases.
    pub faulty_v2: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            serve: false,
            view: false,
            mirror_percent: 10.0,
            embedded_kafka: false,
            spec: None,
            faulty_v2: 0,
        }
    }
}

/// The running shop: every service on loopback, base and gray versions.
pub struct Shop {
    pub(crate) app: Arc<App>,
    pub(crate) hops: Hops,
    gateway: SocketAddr,
    pub(crate) mirror: MirrorLayer<HttpClient>,
    kafka: rdkafka::ClientConfig,
    _broker: Option<MockBroker>,
    pub(crate) fulfillment: Vec<ConsumerHandle>,
    /// Messages handled by gray consumers that have since stopped (their handles are gone).
    pub(crate) gray_before: u64,
    redis: redis::aio::MultiplexedConnection,
    admin: sqlx::PgPool,
    /// The orders deployment of each mirror lane (Istio's mirror target), pinned to it.
    pinned_orders: Vec<(Lane, SocketAddr)>,
    /// The lane view's poller, while the shop runs.
    _view: Option<View>,
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

    /// The Kafka bootstrap servers the shop runs on (its embedded broker's, or the one
    /// `GRAYLANE_KAFKA_BROKERS` names).
    pub fn kafka_bootstrap(&self) -> String {
        self.kafka
            .get("bootstrap.servers")
            .unwrap_or_default()
            .to_owned()
    }

    /// Where the orders deployment of the mirror lane `lane` listens (gRPC), if the spec has
    /// one: where Istio sends its mirrored copies.
    pub fn pinned_orders(&self, lane: Lane) -> Option<SocketAddr> {
        self.pinned_orders
            .iter()
            .find(|(l, _)| *l == lane)
            .map(|(_, a)| *a)
    }

    /// Whether the gray `fulfillment` consumer runs.
    pub fn gray_fulfillment_runs(&self) -> bool {
        self.fulfillment.iter().any(|h| !h.lane().is_base())
    }

    /// The shop's lane spec.
    pub fn spec(&self) -> &LaneSpec {
        &self.app.spec
    }

    /// A pool on the database holding the base schema (`shop`) and the shadows.
    pub fn admin(&self) -> &sqlx::PgPool {
        &self.admin
    }

    /// A plain Redis connection (no lane namespacing).
    pub fn redis(&self) -> redis::aio::MultiplexedConnection {
        self.redis.clone()
    }

    /// Stops the gray `fulfillment` consumer gracefully, and waits until base has taken its
    /// partitions back (it handles the gray messages from then on). Base releases a stopped
    /// lane within a tick, unless other instances of the lane still look live: right after
    /// base starts, those of earlier runs whose heartbeats it read on a real broker's control
    /// topic count as live until their lease has passed.
    pub async fn stop_gray_fulfillment(&mut self) -> Result<(), BoxError> {
        let gray = Lane::new("gray")?;
        if let Some(i) = self.fulfillment.iter().position(|h| h.lane() == gray) {
            let stats = self.fulfillment.remove(i).stop().await?;
            self.gray_before += stats.processed;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self
            .fulfillment
            .iter()
            .any(|h| h.lane().is_base() && h.stats().granted > 0)
        {
            if Instant::now() > deadline {
                return Err("base did not take the gray partitions back in 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Starts the gray `fulfillment` consumer (again).
    pub async fn start_gray_fulfillment(&mut self) -> Result<(), BoxError> {
        let gray = Lane::new("gray")?;
        let handle = fulfillment::spawn(&self.app, &self.kafka, gray, &self.hops).await?;
        self.fulfillment.push(handle);
        Ok(())
    }

    /// Waits until the fulfillment consumers are ready for traffic: every consumer's group has
    /// given it its partitions, and base has granted every partition to the gray consumer when
    /// one runs. Right after [`start`](Self::start_gray_fulfillment) gray messages are still
    /// base's, and on a broker with an initial rebalance delay (Apache Kafka's default: 3 s)
    /// a group takes that long to form.
    pub async fn fulfillment_ready(&self) -> Result<(), BoxError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let all = PARTITIONS as u64;
        loop {
            let formed = self.fulfillment.iter().all(|h| h.stats().partitions == all);
            // A grant may be older than this run: what counts is that the gray consumer holds
            // every partition now.
            let granted = self
                .fulfillment
                .iter()
                .filter(|h| !h.lane().is_base())
                .all(|h| h.stats().granted == all);
            if formed && granted {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "fulfillment not ready in 30 s (groups formed: {formed}, gray granted: \
                     {granted})"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the consumers gracefully, lane consumers first.
    pub async fn shutdown(mut self) -> Result<(), BoxError> {
        // Lane consumers first: base, still running, takes their partitions back.
        self.fulfillment.sort_by_key(|h| h.lane().is_base());
        for h in self.fulfillment.drain(..) {
            h.stop().await?;
        }
        Ok(())
    }
}

/// Every listener of the shop, bound before any client is built.
struct Listeners {
    inventory: TcpListener,
    orders_v1: TcpListener,
    orders_v2: TcpListener,
    /// The gateway's mirror target, inside the mesh.
    internal: TcpListener,
    /// The gateway, the edge.
    public: TcpListener,
}

impl Listeners {
    async fn bind(options: &Options) -> Result<Listeners, BoxError> {
        let loopback = "127.0.0.1:0";
        let public = std::env::var("SHOP_ADDR").unwrap_or_else(|_| {
            if options.serve {
                "127.0.0.1:8080"
            } else {
                loopback
            }
            .into()
        });
        Ok(Listeners {
            inventory: TcpListener::bind(loopback).await?,
            orders_v1: TcpListener::bind(loopback).await?,
            orders_v2: TcpListener::bind(loopback).await?,
            internal: TcpListener::bind(loopback).await?,
            public: TcpListener::bind(&public).await?,
        })
    }

    /// Where the services the others call listen.
    fn peers(&self) -> Result<Peers, BoxError> {
        let (v1, v2) = (self.orders_v1.local_addr()?, self.orders_v2.local_addr()?);
        Ok(Peers {
            inventory: format!("http://{}", self.inventory.local_addr()?),
            orders: format!("base=http://{v1},gray=http://{v2}"),
        })
    }
}

/// Starts every service of the shop (see the crate docs), after provisioning the schemas.
pub async fn start(options: Options) -> Result<Shop, BoxError> {
    let live = crate::app::live_spec(options.spec.as_deref())?;
    let spec = live.0.current().spec().clone();
    let gray = Lane::new("gray")?;
    let (admin, root, redis) = infra::connect().await?;
    let base = infra::provision(&spec, &admin, &root).await?;
    let listeners = Listeners::bind(&options).await?;
    // Istio's mirror targets: orders of each mirror lane of the spec, pinned to it (`App::mesh`).
    let mut peers = listeners.peers()?;
    let mut mirror_orders = Vec::new();
    for lane in spec
        .lanes
        .iter()
        .filter(|l| l.mirror && l.services.iter().any(|s| s == "orders"))
    {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        peers
            .orders
            .push_str(&format!(",{}=http://{}", lane.name, listener.local_addr()?));
        mirror_orders.push((lane.name, listener));
    }
    let app = Arc::new(App::new(live, base, redis.clone(), &peers)?);
    let hops = Hops::default();

    // inventory v1 only.
    spawn_http(
        listeners.inventory,
        inventory::router(&app, hops.layer("inventory", "v1")),
    );

    // Kafka, then orders v1 and v2.
    let (kafka, broker, bootstrap) = infra::broker(options.embedded_kafka).await?;
    eprintln!("kafka: {bootstrap}");
    let producer = app.producer(&kafka)?;
    for (listener, version, lane) in [
        (listeners.orders_v1, "v1", Lane::BASE),
        (listeners.orders_v2, "v2", gray),
    ] {
        // Faults, when asked for, in v2 only: the version under release.
        let faults = if lane.is_base() { 0 } else { options.faulty_v2 };
        let orders = Orders::new(&app, version, producer.clone(), faults);
        tokio::spawn(orders::serve(
            listener,
            orders,
            lane,
            hops.layer("orders", version),
        ));
    }
    let mut pinned_orders = Vec::new();
    for (lane, listener) in mirror_orders {
        pinned_orders.push((lane, listener.local_addr()?));
        let orders = Orders::new(&app, version_of(lane), producer.clone(), 0);
        tokio::spawn(orders::serve(
            listener,
            orders,
            lane,
            hops.layer("orders", version_of(lane)),
        ));
    }
    orders::observe_refusals(&app);

    // fulfillment: base first (it grants the gray lane its partitions), then gray.
    let fulfillment = vec![
        fulfillment::spawn(&app, &kafka, Lane::BASE, &hops).await?,
        fulfillment::spawn(&app, &kafka, gray, &hops).await?,
    ];

    // The gateway: the mirror target inside the mesh, then the edge.
    let mirror = gateway::mirror(
        &app,
        listeners.internal.local_addr()?,
        options.mirror_percent,
    )?;
    spawn_http(
        listeners.internal,
        gateway::internal(&app, hops.layer("gateway", "v1")),
    );
    let gateway = listeners.public.local_addr()?;
    let mut public = gateway::public(&app, hops.layer("gateway", "v1"), mirror.clone());
    // The lane view reads the process's metrics as a user's view reads a service's: over HTTP.
    let view = (options.view || options.serve).then(|| {
        View::start(
            ViewConfig::new(Source::Scrape(vec![format!("http://{gateway}/metrics")]))
                .spec(spec.clone()),
        )
    });
    if let Some(view) = &view {
        public = public.merge(view.router());
    }
    spawn_http(listeners.public, hops::show(public));
    Ok(Shop {
        app,
        hops,
        gateway,
        mirror,
        kafka,
        _broker: broker,
        fulfillment,
        gray_before: 0,
        redis,
        admin,
        pinned_orders,
        _view: view,
    })
}
