//! The differences between two responses: status, the selected headers, and the body — JSON
//! field by field (with paths), text otherwise. Pure code: what is compared, what is kept of it
//! and what is redacted are decided here, nothing is counted.

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::Value;
use serde_json::value::RawValue;

/// At most this many differences are kept of one comparison (the first, in document order).
pub(crate) const MAX_DIFFERENCES: usize = 64;

/// A kept value is cut at this many characters.
const MAX_VALUE_CHARS: usize = 200;

/// What a redacted value is stored as.
pub(crate) const REDACTED: &str = "[redacted]";

/// What an absent field or header is shown as.
const ABSENT: &str = "(absent)";

/// The part of a response a difference is in. Ordered by weight: a request whose status
/// differs counts as a status difference, whatever else differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Part {
    Status,
    Header,
    Body,
}

impl Part {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Part::Status => "status",
            Part::Header => "header",
            Part::Body => "body",
        }
    }
}

/// A field of a response, as noise and ignore lists name it: the status, a header, or a body
/// path with array indices left out (`items[].price`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Field {
    pub(crate) part: Part,
    /// The header name, or the body path (`""` for the body as a whole).
    pub(crate) name: String,
}

impl Field {
    /// Parses an ignore-list entry: `header:<name>`, or a body path.
    pub(crate) fn parse(text: &str) -> Field {
        match text.strip_prefix("header:") {
            Some(h) => Field {
                part: Part::Header,
                name: h.trim().to_ascii_lowercase(),
            },
            None => Field {
                part: Part::Body,
                name: text.trim().to_owned(),
            },
        }
    }

    /// Whether a difference in the field `part` and `name` is covered by this field: the same
    /// field, or (for a body path) one under it.
    pub(crate) fn covers(&self, part: Part, name: &str) -> bool {
        if self.part != part {
            return false;
        }
        match name.strip_prefix(self.name.as_str()) {
            Some("") => true,
            Some(rest) => {
                self.part == Part::Body && (rest.starts_with('.') || rest.starts_with('['))
            }
            None => false,
        }
    }

    /// The field as reports name it (its [`Display`](std::fmt::Display)), borrowed for a
    /// body path, the common case.
    pub(crate) fn label(&self) -> Cow<'_, str> {
        match (self.part, self.name.as_str()) {
            (Part::Body, path) if !path.is_empty() => Cow::Borrowed(path),
            _ => Cow::Owned(self.to_string()),
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.part, self.name.as_str()) {
            (Part::Status, _) => f.write_str("(status)"),
            (Part::Header, name) => write!(f, "header:{name}"),
            (Part::Body, "") => f.write_str("(body)"),
            (Part::Body, path) => f.write_str(path),
        }
    }
}

/// One difference: the field, where exactly (`items[2].price`), and both values as kept
/// (redacted, cut).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Difference {
    pub(crate) field: Field,
    pub(crate) path: String,
    pub(crate) primary: String,
    pub(crate) mirror: String,
}

/// A response as compared: its status, the selected headers, its body.
#[derive(Clone, Debug)]
pub(crate) struct Captured {
    pub(crate) status: StatusCode,
    /// The compared headers, in the configured order, each with its first value if present.
    pub(crate) headers: Vec<(HeaderName, Option<HeaderValue>)>,
    pub(crate) body: Bytes,
    /// The request id the response carries (the primary's, when its request had none).
    pub(crate) request_id: Option<String>,
}

impl Captured {
    /// Captures `headers`' values of `names`.
    pub(crate) fn new(
        status: StatusCode,
        headers: &http::HeaderMap,
        names: &[HeaderName],
        body: Bytes,
    ) -> Captured {
        Captured {
            status,
            headers: names
                .iter()
                .map(|n| (n.clone(), headers.get(n).cloned()))
                .collect(),
            body,
            request_id: None,
        }
    }
}

/// Names whose values are never kept: headers, and body keys at any depth (any case). A
/// handful of names: a scan is cheaper than hashing a lower-cased copy of every key.
#[derive(Clone, Debug)]
pub(crate) struct Redact(Vec<String>);

