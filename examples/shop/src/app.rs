//! [`App`]: what a shop process builds once, at start-up, and every service shares.
//!
//! - the lane spec, live ([`LiveSpec`]): the process's one [`Propagator`], and an edge per
//!   revision on it. Every layer, client, producer and consumer below uses that propagator, so
//!   its counters (lane marks stripped at the edge, unknown lanes on the wire) are the
//!   process's, and the metrics report them. With `GRAYLANE_SPEC` naming a file, the process
//!   follows it: an edit of the coloring (a release step) applies without a restart;
//! - the lane-routed data handles: a PostgreSQL pool per lane ([`LanePools`]), one Redis
//!   connection that namespaces keys by lane ([`LaneRedis`]);
//! - the transports to the other services, with the lane on every request and the route to
//!   the lane's version (the typed clients of `services` wrap them where they call);
//! - the metrics (OpenTelemetry, served as Prometheus text at the gateway's `GET /metrics`).
//!
//! Handlers get an `Arc<App>`: nothing in it is built per request.

use bytes::Bytes;
use graylane::http::{
    BoxError, LaneLayer, LaneRouter, LaneRouterLayer, LaneSwitch, PropagateLane, PropagateLaneLayer,
};
use std::sync::{Arc, Mutex, PoisonError};

use graylane::kafka::{ConsumerWatch, LaneConsumer, LaneConsumerBuilder, LaneProducer};
use graylane::live::{LiveSpec, Watcher};
use graylane::otel::prometheus::Exposition;
use graylane::otel::{AuditCounts, ConsumerCounts, LaneMetrics, LaneTrace, LaneTraceLayer};
use graylane::redis::{LaneRedis, Namespaces};
use graylane::spec::{LaneSpec, SpecError};
use graylane::sqlx::LanePools;
use graylane::{Lane, Propagator};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry::metrics::MeterProvider as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tonic::transport::{Channel, Endpoint};
use tower::ServiceBuilder;

use crate::demo::hops::{Trail, TrailLayer};

/// The shop's lane spec: coloring, routing, data naming and the Istio manifests all come
/// from this one file.
pub(crate) const SPEC: &str = include_str!("../graylane.yaml");

/// A plain HTTP/1 client; lanes are added by the layers around it.
pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Redis, with every key in the current lane's namespace.
pub(crate) type Cache = LaneRedis<redis::aio::MultiplexedConnection>;

/// How a service calls another: a client span and the call counted by callee and lane (the
/// lane view's edges), the current lane onto the request, the demo's hop trail read off the
/// response (see [`crate::demo::hops`]), then the route to the lane's version.
type Call<S> = LaneTrace<PropagateLane<Trail<S>>>;

/// The transport of [`App::inventory`]: inventory has no gray version, so every lane is
/// routed to v1 (and keeps its lane there).
pub(crate) type InventoryTransport = Call<LaneRouter<HttpClient>>;

/// The transport of [`App::orders`]: one gRPC channel per lane's version.
pub(crate) type OrdersTransport = Call<LaneSwitch<Channel>>;

/// A consumer's counts as the metrics report them.
fn consumer_counts(watch: &ConsumerWatch) -> ConsumerCounts {
    let s = watch.stats();
    let mut c = ConsumerCounts::new(watch.lane(), watch.instance());
    (c.own, c.fallback, c.replayed, c.skipped) = (s.processed, s.fallback, s.replayed, s.skipped);
    (c.grants, c.releases) = (s.grants, s.releases);
    (c.partitions, c.granted) = (s.partitions, s.granted);
    (c.unknown, c.retries, c.resumed, c.forgotten) = (s.unknown, s.retries, s.resumed, s.forgotten);
    c
}

/// Inventory as each of its callers calls it: the caller names its client side.
#[derive(Clone)]
pub(crate) struct InventoryCallers {
    pub(crate) orders: InventoryTransport,
    pub(crate) fulfillment: InventoryTransport,
}

/// The shop's spec.
pub(crate) fn spec() -> Result<LaneSpec, SpecError> {
    LaneSpec::from_yaml_str(SPEC)
}

