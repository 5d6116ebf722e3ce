//! The coloring part of the spec document: ingress rules and the conditions they match on.
//!
//! These are the serde forms; [`crate::coloring::RuleSet::compile`] turns them into rules that
//! run. Content-based routes of the mesh ([`super::mesh::ContentRouteSpec`]) use the same
//! [`MatchSpec`], so the edge and Envoy read one condition language.

use serde::{Deserialize, Serialize};

use crate::lane::Lane;
use crate::percent::Percent;

/// Ingress coloring.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ColoringSpec {
    /// Rules in evaluation order; the first match wins.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

/// One coloring rule.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A name for logs and metrics; `rule-<index>` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The lane a matching request gets.
    pub lane: Lane,
    /// The condition.
    #[serde(rename = "match")]
    pub condition: MatchSpec,
    /// Whether the rule colors (default true). A rule that is off is still checked, so that
    /// turning it back on cannot fail; a rolled-back release turns its lane's rules off.
    #[serde(default = "on", skip_serializing_if = "is_on")]
    pub enabled: bool,
}

pub(super) fn on() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
pub(super) fn is_on(enabled: &bool) -> bool {
    *enabled
}

/// A coloring condition. Set one field, or several to require all of them (as in Istio's
/// `HTTPMatchRequest`); `all` nests conditions explicitly.
///
/// ```yaml
/// match: { header: { name: x-user-group, exact: beta } }
/// match: { path_prefix: /api/, sticky: { percent: 10, by: { header: x-user-id } } }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    /// A request header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<ValueMatchSpec>,
    /// A cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<ValueMatchSpec>,
    /// A query parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<ValueMatchSpec>,
    /// The path starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// A stable percentage of keys (users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<StickySpec>,
    /// A random percentage of requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<Percent>,
    /// Every listed condition holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<MatchSpec>>,
}

/// How a named value must look. Exactly one of `exact`, `prefix`, `regex`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ValueMatchSpec {
    /// The header, cookie or parameter name.
    pub name: String,
    /// Equal to this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// Starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Matches this regex in full (anchored, as Istio's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// A sticky percentage.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StickySpec {
    /// The share of keys that match.
    pub percent: Percent,
    /// Where the key is read.
    pub by: KeySource,
    /// Hash salt; the rule's lane name when absent. Keep it fixed across a release so users
    /// stay in the lane as the percentage grows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
}

/// Where a sticky key is read from: exactly one of the fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeySource {
    /// A header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// A cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// A query parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}
