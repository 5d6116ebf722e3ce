//! `services[].compare`: how a service's in-process mirror compares the mirror's responses with
//! production's (`graylane_http::MirrorLayer`), and the route templates it counts them by.
//!
//! ```
//! use graylane_core::spec::{LaneSpec, RouteTemplate};
//!
//! let spec = LaneSpec::from_yaml_str(r#"
//! services:
//!   - name: gateway
//!     compare:
//!       routes:
//!         - route: "GET /orders/{id}"
//!           ignore: [etag, "items[].reserved_at"]
//!       redact: [email]
//! lanes:
//!   - name: baseline
//!     mirror: true
//! "#)?;
//! let compare = spec.services[0].compare.as_ref().unwrap();
//! let route = RouteTemplate::parse(&compare.routes[0].route)?;
//! assert!(route.matches("GET", "/orders/42"));
//! assert!(!route.matches("GET", "/orders/42/items"));
//! assert_eq!(route.to_string(), "GET /orders/{id}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::SpecError;
use super::schema::{LaneDef, LaneSpec};
use super::validate::fail;
use crate::lane::Lane;
use crate::percent::Percent;

/// The comparison of a service's mirrored responses with production's.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CompareSpec {
    /// Route templates (`METHOD /path/{param}`), each with the fields that may differ. A
    /// request no template matches is counted under a template made from its path (segments
    /// that look like ids become `{id}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<CompareRouteSpec>,
    /// Routes counted separately; the ones seen after that are counted as `other`.
    #[serde(default = "default_max_routes")]
    pub max_routes: usize,
    /// Response headers compared besides the status and the body (default `content-type`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    /// Body fields and headers whose values are never kept in a sample diff (besides
    /// `authorization`, `cookie` and `set-cookie`, always redacted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redact: Vec<String>,
    /// Noise learning: a second copy of a share of compared requests, to base versions on a
    /// mirror lane; what differs between it and production differs between two runs of the
    /// same code, and does not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<NoiseSpec>,
}

fn default_max_routes() -> usize {
    32
}

/// A route of [`CompareSpec::routes`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CompareRouteSpec {
    /// The template, `METHOD /path`, `{name}` for one path segment.
    pub route: String,
    /// Fields whose differences do not count: body paths (`quote_id`, `items[].id`; a field
    /// covers what is under it) and `header:<name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
}

/// The noise copies of [`CompareSpec::noise`].
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseSpec {
    /// The lane the noise copies travel on: a mirror lane with no versions, so that every hop
    /// runs base code and every write lands in that lane's shadow data.
    pub lane: Lane,
    /// The share of compared requests that also get a noise copy, after the warm-up.
    #[serde(default = "default_noise_percent")]
    pub percent: Percent,
    /// The first compared requests of each route that all get a noise copy, so that noise is
    /// known before it is judged.
    #[serde(default = "default_warmup")]
    pub warmup: u32,
    /// After this many noise copies of a route in a row taught nothing new, the route's share
    /// drops to a tenth of `percent`; a noise copy that teaches a field brings it back. Noise
    /// copies are requests the primary's process sends: once a route's noise is known, most of
    /// them only cost. `0` keeps `percent` always.
    #[serde(default = "default_settle")]
    pub settle: u32,
}

fn default_settle() -> u32 {
    100
}

fn default_noise_percent() -> Percent {
    Percent::clamped(10.0)
}

fn default_warmup() -> u32 {
    10
}

/// A route template: a method and a path whose `{name}` segments match any one segment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteTemplate {
    method: String,
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Segment {
    Literal(String),
    Param(String),
}

/// Why a route template was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidRoute(String);

impl fmt::Display for InvalidRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidRoute {}

impl RouteTemplate {
    /// Parses `METHOD /path`: an upper-case method, one space, a path from `/`.
    pub fn parse(text: &str) -> Result<RouteTemplate, InvalidRoute> {
        let bad = |why: &str| InvalidRoute(format!("route {text:?}: {why}"));
        let (method, path) = text
            .split_once(' ')
            .ok_or_else(|| bad("expected `METHOD /path`, e.g. `GET /orders/{id}`"))?;
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad("the method is upper-case letters (GET, POST, ...)"));
        }
        let Some(rest) = path.strip_prefix('/') else {
            return Err(bad("the path starts with `/`"));
        };
        let mut segments = Vec::new();
        for segment in rest.split('/').filter(|s| !s.is_empty()) {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if name.is_empty() || name.contains(['{', '}']) {
                    return Err(bad("a parameter is `{name}`, a whole segment"));
                }
                segments.push(Segment::Param(name.to_owned()));
            } else if segment.contains(['{', '}', ' ', '?', '#']) {
                return Err(bad(
                    "a literal segment has no braces, spaces, `?` or `#` (parameters are whole segments)",
                ));
            } else {
                segments.push(Segment::Literal(segment.to_owned()));
            }
        }
        Ok(RouteTemplate {
            method: method.to_owned(),
            segments,
        })
    }

    /// Whether a request of `method` to `path` (no query) is on this route. Empty segments
    /// (`//`, a trailing `/`) are ignored.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if method != self.method {
            return false;
        }
        let mut given = path.split('/').filter(|s| !s.is_empty());
        for segment in &self.segments {
            match (segment, given.next()) {
                (_, None) => return false,
                (Segment::Literal(l), Some(g)) if l != g => return false,
                _ => {}
            }
        }
        given.next().is_none()
    }
}

