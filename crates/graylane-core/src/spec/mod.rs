//! The lane spec: the one document that declares lanes, services, coloring, trust and data naming.
//!
//! Every graylane piece reads the same spec: the edge colors with its rules, routers and Kafka
//! consumers fall back where a service has no version in a lane, data adapters name shadow
//! namespaces from it, and `graylane-mesh` generates Istio manifests from it. It loads from YAML
//! or TOML; errors name the file, line, column and field path. The full reference is
//! `docs/lane-spec.md`.
//!
//! ```
//! use graylane_core::spec::LaneSpec;
//! use graylane_core::Lane;
//!
//! let spec = LaneSpec::from_yaml_str(r#"
//! services:
//!   - name: orders
//!   - name: inventory
//! lanes:
//!   - name: gray
//!     version: v2
//!     services: [orders]
//! coloring:
//!   rules:
//!     - name: beta
//!       lane: gray
//!       match: { header: { name: x-user-group, exact: beta } }
//! "#)?;
//!
//! let gray = Lane::new("gray")?;
//! assert_eq!(spec.serving_lane("orders", gray), gray);
//! assert_eq!(spec.serving_lane("inventory", gray), Lane::BASE); // fallback
//! assert_eq!(spec.data_names(gray).pg_schema.as_deref(), Some("lane_gray"));
//! assert_eq!(spec.data_names(gray).redis_prefix, "lane:gray:");
//!
//! let err = LaneSpec::from_yaml_str("lanes:\n  - name: gray\n    services: [nope]\n").unwrap_err();
//! assert_eq!(err.to_string(), "3:16: lanes[0].services[0]: unknown service \"nope\" (declare it under `services`)");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod load;

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::percent::Percent;
pub use load::SpecError;

use crate::coloring::{RuleSet, Rules};
use crate::trust::{DEFAULT_MAX_TTL, DEFAULT_TOKEN_HEADER, DEFAULT_TOKEN_KEY_ENV, TokenKey};
use crate::wire::WireConfig;
use crate::{Edge, Lane, LaneSet, Propagator};

/// The spec format version this crate reads.
pub const SPEC_VERSION: u32 = 1;

/// A lane spec. Load it with [`LaneSpec::from_yaml_str`], [`LaneSpec::from_toml_str`] or
/// [`LaneSpec::from_path`], which also validate it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LaneSpec {
    /// The spec format version; [`SPEC_VERSION`] when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Header and baggage names.
    #[serde(default)]
    pub wire: WireConfig,
    /// Every service, with the version label of its base deployment.
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    /// The lanes besides base, and which services have a version in each.
    #[serde(default)]
    pub lanes: Vec<LaneDef>,
    /// How lane data namespaces are named.
    #[serde(default)]
    pub data: DataTemplates,
    /// Ingress coloring rules.
    #[serde(default)]
    pub coloring: ColoringSpec,
    /// The trust boundary.
    #[serde(default)]
    pub trust: TrustSpec,
    /// Istio / Kubernetes settings for the generated manifests (`graylane-mesh`).
    #[serde(default)]
    pub mesh: MeshSpec,
}

/// A service and its base version.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// The service name (a DNS label).
    pub name: String,
    /// The version label of the base deployment.
    #[serde(default = "default_base_version")]
    pub version: String,
    /// The port the service listens on.
    #[serde(default = "default_port")]
    pub port: u16,
    /// `http` or `grpc` (Istio picks the protocol from the port name).
    #[serde(default)]
    pub protocol: Protocol,
    /// How traffic *without* a lane is split between versions (canary, blue-green,
    /// content-based) and mirrored. Lane traffic always goes to its lane's version.
    #[serde(default, skip_serializing_if = "RoutingSpec::is_empty")]
    pub routing: RoutingSpec,
}

fn default_base_version() -> String {
    "v1".into()
}

fn default_port() -> u16 {
    8080
}

