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

    /// Whether no argument is in the set.
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            KeySet::Range { first, last, .. } => first > last,
            KeySet::DestAnd { dest, from, to } => !dest && from >= to,
            KeySet::List(v) => v.is_empty(),
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
        KeyRule::None => Ok(KeySet::NONE),
        // Patterns are moved into the namespace like keys.
        KeyRule::KeysPattern if n > 1 => Ok(range(1, 1, 1, n)),
        KeyRule::KeysPattern => Err("KEYS needs a pattern"),
        KeyRule::Scan => scan(args),
        KeyRule::Channel => Ok(KeySet::DestAnd {
            dest: false,
            from: 1,
            to: n.min(2),
        }),
        KeyRule::Range { first, last, step } => Ok(range(first, last, step, n)),
        KeyRule::NumKeys { numkeys_at, dest } => num_keys(args, numkeys_at, dest),
        KeyRule::Script => script(args),
        KeyRule::Copy => copy(args),
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
    if numkeys_at.checked_add(k).is_none_or(|end| end > args.len()) {
        return Err("numkeys exceeds the arguments");
    }
    Ok(KeySet::DestAnd {
        dest,
        from: numkeys_at + 1,
        to: numkeys_at + 1 + k,
    })
}

/// [`KeyRule::Script`]: the declared keys. (Whether the script may run at all is the
/// allow-list's call, in `rewrite`: its text cannot tell.)
fn script(args: &Args<'_>) -> Result<KeySet, Unsure> {
    num_keys(args, 2, false)
}

/// [`KeyRule::Copy`]: `DB` would put lane data in another database, out of every namespace
/// (why `SELECT` and `MOVE` are refused). Redis reads `DB` anywhere after the keys.
fn copy(args: &Args<'_>) -> Result<KeySet, Unsure> {
    if args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"DB")) {
        return Err("COPY ... DB copies lane data into another database");
    }
    Ok(range(1, 2, 1, args.len()))
}

/// [`KeyRule::Scan`]: every `MATCH` pattern, read the way Redis reads the options (pairs from
/// index 2, the last `MATCH` wins, so each is moved into the namespace). An option Redis would
/// refuse is refused here, so that no reading of the command differs from the server's.
fn scan(args: &Args<'_>) -> Result<KeySet, Unsure> {
    // Without a cursor, an added `MATCH` would be read as the cursor.
    if args.len() < 2 {
        return Err("SCAN needs a cursor");
    }
    let mut patterns = Vec::new();
    let mut i = 2;
    while i < args.len() {
        let option = args.get(i).unwrap_or_default();
        if i + 1 >= args.len() {
            return Err("a SCAN option lacks its value");
        }
        if option.eq_ignore_ascii_case(b"MATCH") {
            patterns.push(i + 1);
        } else if !(option.eq_ignore_ascii_case(b"COUNT") || option.eq_ignore_ascii_case(b"TYPE")) {
            return Err("SCAN takes only MATCH, COUNT and TYPE");
        } else if option.eq_ignore_ascii_case(b"COUNT")
            && std::str::from_utf8(args.get(i + 1).unwrap_or_default())
                .map_or(true, |c| c.parse::<u64>().is_err())
        {
            // `COUNT MATCH *` is a bad count to Redis, not a pattern.
            return Err("COUNT needs a number");
        }
        i += 2;
    }
    Ok(KeySet::List(patterns))
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

/// [`KeyRule::Streams`]: the options read the way Redis reads them (`GROUP` takes two
/// arguments, `COUNT` and `BLOCK` one, `NOACK` none), up to `STREAMS`, after which the first
/// half are keys. A keyword searched for anywhere else could be a group or consumer name.
fn streams(args: &Args<'_>) -> Result<KeySet, Unsure> {
    let n = args.len();
    let mut i = 1;
    while i < n {
        let o = args.get(i).unwrap_or_default();
        let more = n - i - 1;
        let takes = if o.eq_ignore_ascii_case(b"STREAMS") && more > 0 {
            if !more.is_multiple_of(2) {
                return Err("STREAMS needs as many ids as keys");
            }
            return Ok(KeySet::DestAnd {
                dest: false,
                from: i + 1,
                to: i + 1 + more / 2,
            });
        } else if (o.eq_ignore_ascii_case(b"COUNT") || o.eq_ignore_ascii_case(b"BLOCK")) && more > 0
        {
            1
        } else if o.eq_ignore_ascii_case(b"GROUP") && more >= 2 {
            2
        } else if o.eq_ignore_ascii_case(b"NOACK") {
            0
        } else {
            return Err("an XREAD option Redis would refuse");
        };
        i += 1 + takes;
    }
    Err("STREAMS is missing")
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
        assert_eq!(
            positions(&["FCALL", "f", "2", "a", "b", "x"]).unwrap(),
            [3, 4]
        );
        assert_eq!(
            positions(&["SCAN", "0", "MATCH", "a", "COUNT", "9", "MATCH", "b"]).unwrap(),
            [3, 7]
        );
        assert_eq!(
            positions(&["SCAN", "0", "TYPE", "MATCH"]).unwrap(),
            Vec::<usize>::new()
        );
        assert_eq!(positions(&["KEYS", "a*"]).unwrap(), [1]);
        assert!(positions(&["SCAN"]).is_err());
        assert!(positions(&["FCALL", "f", "18446744073709551615"]).is_err());
        assert_eq!(positions(&["COPY", "a", "b", "REPLACE"]).unwrap(), [1, 2]);
        assert!(positions(&["COPY", "a", "b", "db", "2"]).is_err());
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
