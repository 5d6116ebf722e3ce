//! The rewrite's invariant, for the fuzz target (`fuzz/fuzz_targets/redis_rewrite.rs`): not
//! public API (feature `fuzzing`, hidden from the docs).

use graylane_core::Lane;
use redis::{Arg, Cmd};

use crate::args::Args;
use crate::connection::Shared;
use crate::keys::key_positions;
use crate::namespaces::Namespaces;
use crate::rewrite::rewrite;
use crate::table::{self, KeyRule};

/// Rewrites `words` (name first) in lane `gray` with prefix `lane:gray:` and checks the result:
/// refused, or every argument kept or prefixed (never anything else), the name unchanged, and
/// every key position of the *output*, by the command table, inside the namespace (patterns
/// too). Panics when the invariant breaks; returns whether the command was refused.
pub fn check(words: &[&[u8]]) -> bool {
    thread_local! {
        static SHARED: Shared = Shared::new(
            Namespaces::from_spec(&graylane_core::spec::LaneSpec {
                lanes: vec![graylane_core::spec::LaneDef {
                    name: Lane::from_static("gray"),
                    description: None,
                    version: None,
                    services: Vec::new(),
                    data: None,
                    mirror: false,
                }],
                ..Default::default()
            })
            .allow_scripts(["e0e1f9fabfc9d4800c877a703b823ac0578ff8db"])
            .allow_functions(["f"]),
        );
    }
    let prefix: &[u8] = b"lane:gray:";
    let gray = Lane::from_static("gray");
    let mut cmd = Cmd::new();
    for w in words {
        cmd.arg(*w);
    }
    let mut out = Cmd::new();
    let Ok(_) = SHARED.with(|shared| rewrite(shared, &cmd, gray, prefix, &mut out)) else {
        return true;
    };
    let output: Vec<&[u8]> = out
        .args_iter()
        .map(|a| match a {
            Arg::Simple(b) => b,
            _ => panic!("the rewrite wrote a cursor"),
        })
        .collect();
    assert_eq!(output.first(), words.first(), "the name is kept");
    let (name, spec) =
        table::lookup(words[0]).expect("a command that was rewritten is in the table");
    // Argument by argument: kept, or the input's with the prefix in front; only SCAN adds
    // arguments (`MATCH <prefix>*`).
    for (i, o) in output.iter().enumerate() {
        match words.get(i) {
            Some(w) => assert!(
                o == w || (o.starts_with(prefix) && &o[prefix.len()..] == *w),
                "argument {i} was changed, not prefixed"
            ),
            None => assert!(
                spec.keys == KeyRule::Scan
                    && output.len() == words.len() + 2
                    && output[words.len()] == b"MATCH",
                "only SCAN's MATCH is added"
            ),
        }
    }
    let positions = key_positions(
        name,
        spec,
        &Args::Unpacked(output.iter().map(|o| o.to_vec()).collect()),
        gray,
    )
    .expect("the output's keys can be found as the input's were");
    for (i, o) in output.iter().enumerate() {
        if positions.contains(i) {
            assert!(
                o.starts_with(prefix),
                "key position {i} is outside the namespace"
            );
        }
    }
    if spec.keys == KeyRule::Scan {
        assert!(
            !positions.is_empty(),
            "a lane SCAN always matches its namespace"
        );
    }
    false
}
