//! Which arguments of a command are keys, from its rule in the command table and, for the
//! "movable keys" commands, its arguments. A command whose keys cannot be found for sure is
//! refused here.

use graylane_core::Lane;
use redis::RedisResult;

use crate::args::Args;
use crate::error::refuse;
use crate::table::{KeyRule, Spec};

/// Which argument indexes are keys. A predicate rather than a list: most commands name a
/// contiguous run of keys, and this runs for every command in a lane.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeySet {
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

    pub(crate) fn contains(&self, i: usize) -> bool {
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

/// Why a command's keys cannot be found: the reason of its refusal.
type Unsure = &'static str;

/// The key positions of `name` (canonical) with `args`, by its table entry `spec`; a command
/// whose keys cannot be found for sure is refused in `lane`.
pub(crate) fn key_positions(
    name: &str,
    spec: Spec,
    args: &Args<'_>,
    lane: Lane,
) -> RedisResult<KeySet> {
    let n = args.len();
    let positions = match spec.keys {
        KeyRule::None | KeyRule::Scan | KeyRule::KeysPattern => Ok(KeySet::NONE),
        KeyRule::Channel => Ok(KeySet::DestAnd {
            dest: false,
            from: 1,
            to: n.min(2),
        }),
        KeyRule::Range { first, last, step } => Ok(range(first, last, step, n)),
        KeyRule::NumKeys { numkeys_at, dest } => num_keys(args, numkeys_at, dest),
        KeyRule::Eval => eval(name, args),
        KeyRule::SubThenKey => Ok(sub_then_key(n)),
        KeyRule::Streams => streams(args),
        KeyRule::Sort => Ok(sort(args)),
    };
    positions.map_err(|why| refuse(name, lane, why))
}

/// [`KeyRule::Range`] over `n` arguments.
fn range(first: usize, last: isize, step: usize, n: usize) -> KeySet {
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

/// The numkeys argument at `i`.
fn number(args: &Args<'_>, i: usize) -> Result<usize, Unsure> {
    args.get(i)
        .and_then(|a| std::str::from_utf8(a).ok())
        .and_then(|s| s.parse().ok())
        .ok_or("its numkeys argument is not a number")
}

/// [`KeyRule::NumKeys`].
fn num_keys(args: &Args<'_>, numkeys_at: usize, dest: bool) -> Result<KeySet, Unsure> {
    let k = number(args, numkeys_at)?;
    if numkeys_at + k > args.len() {
        return Err("numkeys exceeds the arguments");
    }
    Ok(KeySet::DestAnd {
        dest,
        from: numkeys_at + 1,
        to: numkeys_at + 1 + k,
    })
}

/// [`KeyRule::Eval`]: the declared keys, if the script can only touch those.
fn eval(name: &str, args: &Args<'_>) -> Result<KeySet, Unsure> {
    let k = number(args, 2)?;
    if 3 + k > args.len() {
        return Err("numkeys exceeds the arguments");
    }
    if k == 0 {
        let script = args.get(1).unwrap_or_default();
        let touches = name == "EVALSHA"
            || script.windows(10).any(|w| w == b"redis.call")
            || script.windows(11).any(|w| w == b"redis.pcall");
        if touches {
            return Err(
                "a script that declares no keys may build key names the wrapper cannot see; pass them as KEYS",
            );
        }
    }
    Ok(KeySet::DestAnd {
        dest: false,
        from: 3,
        to: 3 + k,
    })
}

/// [`KeyRule::SubThenKey`] over `n` arguments.
fn sub_then_key(n: usize) -> KeySet {
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

/// [`KeyRule::Streams`].
fn streams(args: &Args<'_>) -> Result<KeySet, Unsure> {
    let n = args.len();
    let at = args
        .iter()
        .position(|a| a.eq_ignore_ascii_case(b"STREAMS"))
        .ok_or("STREAMS is missing")?;
    let rest = n - at - 1;
    if rest == 0 || !rest.is_multiple_of(2) {
        return Err("STREAMS needs as many ids as keys");
    }
    Ok(KeySet::DestAnd {
        dest: false,
        from: at + 1,
        to: at + 1 + rest / 2,
    })
}

/// [`KeyRule::Sort`].
fn sort(args: &Args<'_>) -> KeySet {
    let n = args.len();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table;

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
}
