//! [`LaneSpec::validate`]: everything serde cannot check.
//!
//! Serde refuses wrong types and unknown fields. What is left are references (a lane naming an
//! unknown service), uniqueness (a service listed twice), names that other systems must accept
//! (DNS labels, Kubernetes label values, SQL identifiers, Redis prefixes that cannot collide)
//! and conditions that Istio cannot express. Each pass returns the path of the first bad field,
//! so the loader can point at its line; the passes run in document order, so the first mistake
//! in a file is the one reported.
//!
//! Every pass is linear (or `n log n`) in the size of the spec: lookups of a service or a lane
//! go through an [`Index`] built once, never a scan of `services` or `lanes`, so a spec of
//! 20,000 lanes validates as fast as it parses.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Bound;

use super::error::SpecError;
use super::mesh::RoutingSpec;
use super::rules::MatchSpec;
use super::schema::{LaneDef, LaneSpec, SPEC_VERSION, ServiceSpec};
use crate::lane::{Lane, LaneSet};
use crate::trust::MIN_KEY_LEN;

impl LaneSpec {
    /// Checks everything serde cannot: references, uniqueness, rendered names.
    /// Returns the path of the first bad field and what is wrong with it.
    pub fn validate(&self) -> Result<(), SpecError> {
        header(self)?;
        services(self)?;
        let index = Index::new(self);
        lanes(self, &index)?;
        routing(self, &index)?;
        mesh(self, &index)?;
        data_names(self)?;
        redis_scripts(self)?;
        self.rule_set()?;
        trust(self)?;
        releases(self, &index)?;
        mirror_lanes(self, &index)?;
        super::compare::validate(self, |lane| index.lanes.get(&lane).copied())
    }
}

/// The spec's services and lanes by name, built once per validation (the spec's own
/// [`service`](LaneSpec::service) and [`lane`](LaneSpec::lane) scan the lists).
struct Index<'a> {
    /// The first service of each name (duplicates are refused before the index is used).
    services: HashMap<&'a str, &'a ServiceSpec>,
    /// The first definition of each lane.
    lanes: HashMap<Lane, &'a LaneDef>,
    /// `(lane, service)` for each service a lane lists.
    versions: HashSet<(Lane, &'a str)>,
    lane_set: LaneSet,
}

impl<'a> Index<'a> {
    fn new(spec: &'a LaneSpec) -> Index<'a> {
        let mut services = HashMap::with_capacity(spec.services.len());
        for s in &spec.services {
            services.entry(s.name.as_str()).or_insert(s);
        }
        let mut lanes = HashMap::with_capacity(spec.lanes.len());
        let mut versions = HashSet::new();
        for l in &spec.lanes {
            lanes.entry(l.name).or_insert(l);
            versions.extend(l.services.iter().map(|s| (l.name, s.as_str())));
        }
        Index {
            services,
            lanes,
            versions,
            lane_set: spec.lane_set(),
        }
    }

    fn service(&self, name: &str) -> Option<&'a ServiceSpec> {
        self.services.get(name).copied()
    }

    fn has_lane(&self, lane: Lane) -> bool {
        lane.is_base() || self.lanes.contains_key(&lane)
    }

    /// [`LaneSpec::has_version`], by lookup. A lane declared twice is refused before this is
    /// asked, so the union of its lists equals the first definition's.
    fn has_version(&self, service: &str, lane: Lane) -> bool {
        lane.is_base() || self.versions.contains(&(lane, service))
    }
}

pub(super) fn fail<T>(path: impl Into<String>, message: impl Into<String>) -> Result<T, SpecError> {
    Err(SpecError::at(path.into(), message.into()))
}

/// `version` and `wire`.
fn header(spec: &LaneSpec) -> Result<(), SpecError> {
    if let Some(v) = spec.version
        && v != SPEC_VERSION
    {
        return fail(
            "version",
            format!("unsupported version {v}, expected {SPEC_VERSION}"),
        );
    }
    spec.wire
        .validate()
        .map_err(|e| SpecError::at("wire".into(), e.to_string()))
}

/// `services[]`: unique DNS-label names, label-value versions.
fn services(spec: &LaneSpec) -> Result<(), SpecError> {
    let mut names = BTreeSet::new();
    for (i, s) in spec.services.iter().enumerate() {
        if !is_dns_label(&s.name) {
            return fail(
                format!("services[{i}].name"),
                format!("service name {:?} {DNS_LABEL}", s.name),
            );
        }
        if !names.insert(s.name.as_str()) {
            return fail(
                format!("services[{i}].name"),
                format!("service {:?} is listed twice", s.name),
            );
        }
        version_label(format!("services[{i}].version"), &s.version)?;
    }
    Ok(())
}