/// A service's protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1 or HTTP/2.
    #[default]
    Http,
    /// gRPC.
    Grpc,
}

impl Protocol {
    /// The Istio port-name prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
        }
    }
}

/// Release strategies for traffic that carries no lane (the seeds' canary, blue-green and
/// mirroring). At most one of `canary` and `blue_green`; `content` routes are tried first.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSpec {
    /// Weighted canary: `weight`% of un-laned traffic goes to `lane`'s version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanarySpec>,
    /// Blue-green: all un-laned traffic goes to `active` (`base` or a lane); flip to roll back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenSpec>,
    /// Content-based canary: requests matching go to the lane's version (header, cookie, query
    /// and path prefix conditions; what Istio can match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<ContentRouteSpec>,
    /// Mirror a share of traffic to a lane's version (responses discarded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorSpec>,
}

impl RoutingSpec {
    /// Whether no strategy is set (all un-laned traffic to base).
    pub fn is_empty(&self) -> bool {
        self.canary.is_none()
            && self.blue_green.is_none()
            && self.content.is_empty()
            && self.mirror.is_none()
    }
}

/// Weighted canary.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySpec {
    /// The lane whose version gets the share.
    pub lane: Lane,
    /// Percentage of un-laned traffic, 0 to 100.
    pub weight: u8,
}

/// Blue-green.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BlueGreenSpec {
    /// The lane whose version takes all un-laned traffic (`base` to roll back).
    pub active: Lane,
}

/// A content-based route.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContentRouteSpec {
    /// The lane whose version serves matching requests.
    pub lane: Lane,
    /// The condition: `header`, `cookie`, `query`, `path_prefix` (several: all must hold).
    #[serde(rename = "match")]
    pub condition: MatchSpec,
}

/// Mirroring.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorSpec {
    /// The lane whose version receives the copies.
    pub lane: Lane,
    /// Share of requests copied.
    pub percent: Percent,
}

/// Kubernetes / Istio settings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeshSpec {
    /// The namespace everything is generated in.
    pub namespace: String,
    /// Container image template; `{service}` and `{version}` are replaced.
    pub image: String,
    /// Container arguments, each a template like `image` (`{lane}` too); none by default. For
    /// one image that runs every service: `image: "shop:{version}"`, `args: ["--role",
    /// "{service}"]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The ingress gateway, when traffic enters through Istio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewaySpec>,
}

impl Default for MeshSpec {
    fn default() -> Self {
        MeshSpec {
            namespace: "default".into(),
            image: "{service}:{version}".into(),
            args: Vec::new(),
            gateway: None,
        }
    }
}

/// The Istio ingress gateway in front of the edge service.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    /// The Gateway's name.
    #[serde(default = "default_gateway_name")]
    pub name: String,
    /// External host names.
    pub hosts: Vec<String>,
    /// The service that receives ingress traffic (it runs the graylane edge layer).
    pub service: String,
    /// The gateway port.
    #[serde(default = "default_gateway_port")]
    pub port: u16,
}

fn default_gateway_name() -> String {
    "graylane-gateway".into()
}

fn default_gateway_port() -> u16 {
    80
}

/// A lane.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LaneDef {
    /// The lane name.
    pub name: Lane,
    /// What the lane is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The version label of this lane's deployments; the lane name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The services that have a version in this lane. The others fall back to base.
    #[serde(default)]
    pub services: Vec<String>,
    /// Per-lane overrides of the data naming templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataOverrides>,
}

impl LaneDef {
    /// The version label of this lane's deployments.
    pub fn version(&self) -> &str {
        self.version.as_deref().unwrap_or(self.name.as_str())
    }
}

/// Templates naming each lane's data namespaces; `{lane}` is replaced by the lane name.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataTemplates {
    /// Redis key prefix. Default `lane:{lane}:`.
    pub redis_prefix: String,
    /// PostgreSQL shadow schema (MySQL shadow database). Default `lane_{lane}`; `-` in the lane
    /// name becomes `_` here.
    pub pg_schema: String,
    /// Suffix appended to Kafka consumer group ids. Default `.lane.{lane}`.
    pub kafka_group_suffix: String,
}

