//! Replies translated back: key names in a reply lose the lane's prefix, so the application sees
//! the names it sent.

use redis::Value;

use crate::table::Reply;

/// `v` without `prefix`, if it is a key name in the lane's namespace.
fn strip(prefix: &[u8], v: Value) -> Value {
    match v {
        Value::BulkString(b) if b.starts_with(prefix) => {
            Value::BulkString(b[prefix.len()..].to_vec())
        }
        other => other,
    }
}

/// The reply `v` of a command whose reply is of `kind`, with every key name in it stripped of
/// `prefix`.
pub(crate) fn fix_reply(prefix: &[u8], kind: Reply, v: Value) -> Value {
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

/// Whether `v` is a read that found nothing (for read-through).
pub(crate) fn is_miss(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::Array(a) => a.is_empty(),
        Value::Map(m) => m.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
