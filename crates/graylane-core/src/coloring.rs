//! Coloring: the ingress rules that give a lane to a request that has none.
//!
//! Rules are evaluated in order and the first match wins. A rule matches on a header (exact,
//! prefix or regex), a cookie, a query parameter, a path prefix, a sticky percentage of a hashed
//! key (the same user always lands in the same lane, in every process, across restarts), a plain
//! random percentage, or any conjunction of those.
//!
//! A [`Rules`] handle can be swapped atomically at run time: a release moves from 5% to 50% to
//! 100%, or flips blue-green, without a restart and without a lock on the request path.
//!
//! ```
//! use graylane_core::coloring::{Rules, RuleSet, SimpleRequest};
//! use graylane_core::spec::RuleSpec;
//! use graylane_core::{Lane, LaneSet};
//!
//! let lanes = LaneSet::new([Lane::new("gray")?]);
//! let specs: Vec<RuleSpec> = serde_yaml_ng::from_str(r#"
//! - name: beta-testers
//!   lane: gray
//!   match: { header: { name: x-user-group, exact: beta } }
//! - name: ten-percent
//!   lane: gray
//!   match: { sticky: { percent: 10, by: { header: x-user-id } } }
//! "#)?;
//! let rules = Rules::new(RuleSet::compile(&specs, &lanes)?);
//!
//! let beta = SimpleRequest::new("/").header("x-user-group", "beta");
//! assert_eq!(rules.evaluate(&beta).map(|m| m.lane().as_str()), Some("gray"));
//!
//! // Sticky: the same user id gets the same answer every time, in every process.
//! let user = SimpleRequest::new("/").header("x-user-id", "alice");
//! let first = rules.evaluate(&user).is_some();
//! assert!((0..100).all(|_| rules.evaluate(&user).is_some() == first));
//!
//! // Going from 10% to 100% is one atomic store.
//! # let all: Vec<RuleSpec> = serde_yaml_ng::from_str("[{lane: gray, match: {random: 100}}]")?;
//! rules.store(RuleSet::compile(&all, &lanes)?);
//! assert!(rules.evaluate(&SimpleRequest::new("/")).is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::lane::{Lane, LaneSet};
use crate::percent::Percent;
use crate::spec::rules::{MatchSpec, RuleSpec, ValueMatchSpec};
use crate::wire::{Extractor, Key as WireKey};

/// What coloring rules may look at in a request.
///
/// Implemented for `http::Request<B>` and `http::request::Parts` (feature `http`) and for
/// [`SimpleRequest`]. Implement it for your own request type to color anything else.
pub trait RequestView: Extractor {
    /// The request path, without the query.
    fn path(&self) -> &str;

    /// The raw query string (after `?`), if any.
    fn query(&self) -> Option<&str>;

    /// The value of cookie `name`.
    ///
    /// The default reads the first `cookie` header; implementations whose requests may carry
    /// several (HTTP/2) should look through all of them.
    fn cookie(&self, name: &str) -> Option<&str> {
        let header = std::str::from_utf8(self.get("cookie")?).ok()?;
        find_cookie(header, name)
    }

    /// The value of query parameter `name`, percent-decoded.
    fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        find_query_param(self.query()?, name)
    }
}

/// Cookie `name` in one `cookie` header value (`a=1; b=2`).
pub fn find_cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// Query parameter `name` in a raw query string, with `+` and `%XX` decoded.
pub fn find_query_param<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_component(k) == name).then(|| decode_component(v))
    })
}

fn decode_component(raw: &str) -> Cow<'_, str> {
    match crate::wire::percent_decode(raw.as_bytes(), true) {
        Cow::Borrowed(_) => Cow::Borrowed(raw),
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// A plain request for coloring outside HTTP stacks, and for tests.
///
/// ```
/// use graylane_core::coloring::{RequestView, SimpleRequest};
/// let req = SimpleRequest::new("/api/orders?beta=1&user=a%20b")
///     .header("cookie", "sid=1; lane-optin=yes");
/// assert_eq!(req.path(), "/api/orders");
/// assert_eq!(req.query_param("user").as_deref(), Some("a b"));
/// assert_eq!(req.cookie("lane-optin"), Some("yes"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct SimpleRequest {
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
}

impl SimpleRequest {
    /// A request for `uri` (a path with an optional `?query`).
    pub fn new(uri: &str) -> SimpleRequest {
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (uri, None),
        };
        SimpleRequest {
            path: path.to_owned(),
            query,
            headers: Vec::new(),
        }
    }

    /// Adds a header (the name is lowercased).
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> SimpleRequest {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }
}

