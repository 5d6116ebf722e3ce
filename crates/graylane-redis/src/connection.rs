//! The connection: [`LaneRedis`] wraps a redis-rs connection and, in a non-base lane, sends each
//! command (or pipeline) rewritten into the lane's namespace and translates the reply back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use graylane_core::LaneContext;
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::error::refuse;
use crate::namespaces::Namespaces;
use crate::reply::{fix_reply, is_miss};
use crate::rewrite::rewrite;
use crate::scratch;
use crate::table::Reply;

/// A connection whose keys live in the namespace of the lane in scope. Cheap to clone when the
/// inner connection is.
pub struct LaneRedis<C> {
    inner: C,
    shared: Arc<Shared>,
    // The rewritten command. Owned by the connection handle (`&mut self` for the whole
    // request) and reused across its commands; taken from the per-thread pool in `scratch` on
    // the first lane command and given back on drop.
    scratch: Option<Box<Cmd>>,
}

/// What every clone of a [`LaneRedis`] shares.
pub(crate) struct Shared {
    pub(crate) namespaces: Namespaces,
    /// Commands refused so far.
    pub(crate) refused: AtomicU64,
}

impl Shared {
    pub(crate) fn new(namespaces: Namespaces) -> Shared {
        Shared {
            namespaces,
            refused: AtomicU64::new(0),
        }
    }
}

impl<C> LaneRedis<C> {
    /// Wraps `inner`.
    pub fn new(inner: C, namespaces: Namespaces) -> LaneRedis<C> {
        LaneRedis {
            inner,
            shared: Arc::new(Shared::new(namespaces)),
            scratch: None,
        }
    }

    /// The wrapped connection (no namespacing: use for operator tasks only).
    pub fn get_ref(&self) -> &C {
        &self.inner
    }

    /// Commands refused so far (fail-closed refusals in a lane).
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }

    /// The pub/sub channel name `channel` has in the lane in scope (for subscribers, which use a
    /// dedicated connection).
    pub fn channel(&self, channel: &str) -> Vec<u8> {
        let lane = LaneContext::current().lane();
        let mut out = self
            .shared
            .namespaces
            .prefix(lane)
            .unwrap_or_default()
            .to_vec();
        out.extend_from_slice(channel.as_bytes());
        out
    }
}

impl<C: Clone> Clone for LaneRedis<C> {
    fn clone(&self) -> Self {
        LaneRedis {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            // Base traffic never needs one: made on the first lane command.
            scratch: None,
        }
    }
}

impl<C> std::fmt::Debug for LaneRedis<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneRedis")
            .field("namespaces", &self.shared.namespaces)
            .field("refused", &self.refused())
            .finish_non_exhaustive()
    }
}

impl<C> Drop for LaneRedis<C> {
    fn drop(&mut self) {
        if let Some(cmd) = self.scratch.take() {
            scratch::give_back(cmd);
        }
    }
}

impl<C: ConnectionLike + Send> ConnectionLike for LaneRedis<C> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let lane = LaneContext::current().lane();
        if lane.is_base() {
            // Base pays one thread-local read.
            return self.inner.req_packed_command(cmd);
        }
        let LaneRedis {
            inner,
            shared,
            scratch,
        } = self;
        let Some(prefix) = shared.namespaces.prefix(lane) else {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            let err = refuse("any command", lane, "the lane has no namespace in the spec");
            return Box::pin(std::future::ready(Err(err)));
        };
        let scratch = scratch.get_or_insert_with(scratch::take);
        let rewritten = match rewrite(shared, cmd, lane, prefix, scratch) {
            Ok(r) => r,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        if rewritten.reply == Reply::Plain && !rewritten.read_through {
            // The common case: nothing to translate back, so no future of our own.
            return inner.req_packed_command(scratch);
        }
        Box::pin(async move {
            let reply = inner.req_packed_command(scratch).await?;
            let reply = if rewritten.read_through && is_miss(&reply) {
                // Read-through: a lane miss reads base; nothing is written anywhere.
                inner.req_packed_command(cmd).await?
            } else {
                reply
            };
            Ok(fix_reply(prefix, rewritten.reply, reply))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let lane = LaneContext::current().lane();
        if lane.is_base() {
            return self.inner.req_packed_commands(pipeline, offset, count);
        }
        Box::pin(async move {
            let shared = self.shared.clone();
            let Some(prefix) = shared.namespaces.prefix(lane) else {
                shared.refused.fetch_add(1, Ordering::Relaxed);
                return Err(refuse(
                    "a pipeline",
                    lane,
                    "the lane has no namespace in the spec",
                ));
            };
            let mut rebuilt = Pipeline::with_capacity(pipeline.len());
            if pipeline.is_transaction() {
                rebuilt.atomic();
            }
            let mut replies = Vec::with_capacity(pipeline.len());
            // The whole pipeline is refused before anything is sent if one command is unsafe.
            for cmd in pipeline.cmd_iter() {
                let mut out = Cmd::new();
                let r = rewrite(&shared, cmd, lane, prefix, &mut out)?;
                replies.push(r.reply);
                rebuilt.add_command(out);
            }
            let values = self
                .inner
                .req_packed_commands(&rebuilt, offset, count)
                .await?;
            Ok(if pipeline.is_transaction() {
                values
                    .into_iter()
                    .map(|v| match v {
                        Value::Array(items) => Value::Array(
                            items
                                .into_iter()
                                .zip(&replies)
                                .map(|(v, kind)| fix_reply(prefix, *kind, v))
                                .collect(),
                        ),
                        other => other,
                    })
                    .collect()
            } else {
                values
                    .into_iter()
                    .zip(replies.iter().skip(offset))
                    .map(|(v, kind)| fix_reply(prefix, *kind, v))
                    .collect()
            })
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}
