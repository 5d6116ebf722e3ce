//! Checks generated documents against the upstream typed schemas (feature `validate`): Istio's
//! `networking.istio.io/v1` (crate `kcr_networking_istio_io`) and Kubernetes' (`k8s-openapi`),
//! with unknown fields rejected, so a typo in the generator cannot ship.

use serde::de::DeserializeOwned;

fn typed<T: DeserializeOwned>(doc: serde_yaml_ng::Value, api_version: &str) -> Result<(), String> {
    // The CRD types leave `apiVersion` and `kind` to their derive and ignore them when reading:
    // check the version here, and do not count the two as unknown.
    let found = doc.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("");
    if found != api_version {
        return Err(format!("apiVersion {found:?}, expected {api_version:?}"));
    }
    let mut unknown = Vec::new();
    let _: T = serde_ignored::deserialize(doc, |path| unknown.push(path.to_string()))
        .map_err(|e| e.to_string())?;
    match unknown.iter().find(|p| *p != "apiVersion" && *p != "kind") {
        Some(path) => Err(format!("unknown field `{path}`")),
        None => Ok(()),
    }
}

const ISTIO: &str = "networking.istio.io/v1";

/// Validates every document of a multi-document YAML stream against the upstream schema of
/// its kind. Returns `(document index, kind, error)` for each failure.
pub fn validate_upstream(src: &str) -> Vec<(usize, String, String)> {
    use kcr_networking_istio_io::v1::{destinationrules, gateways, virtualservices};
    use serde::Deserialize;
    let mut failures = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(src).enumerate() {
        let value = match serde_yaml_ng::Value::deserialize(doc) {
            Ok(v) if v.is_null() => continue,
            Ok(v) => v,
            Err(e) => {
                failures.push((i, String::new(), e.to_string()));
                continue;
            }
        };
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("")
            .to_owned();
        let result = match kind.as_str() {
            "VirtualService" => typed::<virtualservices::VirtualService>(value, ISTIO),
            "DestinationRule" => typed::<destinationrules::DestinationRule>(value, ISTIO),
            "Gateway" => typed::<gateways::Gateway>(value, ISTIO),
            "Service" => typed::<k8s_openapi::api::core::v1::Service>(value, "v1"),
            "Deployment" => typed::<k8s_openapi::api::apps::v1::Deployment>(value, "apps/v1"),
            other => Err(format!("unsupported kind {other:?}")),
        };
        if let Err(e) = result {
            failures.push((i, kind, e));
        }
    }
    failures
}
