//! Stamping records with their lane: [`Stamper`], the one way to do it, and [`LaneProducer`],
//! a `FutureProducer` that stamps every record with the lane in scope.

use std::sync::Arc;
use std::time::Duration;

use graylane_core::{Lane, LaneContext, Propagator};
use rdkafka::message::{OwnedHeaders, ToBytes};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{BaseRecord, FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::carrier::{FreshInjector, ListInjector};

/// Stamps records with the lane in scope, with each configured
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
    ready: Arc<[(Lane, FreshInjector)]>,
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
                let mut fresh = FreshInjector::default();
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
        stamp_anew(&self.propagator, ctx, headers)
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

/// `headers` with `ctx` stamped on them, working the headers out anew.
fn stamp_anew(
    propagator: &Propagator,
    ctx: &LaneContext,
    headers: Option<OwnedHeaders>,
) -> Option<OwnedHeaders> {
    if ctx.lane().is_base() && !ctx.is_mirror() {
        return headers;
    }
    match headers {
        None => {
            let mut fresh = FreshInjector::default();
            propagator.inject(ctx, &mut fresh);
            Some(fresh.build())
        }
        Some(existing) => {
            let mut list = ListInjector::from_headers(Some(&existing));
            propagator.inject(ctx, &mut list);
            Some(list.build())
        }
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

/// `headers` with `ctx` stamped on them (nothing for base; an existing lane header wins).
#[deprecated(note = "use `Stamper::headers`: a `Stamper` has each lane's headers ready")]
pub fn stamp_headers(
    propagator: &Propagator,
    ctx: &LaneContext,
    headers: Option<OwnedHeaders>,
) -> Option<OwnedHeaders> {
    stamp_anew(propagator, ctx, headers)
}

/// A `FutureRecord` stamped with the current lane.
#[deprecated(
    note = "use `Stamper::record` (or `LaneProducer`): a `Stamper` has each lane's headers ready"
)]
pub fn stamp_record<'a, K, P>(
    propagator: &Propagator,
    mut record: FutureRecord<'a, K, P>,
) -> FutureRecord<'a, K, P>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    record.headers = stamp_anew(propagator, &LaneContext::current(), record.headers.take());
    record
}

/// A `BaseRecord` (for `BaseProducer::send`) stamped with the current lane.
#[deprecated(note = "use `Stamper::base_record`: a `Stamper` has each lane's headers ready")]
pub fn stamp_base_record<'a, K, P, D>(
    propagator: &Propagator,
    mut record: BaseRecord<'a, K, P, D>,
) -> BaseRecord<'a, K, P, D>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
    D: rdkafka::util::IntoOpaque,
{
    record.headers = stamp_anew(propagator, &LaneContext::current(), record.headers.take());
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Header;

    fn pairs(h: Option<OwnedHeaders>) -> Vec<(String, Option<Vec<u8>>)> {
        ListInjector::from_headers(h.as_ref()).0
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
                assert_eq!(fast, pairs(stamp_anew(&p, &ctx, None)), "{ctx:?}");
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
        assert_eq!(kept, pairs(stamp_anew(&p, &ctx, own())));
        assert_eq!(kept[0].1.as_deref(), Some(&b"blue"[..]));
        // A lane the propagator does not know takes the slow path and is written as is.
        let other = LaneContext::new(Lane::new("other").unwrap());
        assert_eq!(
            pairs(stamper.headers(&other, None)),
            pairs(stamp_anew(&p, &other, None))
        );
    }
}
