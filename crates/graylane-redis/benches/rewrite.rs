//! What `LaneRedis` adds to one command, without the network: the same `GET`/`SET` issued on a
//! connection that answers at once, raw vs. through `LaneRedis` (base, and a gray lane where
//! every key is rewritten), with the handle cloned per request as applications do.
//!
//! `cargo bench -p graylane-redis --bench rewrite`. Figures in `docs/benchmarks.md`.

use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext};
use graylane_redis::{LaneRedis, Namespaces};
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A connection that answers every command at once, reading it as a real one would (packed).
#[derive(Clone)]
struct Instant;

impl ConnectionLike for Instant {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            black_box(cmd.get_packed_command());
            Ok(Value::Okay)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        _: &'a Pipeline,
        _: usize,
        _: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async { Ok(vec![]) })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// Issues `cmd` on `conn` and polls it once (it is ready).
fn run(mut conn: impl ConnectionLike, cmd: &Cmd) {
    let mut waker_cx = Context::from_waker(Waker::noop());
    let fut = pin!(conn.req_packed_command(cmd));
    assert!(matches!(fut.poll(&mut waker_cx), Poll::Ready(Ok(_))));
}

fn commands(c: &mut Criterion) {
    let spec = LaneSpec::from_yaml_str("lanes: [{name: gray}]").unwrap();
    let wrapped = LaneRedis::new(Instant, Namespaces::from_spec(&spec));
    let gray = LaneContext::new(Lane::new("gray").unwrap());
    let get = redis::cmd("GET").arg("glbench:k42").clone();
    let set = redis::cmd("SET").arg("glbench:k42").arg(42).clone();

    let mut g = c.benchmark_group("redis command");
    for (name, cmd) in [("GET", &get), ("SET", &set)] {
        g.bench_function(format!("{name} raw"), |b| {
            b.iter(|| run(Instant, black_box(cmd)))
        });
        g.bench_function(format!("{name} LaneRedis base"), |b| {
            b.iter(|| run(wrapped.clone(), black_box(cmd)))
        });
        g.bench_function(format!("{name} LaneRedis gray"), |b| {
            b.iter(|| gray.scope(|| run(wrapped.clone(), black_box(cmd))))
        });
    }
    g.finish();
}

criterion_group!(benches, commands);
criterion_main!(benches);
