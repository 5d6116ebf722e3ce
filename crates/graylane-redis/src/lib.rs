//! Lane key namespaces for redis-rs async connections.
//!
//! [`LaneRedis`] wraps any `redis::aio::ConnectionLike` (multiplexed connection, connection
//! manager, cluster connection). Application code issues ordinary commands; in a non-base lane
//! every key a command names is moved into the lane's namespace (the spec's
//! `data.redis_prefix`, `lane:<lane>:` by default), and key names in replies (`KEYS`, `SCAN`,
//! `BLPOP`, `XREAD`, ...) come back without it. Base traffic passes through untouched.
//!
//! Keys are found by each command's key positions, as Redis describes them (see [`SUPPORTED`]
//! and `docs/data-lanes.md`). A command the wrapper cannot make safe in a lane — an unknown
//! command, `FLUSHALL`, `SELECT`, `SWAPDB`, `EVALSHA` without declared keys, ... — **fails
//! closed** with a client error; it never runs against base keys.
//!
//! The prefix never contains `{` or `}`, so Redis Cluster hash tags keep working: `user:{42}:a`
//! and `user:{42}:b` stay in one slot in every lane.
//!
//! ```no_run
//! # async fn f() -> redis::RedisResult<()> {
//! use graylane_core::spec::LaneSpec;
//! use graylane_core::{Lane, LaneContext, LaneFutureExt};
//! use graylane_redis::{LaneRedis, Namespaces};
//! use redis::AsyncCommands;
//!
//! let spec = LaneSpec::from_yaml_str("lanes: [{name: gray}]").unwrap();
//! let client = redis::Client::open("redis://127.0.0.1/")?;
//! let mut conn = LaneRedis::new(
//!     client.get_multiplexed_async_connection().await?,
//!     Namespaces::from_spec(&spec),
//! );
//! async {
//!     let () = conn.set("cart:7", "book").await?;   // writes lane:gray:cart:7
//!     let v: String = conn.get("cart:7").await?;     // reads lane:gray:cart:7
//!     Ok::<_, redis::RedisError>(())
//! }
//! .with_lane(LaneContext::new(Lane::new("gray").unwrap()))
//! .await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

// A lane command goes `connection` -> `rewrite` (its keys found by `keys` over `args`, by the
// command's rule in `table`) -> the inner connection -> `reply`. `namespaces` holds the prefixes
// and the read-through patterns (matched by `glob`); `scratch` pools the rewrite buffers;
// `error` is the refusal every unsafe command gets; `transaction` follows hand-written
// `MULTI` ... `EXEC`.
mod args;
mod connection;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod glob;
mod keys;
mod namespaces;
mod reply;
mod rewrite;
mod scratch;
mod table;
mod transaction;

pub use connection::LaneRedis;
pub use namespaces::Namespaces;
pub use table::{REFUSED, SUPPORTED};