impl Default for DataTemplates {
    fn default() -> Self {
        DataTemplates {
            redis_prefix: "lane:{lane}:".into(),
            pg_schema: "lane_{lane}".into(),
            kafka_group_suffix: ".lane.{lane}".into(),
        }
    }
}

/// Per-lane data names, used verbatim instead of the templates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataOverrides {
    /// Redis key prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_prefix: Option<String>,
    /// PostgreSQL schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_schema: Option<String>,
    /// Kafka consumer group suffix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_group_suffix: Option<String>,
}

/// A lane's data namespaces, rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataNames {
    /// Prepended to every Redis key; empty for base.
    pub redis_prefix: String,
    /// The shadow schema; `None` for base (the application's own schema).
    pub pg_schema: Option<String>,
    /// Appended to Kafka consumer group ids; empty for base.
    pub kafka_group_suffix: String,
}

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

/// The trust boundary settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSpec {
    /// Signed lane tokens; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenSpec>,
}

/// Signed lane token settings.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSpec {
    /// The header tokens travel in.
    pub header: String,
    /// The environment variable holding the key.
    pub key_env: String,
    /// An inline key, for local demos only: real deployments use `key_env`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The longest validity a token may claim, in seconds.
    pub max_ttl_secs: u64,
}

impl fmt::Debug for TokenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSpec")
            .field("header", &self.header)
            .field("key_env", &self.key_env)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("max_ttl_secs", &self.max_ttl_secs)
            .finish()
    }
}

impl Default for TokenSpec {
    fn default() -> Self {
        TokenSpec {
            header: DEFAULT_TOKEN_HEADER.into(),
            key_env: DEFAULT_TOKEN_KEY_ENV.into(),
            key: None,
            max_ttl_secs: DEFAULT_MAX_TTL.as_secs(),
        }
    }
}

impl TokenSpec {
    /// The key: from `key_env` when set in the environment, else the inline `key`.
    pub fn load_key(&self) -> Result<TokenKey, crate::trust::KeyError> {
        let key = match (TokenKey::from_env(&self.key_env), &self.key) {
            (Ok(key), _) => key,
            (Err(crate::trust::KeyError::MissingEnv(_)), Some(inline)) => {
                TokenKey::new(inline.as_bytes())?
            }
            (Err(e), _) => return Err(e),
        };
        Ok(key.with_max_ttl(Duration::from_secs(self.max_ttl_secs)))
    }
}

impl LaneSpec {
    /// The configured lanes (base included).
    pub fn lane_set(&self) -> LaneSet {
        LaneSet::new(self.lanes.iter().map(|l| l.name))
    }

    /// A propagator for this spec's lanes and wire names.
    pub fn propagator(&self) -> Propagator {
        Propagator::with_wire(self.lane_set(), self.wire.clone())
    }

    /// The compiled coloring rules.
    pub fn rule_set(&self) -> Result<RuleSet, SpecError> {
        RuleSet::compile(&self.coloring.rules, &self.lane_set())
            .map_err(|e| SpecError::at(format!("coloring.rules{}", e.path), e.message))
    }

    /// An edge for this spec: its propagator, rules, and tokens when `trust.token` is set.
    pub fn edge(&self) -> Result<Edge, SpecError> {
        let edge = Edge::new(self.propagator(), Rules::new(self.rule_set()?));
        Ok(match &self.trust.token {
            Some(t) => {
                let key = t
                    .load_key()
                    .map_err(|e| SpecError::at("trust.token".into(), e.to_string()))?;
                edge.with_tokens_in(key, &t.header)
            }
            None => edge,
        })
    }

