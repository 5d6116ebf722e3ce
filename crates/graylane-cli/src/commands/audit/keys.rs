//! Redis: every key whose name contains the marker, by `SCAN` (nothing is read but names).

use graylane_core::Lane;
use graylane_core::spec::LaneSpec;
use redis::AsyncCommands;

use super::Report;
use crate::{Fail, bad_input};

pub(super) async fn search(
    spec: &LaneSpec,
    lane: Lane,
    url: &str,
    marker: &str,
    report: &mut Report,
) -> Result<(), Fail> {
    let redis_err = |e: redis::RedisError| bad_input(format!("{url}: {e}"));
    let mut conn = connect_redis(url).await?;
    let glob = format!("*{}*", glob_escape(marker));
    let prefix = spec.data_names(lane).redis_prefix;
    let mut found: Vec<String> = Vec::new();
    {
        let mut iter: redis::AsyncIter<'_, String> =
            conn.scan_match(&glob).await.map_err(redis_err)?;
        while let Some(key) = iter.next_item().await {
            found.push(key.map_err(redis_err)?);
        }
    }
    let (inside, outside): (Vec<&String>, Vec<&String>) =
        found.iter().partition(|k| k.starts_with(&prefix));
    report.add(
        true,
        format!("redis keys under {prefix:?}"),
        inside.len() as i64,
    );
    for key in outside {
        report.add(false, format!("redis key {key:?}"), 1);
    }
    Ok(())
}

/// `s` as a glob that matches only itself (Redis `MATCH` syntax).
pub(crate) fn glob_escape(s: &str) -> String {
    let mut glob = String::with_capacity(s.len());
    for c in s.chars() {
        if "*?[]\\".contains(c) {
            glob.push('\\');
        }
        glob.push(c);
    }
    glob
}

/// A connection to the Redis at `url`; an error naming it.
pub(crate) async fn connect_redis(url: &str) -> Result<redis::aio::MultiplexedConnection, Fail> {
    let redis_err = |e: redis::RedisError| bad_input(format!("{url}: {e}"));
    redis::Client::open(url)
        .map_err(redis_err)?
        .get_multiplexed_async_connection()
        .await
        .map_err(redis_err)
}
