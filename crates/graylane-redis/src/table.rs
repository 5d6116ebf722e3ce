//! Where each command names keys: the command table.
//!
//! Positions follow Redis's own key specifications (`COMMAND INFO`: first key, last key, step;
//! and the "movable keys" commands whose key positions depend on their arguments). Index 0 is
//! the command name. Commands not in this table are refused in a non-base lane.

/// How a command names its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyRule {
    /// No keys (and nothing that reads or writes other namespaces).
    None,
    /// Keys at `first`, `first + step`, ... up to `last` (negative: counted from the end, -1 is
    /// the last argument).
    Range {
        first: usize,
        last: isize,
        step: usize,
    },
    /// `numkeys` at `numkeys_at`, then that many keys; `dest` is an extra key at 1.
    NumKeys { numkeys_at: usize, dest: bool },
    /// A subcommand at 1, then the key at 2 (`OBJECT ENCODING key`, `XGROUP CREATE key ...`).
    SubThenKey,
    /// `XREAD` / `XREADGROUP`: keys are the first half of the arguments after `STREAMS`.
    Streams,
    /// `SORT key [BY pattern] [GET pattern ...] [STORE dest]`.
    Sort,
    /// `SCAN cursor [MATCH pattern] ...`: the pattern is prefixed (or added).
    Scan,
    /// `KEYS pattern`.
    KeysPattern,
    /// `EVAL script numkeys key ...`, `EVALSHA sha ...`, `FCALL function ...` (and `_RO`):
    /// the declared keys, and only for a script or function the spec allow-lists.
    Script,
    /// `COPY source destination [DB n] [REPLACE]`: keys at 1 and 2, and no `DB` in a lane.
    Copy,
    /// `PUBLISH channel message`: the channel is namespaced like a key.
    Channel,
}

/// What the reply carries that must be translated back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Nothing.
    Plain,
    /// An array of key names (`KEYS`).
    KeyList,
    /// `[cursor, [key ...]]` (`SCAN`).
    Scan,
    /// `[key, ...]`: the first element is a key name (`BLPOP`, `LMPOP`, ...).
    FirstIsKey,
    /// `[[key, entries] ...]` or a map of key to entries (`XREAD`).
    StreamKeys,
}

/// A command graylane knows how to keep in a lane.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spec {
    pub(crate) keys: KeyRule,
    pub(crate) reply: Reply,
}

const fn range(first: usize, last: isize, step: usize) -> Spec {
    Spec {
        keys: KeyRule::Range { first, last, step },
        reply: Reply::Plain,
    }
}

const ONE: Spec = range(1, 1, 1);
const TWO: Spec = range(1, 2, 1);
const ALL: Spec = range(1, -1, 1);

const fn with(keys: KeyRule, reply: Reply) -> Spec {
    Spec { keys, reply }
}

const SCRIPT: Spec = with(KeyRule::Script, Reply::Plain);