    /// The lane definition named `lane`.
    pub fn lane(&self, lane: Lane) -> Option<&LaneDef> {
        self.lanes.iter().find(|l| l.name == lane)
    }

    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Whether `service` has a version in `lane` (every service has one in base).
    pub fn has_version(&self, service: &str, lane: Lane) -> bool {
        lane.is_base()
            || self
                .lane(lane)
                .is_some_and(|l| l.services.iter().any(|s| s == service))
    }

    /// The lane whose version of `service` serves a request of `lane`: `lane` itself when the
    /// service has a version there, else base (fallback).
    pub fn serving_lane(&self, service: &str, lane: Lane) -> Lane {
        if self.has_version(service, lane) {
            lane
        } else {
            Lane::BASE
        }
    }

    /// The version label of the deployment serving `service` in `lane` (after fallback).
    pub fn serving_version(&self, service: &str, lane: Lane) -> Option<&str> {
        match self.serving_lane(service, lane) {
            l if l.is_base() => self.service(service).map(|s| s.version.as_str()),
            l => self.lane(l).map(LaneDef::version),
        }
    }

    /// The data namespaces of `lane`. Base (and unconfigured lanes) get the base names.
    pub fn data_names(&self, lane: Lane) -> DataNames {
        let Some(def) = self.lane(lane) else {
            return DataNames {
                redis_prefix: String::new(),
                pg_schema: None,
                kafka_group_suffix: String::new(),
            };
        };
        let o = def.data.clone().unwrap_or_default();
        let render = |t: &str, name: &str| t.replace("{lane}", name);
        let pg_name = lane.as_str().replace('-', "_");
        DataNames {
            redis_prefix: o
                .redis_prefix
                .unwrap_or_else(|| render(&self.data.redis_prefix, lane.as_str())),
            pg_schema: Some(
                o.pg_schema
                    .unwrap_or_else(|| render(&self.data.pg_schema, &pg_name)),
            ),
            kafka_group_suffix: o
                .kafka_group_suffix
                .unwrap_or_else(|| render(&self.data.kafka_group_suffix, lane.as_str())),
        }
    }

    /// Checks everything serde cannot: references, uniqueness, rendered names.
    /// Returns the path of the first bad field and what is wrong with it.
    pub fn validate(&self) -> Result<(), SpecError> {
        let err = |path: String, message: String| Err(SpecError::at(path, message));
        if let Some(v) = self.version
            && v != SPEC_VERSION
        {
            return err(
                "version".into(),
                format!("unsupported version {v}, expected {SPEC_VERSION}"),
            );
        }
        if let Err(e) = self.wire.validate() {
            return err("wire".into(), e.to_string());
        }

        let mut services = BTreeSet::new();
        for (i, s) in self.services.iter().enumerate() {
            if let Err(e) = check_dns_label(&s.name, 63) {
                return err(
                    format!("services[{i}].name"),
                    format!("service name {:?} {e}", s.name),
                );
            }
            if !services.insert(s.name.as_str()) {
                return err(
                    format!("services[{i}].name"),
                    format!("service {:?} is listed twice", s.name),
                );
            }
            if let Err(e) = check_label_value(&s.version) {
                return err(format!("services[{i}].version"), e);
            }
        }

        let mut lanes = BTreeSet::new();
        for (i, lane) in self.lanes.iter().enumerate() {
            if lane.name.is_base() {
                return err(
                    format!("lanes[{i}].name"),
                    "`base` is always present and cannot be declared".into(),
                );
            }
            if !lanes.insert(lane.name) {
                return err(
                    format!("lanes[{i}].name"),
                    format!("lane {:?} is declared twice", lane.name.as_str()),
                );
            }
            if let Err(e) = check_label_value(lane.version()) {
                return err(format!("lanes[{i}].version"), e);
            }
            let mut seen = BTreeSet::new();
            for (j, s) in lane.services.iter().enumerate() {
                let path = format!("lanes[{i}].services[{j}]");
                let Some(service) = self.service(s) else {
                    return err(
                        path,
                        format!("unknown service {s:?} (declare it under `services`)"),
                    );
                };
                if !seen.insert(s.as_str()) {
                    return err(path, format!("service {s:?} is listed twice in this lane"));
                }
                if service.version == lane.version() {
                    return err(
                        format!("lanes[{i}].version"),
                        format!(
                            "version {:?} is also the base version of {s:?}; a lane needs its own",
                            lane.version()
                        ),
                    );
                }
            }
        }

        self.validate_routing()?;
        self.validate_data_names()?;
        self.rule_set()?;
        if let Some(t) = &self.trust.token {
            if !t
                .header
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                || t.header.is_empty()
            {
                return err(
                    "trust.token.header".into(),
                    "must be a lowercase HTTP header name".into(),
                );
            }
            if t.max_ttl_secs == 0 {
                return err("trust.token.max_ttl_secs".into(), "must be positive".into());
            }
            if let Some(k) = &t.key
                && k.len() < crate::trust::MIN_KEY_LEN
            {
                return err(
                    "trust.token.key".into(),
                    format!("must be at least {} bytes", crate::trust::MIN_KEY_LEN),
                );
            }
        }
        Ok(())
    }

