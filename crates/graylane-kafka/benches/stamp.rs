//! What stamping a record costs on the producer's thread, apart from the broker: the headers a
//! gray record gets (lane header and baggage entry), built from a [`Stamper`]'s ready headers
//! (as `LaneProducer` does), against the same two
//! headers built by hand (what any header costs in librdkafka: one allocation per header plus
//! the list), and against no headers at all; and, on the consumer's side, reading the lane of
//! a gray record.
//!
//! `cargo bench -p graylane-kafka --bench stamp`. Figures in `docs/benchmarks.md`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use graylane_core::{Lane, LaneContext, LaneSet, Propagator};
use graylane_kafka::{HeaderExtractor, Stamper, lane_of};
use rdkafka::Timestamp;
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};

fn stamp(c: &mut Criterion) {
    let gray = Lane::new("gray").unwrap();
    let propagator = Propagator::new(LaneSet::new([gray]));
    let ctx = LaneContext::new(gray);

    let mut g = c.benchmark_group("stamp");
    let stamper = Stamper::new(propagator.clone());
    g.bench_function("base record (nothing to add)", |b| {
        b.iter(|| black_box(stamper.headers(&LaneContext::base(), None)))
    });
    g.bench_function("gray record (Stamper, the producer's path)", |b| {
        b.iter(|| black_box(stamper.headers(black_box(&ctx), None)))
    });
    g.bench_function("the same two headers by hand", |b| {
        b.iter(|| {
            black_box(
                OwnedHeaders::new_with_capacity(2)
                    .insert(Header {
                        key: "x-gray-lane",
                        value: Some(black_box("gray")),
                    })
                    .insert(Header {
                        key: "baggage",
                        value: Some(black_box("gray.lane=gray")),
                    }),
            )
        })
    });
    // The consumer's side: the lane of a gray record, read from its headers.
    let wire = stamper.headers(&ctx, None);
    let record = OwnedMessage::new(None, None, "t".into(), Timestamp::NotAvailable, 0, 0, wire);
    g.bench_function("lane of a gray record (consumer)", |b| {
        b.iter(|| black_box(lane_of(&propagator, black_box(&record))))
    });
    g.bench_function("lane of a gray record, HeaderExtractor", |b| {
        b.iter(|| {
            black_box(propagator.extract(&HeaderExtractor(black_box(record.headers().unwrap()))))
        })
    });
    g.finish();
}

criterion_group!(benches, stamp);
criterion_main!(benches);
