//! Gray-release lanes for Kafka with rdkafka: records carry their lane, and each lane's
//! consumers handle exactly its messages, with exact fallback to base.
//!
//! - [`LaneProducer`] wraps a `FutureProducer` (and [`stamp_base_record`] a `BaseRecord` for the
//!   `BaseProducer`): every record sent while a lane is in scope carries the lane header
//!   (`x-gray-lane`) and the W3C baggage entry, exactly as HTTP requests do. A lane header
//!   already on the record wins; other headers are kept.
//! - [`lane_of`] reads the lane of a consumed message (configured lanes only; anything else is
//!   base, counted by the propagator), to run its handler in that lane.
//! - [`testing::MockBroker`] (feature `testing`) starts librdkafka's mock cluster, a real
//!   Kafka-protocol broker, for tests and the demo; the `graylane-kafka-broker` binary hosts one.
//!
//! - [`LaneConsumer`] consumes in a lane: a lane's consumers (their own group) handle only
//!   their lane's messages; base handles base messages plus those of every lane with no live
//!   consumer, and the handover between them is exact — per partition, at offsets recorded in
//!   a compacted control topic, never by polling for liveness. The protocol, its bounds and its
//!   failure cases are in `docs/kafka-lanes.md`.
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

// One `unsafe` call, in `testing`, reaches a librdkafka mock setting rdkafka does not wrap.
#![deny(unsafe_code)]

mod consumer;
mod control;
mod handover;

pub use consumer::{
    ConsumerHandle, ConsumerStats, DEFAULT_CONTROL_TOPIC, LaneConsumer, LaneConsumerBuilder, Timing,
};

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use graylane_core::{Extractor, Injector, Lane, LaneContext, Propagator};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, ToBytes};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{BaseRecord, FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

/// Kafka headers as a lane carrier for reading (any `rdkafka` headers: borrowed or owned).
#[derive(Debug)]
pub struct HeaderExtractor<'a, H: Headers>(pub &'a H);

impl<H: Headers> Extractor for HeaderExtractor<'_, H> {
    fn get(&self, key: &str) -> Option<&[u8]> {
        // Kafka header keys are case-sensitive; graylane writes lowercase keys. The first value
        // wins, as for HTTP.
        (0..self.0.count())
            .filter_map(|i| self.0.try_get(i))
            .find(|h| h.key == key)
            .and_then(|h| h.value)
    }
}

/// The lane context of a record with these headers. Each header is read from librdkafka once
/// (a record has few): `HeaderExtractor` would read them again for every key the propagator
/// asks for, each time through FFI, `strlen` and a UTF-8 check.
pub(crate) fn extract_from<H: Headers>(propagator: &Propagator, headers: &H) -> LaneContext {
    const READ_ONCE: usize = 4;
    let n = headers.count();
    if n > READ_ONCE {
        return propagator.extract(&HeaderExtractor(headers));
    }
    let mut read: [(&str, Option<&[u8]>); READ_ONCE] = [("", None); READ_ONCE];
    let mut len = 0;
    for i in 0..n {
        if let Some(h) = headers.try_get(i) {
            read[len] = (h.key, h.value);
            len += 1;
        }
    }
    propagator.extract(&ReadHeaders(&read[..len]))
}

/// Headers already read, first value per key wins (as for [`HeaderExtractor`]).
struct ReadHeaders<'a>(&'a [(&'a str, Option<&'a [u8]>)]);

impl Extractor for ReadHeaders<'_> {
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.0.iter().find(|(k, _)| *k == key).and_then(|(_, v)| *v)
    }
}

/// Headers being assembled for a record: `OwnedHeaders` can only be appended to, so graylane
/// edits a list and builds the headers once.
#[derive(Debug, Default)]
struct HeaderList(Vec<(String, Option<Vec<u8>>)>);

impl HeaderList {
    fn from_headers(headers: Option<&OwnedHeaders>) -> HeaderList {
        HeaderList(
            headers
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    fn build(self) -> OwnedHeaders {
        self.0.iter().fold(
            OwnedHeaders::new_with_capacity(self.0.len()),
            |h, (k, v)| {
                h.insert(Header {
                    key: k,
                    value: v.as_deref(),
                })
            },
        )
    }
}

impl Extractor for HeaderList {
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }
}

impl Injector for HeaderList {
    fn set(&mut self, key: &'static str, value: Cow<'static, str>) {
        self.0.retain(|(k, _)| k != key);
        self.0
            .push((key.to_owned(), Some(value.into_owned().into_bytes())));
    }
    fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }
}