/// The supported commands, by upper-case name. Kept sorted; [`SUPPORTED`] lists the names for
/// documentation and tests.
pub(crate) const TABLE: &[(&str, Spec)] = &[
    ("APPEND", ONE),
    ("BITCOUNT", ONE),
    ("BITPOS", ONE),
    ("BLMOVE", TWO),
    (
        "BLMPOP",
        with(
            KeyRule::NumKeys {
                numkeys_at: 2,
                dest: false,
            },
            Reply::FirstIsKey,
        ),
    ),
    (
        "BLPOP",
        with(
            KeyRule::Range {
                first: 1,
                last: -2,
                step: 1,
            },
            Reply::FirstIsKey,
        ),
    ),
    (
        "BRPOP",
        with(
            KeyRule::Range {
                first: 1,
                last: -2,
                step: 1,
            },
            Reply::FirstIsKey,
        ),
    ),
    (
        "BZPOPMAX",
        with(
            KeyRule::Range {
                first: 1,
                last: -2,
                step: 1,
            },
            Reply::FirstIsKey,
        ),
    ),
    (
        "BZPOPMIN",
        with(
            KeyRule::Range {
                first: 1,
                last: -2,
                step: 1,
            },
            Reply::FirstIsKey,
        ),
    ),
    ("COPY", with(KeyRule::Copy, Reply::Plain)),
    ("DECR", ONE),
    ("DECRBY", ONE),
    ("DEL", ALL),
    ("DISCARD", with(KeyRule::None, Reply::Plain)),
    ("DUMP", ONE),
    ("ECHO", with(KeyRule::None, Reply::Plain)),
    ("EVAL", SCRIPT),
    ("EVALSHA", SCRIPT),
    ("EVALSHA_RO", SCRIPT),
    ("EVAL_RO", SCRIPT),
    ("EXEC", with(KeyRule::None, Reply::Plain)),
    ("EXISTS", ALL),
    ("EXPIRE", ONE),
    ("EXPIREAT", ONE),
    ("EXPIRETIME", ONE),
    ("FCALL", SCRIPT),
    ("FCALL_RO", SCRIPT),
    ("GEOADD", ONE),
    ("GEODIST", ONE),
    ("GEOPOS", ONE),
    ("GEOSEARCH", ONE),
    ("GET", ONE),
    ("GETBIT", ONE),
    ("GETDEL", ONE),
    ("GETEX", ONE),
    ("GETRANGE", ONE),
    ("GETSET", ONE),
    ("HDEL", ONE),
    ("HEXISTS", ONE),
    ("HGET", ONE),
    ("HGETALL", ONE),
    ("HINCRBY", ONE),
    ("HINCRBYFLOAT", ONE),
    ("HKEYS", ONE),
    ("HLEN", ONE),
    ("HMGET", ONE),
    ("HMSET", ONE),
    ("HSCAN", ONE),
    ("HSET", ONE),
    ("HSETNX", ONE),
    ("HSTRLEN", ONE),
    ("HVALS", ONE),
    ("INCR", ONE),
    ("INCRBY", ONE),
    ("INCRBYFLOAT", ONE),
    ("KEYS", with(KeyRule::KeysPattern, Reply::KeyList)),
    ("LINDEX", ONE),
    ("LINSERT", ONE),
    ("LLEN", ONE),
    ("LMOVE", TWO),
    (
        "LMPOP",
        with(
            KeyRule::NumKeys {
                numkeys_at: 1,
                dest: false,
            },
            Reply::FirstIsKey,
        ),
    ),
    ("LPOP", ONE),
    ("LPOS", ONE),
    ("LPUSH", ONE),
    ("LPUSHX", ONE),
    ("LRANGE", ONE),
    ("LREM", ONE),
    ("LSET", ONE),
    ("LTRIM", ONE),
    ("MGET", ALL),
    ("MSET", range(1, -1, 2)),
    ("MSETNX", range(1, -1, 2)),
    ("MULTI", with(KeyRule::None, Reply::Plain)),
    ("OBJECT", with(KeyRule::SubThenKey, Reply::Plain)),
    ("PERSIST", ONE),
    ("PEXPIRE", ONE),
    ("PEXPIREAT", ONE),
    ("PEXPIRETIME", ONE),
    ("PFADD", ONE),
    ("PFCOUNT", ALL),
    ("PFMERGE", ALL),
    ("PING", with(KeyRule::None, Reply::Plain)),
    ("PSETEX", ONE),
    ("PTTL", ONE),
    ("PUBLISH", with(KeyRule::Channel, Reply::Plain)),
    ("RENAME", TWO),
    ("RENAMENX", TWO),
    ("RESTORE", ONE),
    ("RPOP", ONE),
    ("RPOPLPUSH", TWO),
    ("RPUSH", ONE),
    ("RPUSHX", ONE),
    ("SADD", ONE),
    ("SCAN", with(KeyRule::Scan, Reply::Scan)),
    ("SCARD", ONE),
    ("SDIFF", ALL),
    ("SDIFFSTORE", ALL),
    ("SET", ONE),
    ("SETBIT", ONE),
    ("SETEX", ONE),
    ("SETNX", ONE),
    ("SETRANGE", ONE),
    ("SINTER", ALL),
    (
        "SINTERCARD",
        with(
            KeyRule::NumKeys {
                numkeys_at: 1,
                dest: false,
            },
            Reply::Plain,
        ),
    ),
    ("SINTERSTORE", ALL),
    ("SISMEMBER", ONE),
    ("SMEMBERS", ONE),
    ("SMISMEMBER", ONE),
    ("SMOVE", TWO),
    ("SORT", with(KeyRule::Sort, Reply::Plain)),
    ("SPOP", ONE),
    ("SRANDMEMBER", ONE),
    ("SREM", ONE),
    ("SSCAN", ONE),
    ("STRLEN", ONE),
    ("SUNION", ALL),
    ("SUNIONSTORE", ALL),
    ("TIME", with(KeyRule::None, Reply::Plain)),
    ("TOUCH", ALL),
    ("TTL", ONE),
    ("TYPE", ONE),
    ("UNLINK", ALL),
    ("UNWATCH", with(KeyRule::None, Reply::Plain)),
    ("WATCH", ALL),
    ("XACK", ONE),
    ("XADD", ONE),
    ("XAUTOCLAIM", ONE),
    ("XCLAIM", ONE),
    ("XDEL", ONE),
    ("XGROUP", with(KeyRule::SubThenKey, Reply::Plain)),
    ("XLEN", ONE),
    ("XPENDING", ONE),
    ("XRANGE", ONE),
    ("XREAD", with(KeyRule::Streams, Reply::StreamKeys)),
    ("XREADGROUP", with(KeyRule::Streams, Reply::StreamKeys)),
    ("XREVRANGE", ONE),
    ("XTRIM", ONE),
    ("ZADD", ONE),
    ("ZCARD", ONE),
    ("ZCOUNT", ONE),
    (
        "ZDIFF",
        with(
            KeyRule::NumKeys {
                numkeys_at: 1,
                dest: false,
            },
            Reply::Plain,
        ),
    ),
    (
        "ZDIFFSTORE",
        with(
            KeyRule::NumKeys {
                numkeys_at: 2,
                dest: true,
            },
            Reply::Plain,
        ),
    ),
    ("ZINCRBY", ONE),
    (
        "ZINTER",
        with(
            KeyRule::NumKeys {
                numkeys_at: 1,
                dest: false,
            },
            Reply::Plain,
        ),
    ),
    (
        "ZINTERCARD",
        with(
            KeyRule::NumKeys {
                numkeys_at: 1,
                dest: false,
            },
            Reply::Plain,
        ),
    ),
    (
        "ZINTERSTORE",
        with(
            KeyRule::NumKeys {
                numkeys_at: 2,
                dest: true,
            },
            Reply::Plain,
        ),
    ),
    (
        "ZMPOP",
        with(
            KeyRule::NumKeys {
                numkeys_at: 1,
                dest: false,
            },
            Reply::FirstIsKey,
        ),
    ),
    ("ZMSCORE", ONE),
    ("ZPOPMAX", ONE),
    ("ZPOPMIN", ONE),
    ("ZRANGE", ONE),
    ("ZRANGEBYSCORE", ONE),
    ("ZRANGESTORE", TWO),
    ("ZRANK", ONE),
    ("ZREM", ONE),
    ("ZREMRANGEBYRANK", ONE),
    ("ZREMRANGEBYSCORE", ONE),
    ("ZREVRANGE", ONE),
    ("ZREVRANK", ONE),
    ("ZSCAN", ONE),
    ("ZSCORE", ONE),
    (
        "ZUNION",
        with(
            KeyRule::NumKeys {
                numkeys_at: 1,
                dest: false,
            },
            Reply::Plain,
        ),
    ),
    (
        "ZUNIONSTORE",
        with(
            KeyRule::NumKeys {
                numkeys_at: 2,
                dest: true,
            },
            Reply::Plain,
        ),
    ),
];

