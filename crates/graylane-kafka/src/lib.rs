//! Gray-release lanes for Kafka with rdkafka: records carry their lane, and each lane's
//! consumers handle exactly its messages, with exact fallback to base.
//!
//! - [`LaneProducer`] wraps a `FutureProducer` (and a [`Stamper`] stamps records for any
//!   producer, a `BaseProducer`'s `BaseRecord` too): every record sent while a lane is in scope
//!   carries the lane header (`x-gray-lane`) and the W3C baggage entry, exactly as HTTP requests
//!   do. A lane header already on the record wins; other headers are kept.
//! - [`lane_of`] reads the lane of a consumed message (configured lanes only; anything else is
//!   base, counted by the propagator), to run its handler in that lane.
//! - [`LaneConsumer`] consumes in a lane: a lane's consumers (their own group) handle only
//!   their lane's messages; base handles base messages plus those of every lane with no live
//!   consumer, and the handover between them is exact — per partition, at offsets recorded in
//!   a compacted control topic, never by polling for liveness. The protocol, its bounds and its
//!   failure cases are in `docs/kafka-lanes.md`.
//!
//! For tests, `graylane-testkit` (feature `kafka`) starts librdkafka's mock cluster, a real
//! Kafka-protocol broker in process, and its `graylane-kafka-broker` binary hosts one.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use graylane_core::{Lane, LaneContext, LaneFutureExt, LaneSet, Propagator};
//! use graylane_kafka::LaneProducer;
//! use rdkafka::producer::FutureRecord;
//!
//! let propagator = Propagator::new(LaneSet::new([Lane::new("gray")?]));
//! let producer = LaneProducer::new(
//!     rdkafka::ClientConfig::new().set("bootstrap.servers", "127.0.0.1:9092").create()?,
//!     propagator,
//! );
//! async {
//!     // Carries x-gray-lane: gray and baggage gray.lane=gray.
//!     producer.send(FutureRecord::to("orders").payload("{}").key("7"), std::time::Duration::from_secs(5)).await
//! }
//! .with_lane(LaneContext::new(Lane::new("gray")?))
//! .await
//! .map_err(|(e, _)| e)?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod blocking;
mod carrier;
mod consumer;
mod control;
mod handover;
mod producer;
mod timing;

pub use carrier::{HeaderExtractor, lane_of};
pub use consumer::{
    ConsumerHandle, ConsumerStats, ConsumerWatch, DEFAULT_CONTROL_TOPIC, LaneConsumer,
    LaneConsumerBuilder, UnknownLanes,
};
pub use control::{CONTROL_TOPIC_SETTINGS, Handback, lane_handback};
#[allow(deprecated)]
pub use producer::{LaneProducer, Stamper, stamp_base_record, stamp_headers, stamp_record};
pub use timing::Timing;
