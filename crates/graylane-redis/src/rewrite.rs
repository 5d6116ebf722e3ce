//! A command rewritten for a lane: every key it names (and its `KEYS` / `SCAN MATCH` pattern)
//! moved into the lane's namespace, or the command refused.
//!
//! Two routes write the same bytes: [`rewrite_fixed`], one pass for the commands whose keys sit
//! at fixed positions (most traffic), and [`rewrite_general`] for everything else in the table.

use std::sync::atomic::Ordering;

use graylane_core::Lane;
use redis::{Arg, Cmd, RedisResult};

use crate::args::Args;
use crate::connection::Shared;
use crate::error::refuse;
use crate::keys::key_positions;
use crate::table::{self, KeyRule, REFUSED, Reply};

/// How to translate the reply of a rewritten command.
pub(crate) struct Rewritten {
    /// The command's canonical name.
    pub(crate) command: &'static str,
    pub(crate) reply: Reply,
    /// Read-through: on a miss, run the caller's command as it is (on the base key).
    pub(crate) read_through: bool,
}

/// Writes `cmd`, rewritten for `lane`, into `out` (cleared first).
pub(crate) fn rewrite(
    shared: &Shared,
    cmd: &Cmd,
    lane: Lane,
    prefix: &[u8],
    out: &mut Cmd,
) -> RedisResult<Rewritten> {
    match rewrite_fixed(shared, cmd, prefix, out) {
        Some((command, reply)) => Ok(Rewritten {
            command,
            reply,
            read_through: false,
        }),
        None => rewrite_general(shared, cmd, lane, prefix, out),
    }
}

/// Most commands name their keys at fixed positions, nothing to look up in the arguments: this
/// writes them into `out` in one pass (`None`: anything else, left to [`rewrite`]). Kept small
/// and apart, so that the common path is a few cache lines of code.
#[inline(never)]
fn rewrite_fixed(
    shared: &Shared,
    cmd: &Cmd,
    prefix: &[u8],
    out: &mut Cmd,
) -> Option<(&'static str, Reply)> {
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
    if shared.namespaces.may_read_through(canonical) {
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
    Some((canonical, spec.reply))
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
    if spec.keys == KeyRule::Script
        && !shared
            .namespaces
            .allows_script(name, args.get(1).unwrap_or_default())
    {
        return Err(refused(
            "no one can tell from a script which keys it touches; list its SHA-1 in the spec's data.redis_scripts (functions: data.redis_functions) once it is known to touch only the keys it is passed",
        ));
    }
    let positions = key_positions(name, spec, &args, lane).inspect_err(|_| {
        shared.refused.fetch_add(1, Ordering::Relaxed);
    })?;
    out.clear();
    for (i, a) in args.iter().enumerate() {
        if positions.contains(i) {
            out.arg(Prefixed(prefix, a));
        } else {
            out.arg(a);
        }
    }
    // A SCAN without MATCH would list every namespace.
    if spec.keys == KeyRule::Scan && positions.is_empty() {
        out.arg("MATCH").arg(Prefixed(prefix, b"*"));
    }
    out.set_no_response(cmd.is_no_response());
    let read_through = args
        .get(1)
        .is_some_and(|k| shared.namespaces.reads_through(name, k));
    Ok(Rewritten {
        command: name,
        reply: spec.reply,
        read_through,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespaces::Namespaces;
    use crate::scratch;

    fn shared(read_through: &[&str]) -> Shared {
        let spec = graylane_core::spec::LaneSpec::from_yaml_str("lanes: [{name: gray}]").unwrap();
        Shared::new(Namespaces::from_spec(&spec).read_through(read_through.iter().copied()))
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