/// `lanes[]`: unique names besides base, their own version, known services.
fn lanes(spec: &LaneSpec, index: &Index<'_>) -> Result<(), SpecError> {
    let mut declared = BTreeSet::new();
    for (i, lane) in spec.lanes.iter().enumerate() {
        if lane.name.is_base() {
            return fail(
                format!("lanes[{i}].name"),
                "`base` is always present and cannot be declared",
            );
        }
        if !declared.insert(lane.name) {
            return fail(
                format!("lanes[{i}].name"),
                format!("lane {:?} is declared twice", lane.name.as_str()),
            );
        }
        version_label(format!("lanes[{i}].version"), lane.version())?;
        lane_services(index, i, lane)?;
    }
    Ok(())
}

/// `lanes[i].services[]`: declared services, once each, none whose base version is the lane's.
fn lane_services(index: &Index<'_>, i: usize, lane: &LaneDef) -> Result<(), SpecError> {
    let mut seen = BTreeSet::new();
    for (j, s) in lane.services.iter().enumerate() {
        let path = format!("lanes[{i}].services[{j}]");
        let Some(service) = index.service(s) else {
            return fail(
                path,
                format!("unknown service {s:?} (declare it under `services`)"),
            );
        };
        if !seen.insert(s.as_str()) {
            return fail(path, format!("service {s:?} is listed twice in this lane"));
        }
        if service.version == lane.version() {
            return fail(
                format!("lanes[{i}].version"),
                format!(
                    "version {:?} is also the base version of {s:?}; a lane needs its own",
                    lane.version()
                ),
            );
        }
    }
    Ok(())
}

/// `services[].port` and `services[].routing`.
fn routing(spec: &LaneSpec, index: &Index<'_>) -> Result<(), SpecError> {
    for (i, s) in spec.services.iter().enumerate() {
        if s.port == 0 {
            return fail(format!("services[{i}].port"), "must be 1-65535");
        }
        service_routing(index, s, &format!("services[{i}].routing"))?;
    }
    Ok(())
}

/// One service's release strategies: each names a lane the service has a version in, and
/// content routes match only what Istio can.
fn service_routing(index: &Index<'_>, s: &ServiceSpec, at: &str) -> Result<(), SpecError> {
    let r: &RoutingSpec = &s.routing;
    let p = |field: &str| format!("{at}.{field}");
    let with_version = |lane: Lane, path: String| {
        if index.has_version(&s.name, lane) {
            Ok(())
        } else if !index.has_lane(lane) {
            fail(path, format!("unknown lane {:?}", lane.as_str()))
        } else {
            fail(
                path,
                format!("service {:?} has no version in lane {lane}", s.name),
            )
        }
    };
    if r.canary.is_some() && r.blue_green.is_some() {
        return fail(
            p("blue_green"),
            "use either `canary` or `blue_green`, not both",
        );
    }
    if let Some(c) = &r.canary {
        if c.lane.is_base() {
            return fail(p("canary.lane"), "a canary goes to a lane, not base");
        }
        with_version(c.lane, p("canary.lane"))?;
        if c.weight > 100 {
            return fail(
                p("canary.weight"),
                format!("weight {} is outside 0..=100", c.weight),
            );
        }
    }
    if let Some(b) = &r.blue_green {
        with_version(b.active, p("blue_green.active"))?;
    }
    for (j, c) in r.content.iter().enumerate() {
        with_version(c.lane, p(&format!("content[{j}].lane")))?;
        if let Some(e) = mesh_matchable(&c.condition) {
            return fail(p(&format!("content[{j}].match")), e);
        }
        LaneSpec::check_route_condition(c, &index.lane_set, &p(&format!("content[{j}]")))?;
    }
    if let Some(m) = &r.mirror {
        if m.lane.is_base() {
            return fail(p("mirror.lane"), "mirror copies go to a lane, not base");
        }
        with_version(m.lane, p("mirror.lane"))?;
        if !index.lanes.get(&m.lane).is_some_and(|l| l.mirror) {
            return fail(
                p("mirror.lane"),
                format!(
                    "lane {} is not a mirror lane: Envoy's copy carries no lane header, so a \
                     deployment that takes it must be pinned to its lane or its writes land in \
                     production; add `mirror: true` to lane {}",
                    m.lane, m.lane
                ),
            );
        }
    }
    Ok(())
}

