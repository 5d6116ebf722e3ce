//! What a lane's code cannot do, however it words a command: see base keys, write them, or
//! take lane data anywhere else. Each test is an attack that once worked.

use redis::{Value, cmd};

use super::*;

/// `words` as one command.
fn command(words: &[&str]) -> redis::Cmd {
    let mut c = redis::Cmd::new();
    for w in words {
        c.arg(*w);
    }
    c
}

/// Runs `words` in the gray lane on `conn`.
async fn in_gray(
    conn: &mut LaneRedis<MultiplexedConnection>,
    words: &[&str],
) -> redis::RedisResult<Value> {
    command(words).query_async(conn).with_lane(gray()).await
}

fn refused(r: redis::RedisResult<Value>) -> bool {
    r.is_err_and(|e| e.to_string().contains("graylane refused"))
}

/// Every key name a full SCAN with these options returns, in the gray lane.
async fn scan_all(conn: &mut LaneRedis<MultiplexedConnection>, options: &[&str]) -> Vec<String> {
    let mut cursor = "0".to_owned();
    let mut seen = Vec::new();
    loop {
        let mut words = vec!["SCAN", cursor.as_str()];
        words.extend_from_slice(options);
        let (next, keys): (String, Vec<String>) = command(&words)
            .query_async(conn)
            .with_lane(gray())
            .await
            .unwrap();
        seen.extend(keys);
        if next == "0" {
            return seen;
        }
        cursor = next;
    }
}

#[tokio::test]
async fn a_repeated_match_cannot_list_base_keys() {
    let f = Fixture::new("match").await;
    let mut raw = f.raw.clone();
    let () = raw.set(f.key("base"), 1).await.unwrap();
    let mut conn = f.wrap(Namespaces::from_spec(&f.spec));
    in_gray(&mut conn, &["SET", &f.key("lane"), "1"])
        .await
        .unwrap();
    let all = f.key("*");
    // Redis uses the last MATCH: every one of them is the lane's.
    for options in [
        vec!["MATCH", "nothing", "MATCH", all.as_str()],
        vec![
            "MATCH",
            all.as_str(),
            "COUNT",
            "1000",
            "MATCH",
            all.as_str(),
        ],
        vec![
            "match",
            "x",
            "COUNT",
            "5",
            "match",
            all.as_str(),
            "TYPE",
            "string",
        ],
    ] {
        assert_eq!(
            scan_all(&mut conn, &options).await,
            [f.key("lane")],
            "{options:?}"
        );
    }
    // What Redis would refuse, or what cannot be read for sure, is refused here.
    for words in [
        vec!["SCAN", "0", "MATCH"],
        vec!["SCAN", "0", "COUNT", "MATCH", "*"],
        vec!["SCAN", "0", "NOPE", "x"],
    ] {
        assert!(refused(in_gray(&mut conn, &words).await), "{words:?}");
    }
    f.cleanup().await;
}

#[tokio::test]
async fn stream_options_cannot_hide_a_base_stream() {
    let f = Fixture::new("streams").await;
    let mut raw = f.raw.clone();
    let stream = f.key("orders");
    let _: String = cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("f")
        .arg("base")
        .query_async(&mut raw)
        .await
        .unwrap();
    // A base consumer group named like the keyword.
    let () = cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("STREAMS")
        .arg("0")
        .query_async(&mut raw)
        .await
        .unwrap();
    let mut conn = f.wrap(Namespaces::from_spec(&f.spec));
    // GROUP takes two arguments: the group here is `STREAMS`, the key is the last `stream`.
    let read = in_gray(
        &mut conn,
        &[
            "XREADGROUP",
            "GROUP",
            "STREAMS",
            "c",
            "STREAMS",
            &stream,
            ">",
        ],
    )
    .await;
    let err = read.expect_err("the lane has no such stream, let alone the group");
    assert!(err.to_string().contains("NOGROUP"), "{err}");
    let pending: Vec<Value> = cmd("XPENDING")
        .arg(&stream)
        .arg("STREAMS")
        .arg("-")
        .arg("+")
        .arg(10)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(pending.is_empty(), "the base group delivered nothing");
    for words in [
        vec!["XREAD", "COUNT", "STREAMS", "s", "0"],
        vec!["XREADGROUP", "GROUP", "g", "STREAMS", "s", ">"],
        vec!["XREAD", "STREAMS"],
    ] {
        assert!(refused(in_gray(&mut conn, &words).await), "{words:?}");
    }
    f.cleanup().await;
}