/// The commands [`LaneRedis`](crate::LaneRedis) supports in a non-base lane (upper case, sorted).
pub const SUPPORTED: &[&str] = &{
    let mut names = [""; TABLE.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = TABLE[i].0;
        i += 1;
    }
    names
};

/// The commands [`LaneRedis`](crate::LaneRedis) refuses in a non-base lane, with the reason.
/// Commands in neither list are refused too.
pub const REFUSED: &[(&str, &str)] = &[
    ("FLUSHALL", "it would delete base keys"),
    ("FLUSHDB", "it would delete base keys"),
    ("SELECT", "lanes are namespaces within one database"),
    ("SWAPDB", "it swaps base data"),
    ("MOVE", "it moves keys out of the namespace"),
    ("MIGRATE", "it moves keys out of the namespace"),
    ("RANDOMKEY", "it returns keys of any namespace"),
    ("DBSIZE", "it counts keys of every namespace"),
    (
        "SUBSCRIBE",
        "subscribe to `LaneRedis::channel(name)` on a dedicated connection instead",
    ),
    (
        "PSUBSCRIBE",
        "subscribe to `LaneRedis::channel(name)` on a dedicated connection instead",
    ),
    (
        "SCRIPT",
        "script management is an operator task, not lane traffic",
    ),
    ("CONFIG", "server configuration is not lane traffic"),
    ("DEBUG", "server debugging is not lane traffic"),
];