/// A mirror lane takes only mirror copies: no coloring rule, canary, blue-green side, content
/// route or release sends real requests to it (its pinned deployments would take them as
/// copies, and their answers would reach users).
fn mirror_lanes(spec: &LaneSpec, index: &Index<'_>) -> Result<(), SpecError> {
    let mirror = |lane: Lane| index.lanes.get(&lane).is_some_and(|l| l.mirror);
    let refuse = |path: String, lane: Lane| {
        fail(
            path,
            format!("lane {lane} is a mirror lane: it takes mirror copies only, not requests"),
        )
    };
    for (i, r) in spec.coloring.rules.iter().enumerate() {
        if mirror(r.lane) {
            return refuse(format!("coloring.rules[{i}].lane"), r.lane);
        }
    }
    for (i, s) in spec.services.iter().enumerate() {
        let r = &s.routing;
        let at = |field: &str| format!("services[{i}].routing.{field}");
        if let Some(c) = r.canary.as_ref().filter(|c| mirror(c.lane)) {
            return refuse(at("canary.lane"), c.lane);
        }
        if let Some(b) = r.blue_green.as_ref().filter(|b| mirror(b.active)) {
            return refuse(at("blue_green.active"), b.active);
        }
        for (j, c) in r.content.iter().enumerate() {
            if mirror(c.lane) {
                return refuse(at(&format!("content[{j}].lane")), c.lane);
            }
        }
    }
    for (i, r) in spec.releases.iter().enumerate() {
        if mirror(r.lane) {
            return refuse(format!("releases[{i}].lane"), r.lane);
        }
    }
    Ok(())
}

/// Why a condition cannot be expressed as an Istio route match, if it cannot.
fn mesh_matchable(m: &MatchSpec) -> Option<&'static str> {
    if m.sticky.is_some() || m.random.is_some() {
        return Some(
            "sticky and random conditions cannot be expressed in Istio routes; use `canary` weights or edge coloring",
        );
    }
    m.all
        .as_ref()
        .and_then(|all| all.iter().find_map(mesh_matchable))
}

/// `mesh`: a namespace Kubernetes accepts, an image that tells services apart, a gateway in
/// front of a declared service.
fn mesh(spec: &LaneSpec, index: &Index<'_>) -> Result<(), SpecError> {
    let mesh = &spec.mesh;
    if !is_dns_label(&mesh.namespace) {
        return fail(
            "mesh.namespace",
            format!("namespace {:?} {DNS_LABEL}", mesh.namespace),
        );
    }
    let names_service = |t: &String| t.contains("{service}");
    if !names_service(&mesh.image) && !mesh.args.iter().any(names_service) {
        return fail(
            "mesh.image",
            "the image template (or one of mesh.args) must contain {service}",
        );
    }
    if let Some(g) = &mesh.gateway {
        if index.service(&g.service).is_none() {
            return fail(
                "mesh.gateway.service",
                format!("unknown service {:?}", g.service),
            );
        }
        if g.hosts.is_empty() {
            return fail("mesh.gateway.hosts", "list at least one host");
        }
        if !is_dns_label(&g.name) {
            return fail("mesh.gateway.name", format!("gateway name {DNS_LABEL}"));
        }
    }
    Ok(())
}

/// The rendered data names of every lane: usable by each store, and no two lanes sharing one.
fn data_names(spec: &LaneSpec) -> Result<(), SpecError> {
    let mut prefixes = BTreeSet::new();
    let mut schemas = BTreeSet::new();
    let mut suffixes = BTreeSet::new();
    for (i, def) in spec.lanes.iter().enumerate() {
        let names = spec.data_names_of(def);
        let o = def.data.clone().unwrap_or_default();
        // Point at the override when there is one, else at the template.
        let path = |field: &str, overridden: bool| {
            if overridden {
                format!("lanes[{i}].data.{field}")
            } else {
                format!("data.{field}")
            }
        };
        redis_prefix(
            def.name,
            names.redis_prefix,
            path("redis_prefix", o.redis_prefix.is_some()),
            &mut prefixes,
        )?;
        pg_schema(
            def.name,
            names.pg_schema.unwrap_or_default(),
            path("pg_schema", o.pg_schema.is_some()),
            &mut schemas,
        )?;
        kafka_group_suffix(
            def.name,
            names.kafka_group_suffix,
            path("kafka_group_suffix", o.kafka_group_suffix.is_some()),
            &mut suffixes,
        )?;
    }
    Ok(())
}