/// `headers` with `ctx` stamped on them (nothing for base; an existing lane header wins).
///
/// For one record now and then; a producer should keep a [`Stamper`], which has each lane's
/// headers ready.
pub fn stamp_headers(
    propagator: &Propagator,
    ctx: &LaneContext,
    headers: Option<OwnedHeaders>,
) -> Option<OwnedHeaders> {
    if ctx.lane().is_base() && !ctx.is_mirror() {
        return headers;
    }
    match headers {
        None => {
            let mut fresh = Fresh::default();
            propagator.inject(ctx, &mut fresh);
            Some(fresh.build())
        }
        Some(existing) => {
            let mut list = HeaderList::from_headers(Some(&existing));
            propagator.inject(ctx, &mut list);
            Some(list.build())
        }
    }
}

/// Stamps records with the lane in scope, as [`stamp_headers`] does, with each configured
/// lane's headers worked out once: a gray record without headers of its own (the common case)
/// costs one thread-local read and the headers' allocation in librdkafka, nothing more.
/// [`LaneProducer`] has one; keep one next to a `BaseProducer`. Cheap to clone.
///
/// ```
/// use graylane_core::{Lane, LaneContext, LaneSet, Propagator};
/// use graylane_kafka::Stamper;
/// use rdkafka::message::Headers;
/// use rdkafka::producer::BaseRecord;
///
/// let gray = Lane::new("gray").unwrap();
/// let stamper = Stamper::new(Propagator::new(LaneSet::new([gray])));
/// let record = LaneContext::new(gray).scope(|| {
///     stamper.base_record(BaseRecord::<(), _>::to("orders").payload("{}"))
/// });
/// let headers = record.headers.unwrap();
/// assert_eq!(headers.get(0).key, "x-gray-lane");
/// assert_eq!(headers.get(0).value, Some(&b"gray"[..]));
/// ```
#[derive(Clone)]
pub struct Stamper {
    propagator: Propagator,
    /// What `propagator.inject` writes on a record without headers, per non-base lane.
    ready: Arc<[(Lane, Fresh)]>,
}

impl std::fmt::Debug for Stamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stamper").finish_non_exhaustive()
    }
}

impl Stamper {
    /// Works out the headers of every lane `propagator` knows.
    pub fn new(propagator: Propagator) -> Stamper {
        let ready = propagator
            .lanes()
            .non_base()
            .map(|lane| {
                let mut fresh = Fresh::default();
                propagator.inject(&LaneContext::new(lane), &mut fresh);
                (lane, fresh)
            })
            .collect();
        Stamper { propagator, ready }
    }

    /// The propagator it stamps with.
    pub fn propagator(&self) -> &Propagator {
        &self.propagator
    }

    /// `headers` with `ctx` stamped on them (nothing for base; an existing lane header wins).
    pub fn headers(
        &self,
        ctx: &LaneContext,
        headers: Option<OwnedHeaders>,
    ) -> Option<OwnedHeaders> {
        if headers.is_none() && !ctx.is_mirror() {
            let lane = ctx.lane();
            if lane.is_base() {
                return None;
            }
            if let Some((_, fresh)) = self.ready.iter().find(|(l, _)| *l == lane) {
                return Some(fresh.build());
            }
        }
        stamp_headers(&self.propagator, ctx, headers)
    }

    /// A `FutureRecord` stamped with the current lane.
    pub fn record<'a, K, P>(&self, mut record: FutureRecord<'a, K, P>) -> FutureRecord<'a, K, P>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        record.headers = self.headers(&LaneContext::current(), record.headers.take());
        record
    }

    /// A `BaseRecord` (for `BaseProducer::send`) stamped with the current lane.
    pub fn base_record<'a, K, P, D>(
        &self,
        mut record: BaseRecord<'a, K, P, D>,
    ) -> BaseRecord<'a, K, P, D>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
        D: rdkafka::util::IntoOpaque,
    {
        record.headers = self.headers(&LaneContext::current(), record.headers.take());
        record
    }
}