impl Redact {
    /// Always: `authorization`, `cookie`, `set-cookie`; and `extra`.
    pub(crate) fn new<'a>(extra: impl IntoIterator<Item = &'a str>) -> Redact {
        let mut names: Vec<String> = ["authorization", "cookie", "set-cookie"]
            .into_iter()
            .chain(extra)
            .map(str::to_ascii_lowercase)
            .collect();
        names.sort_unstable();
        names.dedup();
        Redact(names)
    }

    fn covers(&self, name: &str) -> bool {
        self.0.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// `value` as kept: redacted keys' values replaced at any depth, as JSON text, cut.
    fn render(&self, value: &Value) -> String {
        cut(serde_json::to_string(&self.scrub(value)).unwrap_or_default())
    }

    fn scrub(&self, value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if self.covers(k) {
                            Value::String(REDACTED.into())
                        } else {
                            self.scrub(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.scrub(v)).collect()),
            other => other.clone(),
        }
    }
}

fn cut(mut text: String) -> String {
    if let Some((end, _)) = text.char_indices().nth(MAX_VALUE_CHARS) {
        text.truncate(end);
        text.push_str("...");
    }
    text
}

/// Whether the field of a part and name counts.
pub(crate) type Filter<'a> = dyn Fn(Part, &str) -> bool + 'a;

/// What a comparison keeps of each difference: the fields `filter` says count (all without
/// one; it is given a field's part and name), and their values (rendered, redacted, cut) only
/// when `render` — learning noise needs the fields alone, and a comparison that takes no
/// sample needs no values.
#[derive(Clone, Copy)]
pub(crate) struct Keep<'a> {
    pub(crate) filter: Option<&'a Filter<'a>>,
    pub(crate) render: bool,
}

impl Keep<'_> {
    /// Every field, no values.
    pub(crate) const FIELDS: Keep<'static> = Keep {
        filter: None,
        render: false,
    };

    fn wants(&self, part: Part, name: &str) -> bool {
        self.filter.is_none_or(|f| f(part, name))
    }

    fn renders(&self) -> bool {
        self.render
    }
}

/// The differences between `primary` and `mirror` that `keep` wants, at most
/// [`MAX_DIFFERENCES`].
pub(crate) fn diff(
    primary: &Captured,
    mirror: &Captured,
    redact: &Redact,
    keep: &Keep<'_>,
) -> Vec<Difference> {
    let mut out = Vec::new();
    if primary.status != mirror.status && keep.wants(Part::Status, "") {
        out.push(Difference {
            field: Field {
                part: Part::Status,
                name: String::new(),
            },
            path: "(status)".into(),
            primary: primary.status.as_u16().to_string(),
            mirror: mirror.status.as_u16().to_string(),
        });
    }
    for ((name, a), (_, b)) in primary.headers.iter().zip(&mirror.headers) {
        if a == b || !keep.wants(Part::Header, name.as_str()) {
            continue;
        }
        let show = |v: &Option<HeaderValue>| match v {
            _ if !keep.renders() => String::new(),
            _ if redact.covers(name.as_str()) => REDACTED.to_owned(),
            None => ABSENT.to_owned(),
            Some(v) => cut(String::from_utf8_lossy(v.as_bytes()).into_owned()),
        };
        out.push(Difference {
            path: format!("header:{name}"),
            primary: show(a),
            mirror: show(b),
            field: Field {
                part: Part::Header,
                name: name.as_str().to_owned(),
            },
        });
    }
    if primary.body != mirror.body {
        body(&primary.body, &mirror.body, redact, keep, &mut out);
    }
    out.truncate(MAX_DIFFERENCES);
    out
}

fn body(a: &Bytes, b: &Bytes, redact: &Redact, keep: &Keep<'_>, out: &mut Vec<Difference>) {
    // Borrowed, unparsed values: a subtree whose text is the same on both sides is never
    // parsed, and nothing of either body is copied unless it differs.
    match (
        serde_json::from_slice::<&RawValue>(a),
        serde_json::from_slice::<&RawValue>(b),
    ) {
        (Ok(a), Ok(b)) => {
            let mut walk = Walk {
                redact,
                keep,
                out,
                path: String::new(),
                field: String::new(),
                redacted: false,
            };
            walk.raw(Some(a), Some(b));
        }
        _ => {
            if keep.wants(Part::Body, "") {
                let field = Field {
                    part: Part::Body,
                    name: String::new(),
                };
                out.push(text(a, b, field, keep.renders()));
            }
        }
    }
}

/// A text body's difference: its first differing line on each side.
fn text(a: &Bytes, b: &Bytes, field: Field, render: bool) -> Difference {
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    let (mut la, mut lb) = (a.lines(), b.lines());
    let (line, pa, pb) = (1..)
        .map(|n| (n, la.next(), lb.next()))
        .find(|(_, x, y)| x != y)
        .unwrap_or((1, None, None));
    let show = |l: Option<&str>| match l {
        _ if !render => String::new(),
        None => ABSENT.to_owned(),
        Some(l) => cut(l.to_owned()),
    };
    Difference {
        field,
        path: format!("(body) line {line}"),
        primary: show(pa),
        mirror: show(pb),
    }
}

