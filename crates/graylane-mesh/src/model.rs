//! The subset of the Istio and Kubernetes resource schemas graylane generates and reads back.
//!
//! Field names and nesting follow the upstream schemas (`networking.istio.io/v1`, `apps/v1`,
//! `v1`); the tests check every generated document against the upstream typed structs. Field
//! order here is output order, so generated YAML is stable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Labels and selectors.
pub type Labels = BTreeMap<String, String>;

/// `metadata`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
}

/// Istio `VirtualService`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualService {
    /// `networking.istio.io/v1`.
    pub api_version: String,
    /// `VirtualService`.
    pub kind: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: VirtualServiceSpec,
}

/// `VirtualService.spec`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    /// Hosts the routes apply to.
    pub hosts: Vec<String>,
    /// Gateways (absent: the mesh).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// HTTP routes, first match wins.
    pub http: Vec<HttpRoute>,
}

/// `HTTPRoute`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    /// Route name.
    pub name: String,
    /// Match conditions: any entry may match; within an entry, all conditions must hold.
    #[serde(rename = "match", default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HttpMatch>,
    /// Weighted destinations.
    pub route: Vec<RouteDestination>,
    /// Header operations for the whole route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
    /// Where a copy of each request goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Destination>,
    /// Which share of requests is mirrored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_percentage: Option<Percentage>,
}

/// `HTTPMatchRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatch {
    /// Header conditions (lowercase names).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, StringMatch>,
    /// Path condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<StringMatch>,
    /// Query parameter conditions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query_params: BTreeMap<String, StringMatch>,
}

/// `StringMatch`: exactly one of the three.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StringMatch {
    /// Equal to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// Starts with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// RE2 full match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// `HTTPRouteDestination`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteDestination {
    /// Destination.
    pub destination: Destination,
    /// Weight (percent); all of a route's weights sum to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

/// `Destination`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// Service host.
    pub host: String,
    /// Subset of the host's `DestinationRule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    /// Port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
}

/// `PortSelector`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PortSelector {
    /// Port number.
    pub number: u32,
}

/// `Headers`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Headers {
    /// Operations on the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<HeaderOperations>,
}

/// `HeaderOperations`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HeaderOperations {
    /// Headers to set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// Headers to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// `Percent`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Percentage {
    /// 0 to 100.
    pub value: f64,
}

/// Istio `DestinationRule`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRule {
    /// `networking.istio.io/v1`.
    pub api_version: String,
    /// `DestinationRule`.
    pub kind: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: DestinationRuleSpec,
}

/// `DestinationRule.spec`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DestinationRuleSpec {
    /// The service host.
    pub host: String,
    /// Named subsets.
    pub subsets: Vec<Subset>,
}

/// `Subset`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subset {
    /// Subset name.
    pub name: String,
    /// Pod labels the subset selects.
    pub labels: Labels,
}

/// Istio `Gateway`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    /// `networking.istio.io/v1`.
    pub api_version: String,
    /// `Gateway`.
    pub kind: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: GatewaySpec,
}

/// `Gateway.spec`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GatewaySpec {
    /// Which gateway pods.
    pub selector: Labels,
    /// Listeners.
    pub servers: Vec<Server>,
}

/// `Server`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Server {
    /// Port.
    pub port: ServerPort,
    /// Host names.
    pub hosts: Vec<String>,
}

/// `Port`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerPort {
    /// Number.
    pub number: u32,
    /// Name.
    pub name: String,
    /// `HTTP`.
    pub protocol: String,
}

/// Kubernetes `Service`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// `v1`.
    pub api_version: String,
    /// `Service`.
    pub kind: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: ServiceSpec,
}

/// `Service.spec`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// Pod selector.
    pub selector: Labels,
    /// Ports.
    pub ports: Vec<ServicePort>,
}

/// `ServicePort`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Name (`http` / `grpc`: Istio's protocol selection).
    pub name: String,
    /// Port.
    pub port: u32,
    /// Container port.
    pub target_port: u32,
}

/// Kubernetes `Deployment`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// `apps/v1`.
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: DeploymentSpec,
}

/// `Deployment.spec`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentSpec {
    /// Replicas.
    pub replicas: i32,
    /// Selector.
    pub selector: LabelSelector,
    /// Pod template.
    pub template: PodTemplate,
}

/// `LabelSelector`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels to match.
    pub match_labels: Labels,
}