/// Headers for a record that had none, the common case: keys are static and values usually
/// borrowed, and the propagator writes at most three of them (lane, mirror, baggage), so they
/// are gathered on the stack; nothing is allocated until the headers are built, once.
#[derive(Debug, Default)]
struct Fresh {
    entries: [(&'static str, Cow<'static, str>); 3],
    len: usize,
    /// Any further keys (none from today's propagator; kept rather than dropped).
    more: Vec<(&'static str, Cow<'static, str>)>,
}

impl Fresh {
    fn iter(&self) -> impl Iterator<Item = &(&'static str, Cow<'static, str>)> {
        self.entries[..self.len].iter().chain(&self.more)
    }

    fn build(&self) -> OwnedHeaders {
        self.iter().fold(
            OwnedHeaders::new_with_capacity(self.len + self.more.len()),
            |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                })
            },
        )
    }
}

impl Extractor for Fresh {
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_bytes())
    }
}

impl Injector for Fresh {
    fn set(&mut self, key: &'static str, value: Cow<'static, str>) {
        if let Some(slot) = self.entries[..self.len]
            .iter_mut()
            .chain(&mut self.more)
            .find(|(k, _)| *k == key)
        {
            slot.1 = value;
        } else if self.len < self.entries.len() {
            self.entries[self.len] = (key, value);
            self.len += 1;
        } else {
            self.more.push((key, value));
        }
    }

    fn remove(&mut self, key: &str) {
        self.more.retain(|(k, _)| *k != key);
        let mut kept = 0;
        for i in 0..self.len {
            if self.entries[i].0 != key {
                self.entries.swap(kept, i);
                kept += 1;
            }
        }
        self.len = kept;
    }
}

/// A `FutureRecord` stamped with the current lane ([`Stamper::record`] keeps the headers ready).
pub fn stamp_record<'a, K, P>(
    propagator: &Propagator,
    mut record: FutureRecord<'a, K, P>,
) -> FutureRecord<'a, K, P>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    record.headers = stamp_headers(propagator, &LaneContext::current(), record.headers.take());
    record
}

/// A `BaseRecord` (for `BaseProducer::send`) stamped with the current lane
/// ([`Stamper::base_record`] keeps the headers ready).
pub fn stamp_base_record<'a, K, P, D>(
    propagator: &Propagator,
    mut record: BaseRecord<'a, K, P, D>,
) -> BaseRecord<'a, K, P, D>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
    D: rdkafka::util::IntoOpaque,
{
    record.headers = stamp_headers(propagator, &LaneContext::current(), record.headers.take());
    record
}

/// The lane context of a consumed message: its lane (configured lanes only; anything else is
/// base and counted), marked as coming from the wire.
///
/// Cost note: librdkafka caches a consumed record's parsed headers but not their absence, so
/// on a `BorrowedMessage` without headers every `headers()` call (this one, and the one in
/// `detach()`) allocates and parses again. On a hot path, call `headers()` once and extract
/// from it with [`HeaderExtractor`] (`LaneConsumer` does both for you).
pub fn lane_of<M: Message>(propagator: &Propagator, message: &M) -> LaneContext {
    match message.headers() {
        Some(h) => extract_from(propagator, h),
        None => LaneContext::base(),
    }
}

/// A `FutureProducer` whose records carry the lane in scope when they are sent.
#[derive(Clone)]
pub struct LaneProducer {
    inner: FutureProducer,
    stamper: Stamper,
}

impl std::fmt::Debug for LaneProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneProducer").finish_non_exhaustive()
    }
}

impl LaneProducer {
    /// Wraps `inner`.
    pub fn new(inner: FutureProducer, propagator: Propagator) -> LaneProducer {
        LaneProducer {
            inner,
            stamper: Stamper::new(propagator),
        }
    }

    /// The wrapped producer (records sent through it are not stamped).
    pub fn inner(&self) -> &FutureProducer {
        &self.inner
    }

    /// `FutureProducer::send`, with the current lane stamped on the record. The lane is read
    /// when `send` is called, in the caller's task.
    pub async fn send<K, P, T>(
        &self,
        record: FutureRecord<'_, K, P>,
        queue_timeout: T,
    ) -> OwnedDeliveryResult
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
        T: Into<Timeout>,
    {
        let record = self.stamper.record(record);
        self.inner.send(record, queue_timeout).await
    }

