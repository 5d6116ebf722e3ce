//! The Redis rewrite in a lane, in process against the command table: every command is
//! refused, or comes out with each argument kept or prefixed and every key position (patterns
//! included) inside the lane's namespace (`graylane_redis::fuzzing::check`).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Command names the fuzzer picks from (any case), so that it spends its time on arguments;
/// a name of its own now and then reaches the refusals.
const NAMES: &[&str] = &[
    "get",
    "SET",
    "mset",
    "DEL",
    "SCAN",
    "keys",
    "EVAL",
    "EVALSHA",
    "FCALL",
    "eval_ro",
    "COPY",
    "XREAD",
    "XREADGROUP",
    "SORT",
    "BLPOP",
    "ZUNIONSTORE",
    "BLMPOP",
    "OBJECT",
    "XGROUP",
    "PUBLISH",
    "MULTI",
    "EXEC",
    "LMOVE",
    "GEOSEARCH",
    "HSCAN",
];

/// Words that steer option parsing.
const WORDS: &[&str] = &[
    "MATCH", "COUNT", "TYPE", "STREAMS", "GROUP", "BLOCK", "NOACK", "DB", "REPLACE", "BY", "GET",
    "STORE", "LIMIT", "#", "*", "0", "1", "2", "3", "-1",
];

fuzz_target!(|input: (u8, Vec<(u8, Vec<u8>)>)| {
    let (name, args) = input;
    let name: Vec<u8> = if name as usize >= NAMES.len() * 8 {
        vec![name]
    } else {
        NAMES[name as usize % NAMES.len()].as_bytes().to_vec()
    };
    let words: Vec<Vec<u8>> = std::iter::once(name)
        .chain(args.into_iter().take(16).map(|(k, raw)| {
            if (k as usize) < WORDS.len() * 4 {
                WORDS[k as usize % WORDS.len()].as_bytes().to_vec()
            } else {
                raw
            }
        }))
        .collect();
    let refs: Vec<&[u8]> = words.iter().map(Vec::as_slice).collect();
    graylane_redis::fuzzing::check(&refs);
});
