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

mod table;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext};
use redis::aio::ConnectionLike;
use redis::{Arg, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use table::{KeyRule, Reply, Spec};

/// The commands [`LaneRedis`] supports in a non-base lane (upper case, sorted).
pub const SUPPORTED: &[&str] = &{
    let mut names = [""; table::TABLE.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = table::TABLE[i].0;
        i += 1;
    }
    names
};

/// The commands [`LaneRedis`] refuses in a non-base lane, with the reason. Commands in neither
/// list are refused too.
pub const REFUSED: &[(&str, &str)] = table::REFUSED;

/// Each lane's key prefix.
#[derive(Clone, Debug, Default)]
pub struct Namespaces {
    prefixes: Vec<(Lane, Vec<u8>)>,
    read_through: Vec<String>,
}

impl Namespaces {
    /// The prefixes the spec names (`data.redis_prefix`).
    pub fn from_spec(spec: &LaneSpec) -> Namespaces {
        Namespaces {
            prefixes: spec
                .lane_set()
                .non_base()
                .map(|lane| (lane, spec.data_names(lane).redis_prefix.into_bytes()))
                .collect(),
            read_through: Vec::new(),
        }
    }

    /// Lets lane reads of keys matching these glob patterns (`*` and `?`) fall back to the base
    /// key when the lane key does not exist — for caches that should start warm. Only `GET`,
    /// `HGET` and `HGETALL` read through; writes always stay in the lane.
    #[must_use]
    pub fn read_through(
        mut self,
        patterns: impl IntoIterator<Item = impl Into<String>>,
    ) -> Namespaces {
        self.read_through = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// The prefix of `lane` (`None` for base and for lanes not in the spec).
    pub fn prefix(&self, lane: Lane) -> Option<&[u8]> {
        self.prefixes
            .iter()
            .find(|(l, _)| *l == lane)
            .map(|(_, p)| p.as_slice())
    }
}

/// A connection whose keys live in the namespace of the lane in scope. Cheap to clone when the
/// inner connection is.
pub struct LaneRedis<C> {
    inner: C,
    shared: Arc<Shared>,
    // The rewritten command. Owned by the connection handle (`&mut self` for the whole
    // request) and reused across its commands; taken from a per-thread pool on the first lane
    // command and given back on drop, since applications clone the handle per request and two
    // allocations per clone measured ~1% of a real round trip.
    scratch: Option<Box<Cmd>>,
}

impl<C> Drop for LaneRedis<C> {
    fn drop(&mut self) {
        if let Some(cmd) = self.scratch.take() {
            scratch::give_back(cmd);
        }
    }
}

mod scratch {
    use std::cell::RefCell;

    use redis::Cmd;

    /// Enough for every handle a worker thread has in flight at once, in practice; beyond it
    /// buffers are freed.
    const KEEP: usize = 64;

    thread_local! {
        // Boxed: a command is ~100 bytes, moved in and out of the pool on every request.
        #[allow(clippy::vec_box)]
        static POOL: RefCell<Vec<Box<Cmd>>> = const { RefCell::new(Vec::new()) };
    }

    pub(crate) fn take() -> Box<Cmd> {
        POOL.try_with(|p| p.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_else(|| Box::new(Cmd::with_capacity(8, 256)))
    }

    pub(crate) fn give_back(cmd: Box<Cmd>) {
        // During thread teardown the pool may be gone: the buffer is just freed.
        let _ = POOL.try_with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < KEEP {
                pool.push(cmd);
            }
        });
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

struct Shared {
    namespaces: Namespaces,
    refused: AtomicU64,
}

impl<C> std::fmt::Debug for LaneRedis<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneRedis")
            .field("namespaces", &self.shared.namespaces)
            .field("refused", &self.refused())
            .finish_non_exhaustive()
    }
}

impl<C> LaneRedis<C> {
    /// Wraps `inner`.
    pub fn new(inner: C, namespaces: Namespaces) -> LaneRedis<C> {
        LaneRedis {
            inner,
            shared: Arc::new(Shared {
                namespaces,
                refused: AtomicU64::new(0),
            }),
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

fn refuse(name: &str, lane: Lane, why: &str) -> RedisError {
    RedisError::from((
        ErrorKind::Client,
        "graylane refused the command in a lane",
        format!("{name} in lane {lane}: {why}; it would not stay in the lane's namespace"),
    ))
}

/// How to translate the reply of a rewritten command.
struct Rewritten {
    reply: Reply,
    /// Read-through: on a miss, run the caller's command as it is (on the base key).
    read_through: bool,
}

/// The arguments of a command (name first), read in place; a command with a cursor argument
/// is unpacked once, since the cursor's value is only in the packed form.
enum Args<'c> {
    InPlace(&'c Cmd, usize),
    Unpacked(Vec<Vec<u8>>),
}

impl<'c> Args<'c> {
    fn of(cmd: &'c Cmd) -> RedisResult<Args<'c>> {
        if !cmd.in_scan_mode() {
            return Ok(Args::InPlace(cmd, cmd.args_iter().len()));
        }
        let unexpected = || RedisError::from((ErrorKind::Client, "unexpected packed command"));
        match redis::parse_redis_value(&cmd.get_packed_command())? {
            Value::Array(items) => Ok(Args::Unpacked(
                items
                    .into_iter()
                    .map(|v| match v {
                        Value::BulkString(b) => Ok(b),
                        _ => Err(unexpected()),
                    })
                    .collect::<RedisResult<_>>()?,
            )),
            _ => Err(unexpected()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Args::InPlace(_, n) => *n,
            Args::Unpacked(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> Option<&[u8]> {
        match self {
            Args::InPlace(cmd, _) => match cmd.args_iter().nth(i)? {
                Arg::Simple(b) => Some(b),
                _ => None,
            },
            Args::Unpacked(v) => v.get(i).map(Vec::as_slice),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let (in_place, unpacked) = match self {
            Args::InPlace(cmd, _) => (Some(cmd.args_iter()), None),
            Args::Unpacked(v) => (None, Some(v.iter().map(Vec::as_slice))),
        };
        in_place
            .into_iter()
            .flatten()
            .map(|a| match a {
                Arg::Simple(b) => b,
                _ => &[][..],
            })
            .chain(unpacked.into_iter().flatten())
    }
}

/// One argument written as `prefix` followed by `rest`.
struct Prefixed<'a>(&'a [u8], &'a [u8]);

impl redis::ToRedisArgs for Prefixed<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        // Most keys are short: joined on the stack, written as one argument. (The incremental
        // writer costs a guard and two fallible writes per key.)
        let len = self.0.len() + self.1.len();
        let mut joined = [0u8; 128];
        if let Some(buf) = joined.get_mut(..len) {
            buf[..self.0.len()].copy_from_slice(self.0);
            buf[self.0.len()..].copy_from_slice(self.1);
            out.write_arg(buf);
        } else {
            use std::io::Write;
            let mut w = out.writer_for_next_arg();
            // Writing into the command's own buffer cannot fail.
            let _ = w.write_all(self.0);
            let _ = w.write_all(self.1);
        }
    }
}

fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob_match(&pattern[1..], text) || (!text.is_empty() && glob_match(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob_match(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob_match(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// Which argument indexes are keys. A predicate rather than a list: most commands name a
/// contiguous run of keys, and this runs for every command in a lane.
#[derive(Debug, PartialEq, Eq)]
enum KeySet {
    /// `first..=last`, every `step`-th.
    Range {
        first: usize,
        last: usize,
        step: usize,
    },
    /// Index 1, and `from..to`.
    DestAnd { dest: bool, from: usize, to: usize },
    /// An explicit list (SORT).
    List(Vec<usize>),
}

impl KeySet {
    const NONE: KeySet = KeySet::DestAnd {
        dest: false,
        from: 0,
        to: 0,
    };

    fn contains(&self, i: usize) -> bool {
        match self {
            KeySet::Range { first, last, step } => {
                i >= *first && i <= *last && (i - first).is_multiple_of(*step)
            }
            KeySet::DestAnd { dest, from, to } => (*dest && i == 1) || (i >= *from && i < *to),
            KeySet::List(v) => v.contains(&i),
        }
    }

    #[cfg(test)]
    fn to_vec(&self, n: usize) -> Vec<usize> {
        (0..n).filter(|i| self.contains(*i)).collect()
    }
}

fn key_positions(name: &str, spec: Spec, args: &Args<'_>, lane: Lane) -> RedisResult<KeySet> {
    let n = args.len();
    let bad = |why: &str| refuse(name, lane, why);
    let number = |i: usize| -> RedisResult<usize> {
        args.get(i)
            .and_then(|a| std::str::from_utf8(a).ok())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("its numkeys argument is not a number"))
    };
    Ok(match spec.keys {
        KeyRule::None | KeyRule::Scan | KeyRule::KeysPattern => KeySet::NONE,
        KeyRule::Channel => KeySet::DestAnd {
            dest: false,
            from: 1,
            to: n.min(2),
        },
        KeyRule::Range { first, last, step } => {
            let last = if last < 0 { n as isize + last } else { last };
            if last < first as isize {
                KeySet::NONE
            } else {
                KeySet::Range {
                    first,
                    last: (last as usize).min(n.saturating_sub(1)),
                    step,
                }
            }
        }
        KeyRule::NumKeys { numkeys_at, dest } => {
            let k = number(numkeys_at)?;
            if numkeys_at + k > n {
                return Err(bad("numkeys exceeds the arguments"));
            }
            KeySet::DestAnd {
                dest,
                from: numkeys_at + 1,
                to: numkeys_at + 1 + k,
            }
        }
        KeyRule::Eval => {
            let k = number(2)?;
            if 3 + k > n {
                return Err(bad("numkeys exceeds the arguments"));
            }
            if k == 0 {
                let script = args.get(1).unwrap_or_default();
                let touches = name == "EVALSHA"
                    || script.windows(10).any(|w| w == b"redis.call")
                    || script.windows(11).any(|w| w == b"redis.pcall");
                if touches {
                    return Err(bad(
                        "a script that declares no keys may build key names the wrapper cannot see; pass them as KEYS",
                    ));
                }
            }
            KeySet::DestAnd {
                dest: false,
                from: 3,
                to: 3 + k,
            }
        }
        KeyRule::SubThenKey => {
            if n >= 3 {
                KeySet::DestAnd {
                    dest: false,
                    from: 2,
                    to: 3,
                }
            } else {
                KeySet::NONE
            }
        }
        KeyRule::Streams => {
            let at = args
                .iter()
                .position(|a| a.eq_ignore_ascii_case(b"STREAMS"))
                .ok_or_else(|| bad("STREAMS is missing"))?;
            let rest = n - at - 1;
            if rest == 0 || !rest.is_multiple_of(2) {
                return Err(bad("STREAMS needs as many ids as keys"));
            }
            KeySet::DestAnd {
                dest: false,
                from: at + 1,
                to: at + 1 + rest / 2,
            }
        }
        KeyRule::Sort => {
            let mut v = vec![1];
            let mut i = 2;
            while i < n {
                let a = args.get(i).unwrap_or_default().to_ascii_uppercase();
                match a.as_slice() {
                    b"BY" | b"GET" => {
                        // `GET #` is the element itself; a BY pattern without `*` disables sorting.
                        let next = args.get(i + 1);
                        if next.is_some_and(|p| p != b"#" && (a == b"GET" || p.contains(&b'*'))) {
                            v.push(i + 1);
                        }
                        i += 2;
                    }
                    b"STORE" => {
                        if i + 1 < n {
                            v.push(i + 1);
                        }
                        i += 2;
                    }
                    b"LIMIT" => i += 3,
                    _ => i += 1,
                }
            }
            KeySet::List(v)
        }
    })
}

/// The commands that may read through to base (see [`Namespaces::read_through`]).
fn is_read_through_command(name: &str) -> bool {
    matches!(name, "GET" | "HGET" | "HGETALL")
}

/// Most commands name their keys at fixed positions, nothing to look up in the arguments: this
/// writes them into `out` in one pass (`None`: anything else, left to [`rewrite`]). Kept small
/// and apart, so that the common path is a few cache lines of code.
#[inline(never)]
fn rewrite_fixed(shared: &Shared, cmd: &Cmd, prefix: &[u8], out: &mut Cmd) -> Option<Reply> {
    if cmd.in_scan_mode() {
        return None;
    }
    let mut args = cmd.args_iter();
    let n = args.len();
    let Some(Arg::Simple(name)) = args.next() else {
        return None;
    };
    let (canonical, spec) = table::lookup(name)?;
    let KeyRule::Range { first, last, step } = spec.keys else {
        return None;
    };
    if !shared.namespaces.read_through.is_empty() && is_read_through_command(canonical) {
        return None;
    }
    // The same positions as `key_positions`.
    let last = if last < 0 { n as isize + last } else { last };
    out.clear();
    out.arg(name);
    for (i, a) in (1..).zip(args) {
        let Arg::Simple(a) = a else { return None };
        if i >= first && i as isize <= last && (i - first).is_multiple_of(step) {
            out.arg(Prefixed(prefix, a));
        } else {
            out.arg(a);
        }
    }
    out.set_no_response(cmd.is_no_response());
    Some(spec.reply)
}

/// Writes `cmd`, rewritten for `lane`, into `out` (cleared first).
fn rewrite(
    shared: &Shared,
    cmd: &Cmd,
    lane: Lane,
    prefix: &[u8],
    out: &mut Cmd,
) -> RedisResult<Rewritten> {
    match rewrite_fixed(shared, cmd, prefix, out) {
        Some(reply) => Ok(Rewritten {
            reply,
            read_through: false,
        }),
        None => rewrite_general(shared, cmd, lane, prefix, out),
    }
}

/// [`rewrite`] for any command in the table.
fn rewrite_general(
    shared: &Shared,
    cmd: &Cmd,
    lane: Lane,
    prefix: &[u8],
    out: &mut Cmd,
) -> RedisResult<Rewritten> {
    let args = Args::of(cmd)?;
    let raw_name = args.get(0).unwrap_or_default();
    let refused = |why: &str| {
        shared.refused.fetch_add(1, Ordering::Relaxed);
        refuse(
            &String::from_utf8_lossy(raw_name).to_ascii_uppercase(),
            lane,
            why,
        )
    };
    let Some((name, spec)) = table::lookup(raw_name) else {
        let upper = String::from_utf8_lossy(raw_name).to_ascii_uppercase();
        let why = REFUSED.iter().find(|(n, _)| *n == upper).map_or(
            "the command is not in graylane's command table",
            |(_, why)| why,
        );
        return Err(refused(why));
    };
    let positions = key_positions(name, spec, &args, lane).inspect_err(|_| {
        shared.refused.fetch_add(1, Ordering::Relaxed);
    })?;
    // Patterns: the KEYS pattern, the SCAN MATCH pattern (added when absent).
    let pattern_at = match spec.keys {
        KeyRule::KeysPattern if args.len() > 1 => Some(1),
        KeyRule::KeysPattern => return Err(refused("KEYS needs a pattern")),
        KeyRule::Scan => match args.iter().position(|a| a.eq_ignore_ascii_case(b"MATCH")) {
            Some(at) if at + 1 < args.len() => Some(at + 1),
            Some(_) => return Err(refused("MATCH needs a pattern")),
            None => None,
        },
        _ => None,
    };
    out.clear();
    for (i, a) in args.iter().enumerate() {
        if positions.contains(i) || pattern_at == Some(i) {
            out.arg(Prefixed(prefix, a));
        } else {
            out.arg(a);
        }
    }
    if spec.keys == KeyRule::Scan && pattern_at.is_none() {
        out.arg("MATCH").arg(Prefixed(prefix, b"*"));
    }
    out.set_no_response(cmd.is_no_response());
    let read_through = &shared.namespaces.read_through;
    let read_through = !read_through.is_empty()
        && is_read_through_command(name)
        && args
            .get(1)
            .is_some_and(|k| read_through.iter().any(|p| glob_match(p.as_bytes(), k)));
    Ok(Rewritten {
        reply: spec.reply,
        read_through,
    })
}

fn strip(prefix: &[u8], v: Value) -> Value {
    match v {
        Value::BulkString(b) if b.starts_with(prefix) => {
            Value::BulkString(b[prefix.len()..].to_vec())
        }
        other => other,
    }
}

fn fix_reply(prefix: &[u8], kind: Reply, v: Value) -> Value {
    match (kind, v) {
        (Reply::Plain, v) => v,
        (Reply::KeyList, Value::Array(keys)) => {
            Value::Array(keys.into_iter().map(|k| strip(prefix, k)).collect())
        }
        (Reply::Scan, Value::Array(mut parts)) if parts.len() == 2 => {
            if let Value::Array(keys) = parts.remove(1) {
                parts.push(Value::Array(
                    keys.into_iter().map(|k| strip(prefix, k)).collect(),
                ));
            }
            Value::Array(parts)
        }
        (Reply::FirstIsKey, Value::Array(mut items)) if !items.is_empty() => {
            let first = items.remove(0);
            items.insert(0, strip(prefix, first));
            Value::Array(items)
        }
        (Reply::StreamKeys, Value::Array(streams)) => Value::Array(
            streams
                .into_iter()
                .map(|s| match s {
                    Value::Array(mut kv) if !kv.is_empty() => {
                        let k = kv.remove(0);
                        kv.insert(0, strip(prefix, k));
                        Value::Array(kv)
                    }
                    other => other,
                })
                .collect(),
        ),
        (Reply::StreamKeys, Value::Map(entries)) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (strip(prefix, k), v))
                .collect(),
        ),
        (_, v) => v,
    }
}

fn is_miss(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::Array(a) => a.is_empty(),
        Value::Map(m) => m.is_empty(),
        _ => false,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(cmd: &[&str]) -> RedisResult<Vec<usize>> {
        let args = Args::Unpacked(cmd.iter().map(|s| s.as_bytes().to_vec()).collect());
        let (_, spec) = table::lookup(cmd[0].as_bytes()).unwrap();
        key_positions(cmd[0], spec, &args, Lane::new("gray").unwrap()).map(|k| k.to_vec(args.len()))
    }

    #[test]
    fn key_positions_follow_redis() {
        assert_eq!(positions(&["GET", "k"]).unwrap(), [1]);
        assert_eq!(positions(&["MSET", "a", "1", "b", "2"]).unwrap(), [1, 3]);
        assert_eq!(positions(&["DEL", "a", "b", "c"]).unwrap(), [1, 2, 3]);
        assert_eq!(positions(&["BLPOP", "a", "b", "0"]).unwrap(), [1, 2]);
        assert_eq!(positions(&["RENAME", "a", "b"]).unwrap(), [1, 2]);
        assert_eq!(
            positions(&["ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"]).unwrap(),
            [1, 3, 4]
        );
        assert_eq!(positions(&["ZUNION", "2", "a", "b"]).unwrap(), [2, 3]);
        assert_eq!(
            positions(&["BLMPOP", "0", "2", "a", "b", "LEFT"]).unwrap(),
            [3, 4]
        );
        assert_eq!(
            positions(&["EVAL", "return KEYS[1]", "1", "k", "arg"]).unwrap(),
            [3]
        );
        assert_eq!(
            positions(&["EVAL", "return 1", "0"]).unwrap(),
            Vec::<usize>::new()
        );
        assert!(positions(&["EVAL", "return redis.call('GET', 'x')", "0"]).is_err());
        assert!(positions(&["EVALSHA", "abc", "0"]).is_err());
        assert!(positions(&["EVAL", "return redis.pcall('DEL', 'x')", "0"]).is_err());
        assert!(positions(&["EVAL", "x", "5", "a"]).is_err());
        assert_eq!(
            positions(&["XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"]).unwrap(),
            [4, 5]
        );
        assert_eq!(
            positions(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]).unwrap(),
            [5]
        );
        assert!(positions(&["XREAD", "STREAMS", "s1", "s2", "0"]).is_err());
        assert_eq!(
            positions(&["XGROUP", "CREATE", "s", "g", "$"]).unwrap(),
            [2]
        );
        assert_eq!(positions(&["OBJECT", "ENCODING", "k"]).unwrap(), [2]);
        assert_eq!(positions(&["OBJECT", "HELP"]).unwrap(), Vec::<usize>::new());
        assert_eq!(
            positions(&[
                "SORT", "l", "BY", "w_*", "GET", "#", "GET", "o_*", "LIMIT", "0", "5", "STORE", "d"
            ])
            .unwrap(),
            [1, 3, 7, 12]
        );
        assert_eq!(positions(&["SORT", "l", "BY", "nosort"]).unwrap(), [1]);
        assert_eq!(positions(&["PUBLISH", "news", "hi"]).unwrap(), [1]);
    }

    #[test]
    fn replies_lose_the_prefix() {
        let p = b"lane:gray:";
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let keys = fix_reply(
            p,
            Reply::KeyList,
            Value::Array(vec![bulk("lane:gray:a"), bulk("lane:gray:b")]),
        );
        assert_eq!(keys, Value::Array(vec![bulk("a"), bulk("b")]));
        let scan = fix_reply(
            p,
            Reply::Scan,
            Value::Array(vec![bulk("0"), Value::Array(vec![bulk("lane:gray:a")])]),
        );
        assert_eq!(
            scan,
            Value::Array(vec![bulk("0"), Value::Array(vec![bulk("a")])])
        );
        let pop = fix_reply(
            p,
            Reply::FirstIsKey,
            Value::Array(vec![bulk("lane:gray:q"), bulk("v")]),
        );
        assert_eq!(pop, Value::Array(vec![bulk("q"), bulk("v")]));
        assert_eq!(fix_reply(p, Reply::FirstIsKey, Value::Nil), Value::Nil);
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"cache:*", b"cache:item:1"));
        assert!(glob_match(b"c?che:*", b"cache:"));
        assert!(!glob_match(b"cache:*", b"cart:1"));
        assert!(glob_match(b"*", b""));
    }

    #[test]
    fn supported_list_matches_the_table() {
        assert_eq!(SUPPORTED.len(), table::TABLE.len());
        assert!(SUPPORTED.contains(&"XREADGROUP"));
    }

    fn shared(read_through: &[&str]) -> Shared {
        let spec = graylane_core::spec::LaneSpec::from_yaml_str("lanes: [{name: gray}]").unwrap();
        Shared {
            namespaces: Namespaces::from_spec(&spec).read_through(read_through.iter().copied()),
            refused: AtomicU64::new(0),
        }
    }

    #[test]
    fn read_through_commands_leave_the_one_pass_route_only_when_configured() {
        let (plain, warm) = (shared(&[]), shared(&["cache:*"]));
        let get = redis::cmd("GET").arg("cache:1").clone();
        let set = redis::cmd("SET").arg("cache:1").arg(1).clone();
        let mut out = Cmd::new();
        assert!(rewrite_fixed(&plain, &get, b"lane:gray:", &mut out).is_some());
        assert!(rewrite_fixed(&warm, &get, b"lane:gray:", &mut out).is_none());
        assert!(rewrite_fixed(&warm, &set, b"lane:gray:", &mut out).is_some());
        let r = rewrite(
            &warm,
            &get,
            Lane::new("gray").unwrap(),
            b"lane:gray:",
            &mut out,
        )
        .unwrap();
        assert!(r.read_through);
    }

    #[test]
    fn fixed_position_pass_writes_what_the_general_path_writes() {
        let shared = shared(&[]);
        let gray = Lane::new("gray").unwrap();
        let mut checked = 0;
        for (name, spec) in table::TABLE {
            if !matches!(spec.keys, KeyRule::Range { .. }) {
                continue;
            }
            for n in 0..6 {
                let mut cmd = redis::cmd(&name.to_ascii_lowercase());
                for i in 0..n {
                    cmd.arg(format!("a{i}"));
                }
                let (mut a, mut b) = (Cmd::new(), Cmd::new());
                assert!(rewrite_fixed(&shared, &cmd, b"lane:gray:", &mut a).is_some());
                rewrite_general(&shared, &cmd, gray, b"lane:gray:", &mut b).unwrap();
                assert_eq!(a.get_packed_command(), b.get_packed_command(), "{name} {n}");
                checked += 1;
            }
        }
        assert!(checked > 300, "{checked}");
    }

    #[test]
    fn a_reused_buffer_keeps_nothing_of_the_last_command() {
        let shared = shared(&[]);
        let gray = Lane::new("gray").unwrap();
        let mut out = scratch::take();
        let long = redis::cmd("MSET").arg("a").arg(1).arg("b").arg(2).clone();
        rewrite(&shared, &long, gray, b"lane:gray:", &mut out).unwrap();
        scratch::give_back(out);
        let mut out = scratch::take();
        let short = redis::cmd("GET").arg("k").clone();
        rewrite(&shared, &short, gray, b"lane:gray:", &mut out).unwrap();
        assert_eq!(
            out.get_packed_command(),
            redis::cmd("GET").arg("lane:gray:k").get_packed_command()
        );
    }

    #[test]
    fn long_keys_are_prefixed_too() {
        let shared = shared(&[]);
        let key = "k".repeat(500);
        let mut out = Cmd::new();
        let cmd = redis::cmd("GET").arg(&key).clone();
        rewrite(
            &shared,
            &cmd,
            Lane::new("gray").unwrap(),
            b"lane:gray:",
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out.get_packed_command(),
            redis::cmd("GET")
                .arg(format!("lane:gray:{key}"))
                .get_packed_command()
        );
    }
}
