//! The downward API: pod fields (`fieldRef`) and container resources (`resourceFieldRef`) as
//! strings, for environment variables and downwardAPI volume files.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ObjectFieldSelector, Pod, ResourceFieldSelector};
use kube::ResourceExt as _;

use super::env::ConfigError;

/// The value of a downward-API `fieldRef` (env or downwardAPI volume).
pub fn field_value(
    field: &ObjectFieldSelector,
    pod: &Pod,
    pod_ip: &str,
) -> Result<String, ConfigError> {
    let path = field.field_path.as_str();
    let quoted_key = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix("['").and_then(|r| r.strip_suffix("']")))
            .map(str::to_string)
    };
    let spec = pod.spec.as_ref();
    Ok(match path {
        "metadata.name" => pod.name_any(),
        "metadata.namespace" => pod.namespace().unwrap_or_default(),
        "metadata.uid" => pod.metadata.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(pod.labels()),
        "metadata.annotations" => format_map(pod.annotations()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => crate::sim::node::NODE_IP.to_string(),
        "status.podIP" | "status.podIPs" => pod_ip.to_string(),
        _ => {
            if let Some(key) = quoted_key("metadata.labels") {
                pod.labels().get(&key).cloned().unwrap_or_default()
            } else if let Some(key) = quoted_key("metadata.annotations") {
                pod.annotations().get(&key).cloned().unwrap_or_default()
            } else {
                return Err(ConfigError::UnsupportedField(path.to_string()));
            }
        }
    })
}

/// The value of a `resourceFieldRef`: the container's own request or limit, else the node's
/// capacity for limits and 0 for requests.
pub fn resource_value(
    field: &ResourceFieldSelector,
    container: &Container,
) -> Result<String, ConfigError> {
    let resources = container.resources.as_ref();
    let (map, resource) = match field.resource.split_once('.') {
        Some(("limits", r)) => (resources.and_then(|r| r.limits.as_ref()), r),
        Some(("requests", r)) => (resources.and_then(|r| r.requests.as_ref()), r),
        _ => return Err(ConfigError::UnsupportedField(field.resource.clone())),
    };
    if let Some(quantity) = map.and_then(|m| m.get(resource)) {
        return Ok(quantity.0.clone());
    }
    let is_limit = field.resource.starts_with("limits.");
    Ok(match resource {
        "cpu" if is_limit => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .to_string(),
        _ => "0".to_string(),
    })
}

/// `key="value"` lines, as the downward API formats labels and annotations.
fn format_map(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-0".into()),
                namespace: Some("shop".into()),
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn field_paths() {
        let field = |p: &str| ObjectFieldSelector {
            field_path: p.into(),
            api_version: None,
        };
        assert_eq!(
            field_value(&field("metadata.namespace"), &pod(), "").unwrap(),
            "shop"
        );
        assert_eq!(
            field_value(&field("metadata.labels['app']"), &pod(), "").unwrap(),
            "web"
        );
        assert_eq!(
            field_value(&field("metadata.labels"), &pod(), "").unwrap(),
            "app=\"web\""
        );
        assert!(field_value(&field("spec.bogus"), &pod(), "").is_err());
    }
}