/// `PodTemplateSpec`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodTemplate {
    /// Pod metadata (labels only).
    pub metadata: PodMeta,
    /// Pod spec.
    pub spec: PodSpec,
}

/// Pod template metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodMeta {
    /// Pod labels.
    pub labels: Labels,
}

/// `PodSpec`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodSpec {
    /// Containers.
    pub containers: Vec<Container>,
}

/// `Container`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// Name.
    pub name: String,
    /// Image.
    pub image: String,
    /// Arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Ports.
    pub ports: Vec<ContainerPort>,
    /// Environment.
    pub env: Vec<EnvVar>,
}

/// `ContainerPort`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    /// Name.
    pub name: String,
    /// Port.
    pub container_port: u32,
}

/// `EnvVar`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvVar {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// Any document graylane generates.
#[derive(Clone, Debug, PartialEq)]
pub enum Resource {
    /// Istio `VirtualService`.
    VirtualService(VirtualService),
    /// Istio `DestinationRule`.
    DestinationRule(DestinationRule),
    /// Istio `Gateway`.
    Gateway(Gateway),
    /// Kubernetes `Service`.
    Service(Service),
    /// Kubernetes `Deployment`.
    Deployment(Deployment),
}

impl Resource {
    /// The resource's `kind`.
    pub fn kind(&self) -> &str {
        match self {
            Resource::VirtualService(r) => &r.kind,
            Resource::DestinationRule(r) => &r.kind,
            Resource::Gateway(r) => &r.kind,
            Resource::Service(r) => &r.kind,
            Resource::Deployment(r) => &r.kind,
        }
    }

    /// The resource's name.
    pub fn name(&self) -> &str {
        match self {
            Resource::VirtualService(r) => &r.metadata.name,
            Resource::DestinationRule(r) => &r.metadata.name,
            Resource::Gateway(r) => &r.metadata.name,
            Resource::Service(r) => &r.metadata.name,
            Resource::Deployment(r) => &r.metadata.name,
        }
    }

    fn to_yaml(&self) -> Result<String, serde_yaml_ng::Error> {
        match self {
            Resource::VirtualService(r) => serde_yaml_ng::to_string(r),
            Resource::DestinationRule(r) => serde_yaml_ng::to_string(r),
            Resource::Gateway(r) => serde_yaml_ng::to_string(r),
            Resource::Service(r) => serde_yaml_ng::to_string(r),
            Resource::Deployment(r) => serde_yaml_ng::to_string(r),
        }
    }
}

/// Renders documents as one multi-document YAML stream.
pub fn to_yaml(resources: &[Resource]) -> Result<String, serde_yaml_ng::Error> {
    let mut out = String::new();
    for r in resources {
        out.push_str("---\n");
        out.push_str(&r.to_yaml()?);
    }
    Ok(out)
}

/// Parses a multi-document YAML stream of the kinds above. Unknown kinds and unknown fields are
/// errors, located by document index and field path.
pub fn from_yaml(src: &str) -> Result<Vec<Resource>, String> {
    use serde::Deserialize as _;
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(src).enumerate() {
        let value =
            serde_yaml_ng::Value::deserialize(doc).map_err(|e| format!("document {i}: {e}"))?;
        if value.is_null() {
            continue;
        }
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .ok_or_else(|| format!("document {i}: no `kind`"))?
            .to_owned();
        fn typed<T: serde::de::DeserializeOwned>(
            i: usize,
            v: serde_yaml_ng::Value,
        ) -> Result<T, String> {
            let mut unknown = Vec::new();
            let t: T = serde_ignored::deserialize(v, |path| unknown.push(path.to_string()))
                .map_err(|e| format!("document {i}: {e}"))?;
            match unknown.first() {
                Some(path) => Err(format!("document {i}: unknown field `{path}`")),
                None => Ok(t),
            }
        }
        out.push(match kind.as_str() {
            "VirtualService" => Resource::VirtualService(typed(i, value)?),
            "DestinationRule" => Resource::DestinationRule(typed(i, value)?),
            "Gateway" => Resource::Gateway(typed(i, value)?),
            "Service" => Resource::Service(typed(i, value)?),
            "Deployment" => Resource::Deployment(typed(i, value)?),
            other => return Err(format!("document {i}: unsupported kind {other:?}")),
        });
    }
    Ok(out)
}