/// The spec the process follows: the file `file` names, else the one `GRAYLANE_SPEC` names,
/// watched every second (`GRAYLANE_SPEC_POLL_MS`); else the embedded one, as it is.
pub(crate) fn live_spec(
    file: Option<&std::path::Path>,
) -> Result<(LiveSpec, Option<Watcher>), BoxError> {
    let from_env = std::env::var("GRAYLANE_SPEC")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .map(|p| std::path::PathBuf::from(p.trim()));
    match file.map(std::path::Path::to_path_buf).or(from_env) {
        Some(path) => {
            let live = LiveSpec::from_path(&path)?;
            let poll = std::env::var("GRAYLANE_SPEC_POLL_MS")
                .ok()
                .map(|ms| ms.parse::<u64>())
                .transpose()
                .map_err(|e| format!("GRAYLANE_SPEC_POLL_MS: {e}"))?
                .unwrap_or(1000);
            let watcher = live.watch(&path, std::time::Duration::from_millis(poll));
            Ok((live, Some(watcher)))
        }
        None => Ok((LiveSpec::new(spec()?)?, None)),
    }
}

/// The version of a service that serves `lane`: v1 is base, v2 the gray lane's.
pub(crate) fn version_of(lane: Lane) -> &'static str {
    if lane.is_base() { "v1" } else { "v2" }
}

/// Where the other services listen. Known before any client is built: the shop binds its
/// listeners first and builds the [`App`] with their real addresses.
#[derive(Clone, Debug)]
pub(crate) struct Peers {
    /// inventory v1, as a URL (`http://host:port`).
    pub(crate) inventory: String,
    /// The orders versions, `lane=url,...` (base required): what the mesh does in Kubernetes,
    /// done by the caller where there is no mesh.
    pub(crate) orders: String,
}

/// What every service of the process shares. See the module docs.
pub(crate) struct App {
    /// The lane spec the process started with: what it cannot change while it runs (lanes,
    /// services, data names) is read here.
    pub(crate) spec: LaneSpec,
    /// The spec in force: the trust boundary (stripping, tokens, coloring rules) of each
    /// revision.
    pub(crate) live: LiveSpec,
    /// Follows `GRAYLANE_SPEC`, while the process runs.
    _watcher: Option<Watcher>,
    /// The process's one propagator (the live spec's).
    pub(crate) propagator: Propagator,
    /// A pool per lane: the base schema, and each lane's shadow schema.
    pub(crate) pools: LanePools,
    /// Redis, namespaced by lane.
    pub(crate) cache: Cache,
    /// The plain HTTP client the inventory client and the mirror are built on.
    pub(crate) http: HttpClient,
    /// To inventory v1, for every lane, per caller
    /// (`InventoryClient::new(app.inventory.orders.clone())`).
    pub(crate) inventory: InventoryCallers,
    /// To orders (from the gateway), the version of the request's lane
    /// (`OrdersClient::new(app.orders.clone())`).
    pub(crate) orders: OrdersTransport,
    /// The lane metrics, as Prometheus text.
    pub(crate) exposition: Exposition,
    /// Every Kafka lane consumer the process has run, stopped ones included (their final
    /// counts stay in the metrics: counters never go down).
    pub(crate) consumers: Arc<Mutex<Vec<ConsumerWatch>>>,
    /// The latest leak audit, reported as `graylane.audit.*`.
    pub(crate) audit: Arc<Mutex<AuditCounts>>,
    /// Keeps the consumers' and the audit's observable instruments registered.
    _observed: LaneMetrics,
}

/// Lane routing to the orders versions, from `lane=url,...` (base required): what the mesh
/// does in Kubernetes, done by the caller where there is no mesh.
fn orders_switch(spec: &LaneSpec, versions: &str) -> Result<LaneSwitch<Channel>, BoxError> {
    let mut switch = LaneSwitch::builder(spec, "orders");
    for entry in versions.split(',').filter(|e| !e.trim().is_empty()) {
        let (lane, url) = entry
            .split_once('=')
            .ok_or_else(|| format!("orders versions: expected lane=url, got {entry:?}"))?;
        let channel = Endpoint::from_shared(url.trim().to_owned())?.connect_lazy();
        let lane = Lane::new(lane.trim())?;
        switch = if lane.is_base() {
            switch.base(channel)
        } else {
            switch.lane(lane, channel)
        };
    }
    Ok(switch.build()?)
}

