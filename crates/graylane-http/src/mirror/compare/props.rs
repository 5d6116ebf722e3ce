//! Property tests of the JSON diff: it finds what a plain comparison of parsed values finds,
//! whatever the form of the text (key order, white space, escapes), with or without values
//! kept.

use bytes::Bytes;
use http::StatusCode;
use proptest::prelude::*;
use serde_json::{Map, Value};

use super::diff::{Captured, Keep, MAX_DIFFERENCES, Redact, diff};

/// JSON values: small objects and arrays of strings (any characters), numbers, booleans, null.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1000i64..1000).prop_map(Value::from),
        (-100.0f64..100.0).prop_map(|f| Value::from((f * 4.0).round() / 4.0)),
        "[a-c\"\\\\é\u{1F600}\n]{0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]{1,2}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// `v` written another way: keys in another order, white space, some characters escaped.
fn rewrite(v: &Value, seed: u64) -> String {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = String::new();
    write(v, &mut rng, &mut out);
    out
}

fn write(v: &Value, rng: &mut fastrand::Rng, out: &mut String) {
    let space = |rng: &mut fastrand::Rng, out: &mut String| {
        if rng.bool() {
            out.push_str(if rng.bool() { " " } else { "\n  " });
        }
    };
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            rng.shuffle(&mut keys);
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(rng, out);
                string(k, rng, out);
                out.push(':');
                space(rng, out);
                write(&map[k], rng, out);
            }
            space(rng, out);
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(rng, out);
                write(item, rng, out);
            }
            out.push(']');
        }
        Value::String(s) => string(s, rng, out),
        other => out.push_str(&other.to_string()),
    }
}

/// A JSON string, some of its characters as `\u` escapes.
fn string(s: &str, rng: &mut fastrand::Rng, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if rng.bool() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The fields a plain walk of two parsed values finds different, in the diff's order: the
/// primary's keys (sorted), then the mirror's own; array indices left out.
fn reference(a: Option<&Value>, b: Option<&Value>, field: &str, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    let join = |key: &str| {
        if field.is_empty() {
            key.to_owned()
        } else {
            format!("{field}.{key}")
        }
    };
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            for (k, v) in x {
                reference(Some(v), y.get(k), &join(k), out);
            }
            for (k, w) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                reference(None, Some(w), &join(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                reference(x.get(i), y.get(i), &format!("{field}[]"), out);
            }
        }
        _ => out.push(if field.is_empty() {
            "(body)".to_owned()
        } else {
            field.to_owned()
        }),
    }
}

fn captured(text: String) -> Captured {
    Captured::new(
        StatusCode::OK,
        &http::HeaderMap::new(),
        &[],
        Bytes::from(text),
    )
}

fn fields(a: &Captured, b: &Captured, render: bool) -> Vec<String> {
    let keep = Keep {
        filter: None,
        render,
    };
    diff(a, b, &Redact::new([]), &keep)
        .into_iter()
        .map(|d| d.field.to_string())
        .collect()
}

proptest! {
    #[test]
    fn the_same_value_written_another_way_has_no_difference(v in value(), seed in any::<u64>()) {
        let (a, b) = (captured(v.to_string()), captured(rewrite(&v, seed)));
        prop_assert_eq!(fields(&a, &b, false), Vec::<String>::new());
        prop_assert_eq!(fields(&a, &b, true), Vec::<String>::new());
    }

    #[test]
    fn differences_are_those_of_the_parsed_values(
        x in value(),
        y in value(),
        seeds in any::<(u64, u64)>(),
    ) {
        let mut expected = Vec::new();
        reference(Some(&x), Some(&y), "", &mut expected);
        expected.truncate(MAX_DIFFERENCES);
        let (a, b) = (captured(rewrite(&x, seeds.0)), captured(rewrite(&y, seeds.1)));
        prop_assert_eq!(&fields(&a, &b, false), &expected);
        prop_assert_eq!(&fields(&a, &b, true), &expected);
    }
}