impl Extractor for SimpleRequest {
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_bytes())
    }

    fn get_list(&self, key: &crate::wire::Key) -> Option<Cow<'_, [u8]>> {
        crate::wire::join_values(
            self.headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(key.as_str()))
                .map(|(_, v)| v.as_bytes()),
        )
    }
}

impl crate::wire::Injector for SimpleRequest {
    fn set(&mut self, key: &'static str, value: Cow<'static, str>) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        self.headers
            .push((key.to_ascii_lowercase(), value.into_owned()));
    }
    fn remove(&mut self, key: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    }
}

impl RequestView for SimpleRequest {
    fn path(&self) -> &str {
        &self.path
    }
    fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }
}

/// An ordered, compiled list of coloring rules.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

/// A compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    name: String,
    lane: Lane,
    condition: Condition,
}

impl Rule {
    /// The rule's name (from the spec, or `rule-<index>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lane the rule assigns.
    pub fn lane(&self) -> Lane {
        self.lane
    }

    /// Whether the rule matches `req`.
    pub fn matches<R: RequestView + ?Sized>(&self, req: &R) -> bool {
        self.condition.matches(req)
    }
}

#[derive(Clone, Debug)]
enum Condition {
    // Header values are read as the list of every line, as Envoy matches them.
    Header(WireKey, ValueMatch),
    Cookie(String, ValueMatch),
    Query(String, ValueMatch),
    PathPrefix(String),
    Sticky {
        by: Key,
        salt: String,
        percent: Percent,
    },
    Random(Percent),
    All(Vec<Condition>),
}

#[derive(Clone, Debug)]
enum Key {
    Header(WireKey),
    Cookie(String),
    Query(String),
}

#[derive(Clone, Debug)]
enum ValueMatch {
    Exact(String),
    Prefix(String),
    // Anchored, as Istio's `regex` (RE2 full match), so the mesh and the edge agree.
    Regex(regex_lite::Regex),
}

impl ValueMatch {
    fn matches(&self, value: &str) -> bool {
        match self {
            ValueMatch::Exact(v) => value == v,
            ValueMatch::Prefix(p) => value.starts_with(p.as_str()),
            ValueMatch::Regex(re) => re.is_match(value),
        }
    }
}

impl Condition {
    fn matches<R: RequestView + ?Sized>(&self, req: &R) -> bool {
        match self {
            Condition::Header(name, m) => req
                .get_list(name)
                .is_some_and(|v| std::str::from_utf8(&v).is_ok_and(|v| m.matches(v))),
            Condition::Cookie(name, m) => req.cookie(name).is_some_and(|v| m.matches(v)),
            Condition::Query(name, m) => req.query_param(name).is_some_and(|v| m.matches(&v)),
            Condition::PathPrefix(prefix) => req.path().starts_with(prefix.as_str()),
            Condition::Sticky { by, salt, percent } => {
                sticky_key(req, by).is_some_and(|key| percent.covers(bucket(salt, &key)))
            }
            Condition::Random(percent) => percent.sample(),
            Condition::All(all) => all.iter().all(|c| c.matches(req)),
        }
    }
}

fn sticky_key<'a, R: RequestView + ?Sized>(req: &'a R, by: &Key) -> Option<Cow<'a, str>> {
    let key = match by {
        Key::Header(name) => match req.get_list(name)? {
            Cow::Borrowed(v) => Cow::Borrowed(std::str::from_utf8(v).ok()?),
            Cow::Owned(v) => Cow::Owned(String::from_utf8(v).ok()?),
        },
        Key::Cookie(name) => Cow::Borrowed(req.cookie(name)?),
        Key::Query(name) => req.query_param(name)?,
    };
    (!key.is_empty()).then_some(key)
}

/// The sticky bucket of `key` under `salt`, in `0..Percent::SCALE`: a draw that is fixed per
/// key, so a sticky condition holds when its [`Percent`] [covers](Percent::covers) the bucket.
///
/// FNV-1a 64 over `salt`, a `0xff` separator and `key`, finished with the MurmurHash3 `fmix64`
/// mixer. This is a wire-level contract: the same key must land in the same bucket in every
/// process and every graylane version, so it is pinned by golden tests. With a fixed salt the
/// buckets are monotone in the percentage: users in at 5% stay in at 50%.
pub fn bucket(salt: &str, key: &str) -> u16 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for b in salt.bytes().chain([0xff]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h % u64::from(Percent::SCALE)) as u16
}