/// Allow-listed scripts are SHA-1 digests in hex, functions are names Redis accepts.
fn redis_scripts(spec: &LaneSpec) -> Result<(), SpecError> {
    for (i, sha) in spec.data.redis_scripts.iter().enumerate() {
        if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return fail(
                format!("data.redis_scripts[{i}]"),
                format!(
                    "{sha:?} is not a script's SHA-1 in hex (40 digits, as SCRIPT LOAD answers)"
                ),
            );
        }
    }
    for (i, name) in spec.data.redis_functions.iter().enumerate() {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return fail(
                format!("data.redis_functions[{i}]"),
                format!("{name:?} is not a Redis function name (letters, digits and `_`)"),
            );
        }
    }
    Ok(())
}

/// A Redis prefix that matches no glob, carries no hash tag, and is no prefix of another's.
///
/// `taken` holds the prefixes accepted so far, none a prefix of another. In sorted order, a
/// prefix of `p` can only be the greatest one below `p` (any prefix between them would be a
/// prefix of the greater one), and one that `p` is a prefix of can only be the least one at or
/// above `p` (anything between them would start with `p` too): two neighbours to look at, not
/// every lane.
fn redis_prefix(
    lane: Lane,
    p: String,
    path: String,
    taken: &mut BTreeSet<String>,
) -> Result<(), SpecError> {
    if p.is_empty()
        || p.bytes()
            .any(|b| b"{}*?[]\\".contains(&b) || b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return fail(
            path,
            format!(
                "Redis prefix {p:?} for lane {lane} must be non-empty, without glob characters, braces (hash tags) or spaces"
            ),
        );
    }
    let key = p.as_str();
    let below = taken
        .range::<str, _>((Bound::Unbounded, Bound::Excluded(key)))
        .next_back();
    let above = taken
        .range::<str, _>((Bound::Included(key), Bound::Unbounded))
        .next();
    let overlapping = below
        .filter(|q| p.starts_with(q.as_str()))
        .or_else(|| above.filter(|q| q.starts_with(p.as_str())));
    if let Some(other) = overlapping {
        return fail(
            path,
            format!("Redis prefix {p:?} for lane {lane} overlaps prefix {other:?} of another lane"),
        );
    }
    taken.insert(p);
    Ok(())
}

/// A plain SQL identifier that is none of the system's schemas, and no other lane's.
fn pg_schema(
    lane: Lane,
    s: String,
    path: String,
    taken: &mut BTreeSet<String>,
) -> Result<(), SpecError> {
    if !is_sql_identifier(&s) || s == "public" || s.starts_with("pg_") || s == "information_schema"
    {
        return fail(
            path,
            format!(
                "schema {s:?} for lane {lane} must match [a-z_][a-z0-9_]{{0,62}} and not be public, information_schema or pg_*"
            ),
        );
    }
    if taken.contains(&s) {
        return fail(path, format!("schema {s:?} is used by two lanes"));
    }
    taken.insert(s);
    Ok(())
}

/// A Kafka group id suffix of legal characters, and no other lane's.
fn kafka_group_suffix(
    lane: Lane,
    k: String,
    path: String,
    taken: &mut BTreeSet<String>,
) -> Result<(), SpecError> {
    if k.is_empty()
        || k.len() > 100
        || !k
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return fail(
            path,
            format!("Kafka group suffix {k:?} for lane {lane} must be 1-100 of [A-Za-z0-9._-]"),
        );
    }
    if taken.contains(&k) {
        return fail(
            path,
            format!("Kafka group suffix {k:?} is used by two lanes"),
        );
    }
    taken.insert(k);
    Ok(())
}

