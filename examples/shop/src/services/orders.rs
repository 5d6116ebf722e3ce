//! orders v1 / v2 (gRPC, `shop.Orders/Place`): stores the order, caches its status, reserves
//! its stock at inventory and publishes it for fulfillment. v2's visible change: free express
//! shipping. `shop.Quotes/Quote` on the same deployment prices an item without storing
//! anything: its shipping shows v2's change, and each quote has a fresh id and time.
//!
//! The server is a `unary_fn` over hand-written prost messages (no protoc); [`OrdersClient`]
//! is the typed client beside it, shaped like a generated one: callers never spell a method
//! path or a codec.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use graylane::Lane;
use graylane::grpc::LaneRequestExt;
use graylane::grpc::unary::{ServiceName, UnaryClient, unary_fn};
use graylane::http::BoxError;
use graylane::kafka::LaneProducer;
use rdkafka::producer::FutureRecord;
use redis::AsyncCommands;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

use super::inventory::{InventoryClient, Purpose};
use super::{hidden, is_unknown_item, quoted};
use crate::app::App;
use crate::demo::hops::HopLayer;
use crate::infra::TOPIC;

/// An order, as the gateway places it.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Order {
    /// The client's id of the request (see [`is_request_id`]).
    #[prost(string, tag = "1")]
    pub(crate) request_id: String,
    /// Who orders.
    #[prost(string, tag = "2")]
    pub(crate) user_id: String,
    /// What: an item of the `stock` table.
    #[prost(string, tag = "3")]
    pub(crate) item: String,
}

/// What a placed order gets back.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Receipt {
    /// How it ships (tag 1 is reserved).
    #[prost(string, tag = "2")]
    pub(crate) shipping: String,
}

/// What a quote is asked for.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct QuoteRequest {
    /// The item.
    #[prost(string, tag = "1")]
    pub(crate) item: String,
}

/// A quote: the price and shipping of an item, as of when it was made.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Quote {
    #[prost(string, tag = "1")]
    pub(crate) item: String,
    #[prost(uint32, tag = "2")]
    pub(crate) price_cents: u32,
    #[prost(string, tag = "3")]
    pub(crate) shipping: String,
    /// A fresh id for each quote.
    #[prost(string, tag = "4")]
    pub(crate) quote_id: String,
    /// When it was made: seconds since the Unix epoch, to the nanosecond.
    #[prost(string, tag = "5")]
    pub(crate) quoted_at: String,
}

/// The gRPC service name of orders, for `unary_fn`.
struct OrdersName;

impl ServiceName for OrdersName {
    const NAME: &'static str = "shop.Orders";
}

/// The gRPC service of quotes, served by orders.
struct QuotesName;

impl ServiceName for QuotesName {
    const NAME: &'static str = "shop.Quotes";
}

/// The one method of `shop.Orders`.
const PLACE: &str = "/shop.Orders/Place";

/// The one method of `shop.Quotes`.
const QUOTE: &str = "/shop.Quotes/Quote";

/// Where the quotes API's paths start (the demo counts its requests apart from orders').
pub(crate) const QUOTES_PATH: &str = "/shop.Quotes/";

/// What every item costs (the shop's prices are not the point of the demo).
const PRICE_CENTS: u32 = 1299;

/// What a request id may be: the gateway and orders both hold requests to it.
pub(crate) const REQUEST_ID_RULE: &str = "1 to 64 ASCII letters, digits, '-', '_', '.' or ':'";

/// Whether `id` follows [`REQUEST_ID_RULE`]. Request ids go into logs, keys and message
/// bodies: nothing there needs quoting.
pub(crate) fn is_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// A typed client of `shop.Orders` over any gRPC transport `S`: a `Channel`, or the
/// [`App::orders`] stack (lane propagation, a lane switch over one channel per version).
/// Cheap to make: wrap the transport where you call.
#[derive(Clone, Debug)]
pub(crate) struct OrdersClient<S>(UnaryClient<S>);

impl<S> OrdersClient<S> {
    /// A client over `transport`.
    pub(crate) fn new(transport: S) -> OrdersClient<S> {
        OrdersClient(UnaryClient::new(transport))
    }
}

impl<S> OrdersClient<S>
where
    S: tonic::client::GrpcService<tonic::body::Body>,
    S::Error: Into<BoxError>,
    S::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    <S::ResponseBody as http_body::Body>::Error: Into<BoxError> + Send,
{
    /// `shop.Orders/Place`.
    pub(crate) async fn place(&mut self, order: Order) -> Result<Receipt, Status> {
        let receipt = self.0.call(PLACE, order).await?;
        Ok(receipt.into_inner())
    }

    /// `shop.Quotes/Quote`.
    pub(crate) async fn quote(&mut self, item: String) -> Result<Quote, Status> {
        let quote = self.0.call(QUOTE, QuoteRequest { item }).await?;
        Ok(quote.into_inner())
    }
}

/// One version of the orders service.
#[derive(Clone)]
pub(crate) struct Orders {
    app: Arc<App>,
    version: &'static str,
    producer: LaneProducer,
    /// Publishes counted by topic and lane: the lane view's edge to the topic.
    publishes: graylane::otel::LaneMetrics,
    /// Fail one order in this many (0: never), and the orders so far.
    fail_every: u64,
    placed: Arc<std::sync::atomic::AtomicU64>,
}

impl Orders {
    /// `version` of orders, publishing with `producer`; failing one order in `fail_every`
    /// (0: never).
    pub(crate) fn new(
        app: &Arc<App>,
        version: &'static str,
        producer: LaneProducer,
        fail_every: u64,
    ) -> Orders {
        Orders {
            app: app.clone(),
            version,
            producer,
            publishes: app.metrics("orders"),
            fail_every,
            placed: Arc::default(),
        }
    }