    /// Flushes outstanding records.
    pub fn flush(&self, timeout: Duration) -> rdkafka::error::KafkaResult<()> {
        rdkafka::producer::Producer::flush(&self.inner, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(h: Option<OwnedHeaders>) -> Vec<(String, Option<Vec<u8>>)> {
        HeaderList::from_headers(h.as_ref()).0
    }

    #[test]
    fn ready_headers_are_what_the_propagator_writes() {
        let lanes = ["gray", "canary", "blue"].map(|l| Lane::new(l).unwrap());
        let stamper = Stamper::new(Propagator::new(graylane_core::LaneSet::new(lanes)));
        let p = stamper.propagator().clone();
        for lane in lanes {
            for ctx in [
                LaneContext::new(lane),
                LaneContext::new(lane).with_mirror(true),
            ] {
                let fast = pairs(stamper.headers(&ctx, None));
                assert_eq!(fast, pairs(stamp_headers(&p, &ctx, None)), "{ctx:?}");
                assert_eq!(fast[0].1.as_deref(), Some(lane.as_str().as_bytes()));
            }
        }
        assert!(stamper.headers(&LaneContext::base(), None).is_none());
        // A lane header already on the record wins, on both paths.
        let own = || {
            Some(OwnedHeaders::new().insert(Header {
                key: "x-gray-lane",
                value: Some("blue"),
            }))
        };
        let ctx = LaneContext::new(lanes[0]);
        let kept = pairs(stamper.headers(&ctx, own()));
        assert_eq!(kept, pairs(stamp_headers(&p, &ctx, own())));
        assert_eq!(kept[0].1.as_deref(), Some(&b"blue"[..]));
        // A lane the propagator does not know takes the slow path and is written as is.
        let other = LaneContext::new(Lane::new("other").unwrap());
        assert_eq!(
            pairs(stamper.headers(&other, None)),
            pairs(stamp_headers(&p, &other, None))
        );
    }

    #[test]
    fn headers_read_once_extract_like_the_extractor() {
        let gray = Lane::new("gray").unwrap();
        let p = Propagator::new(graylane_core::LaneSet::new([gray]));
        let h = |pairs: &[(&str, &str)]| {
            pairs.iter().fold(OwnedHeaders::new(), |h, &(key, v)| {
                h.insert(Header {
                    key,
                    value: Some(v),
                })
            })
        };
        let cases = [
            h(&[]),
            h(&[("x-gray-lane", "gray")]),
            h(&[("trace", "1"), ("baggage", "gray.lane=gray")]),
            h(&[("x-gray-lane", "gray"), ("x-gray-mirror", "1")]),
            h(&[("x-gray-lane", "nope"), ("x-gray-lane", "gray")]),
            // More than are read at once: the extractor's path.
            h(&[
                ("a", "1"),
                ("b", "2"),
                ("c", "3"),
                ("d", "4"),
                ("x-gray-lane", "gray"),
            ]),
        ];
        for headers in &cases {
            assert_eq!(
                format!("{:?}", extract_from(&p, headers)),
                format!("{:?}", p.extract(&HeaderExtractor(headers)))
            );
        }
        assert_eq!(extract_from(&p, &cases[5]).lane(), gray);
        assert!(extract_from(&p, &cases[3]).is_mirror());
    }

    #[test]
    fn fresh_headers_keep_every_key_once_in_order() {
        let mut f = Fresh::default();
        for (k, v) in [
            ("a", "1"),
            ("b", "2"),
            ("a", "3"),
            ("c", "4"),
            ("d", "5"),
            ("e", "6"),
        ] {
            f.set(k, Cow::Borrowed(v));
        }
        f.remove("b");
        f.remove("e");
        let got: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_ref())).collect();
        assert_eq!(got, [("a", "3"), ("c", "4"), ("d", "5")]);
        assert_eq!(f.get("d"), Some(&b"5"[..]));
        assert_eq!(f.get("b"), None);
        let built = f.build();
        assert_eq!(built.count(), 3);
        assert_eq!(built.get(2).key, "d");
    }
}