/// A rule set that refused to compile: the path of the bad field and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// Path segments from the rule list, e.g. `[2].match.header.regex`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for CompileError {}

impl RuleSet {
    /// Compiles rule specs, checking every lane is configured and every regex compiles.
    pub fn compile(specs: &[RuleSpec], lanes: &LaneSet) -> Result<RuleSet, CompileError> {
        let rules = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                if !lanes.contains(spec.lane) {
                    return Err(CompileError {
                        path: format!("[{i}].lane"),
                        message: format!(
                            "unknown lane {:?} (configured: {})",
                            spec.lane.as_str(),
                            lanes
                                .iter()
                                .map(|l| l.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                }
                let condition =
                    compile(&spec.condition, spec.lane).map_err(|(path, message)| {
                        CompileError {
                            path: format!("[{i}].match{path}"),
                            message,
                        }
                    })?;
                Ok(spec.enabled.then(|| Rule {
                    name: spec.name.clone().unwrap_or_else(|| format!("rule-{i}")),
                    lane: spec.lane,
                    condition,
                }))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RuleSet {
            rules: rules.into_iter().flatten().collect(),
        })
    }

    /// The first rule that matches `req`.
    pub fn evaluate<R: RequestView + ?Sized>(&self, req: &R) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(req))
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

fn compile(spec: &MatchSpec, lane: Lane) -> Result<Condition, (String, String)> {
    let value = |kind: &str, v: &ValueMatchSpec| -> Result<ValueMatch, (String, String)> {
        let set = [v.exact.is_some(), v.prefix.is_some(), v.regex.is_some()];
        if set.iter().filter(|x| **x).count() != 1 {
            return Err((
                format!(".{kind}"),
                "give exactly one of `exact`, `prefix`, `regex`".into(),
            ));
        }
        if v.name.is_empty() {
            return Err((format!(".{kind}.name"), "must not be empty".into()));
        }
        Ok(if let Some(e) = &v.exact {
            ValueMatch::Exact(e.clone())
        } else if let Some(p) = &v.prefix {
            ValueMatch::Prefix(p.clone())
        } else {
            let re = v.regex.as_deref().unwrap_or_default();
            ValueMatch::Regex(
                regex_lite::Regex::new(&format!("^(?:{re})$"))
                    .map_err(|e| (format!(".{kind}.regex"), format!("bad regex: {e}")))?,
            )
        })
    };
    let mut all = Vec::new();
    if let Some(v) = &spec.header {
        all.push(Condition::Header(
            WireKey::new(&v.name.to_ascii_lowercase()),
            value("header", v)?,
        ));
    }
    if let Some(v) = &spec.cookie {
        all.push(Condition::Cookie(v.name.clone(), value("cookie", v)?));
    }
    if let Some(v) = &spec.query {
        all.push(Condition::Query(v.name.clone(), value("query", v)?));
    }
    if let Some(p) = &spec.path_prefix {
        if !p.starts_with('/') {
            return Err((".path_prefix".into(), "must start with '/'".into()));
        }
        all.push(Condition::PathPrefix(p.clone()));
    }
    if let Some(s) = &spec.sticky {
        let by = match (&s.by.header, &s.by.cookie, &s.by.query) {
            (Some(h), None, None) => Key::Header(WireKey::new(&h.to_ascii_lowercase())),
            (None, Some(c), None) => Key::Cookie(c.clone()),
            (None, None, Some(q)) => Key::Query(q.clone()),
            _ => {
                return Err((
                    ".sticky.by".into(),
                    "give exactly one of `header`, `cookie`, `query`".into(),
                ));
            }
        };
        all.push(Condition::Sticky {
            by,
            salt: s.salt.clone().unwrap_or_else(|| lane.as_str().to_owned()),
            percent: s.percent,
        });
    }
    if let Some(p) = spec.random {
        all.push(Condition::Random(p));
    }
    if let Some(nested) = &spec.all {
        if nested.is_empty() {
            return Err((".all".into(), "must list at least one condition".into()));
        }
        for (i, c) in nested.iter().enumerate() {
            all.push(compile(c, lane).map_err(|(p, m)| (format!(".all[{i}]{p}"), m))?);
        }
    }
    match all.len() {
        0 => Err((
            String::new(),
            "sets no condition (to match every request use `random: 100`)".into(),
        )),
        1 => Ok(all.remove(0)),
        _ => Ok(Condition::All(all)),
    }
}

/// A [`RuleSet`] that can be replaced atomically while requests are being colored.
///
/// Cheap to clone (clones share the rules). Reads are lock-free.
#[derive(Clone)]
pub struct Rules {
    current: Arc<ArcSwap<RuleSet>>,
}

/// The result of coloring: the lane and the name of the rule that chose it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    lane: Lane,
    rule: Arc<str>,
}

impl Match {
    /// The lane chosen.
    pub fn lane(&self) -> Lane {
        self.lane
    }
    /// The name of the rule that matched.
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

impl Rules {
    /// A handle holding `set`.
    pub fn new(set: RuleSet) -> Rules {
        Rules {
            current: Arc::new(ArcSwap::from_pointee(set)),
        }
    }

    /// The rules in force now.
    pub fn load(&self) -> Arc<RuleSet> {
        self.current.load_full()
    }

    /// Replaces the rules; requests colored after this call see only the new set.
    pub fn store(&self, set: RuleSet) {
        self.current.store(Arc::new(set));
    }

    /// The lane for `req` under the rules in force, if a rule matches.
    pub fn evaluate<R: RequestView + ?Sized>(&self, req: &R) -> Option<Match> {
        let set = self.current.load();
        set.evaluate(req).map(|r| Match {
            lane: r.lane,
            rule: Arc::from(r.name.as_str()),
        })
    }

    /// The lane for `req`, without naming the rule (no allocation).
    pub fn lane_for<R: RequestView + ?Sized>(&self, req: &R) -> Option<Lane> {
        self.current.load().evaluate(req).map(Rule::lane)
    }
}

impl Default for Rules {
    fn default() -> Self {
        Rules::new(RuleSet::default())
    }
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Rules").field(&self.current.load()).finish()
    }
}

#[cfg(all(test, feature = "yaml"))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lanes() -> LaneSet {
        LaneSet::new([Lane::new("gray").unwrap(), Lane::new("blue").unwrap()])
    }

