//! fulfillment v1 / v2 (Kafka consumers of `shop.orders`): picks the order's stock at
//! inventory, counts the shipment and writes it; v2 ships by drone. A lane's consumer
//! handles exactly its lane's messages, base the rest, and those of a lane whose consumer is
//! down; the handover between them is exact (see graylane-kafka).

use std::sync::Arc;
use std::time::Instant;

use graylane::http::BoxError;
use graylane::kafka::ConsumerHandle;
use graylane::otel::Kind;
use graylane::{Lane, LaneContext};
use rdkafka::message::{Message, OwnedMessage};
use redis::AsyncCommands;

use super::inventory::{InventoryClient, Purpose};
use crate::app::{App, version_of};
use crate::demo::hops::Hops;
use crate::infra::{CONTROL_TOPIC, GROUP, TOPIC};

/// Starts the consumer of `lane`'s version, its messages counted in the demo's `hops`.
pub(crate) async fn spawn(
    app: &Arc<App>,
    kafka: &rdkafka::ClientConfig,
    lane: Lane,
    hops: &Hops,
) -> Result<ConsumerHandle, BoxError> {
    let version = version_of(lane);
    let metrics = app.metrics("fulfillment");
    let consumers = app.consumers.clone();
    let (app, hops) = (app.clone(), hops.clone());
    let consumer = app
        .consumer(kafka, GROUP)
        .lane(lane)
        .topic(TOPIC)
        .control_topic(CONTROL_TOPIC);
    let handle = consumer
        .spawn(move |message| {
            // Called in the message's lane, as served by this consumer's version.
            let ctx = LaneContext::current().with_served(lane);
            let started = Instant::now();
            let shipping =
                hops.message("fulfillment", version, ship(app.clone(), version, message));
            let metrics = metrics.clone();
            async move {
                let result = shipping.await;
                if let Err(e) = &result {
                    eprintln!("fulfillment {version}: {e}");
                }
                metrics.record_to(
                    Kind::Consumer,
                    TOPIC,
                    ctx,
                    started.elapsed(),
                    result.is_err(),
                );
            }
        })
        .await?;
    consumers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(handle.watch());
    Ok(handle)
}

/// Ships one order. The message's lane is in scope: this is ordinary application code.
async fn ship(app: Arc<App>, version: &'static str, message: OwnedMessage) -> Result<(), BoxError> {
    let mirror = LaneContext::current().is_mirror();
    let request_id = message
        .key_view::<str>()
        .ok_or("a message without a key")??;
    let item = message
        .payload_view::<str>()
        .ok_or("a message without an item")??;
    InventoryClient::new(app.inventory.fulfillment.clone())
        .reserve(Purpose::Pick, request_id, item)
        .await?;
    // Nothing waits for the shipped counter, so it is bumped in a task of its own. With
    // `graylane::task::spawn`, not `tokio::spawn`: the task keeps the message's lane, and the
    // count lands in the lane's namespace (a plain spawn would count it in base's).
    let mut cache = app.cache.clone();
    graylane::task::spawn(async move {
        if let Err(e) = cache.incr::<_, _, ()>("shop:shipped", 1).await {
            eprintln!("fulfillment: could not count a shipment: {e}");
        }
    });
    // The shipment row is written last: once it exists, the order is fulfilled (readers such
    // as the end-to-end test wait for it).
    let carrier = if version == "v2" { "drone" } else { "truck" };
    sqlx::query(
        "INSERT INTO shipments (request_id, carrier, version, mirror) VALUES ($1, $2, $3, $4)",
    )
    .bind(request_id)
    .bind(carrier)
    .bind(version)
    .bind(mirror)
    .execute(app.pools.current()?)
    .await?;
    Ok(())
}