/// A walk of two JSON documents side by side.
struct Walk<'a, 'k> {
    redact: &'a Redact,
    keep: &'a Keep<'k>,
    out: &'a mut Vec<Difference>,
    /// Where the walk is, with indices (`items[2].price`) ...
    path: String,
    /// ... and without (`items[].price`).
    field: String,
    /// Whether a key on the way here is redacted.
    redacted: bool,
}

impl Walk<'_, '_> {
    fn raw(&mut self, a: Option<&RawValue>, b: Option<&RawValue>) {
        if self.out.len() >= MAX_DIFFERENCES {
            return;
        }
        if let (Some(x), Some(y)) = (a, b) {
            let (tx, ty) = (x.get(), y.get());
            if tx == ty {
                return;
            }
            if let (Some(x), Some(y)) = (members(x), members(y)) {
                // Both sorted by key: the primary's keys, then the mirror's own.
                for (key, v) in &x {
                    let w = find(&y, key);
                    let redacted = self.redacts(key);
                    self.enter(Step::Key(key), redacted, |walk| walk.raw(Some(v), w));
                }
                for (key, w) in y.iter().filter(|(k, _)| find(&x, k).is_none()) {
                    let redacted = self.redacts(key);
                    self.enter(Step::Key(key), redacted, |walk| walk.raw(None, Some(w)));
                }
                return;
            }
            if let (Some(x), Some(y)) = (array(x), array(y)) {
                for i in 0..x.len().max(y.len()) {
                    self.enter(Step::Index(i), false, |w| {
                        w.raw(x.get(i).copied(), y.get(i).copied());
                    });
                }
                return;
            }
            // Two leaves (or values of two kinds) whose texts differ are different values,
            // unless an escape or a number's form (`1.0`, `1.00`) could make them the same:
            // only then, or when their values are kept, are they parsed.
            if !self.keep.renders() && !may_be_equal(tx, ty) {
                self.differ(None, None);
                return;
            }
        }
        let parse =
            |v: Option<&RawValue>| v.and_then(|v| serde_json::from_str::<Value>(v.get()).ok());
        let (a, b) = (parse(a), parse(b));
        self.value(a.as_ref(), b.as_ref());
    }

    fn value(&mut self, a: Option<&Value>, b: Option<&Value>) {
        if self.out.len() >= MAX_DIFFERENCES || a == b {
            return;
        }
        match (a, b) {
            (Some(Value::Object(x)), Some(Value::Object(y))) => {
                let keys = x.keys().chain(y.keys().filter(|k| !x.contains_key(*k)));
                for key in keys {
                    let redacted = self.redacts(key);
                    self.enter(Step::Key(key), redacted, |w| {
                        w.value(x.get(key), y.get(key));
                    });
                }
            }
            (Some(Value::Array(x)), Some(Value::Array(y))) => {
                for i in 0..x.len().max(y.len()) {
                    self.enter(Step::Index(i), false, |w| w.value(x.get(i), y.get(i)));
                }
            }
            _ => self.differ(a, b),
        }
    }

    /// The values here differ: a difference, if the field counts.
    fn differ(&mut self, a: Option<&Value>, b: Option<&Value>) {
        if !self.keep.wants(Part::Body, &self.field) {
            return;
        }
        let show = |v: Option<&Value>| match v {
            _ if !self.keep.renders() => String::new(),
            _ if self.redacted => REDACTED.to_owned(),
            None => ABSENT.to_owned(),
            Some(v) => self.redact.render(v),
        };
        let (primary, mirror) = (show(a), show(b));
        self.out.push(Difference {
            field: Field {
                part: Part::Body,
                name: self.field.clone(),
            },
            path: if self.path.is_empty() {
                "(body)".into()
            } else {
                self.path.clone()
            },
            primary,
            mirror,
        });
    }

    /// Whether `key`'s value is redacted (asked only when values are kept).
    fn redacts(&self, key: &str) -> bool {
        self.keep.renders() && self.redact.covers(key)
    }