impl App {
    /// Builds the shared state of a process: `db` connects to the base schema, `peers` says
    /// where the other services listen. Connections are made lazily, on first use.
    pub(crate) fn new(
        (live, watcher): (LiveSpec, Option<Watcher>),
        db: PgConnectOptions,
        redis: redis::aio::MultiplexedConnection,
        peers: &Peers,
    ) -> Result<App, BoxError> {
        let spec = live.current().spec().clone();
        let propagator = live.propagator().clone();
        let http: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let exposition = Exposition::new()?;
        let meter = exposition.provider().meter("graylane");
        let call = |caller: &'static str, callee: &'static str| {
            ServiceBuilder::new()
                .layer(
                    LaneTraceLayer::client(caller, propagator.clone())
                        .peer(callee)
                        .metrics(LaneMetrics::new(&meter, caller)),
                )
                .layer(PropagateLaneLayer::new(propagator.clone()))
                .layer(TrailLayer)
        };
        let inventory = LaneRouterLayer::builder(&spec, "inventory")
            .base(peers.inventory.parse()?)
            .build()?;
        let inventory = InventoryCallers {
            orders: call("orders", "inventory")
                .layer(inventory.clone())
                .service(http.clone()),
            fulfillment: call("fulfillment", "inventory")
                .layer(inventory)
                .service(http.clone()),
        };
        let orders = call("gateway", "orders").service(orders_switch(&spec, &peers.orders)?);
        let consumers: Arc<Mutex<Vec<ConsumerWatch>>> = Arc::default();
        let audit: Arc<Mutex<AuditCounts>> = Arc::default();
        let observed = LaneMetrics::new(&meter, "fulfillment");
        let (list, latest) = (consumers.clone(), audit.clone());
        observed
            .observe_consumers(move || {
                let list = list.lock().unwrap_or_else(PoisonError::into_inner);
                list.iter().map(consumer_counts).collect()
            })
            .observe_audit(move || {
                latest
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            });
        Ok(App {
            pools: LanePools::connect_lazy(&spec, db, PgPoolOptions::new().max_connections(8)),
            cache: LaneRedis::new(redis, Namespaces::from_spec(&spec)),
            http,
            inventory,
            orders,
            exposition,
            consumers,
            audit,
            _observed: observed,
            propagator,
            live,
            _watcher: watcher,
            spec,
        })
    }

    /// The lane metrics of `service`, on the shop's meter provider.
    pub(crate) fn metrics(&self, service: &'static str) -> LaneMetrics {
        LaneMetrics::new(&self.exposition.provider().meter("graylane"), service)
    }

    /// Spans and metrics for `service`'s server side.
    pub(crate) fn traced(&self, service: &'static str) -> LaneTraceLayer {
        LaneTraceLayer::server(service, self.propagator.clone()).metrics(self.metrics(service))
    }

    /// The server layer of a service behind the edge, whose deployment serves `lane`: the
    /// lane on the wire is trusted — unless `lane` is a mirror lane, whose deployments are
    /// pinned to it (`LaneLayer::pinned`).
    pub(crate) fn mesh(&self, serving: Lane) -> LaneLayer {
        let layer = LaneLayer::mesh(self.propagator.clone()).serving(serving);
        // A mirror lane's deployment takes Envoy's copies, which carry no lane: pinned.
        if self.spec.lane(serving).is_some_and(|l| l.mirror) {
            layer.pinned(serving)
        } else {
            layer
        }
    }

    /// A Kafka producer that stamps every record with the current lane.
    pub(crate) fn producer(&self, kafka: &rdkafka::ClientConfig) -> Result<LaneProducer, BoxError> {
        Ok(LaneProducer::new(kafka.create()?, self.propagator.clone()))
    }

    /// A lane-aware consumer of `group`, with the spec's lane groups
    /// (`data.kafka_group_suffix`).
    pub(crate) fn consumer(
        &self,
        kafka: &rdkafka::ClientConfig,
        group: &str,
    ) -> LaneConsumerBuilder {
        LaneConsumer::from_spec(&self.spec, kafka.clone(), group)
            .propagator(self.propagator.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_orders_switch_takes_lane_url_pairs_with_base() {
        let spec = spec().unwrap();
        assert!(orders_switch(&spec, "base=http://a:1, gray=http://b:2").is_ok());
        let err = orders_switch(&spec, "http://a:1").unwrap_err();
        assert!(err.to_string().contains("expected lane=url"), "{err}");
        assert!(
            orders_switch(&spec, "gray=http://b:2").is_err(),
            "base is required"
        );
    }
}