    fn rules(yaml: &str) -> RuleSet {
        let specs: Vec<RuleSpec> = serde_yaml_ng::from_str(yaml).unwrap();
        RuleSet::compile(&specs, &lanes()).unwrap()
    }

    fn lane_of(set: &RuleSet, req: &SimpleRequest) -> Option<&'static str> {
        set.evaluate(req).map(|r| r.lane().as_str())
    }

    #[test]
    fn each_condition_kind() {
        let set = rules(
            r#"
- { lane: gray, match: { header: { name: X-Group, exact: beta } } }
- { lane: blue, match: { header: { name: x-agent, prefix: "canary/" } } }
- { lane: gray, match: { header: { name: x-region, regex: "eu-(west|north)-[0-9]" } } }
- { lane: blue, match: { cookie: { name: optin, exact: "yes" } } }
- { lane: gray, match: { query: { name: lane pick, exact: "g r" } } }
- { lane: blue, match: { path_prefix: /beta/ } }
"#,
        );
        let r = SimpleRequest::new;
        assert_eq!(
            lane_of(&set, &r("/").header("x-group", "beta")),
            Some("gray")
        );
        assert_eq!(lane_of(&set, &r("/").header("x-group", "beta2")), None);
        assert_eq!(
            lane_of(&set, &r("/").header("x-agent", "canary/1.2")),
            Some("blue")
        );
        assert_eq!(
            lane_of(&set, &r("/").header("x-region", "eu-west-1")),
            Some("gray")
        );
        // Anchored like Istio: a partial match is no match.
        assert_eq!(
            lane_of(&set, &r("/").header("x-region", "xeu-west-1")),
            None
        );
        assert_eq!(
            lane_of(&set, &r("/").header("x-region", "eu-west-12")),
            None
        );
        assert_eq!(
            lane_of(&set, &r("/").header("cookie", "a=1; optin=yes")),
            Some("blue")
        );
        assert_eq!(lane_of(&set, &r("/").header("cookie", "optin=no")), None);
        assert_eq!(lane_of(&set, &r("/x?lane+pick=g%20r")), Some("gray"));
        assert_eq!(lane_of(&set, &r("/beta/page")), Some("blue"));
        assert_eq!(lane_of(&set, &r("/betamax")), None);
    }

    #[test]
    fn a_header_rule_reads_every_line_as_envoy_does() {
        // Envoy matches a repeated header on its lines joined with `,`; the edge reads the same
        // value, so a content route and the edge's rule agree on every request.
        let set = rules(
            r#"
- { lane: gray, match: { header: { name: x-group, exact: beta } } }
- { lane: blue, match: { header: { name: x-tier, exact: "a,b" } } }
"#,
        );
        let twice = SimpleRequest::new("/")
            .header("x-group", "beta")
            .header("x-group", "alpha");
        assert_eq!(lane_of(&set, &twice), None);
        let split = SimpleRequest::new("/")
            .header("x-tier", "a")
            .header("x-tier", "b");
        assert_eq!(lane_of(&set, &split), Some("blue"));
    }

    #[test]
    fn several_conditions_in_one_match_are_a_conjunction() {
        let set = rules(
            "[{lane: gray, match: {path_prefix: /api, header: {name: x-group, exact: beta}}}]",
        );
        let both = SimpleRequest::new("/api/x").header("x-group", "beta");
        assert_eq!(lane_of(&set, &both), Some("gray"));
        assert_eq!(lane_of(&set, &SimpleRequest::new("/api/x")), None);
    }

    #[test]
    fn first_match_wins() {
        let set = rules(
            r#"
- { name: first, lane: blue, match: { path_prefix: /a } }
- { name: second, lane: gray, match: { path_prefix: / } }
"#,
        );
        assert_eq!(
            set.evaluate(&SimpleRequest::new("/a")).unwrap().name(),
            "first"
        );
        assert_eq!(
            set.evaluate(&SimpleRequest::new("/b")).unwrap().name(),
            "second"
        );
    }

    #[test]
    fn conjunction() {
        let set = rules(
            r#"
- lane: gray
  match:
    all:
      - path_prefix: /api
      - header: { name: x-group, exact: beta }
"#,
        );
        let both = SimpleRequest::new("/api/x").header("x-group", "beta");
        assert_eq!(lane_of(&set, &both), Some("gray"));
        assert_eq!(lane_of(&set, &SimpleRequest::new("/api/x")), None);
        assert_eq!(
            lane_of(&set, &SimpleRequest::new("/web").header("x-group", "beta")),
            None
        );
    }

    #[test]
    fn sticky_percentage_is_stable_and_close_to_target() {
        let set = rules("[{lane: gray, match: {sticky: {percent: 10, by: {header: x-user-id}}}}]");
        let users = 20_000;
        let mut hits = 0;
        for u in 0..users {
            let req = SimpleRequest::new("/").header("x-user-id", &format!("user-{u}"));
            let first = set.evaluate(&req).is_some();
            assert_eq!(set.evaluate(&req).is_some(), first);
            hits += usize::from(first);
        }
        let share = hits as f64 / users as f64;
        assert!((0.09..0.11).contains(&share), "share {share}");
        // No key, no sticky match.
        assert_eq!(lane_of(&set, &SimpleRequest::new("/")), None);
    }

    #[test]
    fn sticky_buckets_are_monotone_when_the_percentage_grows() {
        let five = rules("[{lane: gray, match: {sticky: {percent: 5, by: {cookie: uid}}}}]");
        let fifty = rules("[{lane: gray, match: {sticky: {percent: 50, by: {cookie: uid}}}}]");
        for u in 0..5_000 {
            let req = SimpleRequest::new("/").header("cookie", &format!("uid={u}"));
            if five.evaluate(&req).is_some() {
                assert!(
                    fifty.evaluate(&req).is_some(),
                    "user {u} left the lane at 50%"
                );
            }
        }
    }

    #[test]
    fn bucket_golden_values() {
        // Pinned: changing these moves live users between lanes on upgrade.
        assert_eq!(bucket("gray", "alice"), bucket("gray", "alice"));
        let golden = [
            bucket("gray", "alice"),
            bucket("gray", "bob"),
            bucket("gray", ""),
            bucket("", "alice"),
            bucket("blue", "alice"),
        ];
        assert_eq!(golden, GOLDEN);
    }
    const GOLDEN: [u16; 5] = [9731, 1616, 7842, 2984, 2932];

    #[test]
    fn random_percentage_is_close_to_target() {
        let set = rules("[{lane: gray, match: {random: 25}}]");
        let n = 40_000;
        let hits = (0..n)
            .filter(|_| set.evaluate(&SimpleRequest::new("/")).is_some())
            .count();
        let share = hits as f64 / n as f64;
        assert!((0.235..0.265).contains(&share), "share {share}");
        let none = rules("[{lane: gray, match: {random: 0}}]");
        assert!((0..1000).all(|_| none.evaluate(&SimpleRequest::new("/")).is_none()));
        let all = rules("[{lane: gray, match: {random: 100}}]");
        assert!((0..1000).all(|_| all.evaluate(&SimpleRequest::new("/")).is_some()));
    }

    #[test]
    fn compile_errors_name_the_field() {
        let bad = |yaml: &str| {
            let specs: Vec<RuleSpec> = serde_yaml_ng::from_str(yaml).unwrap();
            RuleSet::compile(&specs, &lanes()).unwrap_err()
        };
        let e = bad("[{lane: green, match: {path_prefix: /}}]");
        assert_eq!(e.path, "[0].lane");
        assert!(e.message.contains("unknown lane \"green\""), "{e}");
        let e = bad("[{lane: gray, match: {header: {name: a, exact: b, prefix: c}}}]");
        assert_eq!(e.path, "[0].match.header");
        let e = bad(
            "[{lane: gray, match: {path_prefix: /}}, {lane: gray, match: {all: [{path_prefix: /}, {query: {name: q, regex: '('}}]}}]",
        );
        assert_eq!(e.path, "[1].match.all[1].query.regex");
        let e = bad("[{lane: gray, match: {all: []}}]");
        assert_eq!(e.path, "[0].match.all");
        let e = bad("[{lane: gray, match: {path_prefix: api}}]");
        assert_eq!(e.path, "[0].match.path_prefix");
        let e = bad("[{lane: gray, match: {}}]");
        assert_eq!(e.path, "[0].match");
        let e = bad("[{lane: gray, match: {sticky: {percent: 5, by: {header: a, cookie: b}}}}]");
        assert_eq!(e.path, "[0].match.sticky.by");
    }

    #[test]
    fn swapping_rules_is_atomic_and_visible_to_clones() {
        let handle = Rules::new(rules("[{lane: gray, match: {random: 0}}]"));
        let clone = handle.clone();
        let req = SimpleRequest::new("/");
        assert_eq!(clone.lane_for(&req), None);
        handle.store(rules("[{name: all-in, lane: gray, match: {random: 100}}]"));
        let m = clone.evaluate(&req).unwrap();
        assert_eq!((m.lane().as_str(), m.rule()), ("gray", "all-in"));
        // Blue-green flip.
        handle.store(rules("[{lane: blue, match: {path_prefix: /}}]"));
        assert_eq!(clone.lane_for(&req).unwrap(), "blue");
    }

    #[test]
    fn swap_under_concurrent_readers_never_shows_a_mix() {
        // Each set maps every request to one lane; a reader must see one or the other.
        let handle = Rules::new(rules("[{lane: gray, match: {path_prefix: /}}]"));
        std::thread::scope(|s| {
            for _ in 0..2 {
                let h = handle.clone();
                s.spawn(move || {
                    for _ in 0..20_000 {
                        let set = h.load();
                        let lanes: Vec<_> = set.rules().iter().map(Rule::lane).collect();
                        assert_eq!(lanes.len(), 1);
                    }
                });
            }
            for i in 0..2_000 {
                let lane = if i % 2 == 0 { "blue" } else { "gray" };
                handle.store(rules(&format!(
                    "[{{lane: {lane}, match: {{path_prefix: /}}}}]"
                )));
            }
        });
    }

    #[test]
    fn cookie_and_query_parsing() {
        assert_eq!(find_cookie("a=1; b = 2 ;c=\"3\"", "b"), Some("2"));
        assert_eq!(find_cookie("a=1; b = 2 ;c=\"3\"", "c"), Some("3"));
        assert_eq!(find_cookie("a", "a"), None);
        assert_eq!(
            find_query_param("a=1&b=x%2By&c", "b").as_deref(),
            Some("x+y")
        );
        assert_eq!(find_query_param("a=1&b=x%2By&c", "c").as_deref(), Some(""));
        assert_eq!(find_query_param("a=%zz%", "a").as_deref(), Some("%zz%"));
        assert_eq!(find_query_param("a=%e4%b8%ad", "a").as_deref(), Some("中"));
    }

    proptest! {
        #[test]
        fn query_decoding_never_panics(q in "\\PC{0,64}", name in "[a-z%+]{0,4}") {
            let _ = find_query_param(&q, &name);
            let _ = find_cookie(&q, &name);
        }

        #[test]
        fn bucket_is_in_range(salt in "\\PC{0,16}", key in "\\PC{0,64}") {
            prop_assert!(bucket(&salt, &key) < Percent::SCALE);
        }
    }
}