/// `TABLE`'s entry for `name`, at compile time.
const fn entry(name: &str) -> (&'static str, Spec) {
    let mut i = 0;
    while i < TABLE.len() {
        let n = TABLE[i].0.as_bytes();
        if n.len() == name.len() {
            let mut j = 0;
            while j < n.len() && n[j] == name.as_bytes()[j] {
                j += 1;
            }
            if j == n.len() {
                return TABLE[i];
            }
        }
        i += 1;
    }
    panic!("not in TABLE")
}

/// The command named `name` (any case), with its canonical upper-case name, if supported.
///
/// Every command in a lane looks itself up here, so this is a hash probe (usually one name
/// comparison) rather than a binary search (eight of them).
pub(crate) fn lookup(name: &[u8]) -> Option<(&'static str, Spec)> {
    // The commands applications send most, as redis-rs spells them: matched in code, so the
    // common case reads no table memory (cold between two commands of a busy client).
    match name {
        b"GET" => return Some(const { entry("GET") }),
        b"SET" => return Some(const { entry("SET") }),
        b"DEL" => return Some(const { entry("DEL") }),
        b"HGET" => return Some(const { entry("HGET") }),
        b"HSET" => return Some(const { entry("HSET") }),
        b"EXPIRE" => return Some(const { entry("EXPIRE") }),
        b"INCR" => return Some(const { entry("INCR") }),
        b"EXISTS" => return Some(const { entry("EXISTS") }),
        b"MGET" => return Some(const { entry("MGET") }),
        _ => {}
    }
    // Hashing the upper-cased bytes on the fly: no copy, no UTF-8 check on every command.
    let mut slot = fnv1a_upper(name) as usize % SLOTS;
    loop {
        match INDEX[slot] {
            0 => return None,
            i => {
                let (n, spec) = &TABLE[usize::from(i) - 1];
                if n.as_bytes().eq_ignore_ascii_case(name) {
                    return Some((n, *spec));
                }
            }
        }
        slot = (slot + 1) % SLOTS;
    }
}

const fn fnv1a_upper(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i].to_ascii_uppercase() as u32;
        hash = hash.wrapping_mul(0x0100_0193);
        i += 1;
    }
    hash
}

/// Open addressing with linear probing, under a third full: probes stay short.
const SLOTS: usize = 512;
const _: () = assert!(TABLE.len() * 3 < SLOTS && TABLE.len() < u8::MAX as usize);

/// `TABLE` index + 1 by the name's hash slot (0: empty), built at compile time.
const INDEX: [u8; SLOTS] = {
    let mut index = [0u8; SLOTS];
    let mut i = 0;
    while i < TABLE.len() {
        let mut slot = fnv1a_upper(TABLE[i].0.as_bytes()) as usize % SLOTS;
        while index[slot] != 0 {
            slot = (slot + 1) % SLOTS;
        }
        index[slot] = (i + 1) as u8;
        i += 1;
    }
    index
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_exactly_the_table() {
        for (name, spec) in TABLE {
            assert_eq!(
                lookup(name.as_bytes()).map(|s| s.1.keys),
                Some(spec.keys),
                "{name}"
            );
            let lower = name.to_ascii_lowercase();
            assert_eq!(
                lookup(lower.as_bytes()).map(|s| s.0),
                Some(*name),
                "{lower}"
            );
        }
        for (name, _) in REFUSED {
            assert!(lookup(name.as_bytes()).is_none(), "{name}");
        }
        for name in [
            "",
            "G",
            "GE",
            "GETS",
            "XGET",
            "SETX",
            "ZZZZZZZZZZZZZZZZZZZZZZZZ",
        ] {
            assert!(lookup(name.as_bytes()).is_none(), "{name}");
        }
    }

    #[test]
    fn table_is_sorted_and_unique() {
        for w in TABLE.windows(2) {
            assert!(w[0].0 < w[1].0, "{} before {}", w[0].0, w[1].0);
        }
        for (refused, _) in REFUSED {
            assert!(
                lookup(refused.as_bytes()).is_none(),
                "{refused} is both supported and refused"
            );
        }
        assert!(lookup(b"GET").is_some());
        assert!(lookup(b"NOPE").is_none());
    }

    #[test]
    fn supported_list_matches_the_table() {
        assert_eq!(SUPPORTED.len(), TABLE.len());
        assert!(SUPPORTED.contains(&"XREADGROUP"));
    }
}