#[tokio::test]
async fn a_lane_runs_only_allow_listed_scripts() {
    let f = Fixture::new("scripts").await;
    let mut raw = f.raw.clone();
    let precious = f.key("precious");
    let () = raw.set(&precious, "base").await.unwrap();
    let mut conn = f.wrap(Namespaces::from_spec(&f.spec));
    // No text search can tell what a script touches.
    let sneaky = format!("local c = redis['call']; return c('SET', '{precious}', 'lane')");
    let sha = hex_sha1(&sneaky);
    let _: String = cmd("SCRIPT")
        .arg("LOAD")
        .arg(&sneaky)
        .query_async(&mut raw)
        .await
        .unwrap();
    let library = format!(
        "#!lua name={n}\nredis.register_function('{n}_touch', function(keys) return redis.call('SET', keys[1], 'lane') end)",
        n = f.nonce.replace([':', '-'], "_")
    );
    let function = format!("{}_touch", f.nonce.replace([':', '-'], "_"));
    let _: String = cmd("FUNCTION")
        .arg("LOAD")
        .arg(&library)
        .query_async(&mut raw)
        .await
        .unwrap();
    for words in [
        vec!["EVAL", sneaky.as_str(), "0"],
        vec!["EVAL_RO", sneaky.as_str(), "0"],
        vec!["EVAL", sneaky.as_str(), "1", "declared"],
        vec!["EVALSHA", sha.as_str(), "0"],
        vec!["EVALSHA_RO", sha.as_str(), "0"],
        vec!["FCALL", function.as_str(), "1", "k"],
        vec!["FCALL_RO", function.as_str(), "1", "k"],
        vec!["EVAL", "return 1", "0"],
    ] {
        assert!(refused(in_gray(&mut conn, &words).await), "{words:?}");
    }
    let still: String = raw.get(&precious).await.unwrap();
    assert_eq!(still, "base");

    // Allow-listed by the spec: declared keys are moved into the lane.
    let vetted = "return redis.call('SET', KEYS[1], ARGV[1])";
    let spec = LaneSpec::from_yaml_str(&format!(
        "lanes: [{{name: gray}}]\ndata: {{redis_scripts: ['{}'], redis_functions: ['{function}']}}",
        hex_sha1(vetted).to_ascii_uppercase()
    ))
    .unwrap();
    let mut conn = f.wrap(Namespaces::from_spec(&spec));
    let key = f.key("k");
    in_gray(&mut conn, &["EVAL", vetted, "1", &key, "v"])
        .await
        .unwrap();
    in_gray(&mut conn, &["EVALSHA", &hex_sha1(vetted), "1", &key, "w"])
        .await
        .unwrap();
    in_gray(&mut conn, &["FCALL", &function, "1", &key])
        .await
        .unwrap();
    assert!(refused(in_gray(&mut conn, &["EVALSHA", &sha, "0"]).await));
    let n = &f.nonce;
    assert_eq!(
        f.stored().await,
        [format!("{n}:precious"), format!("lane:gray:{n}:k")]
    );
    let () = cmd("FUNCTION")
        .arg("DELETE")
        .arg(f.nonce.replace([':', '-'], "_"))
        .query_async(&mut raw)
        .await
        .unwrap();
    f.cleanup().await;
}

