//! `redis`: the same pipelineless GET/SET mix through a raw redis-rs multiplexed connection and
//! through `LaneRedis` in a gray lane (every key rewritten into `lane:gray:`), alternating
//! rounds. Uses `REDIS_URL` (default `redis://127.0.0.1:6379/`); its keys are deleted at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use graylane_core::spec::LaneSpec;
use graylane_core::{LaneContext, LaneFutureExt};
use graylane_redis::{LaneRedis, Namespaces};
use graylane_testkit::services::redis_url;
use redis::AsyncCommands;
use redis::aio::ConnectionLike;

use crate::Args;
use crate::load::{Comparison, WITHOUT_WITH, side_by_side};

async fn mix<C: ConnectionLike + Send + Sync>(
    mut conn: C,
    key: String,
    n: u64,
) -> Result<(), String> {
    // One write for every three reads.
    if n.is_multiple_of(4) {
        conn.set::<_, _, ()>(&key, n)
            .await
            .map_err(|e| e.to_string())
    } else {
        conn.get::<_, Option<u64>>(&key)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

pub(crate) async fn run(args: &Args) -> Result<Comparison, String> {
    let url = redis_url();
    let raw = redis::Client::open(url.as_str())
        .map_err(|e| e.to_string())?
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("cannot reach Redis at {url}: {e}"))?;
    let spec = LaneSpec::from_yaml_str("lanes: [{name: gray}]").map_err(|e| e.to_string())?;
    let wrapped = LaneRedis::new(raw.clone(), Namespaces::from_spec(&spec));
    // Short keys of the bench's own: LaneRedis rewrites every key, so a key's length is part
    // of what this scenario measures.
    let prefix = format!("glbench:{}", std::process::id());
    let counter = Arc::new(AtomicU64::new(0));
    let ctx = LaneContext::new(graylane_core::Lane::from_static("gray"));
    let (c1, c2, p1, p2, plain) = (
        counter.clone(),
        counter,
        prefix.clone(),
        prefix.clone(),
        raw.clone(),
    );
    let result = side_by_side(
        "redis",
        WITHOUT_WITH,
        args.rounds,
        args.requests,
        args.concurrency,
        move || {
            let n = c1.fetch_add(1, Ordering::Relaxed);
            mix(plain.clone(), format!("{p1}:k{}", n % 1000), n)
        },
        move || {
            let n = c2.fetch_add(1, Ordering::Relaxed);
            mix(wrapped.clone(), format!("{p2}:k{}", n % 1000), n).with_lane(ctx)
        },
    )
    .await;
    let mut cleanup = raw;
    for pattern in [format!("{prefix}:*"), format!("lane:gray:{prefix}:*")] {
        let keys: Vec<String> = cleanup.keys(&pattern).await.map_err(|e| e.to_string())?;
        if !keys.is_empty() {
            cleanup
                .del::<_, ()>(keys)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(result)
}