    fn validate_routing(&self) -> Result<(), SpecError> {
        let err = |path: String, message: String| Err(SpecError::at(path, message));
        for (i, s) in self.services.iter().enumerate() {
            if s.port == 0 {
                return err(format!("services[{i}].port"), "must be 1-65535".into());
            }
            let r = &s.routing;
            let p = |f: &str| format!("services[{i}].routing.{f}");
            let with_version = |lane: Lane, path: String| {
                if lane.is_base() || self.has_version(&s.name, lane) {
                    Ok(())
                } else if self.lane(lane).is_none() {
                    err(path, format!("unknown lane {:?}", lane.as_str()))
                } else {
                    err(
                        path,
                        format!("service {:?} has no version in lane {lane}", s.name),
                    )
                }
            };
            if r.canary.is_some() && r.blue_green.is_some() {
                return err(
                    p("blue_green"),
                    "use either `canary` or `blue_green`, not both".into(),
                );
            }
            if let Some(c) = &r.canary {
                if c.lane.is_base() {
                    return err(p("canary.lane"), "a canary goes to a lane, not base".into());
                }
                with_version(c.lane, p("canary.lane"))?;
                if c.weight > 100 {
                    return err(
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
                    return err(p(&format!("content[{j}].match")), e);
                }
                crate::coloring::RuleSet::compile(
                    &[RuleSpec {
                        name: None,
                        lane: c.lane,
                        condition: c.condition.clone(),
                    }],
                    &self.lane_set(),
                )
                .map_err(|e| {
                    SpecError::at(p(&format!("content[{j}]{}", &e.path[3..])), e.message)
                })?;
            }
            if let Some(m) = &r.mirror {
                if m.lane.is_base() {
                    return err(
                        p("mirror.lane"),
                        "mirror copies go to a lane, not base".into(),
                    );
                }
                with_version(m.lane, p("mirror.lane"))?;
            }
        }
        if let Err(e) = check_dns_label(&self.mesh.namespace, 63) {
            return err(
                "mesh.namespace".into(),
                format!("namespace {:?} {e}", self.mesh.namespace),
            );
        }
        let names_service = |t: &String| t.contains("{service}");
        if !names_service(&self.mesh.image) && !self.mesh.args.iter().any(names_service) {
            return err(
                "mesh.image".into(),
                "the image template (or one of mesh.args) must contain {service}".into(),
            );
        }
        if let Some(g) = &self.mesh.gateway {
            if self.service(&g.service).is_none() {
                return err(
                    "mesh.gateway.service".into(),
                    format!("unknown service {:?}", g.service),
                );
            }
            if g.hosts.is_empty() {
                return err("mesh.gateway.hosts".into(), "list at least one host".into());
            }
            if let Err(e) = check_dns_label(&g.name, 63) {
                return err("mesh.gateway.name".into(), format!("gateway name {e}"));
            }
        }
        Ok(())
    }

    fn validate_data_names(&self) -> Result<(), SpecError> {
        let mut prefixes: Vec<(String, String)> = Vec::new();
        let mut schemas = BTreeSet::new();
        let mut suffixes = BTreeSet::new();
        for (i, def) in self.lanes.iter().enumerate() {
            let names = self.data_names(def.name);
            // Point at the override when there is one, else at the template.
            let path = |field: &str, overridden: bool| {
                if overridden {
                    format!("lanes[{i}].data.{field}")
                } else {
                    format!("data.{field}")
                }
            };
            let o = def.data.clone().unwrap_or_default();
            let p = &names.redis_prefix;
            let p_path = path("redis_prefix", o.redis_prefix.is_some());
            if p.is_empty()
                || p.bytes().any(|b| {
                    b"{}*?[]\\".contains(&b) || b.is_ascii_whitespace() || b.is_ascii_control()
                })
            {
                return Err(SpecError::at(
                    p_path,
                    format!(
                        "Redis prefix {p:?} for lane {} must be non-empty, without glob characters, braces (hash tags) or spaces",
                        def.name
                    ),
                ));
            }
            if let Some((other, _)) = prefixes
                .iter()
                .find(|(q, _)| q.starts_with(p.as_str()) || p.starts_with(q.as_str()))
            {
                return Err(SpecError::at(
                    p_path,
                    format!(
                        "Redis prefix {p:?} for lane {} overlaps prefix {other:?} of another lane",
                        def.name
                    ),
                ));
            }
            prefixes.push((p.clone(), def.name.to_string()));

            let s = names.pg_schema.unwrap_or_default();
            let s_path = path("pg_schema", o.pg_schema.is_some());
            if !is_sql_identifier(&s)
                || s == "public"
                || s.starts_with("pg_")
                || s == "information_schema"
            {
                return Err(SpecError::at(
                    s_path,
                    format!(
                        "schema {s:?} for lane {} must match [a-z_][a-z0-9_]{{0,62}} and not be public, information_schema or pg_*",
                        def.name
                    ),
                ));
            }
            if !schemas.insert(s.clone()) {
                return Err(SpecError::at(
                    s_path,
                    format!("schema {s:?} is used by two lanes"),
                ));
            }

            let k = names.kafka_group_suffix;
            let k_path = path("kafka_group_suffix", o.kafka_group_suffix.is_some());
            if k.is_empty()
                || k.len() > 100
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(SpecError::at(
                    k_path,
                    format!(
                        "Kafka group suffix {k:?} for lane {} must be 1-100 of [A-Za-z0-9._-]",
                        def.name
                    ),
                ));
            }
            if !suffixes.insert(k.clone()) {
                return Err(SpecError::at(
                    k_path,
                    format!("Kafka group suffix {k:?} is used by two lanes"),
                ));
            }
        }
        Ok(())
    }
}

/// Why a condition cannot be expressed as an Istio route match, if it cannot.
fn mesh_matchable(m: &MatchSpec) -> Option<String> {
    if m.sticky.is_some() || m.random.is_some() {
        return Some(
            "sticky and random conditions cannot be expressed in Istio routes; use `canary` weights or edge coloring".into(),
        );
    }
    m.all
        .as_ref()
        .and_then(|all| all.iter().find_map(mesh_matchable))
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

fn check_dns_label(s: &str, max: usize) -> Result<(), String> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-';
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be a DNS label: 1-{max} of a-z, 0-9, '-', starting with a letter"
        ))
    }
}

fn check_label_value(s: &str) -> Result<(), String> {
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
        Err(format!(
            "version {s:?} must be a Kubernetes label value: 1-63 of [A-Za-z0-9._-], alphanumeric at both ends"
        ))
    }
}