/// `releases[]`: a lane of the spec, at most one plan each; its rule a sticky rule of that lane;
/// steps strictly increasing; a positive bake time; gates that can pass.
fn releases(spec: &LaneSpec, index: &Index<'_>) -> Result<(), SpecError> {
    for (i, r) in spec.releases.iter().enumerate() {
        let at = |field: &str| format!("releases[{i}].{field}");
        if r.lane.is_base() || !index.lanes.contains_key(&r.lane) {
            return fail(at("lane"), format!("unknown lane {:?}", r.lane.as_str()));
        }
        if spec.releases[..i].iter().any(|o| o.lane == r.lane) {
            return fail(
                at("lane"),
                format!("a second release of lane {:?}", r.lane.as_str()),
            );
        }
        let rule = spec
            .coloring
            .rules
            .iter()
            .find(|rule| rule.name.as_deref() == Some(r.rule.as_str()));
        match rule {
            None => {
                return fail(
                    at("rule"),
                    format!("no coloring rule is named {:?}", r.rule),
                );
            }
            Some(rule) if rule.lane != r.lane => {
                return fail(
                    at("rule"),
                    format!(
                        "rule {:?} colors lane {:?}, not {:?}",
                        r.rule,
                        rule.lane.as_str(),
                        r.lane.as_str()
                    ),
                );
            }
            Some(rule) if rule.condition.sticky.is_none() => {
                return fail(
                    at("rule"),
                    format!(
                        "rule {:?} has no `match.sticky`: its percent is what the steps set",
                        r.rule
                    ),
                );
            }
            Some(_) => {}
        }
        if r.steps.is_empty() {
            return fail(at("steps"), "at least one step");
        }
        if let Some(k) = r.steps.windows(2).position(|w| w[0] >= w[1]) {
            return fail(
                format!("releases[{i}].steps[{}]", k + 1),
                "steps must increase",
            );
        }
        if r.bake_secs == 0 {
            return fail(at("bake_secs"), "must be at least 1");
        }
        let g = &r.gates;
        if !(g.max_error_ratio_increase.is_finite() && g.max_error_ratio_increase >= 0.0) {
            return fail(
                at("gates.max_error_ratio_increase"),
                "must be a number from 0",
            );
        }
        if !(g.max_p99_ratio.is_finite() && g.max_p99_ratio >= 1.0) {
            return fail(at("gates.max_p99_ratio"), "must be a number from 1");
        }
        if !(g.p99_tolerance_ms.is_finite() && g.p99_tolerance_ms >= 0.0) {
            return fail(at("gates.p99_tolerance_ms"), "must be a number from 0");
        }
        if g.min_requests == 0 {
            return fail(at("gates.min_requests"), "must be at least 1");
        }
        for (k, q) in g.promql.iter().enumerate() {
            if q.name.is_empty() || q.query.trim().is_empty() || !q.max.is_finite() {
                return fail(
                    format!("releases[{i}].gates.promql[{k}]"),
                    "needs a name, a query and a finite max",
                );
            }
        }
    }
    Ok(())
}

/// `trust.token`: a header name, a positive validity, an inline key long enough.
fn trust(spec: &LaneSpec) -> Result<(), SpecError> {
    let Some(t) = &spec.trust.token else {
        return Ok(());
    };
    if t.header.is_empty()
        || !t
            .header
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return fail("trust.token.header", "must be a lowercase HTTP header name");
    }
    if t.max_ttl_secs == 0 {
        return fail("trust.token.max_ttl_secs", "must be positive");
    }
    if let Some(k) = &t.key
        && k.len() < MIN_KEY_LEN
    {
        return fail(
            "trust.token.key",
            format!("must be at least {MIN_KEY_LEN} bytes"),
        );
    }
    for (i, p) in t.previous.iter().enumerate() {
        let at = |field: &str| format!("trust.token.previous[{i}].{field}");
        if super::time::parse_rfc3339_utc(&p.until).is_none() {
            return fail(
                at("until"),
                format!(
                    "{:?} is not an RFC 3339 time in UTC, such as 2026-12-08T00:00:00Z",
                    p.until
                ),
            );
        }
        match (&p.key_env, &p.key) {
            (None, None) => return fail(at("key_env"), "a previous key needs key_env (or key)"),
            (_, Some(k)) if k.len() < MIN_KEY_LEN => {
                return fail(at("key"), format!("must be at least {MIN_KEY_LEN} bytes"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `s` is a plain lowercase SQL identifier (`[a-z_][a-z0-9_]{0,62}`): what the spec
/// accepts as a shadow schema name, and what data adapters accept as table names.
///
/// ```
/// use graylane_core::spec::is_sql_identifier;
/// assert!(is_sql_identifier("lane_gray"));
/// assert!(!is_sql_identifier("x; DROP TABLE t"));
/// ```
pub fn is_sql_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// What [`is_dns_label`] requires, as the end of an error message.
const DNS_LABEL: &str = "must be a DNS label: 1-63 of a-z, 0-9, '-', starting with a letter";

/// An RFC 1123 label as Kubernetes names want it: service names, namespaces, gateway names.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-'
}

/// A version label: the generated Deployments carry it as a Kubernetes label value.
fn version_label(path: String, s: &str) -> Result<(), SpecError> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c));
    if ok {
        Ok(())
    } else {
        fail(
            path,
            format!(
                "version {s:?} must be a Kubernetes label value: 1-63 of [A-Za-z0-9._-], alphanumeric at both ends"
            ),
        )
    }
}
