//! The connection: [`LaneRedis`] wraps a redis-rs connection and, in a non-base lane, sends each
//! command (or pipeline) rewritten into the lane's namespace and translates the reply back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use graylane_core::{Lane, LaneContext};
use redis::aio::ConnectionLike;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use crate::error::refuse;
use crate::namespaces::Namespaces;
use crate::reply::{fix_reply, is_miss};
use crate::rewrite::rewrite;
use crate::scratch;
use crate::table::Reply;
use crate::transaction::{Fix, Step, Transaction};

/// A connection whose keys live in the namespace of the lane in scope. Cheap to clone when the
/// inner connection is.
pub struct LaneRedis<C> {
    inner: C,
    shared: Arc<Shared>,
    // The rewritten command. Owned by the connection handle (`&mut self` for the whole
    // request) and reused across its commands; taken from the per-thread pool in `scratch` on
    // the first lane command and given back on drop.
    scratch: Option<Box<Cmd>>,
    /// A transaction this handle opened (`MULTI`) in a lane, until `EXEC` or `DISCARD`.
    transaction: Option<Transaction>,
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
            transaction: None,
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
            // A transaction is its connection's: a clone may share the server connection (a
            // multiplexed one does), but not the handle's MULTI.
            transaction: None,
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
        if lane.is_base() && self.transaction.is_none() {
            // Base pays one thread-local read.
            return self.inner.req_packed_command(cmd);
        }
        let LaneRedis {
            inner,
            shared,
            scratch,
            transaction,
        } = self;
        let refused = |err| Box::pin(std::future::ready(Err(err))) as RedisFuture<'a, Value>;
        if let Err(err) = joins(transaction, lane, "a command") {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            return refused(err);
        }
        let Some(prefix) = shared.namespaces.prefix(lane) else {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            return refused(refuse(
                "any command",
                lane,
                "the lane has no namespace in the spec",
            ));
        };
        let scratch = scratch.get_or_insert_with(scratch::take);
        let rewritten = match rewrite(shared, cmd, lane, prefix, scratch) {
            Ok(r) => r,
            Err(e) => {
                if let Some(t) = transaction {
                    t.aborted = true;
                }
                return refused(e);
            }
        };
        if transaction.is_none()
            && rewritten.command != "MULTI"
            && rewritten.reply == Reply::Plain
            && !rewritten.read_through
        {
            // The common case: nothing to translate back, so no future of our own.
            return inner.req_packed_command(scratch);
        }
        Box::pin(async move {
            let step = Step::of(rewritten.command);
            let Some(open) = transaction else {
                let reply = inner.req_packed_command(scratch).await?;
                if step == Step::Multi {
                    *transaction = Some(Transaction::new(lane));
                }
                let reply = if rewritten.read_through && is_miss(&reply) {
                    // Read-through: a lane miss reads base; nothing is written anywhere.
                    inner.req_packed_command(cmd).await?
                } else {
                    reply
                };
                return Ok(fix_reply(prefix, rewritten.reply, reply));
            };
            match step {
                // Redis answers a nested MULTI with an error and keeps the transaction; a
                // command it does not queue (WATCH inside MULTI) has no reply in EXEC's.
                Step::Multi | Step::Other => {
                    let queued = match inner.req_packed_command(scratch).await {
                        Ok(v) => v,
                        Err(e) => {
                            // The connection failed: whatever the server had, it is gone.
                            *transaction = None;
                            return Err(e);
                        }
                    };
                    if step == Step::Other
                        && matches!(&queued, Value::SimpleString(s) if s == "QUEUED")
                    {
                        open.queue(rewritten.reply);
                    }
                    Ok(queued)
                }
                Step::Discard => {
                    *transaction = None;
                    inner.req_packed_command(scratch).await
                }
                Step::Exec => {
                    let open = transaction.take().expect("open");
                    if open.aborted {
                        inner.req_packed_command(&redis::cmd("DISCARD")).await?;
                        return Err(aborted(lane));
                    }
                    let reply = inner.req_packed_command(scratch).await?;
                    Ok(open.into_fix().apply(prefix, reply))
                }
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let lane = LaneContext::current().lane();
        if lane.is_base() && self.transaction.is_none() {
            return self.inner.req_packed_commands(pipeline, offset, count);
        }
        Box::pin(async move {
            let shared = self.shared.clone();
            let refused = |err| {
                shared.refused.fetch_add(1, Ordering::Relaxed);
                Err(err)
            };
            if let Err(err) = joins(&mut self.transaction, lane, "a pipeline") {
                return refused(err);
            }
            let Some(prefix) = shared.namespaces.prefix(lane) else {
                return refused(refuse(
                    "a pipeline",
                    lane,
                    "the lane has no namespace in the spec",
                ));
            };
            if self.transaction.as_ref().is_some_and(|t| t.aborted) {
                return refused(refuse(
                    "a pipeline",
                    lane,
                    "the open transaction is aborted (a command was refused); send EXEC or DISCARD alone",
                ));
            }
            if pipeline.is_transaction() && self.transaction.is_some() {
                // Its MULTI would be refused as nested, and its EXEC would run the open one.
                return refused(refuse(
                    "an atomic pipeline",
                    lane,
                    "a transaction is already open on this connection",
                ));
            }
            let mut rebuilt = Pipeline::with_capacity(pipeline.len());
            if pipeline.is_transaction() {
                rebuilt.atomic();
            }
            // Hand-written MULTI ... EXEC in the pipeline follow the handle's transaction:
            // tracked on a copy, kept once the whole pipeline is known to be safe.
            let mut transaction = self.transaction.clone();
            let mut fixes = Vec::with_capacity(pipeline.len());
            // The whole pipeline is refused before anything is sent if one command is unsafe.
            for cmd in pipeline.cmd_iter() {
                let mut out = Cmd::new();
                let r = match rewrite(&shared, cmd, lane, prefix, &mut out) {
                    Ok(r) => r,
                    Err(e) => {
                        if let Some(t) = &mut self.transaction {
                            t.aborted = true;
                        }
                        return Err(e);
                    }
                };
                fixes.push(match (Step::of(r.command), &mut transaction) {
                    (Step::Multi, None) => {
                        transaction = Some(Transaction::new(lane));
                        Fix::One(Reply::Plain)
                    }
                    (Step::Exec, t) => t
                        .take()
                        .map_or(Fix::One(Reply::Plain), Transaction::into_fix),
                    (Step::Discard, t) => {
                        *t = None;
                        Fix::One(Reply::Plain)
                    }
                    // Queued: the reply is `QUEUED`.
                    (Step::Other, Some(t)) => {
                        t.queue(r.reply);
                        Fix::One(Reply::Plain)
                    }
                    (_, _) => Fix::One(r.reply),
                });
                rebuilt.add_command(out);
            }
            if pipeline.is_transaction() {
                // One reply: EXEC's array.
                let queued = std::mem::take(&mut fixes).into_iter().map(|f| match f {
                    Fix::One(kind) => kind,
                    Fix::Exec(_) => Reply::Plain,
                });
                fixes.push(Fix::Exec(queued.collect()));
            }
            self.transaction = transaction;
            let values = self
                .inner
                .req_packed_commands(&rebuilt, offset, count)
                .await?;
            let skip = if pipeline.is_transaction() { 0 } else { offset };
            Ok(values
                .into_iter()
                .zip(fixes.iter().skip(skip))
                .map(|(v, fix)| fix.apply(prefix, v))
                .collect())
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

/// Refuses a command in `lane` while a transaction another lane opened is open on the handle
/// (aborting that transaction: its code expected the command in it).
fn joins(transaction: &mut Option<Transaction>, lane: Lane, what: &str) -> RedisResult<()> {
    match transaction {
        Some(t) if t.lane != lane => {
            t.aborted = true;
            Err(refuse(
                what,
                lane,
                &format!("lane {} opened a transaction on this connection", t.lane),
            ))
        }
        _ => Ok(()),
    }
}

/// `EXEC` of a transaction a refusal aborted: discarded, as Redis discards one after a queueing
/// error.
fn aborted(lane: Lane) -> RedisError {
    RedisError::from((
        ErrorKind::Client,
        "EXECABORT",
        format!(
            "the transaction in lane {lane} was discarded: graylane refused one of its commands"
        ),
    ))
}
