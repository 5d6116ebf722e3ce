//! Against the real Redis (127.0.0.1:6379; `REDIS_URL` overrides). Every test names its keys
//! with a unique nonce and deletes them at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use graylane_core::spec::LaneSpec;
use graylane_core::{Lane, LaneContext, LaneFutureExt, task};
use graylane_redis::{LaneRedis, Namespaces, REFUSED, SUPPORTED};
use graylane_testkit::services::{redis_url, unique};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

// The attacks a lane must withstand: options Redis reads differently, scripts, other databases,
// hand-written transactions.
mod leaks;
// The command table checked against the server's own key specifications.
mod getkeys;
// A server of the test's own, killed in the middle of lane traffic and started again.
mod outage;

struct Fixture {
    nonce: String,
    raw: MultiplexedConnection,
    spec: LaneSpec,
}

impl Fixture {
    async fn new(name: &str) -> Fixture {
        let nonce = unique(name);
        let spec = LaneSpec::from_yaml_str("lanes: [{name: gray}, {name: blue}]").unwrap();
        let raw = redis::Client::open(redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("Redis is up (bash .ci/run starts it)");
        Fixture { nonce, raw, spec }
    }

    fn key(&self, k: &str) -> String {
        format!("{}:{k}", self.nonce)
    }

    /// One of [`CASES`] as a command, its keys this test's own.
    fn case(&self, case: &str) -> redis::Cmd {
        let mut cmd = redis::Cmd::new();
        for (i, word) in case.split(' ').enumerate() {
            let word = if word.contains('{') {
                word.replace('{', &format!("{}:", self.nonce))
                    .replace('}', "")
            } else if i == 0 {
                word.to_owned()
            } else {
                word.replace('_', " ")
            };
            cmd.arg(word);
        }
        cmd
    }

    /// The namespaces [`CASES`] run in: their scripts and function allow-listed (a lane runs
    /// no other, see `leaks`).
    fn cases_namespaces(&self) -> Namespaces {
        Namespaces::from_spec(&self.spec)
            .allow_scripts([
                hex_sha1("return 1"),
                hex_sha1("return KEYS[1]"),
                "0".repeat(40),
            ])
            .allow_functions(["nosuchfn"])
    }

    fn wrap(&self, namespaces: Namespaces) -> LaneRedis<MultiplexedConnection> {
        LaneRedis::new(self.raw.clone(), namespaces)
    }

    /// Every key of this test, as stored.
    async fn stored(&self) -> Vec<String> {
        let mut raw = self.raw.clone();
        let mut keys: Vec<String> = raw.keys(format!("*{}*", self.nonce)).await.unwrap();
        keys.sort();
        keys
    }

    async fn cleanup(&self) {
        let mut raw = self.raw.clone();
        let keys = self.stored().await;
        if !keys.is_empty() {
            let _: () = raw.del(keys).await.unwrap();
        }
    }
}

/// The name Redis gives a script: the SHA-1 of its text, in hex.
fn hex_sha1(script: &str) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(script.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn gray() -> LaneContext {
    LaneContext::new(Lane::new("gray").unwrap())
}

#[tokio::test]
async fn the_same_code_writes_base_and_lane_keys_apart() {
    let f = Fixture::new("apart").await;
    let conn = f.wrap(Namespaces::from_spec(&f.spec));
    let work = |mut c: LaneRedis<MultiplexedConnection>, f_key: String, v: &'static str| async move {
        let () = c.set(&f_key, v).await.unwrap();
        let n: i64 = c.incr(format!("{f_key}:count"), 1).await.unwrap();
        let got: String = c.get(&f_key).await.unwrap();
        (got, n)
    };
    assert_eq!(
        work(conn.clone(), f.key("cart"), "base").await,
        ("base".into(), 1)
    );
    let gray_result = async { work(conn.clone(), f.key("cart"), "gray").await }
        .with_lane(gray())
        .await;
    assert_eq!(
        gray_result,
        ("gray".into(), 1),
        "the lane's counter starts fresh"
    );
    // Across a spawned task.
    let spawned = async {
        let c = conn.clone();
        let k = f.key("cart");
        task::spawn(async move { work(c, k, "gray2").await })
            .await
            .unwrap()
    }
    .with_lane(gray())
    .await;
    assert_eq!(spawned, ("gray2".into(), 2));

    let n = &f.nonce;
    assert_eq!(
        f.stored().await,
        [
            format!("{n}:cart"),
            format!("{n}:cart:count"),
            format!("lane:gray:{n}:cart"),
            format!("lane:gray:{n}:cart:count"),
        ]
    );
    let mut raw = f.raw.clone();
    let base: String = raw.get(f.key("cart")).await.unwrap();
    assert_eq!(base, "base", "base untouched");
    f.cleanup().await;
}

/// One invocation of every supported command: `{x}` is a key of the test, `_` in a later word
/// a space.
const CASES: &[&str] = &[
    "SET {s} v",
    "APPEND {s} x",
    "BITCOUNT {s}",
    "BITPOS {s} 1",
    "DECR {n}",
    "DECRBY {n} 2",
    "EXISTS {s} {n}",
    "EXPIRE {s} 100",
    "EXPIREAT {s} 99999999999",
    "EXPIRETIME {s}",
    "PEXPIRE {s} 100000",
    "PEXPIREAT {s} 99999999999999",
    "PEXPIRETIME {s}",
    "PERSIST {s}",
    "GET {s}",
    "GETBIT {s} 1",
    "GETRANGE {s} 0 1",
    "GETSET {s} w",
    "GETEX {s}",
    "GETDEL {s}",
    "INCR {n}",
    "INCRBY {n} 3",
    "INCRBYFLOAT {f} 1.5",
    "MSET {a} 1 {b} 2",
    "MSETNX {c} 1 {d} 2",
    "MGET {a} {b}",
    "PSETEX {p} 100000 v",
    "SETEX {x} 100 v",
    "SETNX {y} v",
    "SETBIT {bits} 3 1",
    "SETRANGE {s} 0 abc",
    "STRLEN {s}",
    "TTL {x}",
    "PTTL {x}",
    "TYPE {x}",
    "TOUCH {a} {b}",
    "COPY {a} {copy}",
    "RENAME {copy} {renamed}",
    "RENAMENX {renamed} {renamed2}",
    "DUMP {a}",
    "RESTORE {restored} 0 junk",
    "OBJECT ENCODING {a}",
    "OBJECT HELP",
    "HSET {h} f 1",
    "HSETNX {h} g 2",
    "HMSET {h} i 3",
    "HGET {h} f",
    "HMGET {h} f g",
    "HGETALL {h}",
    "HINCRBY {h} f 1",
    "HINCRBYFLOAT {h} f 0.5",
    "HEXISTS {h} f",
    "HKEYS {h}",
    "HVALS {h}",
    "HLEN {h}",
    "HSTRLEN {h} f",
    "HSCAN {h} 0",
    "HDEL {h} i",
    "RPUSH {l} a b c",
    "LPUSH {l} z",
    "LPUSHX {l} y",
    "RPUSHX {l} d",
    "LRANGE {l} 0 -1",
    "LINDEX {l} 0",
    "LINSERT {l} BEFORE a q",
    "LLEN {l}",
    "LPOS {l} a",
    "LSET {l} 0 y2",
    "LREM {l} 1 q",
    "LMOVE {l} {l2} LEFT RIGHT",
    "RPOPLPUSH {l} {l2}",
    "BLMOVE {l} {l2} LEFT LEFT 0.01",
    "LPOP {l}",
    "RPOP {l}",
    "LTRIM {l} 0 5",
    "BLPOP {l2} {l} 0.01",
    "BRPOP {l2} 0.01",
    "LMPOP 2 {l} {l2} LEFT",
    "BLMPOP 0.01 2 {l} {l2} RIGHT",
    "SADD {set} a b c",
    "SADD {set2} b",
    "SREM {set} c",
    "SMEMBERS {set}",
    "SISMEMBER {set} a",
    "SMISMEMBER {set} a b",
    "SCARD {set}",
    "SRANDMEMBER {set}",
    "SSCAN {set} 0",
    "SINTER {set} {set2}",
    "SINTERCARD 2 {set} {set2}",
    "SINTERSTORE {inter} {set} {set2}",
    "SUNION {set} {set2}",
    "SUNIONSTORE {union} {set} {set2}",
    "SDIFF {set} {set2}",
    "SDIFFSTORE {diff} {set} {set2}",
    "SMOVE {set} {set2} a",
    "SPOP {set}",
    "ZADD {z} 1 a 2 b 3 c",
    "ZADD {z2} 1 b",
    "ZCARD {z}",
    "ZCOUNT {z} 0 10",
    "ZINCRBY {z} 1 a",
    "ZMSCORE {z} a b",
    "ZSCORE {z} a",
    "ZRANK {z} a",
    "ZREVRANK {z} a",
    "ZRANGE {z} 0 -1",
    "ZRANGEBYSCORE {z} 0 10",
    "ZREVRANGE {z} 0 -1",
    "ZRANGESTORE {zr} {z} 0 -1",
    "ZSCAN {z} 0",
    "ZUNION 2 {z} {z2}",
    "ZUNIONSTORE {zu} 2 {z} {z2}",
    "ZINTER 2 {z} {z2}",
    "ZINTERSTORE {zi} 2 {z} {z2}",
    "ZINTERCARD 2 {z} {z2}",
    "ZDIFF 2 {z} {z2}",
    "ZDIFFSTORE {zd} 2 {z} {z2}",
    "ZPOPMIN {z}",
    "ZPOPMAX {z}",
    "ZMPOP 2 {z} {z2} MIN",
    "BZPOPMIN {z2} 0.01",
    "BZPOPMAX {zu} 0.01",
    "ZREM {zu} a",
    "ZREMRANGEBYRANK {zu} 0 0",
    "ZREMRANGEBYSCORE {zu} 0 1",
    "PFADD {hll} a b",
    "PFCOUNT {hll}",
    "PFMERGE {hll2} {hll}",
    "GEOADD {geo} 13.36 38.11 palermo 15.08 37.50 catania",
    "GEODIST {geo} palermo catania",
    "GEOPOS {geo} palermo",
    "GEOSEARCH {geo} FROMMEMBER palermo BYRADIUS 200 km",
    "XADD {st} * f v",
    "XADD {st2} * f v",
    "XLEN {st}",
    "XRANGE {st} - +",
    "XREVRANGE {st} + -",
    "XREAD COUNT 5 STREAMS {st} {st2} 0 0",
    "XGROUP CREATE {st} grp 0",
    "XGROUP HELP",
    "XREADGROUP GROUP grp c1 COUNT 5 STREAMS {st} >",
    "XPENDING {st} grp",
    "XACK {st} grp 0-1",
    "XCLAIM {st} grp c2 0 0-1",
    "XAUTOCLAIM {st} grp c2 0 0",
    "XDEL {st} 0-1",
    "XTRIM {st} MAXLEN 10",
    "SORT {l2} ALPHA",
    "SORT {set2} BY nosort STORE {sorted}",
    "SORT {l2} ALPHA GET # GET {s}*",
    "EVAL return_1 0",
    "EVAL return_KEYS[1] 1 {s}",
    "EVALSHA 0000000000000000000000000000000000000000 1 {s}",
    "EVAL_RO return_KEYS[1] 1 {s}",
    "EVALSHA_RO 0000000000000000000000000000000000000000 1 {s}",
    "FCALL nosuchfn 1 {s}",
    "FCALL_RO nosuchfn 1 {s}",
    "PUBLISH {chan} hello",
    "WATCH {s}",
    "UNWATCH",
    "PING",
    "ECHO hi",
    "TIME",
    "KEYS {s}*",
    "SCAN 0 MATCH {s}* COUNT 1000",
    "SCAN 0",
    "MULTI",
    "SET {m} 1",
    "EXEC",
    "MULTI",
    "SET {m} 2",
    "DISCARD",
    "DEL {a} {b}",
    "UNLINK {c} {d}",
];

/// One invocation of every supported command, in a lane. Server errors are fine (wrong type,
/// bad payload, ...): what must hold is that graylane did not refuse a supported command and
/// that nothing outside the lane's namespace was touched.
#[tokio::test]
async fn every_supported_command_stays_in_the_lane() {
    let f = Fixture::new("table").await;
    let mut conn = f.wrap(f.cases_namespaces());
    let cases = CASES;
    let mut covered = std::collections::BTreeSet::new();
    let mut refused = Vec::new();
    async {
        for case in cases {
            covered.insert(case.split(' ').next().unwrap().to_owned());
            let cmd = f.case(case);
            if let Err(e) = cmd.query_async::<redis::Value>(&mut conn).await
                && e.to_string().contains("graylane refused")
            {
                refused.push(format!("{case}: {e}"));
            }
        }
    }
    .with_lane(gray())
    .await;
    assert!(
        refused.is_empty(),
        "supported commands were refused: {refused:#?}"
    );
    let missing: Vec<_> = SUPPORTED
        .iter()
        .filter(|c| !covered.contains(**c))
        .collect();
    assert!(
        missing.is_empty(),
        "commands without a case here: {missing:?}"
    );
    let leaked: Vec<String> = f
        .stored()
        .await
        .into_iter()
        .filter(|k| !k.starts_with("lane:gray:"))
        .collect();
    assert!(leaked.is_empty(), "keys outside the lane: {leaked:?}");
    let stored = f.stored().await;
    assert!(
        stored.len() > 20,
        "the commands did write in the lane: {stored:?}"
    );
    f.cleanup().await;
}

#[tokio::test]
async fn unsafe_commands_fail_closed_and_touch_nothing() {
    let f = Fixture::new("refused").await;
    let mut raw = f.raw.clone();
    let () = raw.set(f.key("precious"), "base").await.unwrap();
    let mut conn = f.wrap(Namespaces::from_spec(&f.spec));
    let mut attempts: Vec<Vec<String>> =
        REFUSED.iter().map(|(c, _)| vec![(*c).to_owned()]).collect();
    attempts.push(vec!["FROBNICATE".into(), f.key("precious")]);
    attempts.push(vec!["EVALSHA".into(), "0".repeat(40), "0".into()]);
    attempts.push(vec![
        "EVAL".into(),
        format!("return redis.call('DEL', '{}')", f.key("precious")),
        "0".into(),
    ]);
    attempts.push(vec![
        "EVAL".into(),
        "return 1".into(),
        "3".into(),
        "only-one".into(),
    ]);
    attempts.push(vec![
        "XREAD".into(),
        "STREAMS".into(),
        "a".into(),
        "b".into(),
        "0".into(),
    ]);
    let before = conn.refused();
    async {
        for words in &attempts {
            let mut cmd = redis::Cmd::new();
            for w in words {
                cmd.arg(w);
            }
            let err = cmd
                .query_async::<redis::Value>(&mut conn)
                .await
                .unwrap_err();
            assert!(
                err.to_string().contains("graylane refused"),
                "{words:?}: {err}"
            );
        }
    }
    .with_lane(gray())
    .await;
    assert_eq!(conn.refused() - before, attempts.len() as u64);
    let still: String = raw.get(f.key("precious")).await.unwrap();
    assert_eq!(still, "base");
    // In base the same connection is a plain connection: FLUSHDB would pass (not run here).
    f.cleanup().await;
}

#[tokio::test]
async fn keys_and_scan_come_back_without_the_prefix() {
    let f = Fixture::new("scan").await;
    let mut conn = f.wrap(Namespaces::from_spec(&f.spec));
    let mut raw = f.raw.clone();
    let () = raw.set(f.key("base-only"), 1).await.unwrap();
    let (mut keys, mut scanned) = async {
        for i in 0..25 {
            let () = conn.set(f.key(&format!("k{i}")), i).await.unwrap();
        }
        let keys: Vec<String> = conn.keys(f.key("*")).await.unwrap();
        let mut scanned = Vec::new();
        let mut iter: redis::AsyncIter<'_, String> = conn.scan_match(f.key("*")).await.unwrap();
        while let Some(k) = iter.next_item().await {
            scanned.push(k.unwrap());
        }
        (keys, scanned)
    }
    .with_lane(gray())
    .await;
    keys.sort();
    scanned.sort();
    let mut want: Vec<String> = (0..25).map(|i| f.key(&format!("k{i}"))).collect();
    want.sort();
    assert_eq!(keys, want, "no prefix, no base keys");
    assert_eq!(scanned, want);
    // A blocking pop names the key it popped from, without the prefix.
    let popped: Option<(String, String)> = async {
        let () = conn.rpush(f.key("q"), "job").await.unwrap();
        conn.blpop(f.key("q"), 0.1).await.unwrap()
    }
    .with_lane(gray())
    .await;
    assert_eq!(popped, Some((f.key("q"), "job".into())));
    f.cleanup().await;
}

#[tokio::test]
async fn pipelines_and_transactions_stay_in_the_lane() {
    let f = Fixture::new("pipe").await;
    let mut conn = f.wrap(Namespaces::from_spec(&f.spec));
    let (plain, atomic) = async {
        let plain: (i64, i64, Vec<String>) = redis::pipe()
            .incr(f.key("p"), 1)
            .incr(f.key("p"), 1)
            .keys(f.key("p*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        let atomic: (i64, String) = redis::pipe()
            .atomic()
            .incr(f.key("p"), 10)
            .set(f.key("t"), "x")
            .ignore()
            .get(f.key("t"))
            .query_async(&mut conn)
            .await
            .unwrap();
        (plain, atomic)
    }
    .with_lane(gray())
    .await;
    assert_eq!(plain, (1, 2, vec![f.key("p")]));
    assert_eq!(atomic, (12, "x".into()));
    // A pipeline with one unsafe command is refused whole: nothing runs.
    let err = async {
        redis::pipe()
            .set(f.key("never"), 1)
            .cmd("FLUSHDB")
            .query_async::<redis::Value>(&mut conn)
            .await
            .unwrap_err()
    }
    .with_lane(gray())
    .await;
    assert!(err.to_string().contains("graylane refused"), "{err}");
    let n = &f.nonce;
    assert_eq!(
        f.stored().await,
        [format!("lane:gray:{n}:p"), format!("lane:gray:{n}:t")]
    );
    f.cleanup().await;
}

#[tokio::test]
async fn read_through_reads_base_on_a_miss_and_never_writes_it() {
    let f = Fixture::new("warm").await;
    let namespaces = Namespaces::from_spec(&f.spec).read_through([format!("{}:cache:*", f.nonce)]);
    let mut conn = f.wrap(namespaces);
    let mut raw = f.raw.clone();
    let () = raw
        .set(f.key("cache:item"), "warm-from-base")
        .await
        .unwrap();
    let () = raw.set(f.key("other"), "base").await.unwrap();
    let (first, other, after) = async {
        let first: Option<String> = conn.get(f.key("cache:item")).await.unwrap();
        // Not covered by the pattern: a plain lane miss.
        let other: Option<String> = conn.get(f.key("other")).await.unwrap();
        let () = conn.set(f.key("cache:item"), "gray").await.unwrap();
        let after: Option<String> = conn.get(f.key("cache:item")).await.unwrap();
        (first, other, after)
    }
    .with_lane(gray())
    .await;
    assert_eq!(first.as_deref(), Some("warm-from-base"));
    assert_eq!(other, None);
    assert_eq!(after.as_deref(), Some("gray"));
    let base: String = raw.get(f.key("cache:item")).await.unwrap();
    assert_eq!(base, "warm-from-base", "base never written");
    f.cleanup().await;
}

#[tokio::test]
async fn hash_tags_survive_and_unknown_lanes_are_refused() {
    let f = Fixture::new("tags").await;
    let mut conn = f.wrap(Namespaces::from_spec(&f.spec));
    let key = format!("{}:user:{{42}}:cart", f.nonce);
    async {
        let () = conn.set(&key, 1).await.unwrap();
    }
    .with_lane(gray())
    .await;
    let stored = f.stored().await;
    assert_eq!(stored, [format!("lane:gray:{key}")]);
    // The first {...} of the stored key is the application's own tag: same slot as unprefixed.
    let tag = |k: &str| k[k.find('{').unwrap()..=k.find('}').unwrap()].to_owned();
    assert_eq!(tag(&stored[0]), tag(&key));

    let stranger = LaneContext::new(Lane::new("stranger").unwrap());
    let err = async { conn.set::<_, _, ()>(&key, 2).await.unwrap_err() }
        .with_lane(stranger)
        .await;
    assert!(err.to_string().contains("no namespace"), "{err}");
    f.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_interleaved_commands_never_cross() {
    let f = Fixture::new("interleave").await;
    let conn = f.wrap(Namespaces::from_spec(&f.spec));
    let n = 4000;
    let next = Arc::new(AtomicUsize::new(0));
    let key = f.key("counter");
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (mut conn, next, key) = (conn.clone(), next.clone(), key.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let lane = match i % 3 {
                        0 => LaneContext::base(),
                        1 => gray(),
                        _ => LaneContext::new(Lane::new("blue").unwrap()),
                    };
                    async { conn.incr::<_, _, i64>(&key, 1).await.unwrap() }
                        .with_lane(lane)
                        .await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let mut raw = f.raw.clone();
    let count = |k: String| {
        let mut raw = raw.clone();
        async move { raw.get::<_, i64>(k).await.unwrap() }
    };
    let (b, g, bl) = (
        count(key.clone()).await,
        count(format!("lane:gray:{key}")).await,
        count(format!("lane:blue:{key}")).await,
    );
    assert_eq!((b + g + bl) as usize, n);
    assert_eq!((b, g, bl), (1334, 1333, 1333));
    let _: () = raw.del(&key).await.unwrap();
    f.cleanup().await;
}