    fn enter(&mut self, step: Step<'_>, redacted: bool, f: impl FnOnce(&mut Self)) {
        use std::fmt::Write as _;
        let (p, q, r) = (self.path.len(), self.field.len(), self.redacted);
        match step {
            Step::Key(key) => {
                for s in [&mut self.path, &mut self.field] {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(key);
                }
            }
            Step::Index(i) => {
                let _ = write!(self.path, "[{i}]");
                self.field.push_str("[]");
            }
        }
        self.redacted |= redacted;
        f(self);
        self.path.truncate(p);
        self.field.truncate(q);
        self.redacted = r;
    }
}

/// An object's members, sorted by key, the last of a repeated key kept (as a parser would).
type Members<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// `raw`'s members, if it is an object: one level parsed, keys borrowed unless escaped.
fn members(raw: &RawValue) -> Option<Members<'_>> {
    if !raw.get().starts_with('{') {
        return None;
    }
    let Object(mut members) = serde_json::from_str(raw.get()).ok()?;
    members.sort_by(|a, b| a.0.cmp(&b.0));
    // `dedup_by` hands the later of two neighbours first: its value is the one kept.
    members.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            earlier.1 = later.1;
        }
        same
    });
    Some(members)
}

/// A key's value among sorted `members`.
fn find<'a>(members: &Members<'a>, key: &str) -> Option<&'a RawValue> {
    members
        .binary_search_by(|(k, _)| k.as_ref().cmp(key))
        .ok()
        .map(|i| members[i].1)
}

/// Whether two differing texts of JSON values could still be the same value: an escape in
/// either (`"\u0041"` is `"A"`), or two numbers (`1.0` and `1.00`).
fn may_be_equal(a: &str, b: &str) -> bool {
    let number = |t: &str| t.starts_with(|c: char| c == '-' || c.is_ascii_digit());
    a.contains('\\') || b.contains('\\') || (number(a) && number(b))
}

/// An object, deserialized one level deep into its members in document order.
struct Object<'a>(Members<'a>);

impl<'de> serde::Deserialize<'de> for Object<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Object<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Key(key)) = map.next_key()? {
                    members.push((key, map.next_value()?));
                }
                Ok(Object(members))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// A key, borrowed from the document unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
            fn visit_string<E>(self, key: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(key)))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// `raw`'s items, if it is an array.
fn array(raw: &RawValue) -> Option<Vec<&RawValue>> {
    raw.get()
        .starts_with('[')
        .then(|| serde_json::from_str(raw.get()).ok())
        .flatten()
}

