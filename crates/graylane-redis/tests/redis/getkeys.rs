//! The command table against the server: every supported command, rewritten in a lane, is
//! shown to Redis's `COMMAND GETKEYS` instead of being run. Every key Redis finds in the
//! rewritten command must be in the lane's namespace, and every argument the wrapper prefixed
//! must be one Redis takes for a key (or a pattern or channel, which Redis does not report).

use std::sync::{Arc, Mutex};

use redis::aio::ConnectionLike;
use redis::{Arg, Cmd, Pipeline, RedisFuture, Value};

use super::*;

/// A rewritten command's arguments, and the keys Redis finds in it.
type Seen = (Vec<Vec<u8>>, redis::RedisResult<Vec<Vec<u8>>>);

/// Hands each command it is given to `COMMAND GETKEYS` and records the command and the answer.
#[derive(Clone)]
struct GetKeys {
    redis: MultiplexedConnection,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn words(cmd: &Cmd) -> Vec<Vec<u8>> {
    cmd.args_iter()
        .map(|a| match a {
            Arg::Simple(b) => b.to_vec(),
            // A cursor (SCAN's, from redis-rs's iterators): the first page.
            _ => b"0".to_vec(),
        })
        .collect()
}

impl ConnectionLike for GetKeys {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let args = words(cmd);
            let mut ask = redis::cmd("COMMAND");
            ask.arg("GETKEYS");
            for a in &args {
                ask.arg(a.as_slice());
            }
            let keys = ask.query_async(&mut self.redis).await;
            self.seen.lock().unwrap().push((args, keys));
            Ok(Value::Okay)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        _: &'a Pipeline,
        _: usize,
        _: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        unreachable!("single commands only")
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// Arguments the wrapper moves into the namespace that Redis does not call keys.
fn prefixes_non_keys(command: &str) -> bool {
    // Patterns (KEYS, SCAN MATCH, SORT BY/GET) and pub/sub channels.
    matches!(command, "KEYS" | "SCAN" | "SORT" | "PUBLISH")
}

#[tokio::test]
async fn the_command_table_agrees_with_command_getkeys() {
    let f = Fixture::new("getkeys").await;
    let recorder = GetKeys {
        redis: f.raw.clone(),
        seen: Arc::default(),
    };
    let mut conn = LaneRedis::new(recorder.clone(), f.cases_namespaces());
    async {
        for case in CASES {
            let cmd = f.case(case);
            cmd.query_async::<Value>(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{case}: {e}"));
        }
    }
    .with_lane(gray())
    .await;
    let seen = recorder.seen.lock().unwrap();
    assert_eq!(seen.len(), CASES.len());
    let prefix = b"lane:gray:";
    let mut checked = 0;
    for (case, (args, keys)) in CASES.iter().zip(seen.iter()) {
        let command = case.split(' ').next().unwrap();
        let input = words(&f.case(case));
        let keys = match keys {
            Ok(keys) => keys.clone(),
            // Commands without keys: Redis says so rather than answering an empty list (and
            // takes no command of one word).
            Err(e) if e.to_string().contains("no key arguments") => Vec::new(),
            Err(_) if args.len() == 1 => Vec::new(),
            Err(e) => panic!("{case}: COMMAND GETKEYS refused the rewritten command: {e}"),
        };
        for key in &keys {
            assert!(
                key.starts_with(prefix),
                "{case}: Redis sees key {:?} outside the lane",
                String::from_utf8_lossy(key)
            );
        }
        // What was prefixed: an argument that is the input's with the prefix in front.
        for (i, out) in args.iter().enumerate() {
            let prefixed = input.get(i).is_some_and(|a| {
                out.len() == a.len() + prefix.len() && out.starts_with(prefix) && out.ends_with(a)
            });
            if prefixed && !prefixes_non_keys(command) {
                assert!(
                    keys.contains(out),
                    "{case}: argument {i} was prefixed but Redis does not take it for a key"
                );
            }
        }
        checked += keys.len();
    }
    assert!(checked > 150, "keys checked: {checked}");
}