impl fmt::Display for RouteTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.method)?;
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for segment in &self.segments {
            match segment {
                Segment::Literal(l) => write!(f, "/{l}")?,
                Segment::Param(p) => write!(f, "/{{{p}}}")?,
            }
        }
        Ok(())
    }
}

/// `services[].compare`, for [`LaneSpec::validate`]: templates that parse, header names, and noise copies on a mirror lane
/// with no versions (anything else would run lane code, or write production data).
pub(super) fn validate<'a>(
    spec: &'a LaneSpec,
    lane: impl Fn(Lane) -> Option<&'a LaneDef>,
) -> Result<(), SpecError> {
    for (i, s) in spec.services.iter().enumerate() {
        let Some(c) = &s.compare else { continue };
        let at = |field: &str| format!("services[{i}].compare.{field}");
        for (j, r) in c.routes.iter().enumerate() {
            if let Err(e) = RouteTemplate::parse(&r.route) {
                return fail(at(&format!("routes[{j}].route")), e.to_string());
            }
            if let Some(k) = r.ignore.iter().position(|f| f.trim().is_empty()) {
                return fail(
                    at(&format!("routes[{j}].ignore[{k}]")),
                    "an ignored field is a body path (`quote_id`, `items[].id`) or `header:<name>`",
                );
            }
        }
        if c.max_routes == 0 {
            return fail(
                at("max_routes"),
                "at least 1 (routes beyond it count as `other`)",
            );
        }
        for (j, h) in c.headers.iter().enumerate() {
            if h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return fail(
                    at(&format!("headers[{j}]")),
                    format!("header {h:?}: lower-case letters, digits and `-`"),
                );
            }
        }
        if let Some(n) = &c.noise {
            let Some(def) = lane(n.lane) else {
                return fail(at("noise.lane"), format!("unknown lane {}", n.lane));
            };
            if !def.mirror || !def.services.is_empty() {
                return fail(
                    at("noise.lane"),
                    format!(
                        "noise copies run base code on shadow data: lane {} must be a mirror lane \
                         (`mirror: true`) with no services",
                        n.lane
                    ),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_whole_segments() {
        let t = RouteTemplate::parse("GET /orders/{id}/items").unwrap();
        assert!(t.matches("GET", "/orders/7/items"));
        assert!(t.matches("GET", "/orders/7/items/"));
        assert!(!t.matches("POST", "/orders/7/items"));
        assert!(!t.matches("GET", "/orders/7"));
        assert!(!t.matches("GET", "/orders/7/items/3"));
        assert!(!t.matches("GET", "/orders/7/parts"));
        let root = RouteTemplate::parse("GET /").unwrap();
        assert!(root.matches("GET", "/"));
        assert_eq!(root.to_string(), "GET /");
    }

    #[test]
    fn the_spec_refuses_what_a_comparison_cannot_use() {
        let spec = |compare: &str, lane: &str| {
            let text = format!(
                "services:\n  - name: gateway\n    compare: {compare}\nlanes:\n  - {lane}\n"
            );
            crate::spec::LaneSpec::from_yaml_str(&text).map_err(|e| e.to_string())
        };
        let mirror = "{ name: baseline, mirror: true }";
        assert!(spec("{ noise: { lane: baseline } }", mirror).is_ok());
        for (compare, lane, error) in [
            (
                "{ routes: [{ route: /quote }] }",
                mirror,
                "compare.routes[0].route: route \"/quote\"",
            ),
            (
                "{ routes: [{ route: POST /q, ignore: [' '] }] }",
                mirror,
                "routes[0].ignore[0]",
            ),
            (
                "{ max_routes: 0 }",
                mirror,
                "compare.max_routes: at least 1",
            ),
            (
                "{ headers: [Date] }",
                mirror,
                "compare.headers[0]: header \"Date\"",
            ),
            (
                "{ noise: { lane: nope } }",
                mirror,
                "compare.noise.lane: unknown lane nope",
            ),
            (
                "{ noise: { lane: baseline } }",
                "{ name: baseline }",
                "must be a mirror lane",
            ),
            (
                "{ noise: { lane: baseline } }",
                "{ name: baseline, mirror: true, services: [gateway] }",
                "with no services",
            ),
        ] {
            let e = spec(compare, lane).unwrap_err();
            assert!(e.contains(error), "{compare} / {lane}: {e}");
        }
    }

    #[test]
    fn bad_templates_say_what_a_template_is() {
        for (text, why) in [
            ("/orders", "expected `METHOD /path`"),
            ("get /orders", "upper-case"),
            ("GET orders", "starts with `/`"),
            ("GET /orders/{}", "`{name}`"),
            ("GET /orders/x{id}", "whole segments"),
        ] {
            let e = RouteTemplate::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