#[tokio::test]
async fn copy_cannot_take_lane_data_to_another_database() {
    let f = Fixture::new("copy").await;
    let mut conn = f.wrap(Namespaces::from_spec(&f.spec));
    let (a, b) = (f.key("a"), f.key("b"));
    in_gray(&mut conn, &["SET", &a, "1"]).await.unwrap();
    for words in [
        vec!["COPY", a.as_str(), b.as_str(), "DB", "1"],
        vec!["COPY", a.as_str(), b.as_str(), "REPLACE", "db", "1"],
        vec!["COPY", a.as_str(), b.as_str(), "DB", "0", "DB", "1"],
    ] {
        assert!(refused(in_gray(&mut conn, &words).await), "{words:?}");
    }
    let mut other = redis::Client::open(format!("{}/1", redis_url().trim_end_matches('/')))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let there: Vec<String> = other.keys(format!("*{}*", f.nonce)).await.unwrap();
    assert!(there.is_empty(), "{there:?}");
    in_gray(&mut conn, &["COPY", &a, &b, "REPLACE"])
        .await
        .unwrap();
    let n = &f.nonce;
    assert_eq!(
        f.stored().await,
        [format!("lane:gray:{n}:a"), format!("lane:gray:{n}:b")]
    );
    f.cleanup().await;
}

#[tokio::test]
async fn replies_inside_a_hand_written_transaction_lose_the_prefix() {
    let f = Fixture::new("multi").await;
    let mut conn = f.wrap(Namespaces::from_spec(&f.spec));
    let (k, q) = (f.key("k"), f.key("q"));
    let all = f.key("*");
    in_gray(&mut conn, &["RPUSH", &q, "job"]).await.unwrap();
    for words in [
        vec!["MULTI"],
        vec!["SET", k.as_str(), "1"],
        vec!["KEYS", all.as_str()],
        vec!["SCAN", "0", "MATCH", all.as_str(), "COUNT", "1000"],
        vec!["BLPOP", q.as_str(), "0"],
    ] {
        in_gray(&mut conn, &words).await.unwrap();
    }
    let Value::Array(replies) = in_gray(&mut conn, &["EXEC"]).await.unwrap() else {
        panic!("EXEC answers an array")
    };
    let text = format!("{replies:?}");
    assert!(!text.contains("lane:gray:"), "{text}");
    let mut keys: Vec<String> = redis::from_redis_value(replies[1].clone()).unwrap();
    keys.sort();
    assert_eq!(keys, [k.clone(), q.clone()]);
    let popped: (String, String) = redis::from_redis_value(replies[3].clone()).unwrap();
    assert_eq!(popped, (q.clone(), "job".into()));
    // Outside a transaction, replies are left alone again.
    let after: Vec<String> =
        redis::from_redis_value(in_gray(&mut conn, &["KEYS", &all]).await.unwrap()).unwrap();
    assert_eq!(after, [k.as_str()]);
    // The same transaction written into a plain pipeline.
    let piped: (String, String, Vec<Vec<String>>) = redis::pipe()
        .cmd("MULTI")
        .cmd("KEYS")
        .arg(&all)
        .cmd("EXEC")
        .query_async(&mut conn)
        .with_lane(gray())
        .await
        .unwrap();
    assert_eq!(piped, ("OK".into(), "QUEUED".into(), vec![vec![k.clone()]]));
    f.cleanup().await;
}

#[tokio::test]
async fn a_refused_command_aborts_its_transaction() {
    let f = Fixture::new("abort").await;
    let mut conn = f.wrap(Namespaces::from_spec(&f.spec));
    let k = f.key("k");
    in_gray(&mut conn, &["MULTI"]).await.unwrap();
    in_gray(&mut conn, &["SET", &k, "1"]).await.unwrap();
    assert!(refused(in_gray(&mut conn, &["FLUSHDB"]).await));
    // Redis would run the rest: the refused command never reached it.
    let err = in_gray(&mut conn, &["EXEC"]).await.unwrap_err();
    assert!(err.to_string().contains("EXECABORT"), "{err}");
    assert!(
        f.stored().await.is_empty(),
        "nothing of the transaction ran"
    );
    // The connection is usable again, outside any transaction.
    assert_eq!(
        in_gray(&mut conn, &["SET", &k, "2"]).await.unwrap(),
        Value::Okay
    );
    // A command in another lane cannot join a transaction the gray lane opened.
    in_gray(&mut conn, &["MULTI"]).await.unwrap();
    let base: redis::RedisResult<Value> =
        command(&["SET", &k, "base"]).query_async(&mut conn).await;
    assert!(refused(base));
    assert!(in_gray(&mut conn, &["EXEC"]).await.is_err());
    let n = &f.nonce;
    assert_eq!(f.stored().await, [format!("lane:gray:{n}:k")]);
    f.cleanup().await;
}
