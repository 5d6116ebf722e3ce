//! The kernel's part of the spec document: lanes, services, data naming, trust, and the
//! top-level [`LaneSpec`] that holds them with the coloring rules ([`super::rules`]) and the
//! mesh settings ([`super::mesh`]).
//!
//! Only types live here, with their serde form and defaults. Unknown fields are refused
//! everywhere (`deny_unknown_fields`): a typo never silently switches a setting off.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::compare::CompareSpec;
use super::mesh::{MeshSpec, Protocol, RoutingSpec};
use super::release::ReleaseSpec;
use super::rules::ColoringSpec;
use crate::lane::Lane;
use crate::trust::{DEFAULT_MAX_TTL, DEFAULT_TOKEN_HEADER, DEFAULT_TOKEN_KEY_ENV};
use crate::wire::config::WireConfig;

/// The spec format version this crate reads.
pub const SPEC_VERSION: u32 = 1;

/// A lane spec. Load it with [`LaneSpec::from_yaml_str`], [`LaneSpec::from_toml_str`] or
/// [`LaneSpec::from_path`], which also validate it; build what runs with
/// [`LaneSpec::compile`].
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
    /// Release plans, one per lane at most (`graylane release`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<ReleaseSpec>,
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
    /// How the service's in-process mirror compares mirrored responses with production's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<CompareSpec>,
}

fn default_base_version() -> String {
    "v1".into()
}

fn default_port() -> u16 {
    8080
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
    /// A mirror lane: the target of Istio mirroring (`routing.mirror`). Envoy's copy carries
    /// no header of graylane's, so the lane's deployments run **pinned**: every request they
    /// receive is taken as a mirror copy on this lane, whatever the wire says, and writes only
    /// this lane's data. No coloring rule or other route may send real traffic to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mirror: bool,
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
    /// The Lua scripts lane code may run (`EVAL`, `EVALSHA` and their `_RO` forms), by the
    /// SHA-1 of their text in hex (what `SCRIPT LOAD` answers). In a lane every other script is
    /// refused: no one can tell from a script's text which keys it touches, so listing one
    /// vouches that it touches only the keys it is passed (which are moved into the lane).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redis_scripts: Vec<String>,
    /// The Redis functions lane code may call (`FCALL`, `FCALL_RO`), by name; the same promise
    /// as [`redis_scripts`](Self::redis_scripts).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redis_functions: Vec<String>,
}

impl Default for DataTemplates {
    fn default() -> Self {
        DataTemplates {
            redis_prefix: "lane:{lane}:".into(),
            pg_schema: "lane_{lane}".into(),
            kafka_group_suffix: ".lane.{lane}".into(),
            redis_scripts: Vec::new(),
            redis_functions: Vec::new(),
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
    /// Keys being rotated out, each verifying (never minting) tokens until its end.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<PreviousKeySpec>,
}

/// A token key being rotated out: where it is, and when it stops verifying.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousKeySpec {
    /// The environment variable holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_env: Option<String>,
    /// An inline key, for local demos only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// When the key stops verifying: an RFC 3339 time in UTC (`2026-12-08T00:00:00Z`). Required,
    /// so that no old key stays alive for ever.
    pub until: String,
}

impl fmt::Debug for PreviousKeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreviousKeySpec")
            .field("key_env", &self.key_env)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("until", &self.until)
            .finish()
    }
}

impl fmt::Debug for TokenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSpec")
            .field("header", &self.header)
            .field("key_env", &self.key_env)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("max_ttl_secs", &self.max_ttl_secs)
            .field("previous", &self.previous)
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
            previous: Vec::new(),
        }
    }
}