    /// `shop.Orders/Place`.
    async fn place(self, req: Request<Order>) -> Result<Response<Receipt>, Status> {
        let mirror = req.lane_context().is_mirror();
        let order = req.into_inner();
        if !is_request_id(&order.request_id) {
            return Err(Status::invalid_argument(format!(
                "request_id: expected {REQUEST_ID_RULE}, got {}",
                quoted(&order.request_id)
            )));
        }
        let service = format!("orders {}", self.version);
        let n = self
            .placed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.fail_every > 0 && n.is_multiple_of(self.fail_every) {
            // A fault of the version under release, before anything is stored.
            return Err(Status::internal(format!(
                "{service}: a fault of this version (shop release --faulty-v2)"
            )));
        }
        let internal =
            |what: &str, e: &dyn std::fmt::Display| Status::internal(hidden(&service, what, e));
        // The application's code: no lane in sight beyond the handles it was given.
        let pool = self
            .app
            .pools
            .current()
            .map_err(|e| internal("no database for the lane", &e))?;
        let stored = sqlx::query(
            "INSERT INTO orders (request_id, user_id, item, version, mirror) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&order.request_id)
        .bind(&order.user_id)
        .bind(&order.item)
        .bind(self.version)
        .bind(mirror)
        .execute(pool)
        .await;
        match stored {
            Err(e) if is_unknown_item(&e) => return Err(unknown_item(pool, &order.item).await),
            Err(e) => return Err(internal("could not store the order", &e)),
            Ok(_) => {}
        }
        let mut cache = self.app.cache.clone();
        cache
            .set::<_, _, ()>(format!("shop:order:{}", order.request_id), self.version)
            .await
            .map_err(|e| internal("could not cache the order's status", &e))?;
        InventoryClient::new(self.app.inventory.orders.clone())
            .reserve(Purpose::Order, &order.request_id, &order.item)
            .await
            .map_err(|e| Status::unavailable(hidden(&service, "could not reserve stock", &e)))?;
        // Keyed by request id (its partition), the item for fulfillment to pick.
        let record = FutureRecord::to(TOPIC)
            .key(&order.request_id)
            .payload(&order.item);
        let started = std::time::Instant::now();
        let sent = self.producer.send(record, Duration::from_secs(10)).await;
        self.publishes.record_to(
            graylane::otel::Kind::Client,
            TOPIC,
            graylane::LaneContext::current(),
            started.elapsed(),
            sent.is_err(),
        );
        sent.map_err(|(e, _)| internal("could not publish the order", &e))?;
        Ok(Response::new(Receipt {
            shipping: self.shipping().into(),
        }))
    }

    /// `shop.Quotes/Quote`: nothing stored, nothing published.
    async fn quote(self, req: Request<QuoteRequest>) -> Result<Response<Quote>, Status> {
        let item = req.into_inner().item;
        if item.is_empty() || item.len() > 64 {
            return Err(Status::invalid_argument(format!(
                "item: expected 1 to 64 bytes, got {}",
                quoted(&item)
            )));
        }
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(Response::new(Quote {
            item,
            price_cents: PRICE_CENTS,
            shipping: self.shipping().into(),
            quote_id: format!("q-{:016x}", fastrand::u64(..)),
            quoted_at: format!("{}.{:09}", at.as_secs(), at.subsec_nanos()),
        }))
    }

    /// v2's visible change.
    fn shipping(&self) -> &'static str {
        if self.version == "v2" {
            "express (free)"
        } else {
            "standard"
        }
    }
}

/// `NOT_FOUND` for an item the shop does not sell, naming it and what it does sell.
async fn unknown_item(pool: &sqlx::PgPool, item: &str) -> Status {
    let items: Vec<String> = sqlx::query_scalar("SELECT item FROM stock ORDER BY item")
        .fetch_all(pool)
        .await
        .unwrap_or_default();
    let mut message = format!("unknown item {}", quoted(item));
    if !items.is_empty() {
        message.push_str(&format!(" (the shop sells {})", items.join(", ")));
    }
    Status::not_found(message)
}

/// Serves `orders` on `listener`, as the version of `serving`: the mesh lane layer, spans
/// and metrics, and the demo's `hops`.
pub(crate) async fn serve(
    listener: TcpListener,
    orders: Orders,
    serving: Lane,
    hops: HopLayer,
) -> Result<(), tonic::transport::Error> {
    let app = orders.app.clone();
    let quotes = orders.clone();
    tonic::transport::Server::builder()
        .layer(app.mesh(serving))
        .layer(app.traced("orders"))
        .layer(hops.api(QUOTES_PATH, "quotes"))
        .add_service(unary_fn::<OrdersName, _, _, _, _>(move |req| {
            orders.clone().place(req)
        }))
        .add_service(unary_fn::<QuotesName, _, _, _, _>(move |req| {
            quotes.clone().quote(req)
        }))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await
}

/// Counts the orders service's Redis refusals in its metrics (once per process).
pub(crate) fn observe_refusals(app: &Arc<App>) {
    let cache = app.cache.clone();
    app.metrics("orders")
        .observe_refusals("redis", move || cache.refused());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_short_plain_words() {
        for id in ["demo-1", "r1712345678-12", "e2e1f_a.b:c", &"x".repeat(64)] {
            assert!(is_request_id(id), "{id}");
        }
        for id in ["", "a b", "a\nb", "ä", "a/b", &"x".repeat(65)] {
            assert!(!is_request_id(id), "{id:?}");
        }
    }
}