/// One step down a JSON document.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(status: u16, body: &str) -> Captured {
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        Captured::new(
            StatusCode::from_u16(status).unwrap(),
            &headers,
            &[http::header::CONTENT_TYPE],
            Bytes::copy_from_slice(body.as_bytes()),
        )
    }

    fn fields(a: &Captured, b: &Captured) -> Vec<(String, String, String, String)> {
        diff(
            a,
            b,
            &Redact::new(["card"]),
            &Keep {
                filter: None,
                render: true,
            },
        )
        .into_iter()
        .map(|d| (d.field.to_string(), d.path, d.primary, d.mirror))
        .collect()
    }

    #[test]
    fn identical_responses_have_no_difference() {
        let a = json(200, r#"{"a":1,"b":[1,2]}"#);
        // Key order and white space are not differences.
        assert!(fields(&a, &json(200, r#"{ "b": [1, 2], "a": 1 }"#)).is_empty());
    }

    #[test]
    fn json_differences_are_fields_with_paths() {
        let a = json(
            200,
            r#"{"item":"book","shipping":"standard","lines":[{"sku":"a","qty":1}]}"#,
        );
        let b = json(
            200,
            r#"{"item":"book","shipping":"express","lines":[{"sku":"a","qty":2},{"sku":"b"}],"new":true}"#,
        );
        assert_eq!(
            fields(&a, &b),
            [
                (
                    "lines[].qty".into(),
                    "lines[0].qty".into(),
                    "1".into(),
                    "2".into()
                ),
                (
                    "lines[]".into(),
                    "lines[1]".into(),
                    ABSENT.into(),
                    r#"{"sku":"b"}"#.into()
                ),
                (
                    "shipping".into(),
                    "shipping".into(),
                    r#""standard""#.into(),
                    r#""express""#.into()
                ),
                ("new".into(), "new".into(), ABSENT.into(), "true".into()),
            ]
        );
    }

    #[test]
    fn unparsed_text_that_differs_only_in_form_is_the_same_value() {
        // White space, key order, escapes: the texts differ, the values do not.
        let a = json(200, r#"{"o":{"x":1,"y":[1,2]},"s":"A","a\u0062":1}"#);
        let b = json(200, r#"{"ab":2,"s":"\u0041","o":{ "y": [1, 2], "x": 1 }}"#);
        assert_eq!(
            fields(&a, &b),
            [("ab".into(), "ab".into(), "1".into(), "2".into())]
        );
        // A value of another kind is one difference, shown whole.
        let c = json(200, r#"{"o":[1]}"#);
        let d = fields(&a, &c);
        let o = d.iter().find(|f| f.0 == "o").expect("o differs");
        assert_eq!(
            (o.2.as_str(), o.3.as_str()),
            (r#"{"x":1,"y":[1,2]}"#, "[1]")
        );
    }

    #[test]
    fn a_repeated_key_counts_with_its_last_value() {
        // As serde_json and most parsers read it.
        let a = json(200, r#"{"a":1,"b":{"c":1,"c":2}}"#);
        assert!(fields(&a, &json(200, r#"{"a":1,"b":{"c":2}}"#)).is_empty());
        assert_eq!(fields(&a, &json(200, r#"{"a":1,"b":{"c":1}}"#)).len(), 1);
    }

    #[test]
    fn status_and_headers_differ_first() {
        let a = json(200, "{}");
        let mut b = json(500, "{}");
        b.headers[0].1 = Some(HeaderValue::from_static("text/plain"));
        let d = fields(&a, &b);
        assert_eq!(
            d[0],
            (
                "(status)".into(),
                "(status)".into(),
                "200".into(),
                "500".into()
            )
        );
        assert_eq!(d[1].0, "header:content-type");
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn text_bodies_differ_by_their_first_differing_line() {
        let d = fields(
            &json(200, "shipping: standard\nok\n"),
            &json(200, "shipping: express\nok\n"),
        );
        assert_eq!(
            d,
            [(
                "(body)".into(),
                "(body) line 1".into(),
                "shipping: standard".into(),
                "shipping: express".into()
            )]
        );
    }

    #[test]
    fn redacted_names_never_keep_their_values() {
        let a = json(
            200,
            r#"{"card":{"number":"4111"},"user":{"Card":"x","name":"a"},"n":1}"#,
        );
        let b = json(
            200,
            r#"{"card":{"number":"5500"},"user":{"Card":"y","name":"b"},"n":{"card":"z"}}"#,
        );
        let d = fields(&a, &b);
        assert_eq!(
            d[0],
            (
                "card.number".into(),
                "card.number".into(),
                REDACTED.into(),
                REDACTED.into()
            )
        );
        assert_eq!(
            d[1],
            (
                "n".into(),
                "n".into(),
                "1".into(),
                format!(r#"{{"card":"{REDACTED}"}}"#)
            )
        );
        assert_eq!(
            d[2],
            (
                "user.Card".into(),
                "user.Card".into(),
                REDACTED.into(),
                REDACTED.into()
            )
        );
        assert_eq!(d[3].2, r#""a""#);
        // Headers too, the three always.
        let names = [http::header::SET_COOKIE];
        let mk = |v: &'static str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::SET_COOKIE, HeaderValue::from_static(v));
            Captured::new(StatusCode::OK, &h, &names, Bytes::new())
        };
        let d = diff(
            &mk("s=1"),
            &mk("s=2"),
            &Redact::new([]),
            &Keep {
                filter: None,
                render: true,
            },
        );
        assert_eq!(
            (d[0].primary.as_str(), d[0].mirror.as_str()),
            (REDACTED, REDACTED)
        );
    }

    #[test]
    fn a_field_covers_what_is_under_it() {
        let covers = |a: &str, b: &str| {
            let b = Field::parse(b);
            Field::parse(a).covers(b.part, &b.name)
        };
        assert!(covers("meta", "meta"));
        assert!(covers("meta", "meta.at"));
        assert!(covers("meta", "meta[]"));
        assert!(!covers("meta", "metadata"));
        assert!(!covers("meta", "header:meta"));
        assert!(covers("header:Date", "header:date"));
    }

    #[test]
    fn differences_are_bounded_and_values_cut() {
        let many = |v: u32| {
            let fields: Vec<String> = (0..200).map(|i| format!(r#""f{i:03}":{v}"#)).collect();
            json(200, &format!("{{{}}}", fields.join(",")))
        };
        assert_eq!(fields(&many(1), &many(2)).len(), MAX_DIFFERENCES);
        let long = |c: char| json(200, &format!(r#"{{"a":"{}"}}"#, c.to_string().repeat(1000)));
        let d = fields(&long('x'), &long('y'));
        assert!(d[0].2.len() < 210 && d[0].2.ends_with("..."), "{}", d[0].2);
    }
}
