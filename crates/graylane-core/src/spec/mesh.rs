//! The mesh's part of the spec document: how `graylane-mesh` deploys and routes each service
//! in Istio and Kubernetes.
//!
//! Nothing in the kernel reads these settings; they live in the one document so that the
//! manifests and the in-process layers are generated from the same lanes and services. The
//! release strategies of [`RoutingSpec`] act on traffic *without* a lane, inside Envoy; lane
//! traffic always goes to its lane's version.

use serde::{Deserialize, Serialize};

use super::rules::MatchSpec;
use crate::lane::Lane;
use crate::percent::Percent;

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

/// Release strategies for traffic that carries no lane: canary, blue-green, content-based
/// routes and mirroring. At most one of `canary` and `blue_green`; `content` routes are tried
/// first.
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
    /// Whether the route is generated (default true); a rolled-back release turns its lane's
    /// routes off.
    #[serde(
        default = "super::rules::on",
        skip_serializing_if = "super::rules::is_on"
    )]
    pub enabled: bool,
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
