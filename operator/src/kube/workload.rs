//! The archive server workload (StatefulSet or Deployment): observing it and its pods,
//! scaling it down and back up.

use super::labels::{ORIGINAL_REPLICAS, QUIESCED_BY};
use crate::api::{TargetKind, TargetRef};
use crate::plan::backup::WorkloadObs;
use crate::plan::capture::WorkloadShape;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use std::collections::BTreeMap;

/// The target as observed: its shape (for the capture plan), its state (for quiescing) and
/// its pods.
#[derive(Debug, Clone)]
pub struct Target {
    /// Kind, name, claim templates and current replicas.
    pub shape: WorkloadShape,
    /// Replicas, live pods and ready pods.
    pub obs: WorkloadObs,
    /// The pods, by name, with their IPs.
    pub pod_ips: BTreeMap<String, String>,
    /// The workload's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The workload's `metadata.resourceVersion` when read: the precondition of a claim.
    pub resource_version: Option<String>,
}

impl Target {
    /// The `archivist.dev/quiesced-by` annotation, if set.
    pub fn claim_holder(&self) -> Option<&str> {
        self.annotations.get(QUIESCED_BY).map(String::as_str)
    }
}

/// Reads the target workload and its pods; `None` when the workload does not exist.
///
/// This is a fresh read (a GET, never a cache): the claim is written with the returned
/// `resource_version` as its precondition.
pub async fn observe(client: &Client, namespace: &str, target: &TargetRef) -> Result<Option<Target>, kube::Error> {
    let (replicas, selector, claim_templates, annotations, resource_version) = match target.kind {
        TargetKind::StatefulSet => {
            let Some(sts) = Api::<StatefulSet>::namespaced(client.clone(), namespace).get_opt(&target.name).await? else {
                return Ok(None);
            };
            let spec = sts.spec.unwrap_or_default();
            let templates = spec
                .volume_claim_templates
                .unwrap_or_default()
                .into_iter()
                .filter_map(|t| t.metadata.name)
                .collect();
            (spec.replicas.unwrap_or(1), spec.selector, templates, sts.metadata.annotations.unwrap_or_default(), sts.metadata.resource_version)
        }
        TargetKind::Deployment => {
            let Some(deploy) = Api::<Deployment>::namespaced(client.clone(), namespace).get_opt(&target.name).await? else {
                return Ok(None);
            };
            let spec = deploy.spec.unwrap_or_default();
            (spec.replicas.unwrap_or(1), spec.selector, Vec::new(), deploy.metadata.annotations.unwrap_or_default(), deploy.metadata.resource_version)
        }
    };
    let pods = list_pods(client, namespace, &selector).await?;
    let ready_pods = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && is_ready(p))
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let pod_ips = pods
        .iter()
        .filter_map(|p| Some((p.metadata.name.clone()?, p.status.as_ref()?.pod_ip.clone()?)))
        .collect();
    Ok(Some(Target {
        shape: WorkloadShape { kind: target.kind, name: target.name.clone(), claim_templates, replicas },
        obs: WorkloadObs { replicas, live_pods: u32::try_from(pods.len()).unwrap_or(u32::MAX), ready_pods },
        pod_ips,
        annotations,
        resource_version,
    }))
}

fn selector_string(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default().join(",");
        parts.push(match expr.operator.as_str() {
            "In" => format!("{} in ({values})", expr.key),
            "NotIn" => format!("{} notin ({values})", expr.key),
            "Exists" => expr.key.clone(),
            _ => format!("!{}", expr.key),
        });
    }
    parts.join(",")
}

async fn list_pods(client: &Client, namespace: &str, selector: &LabelSelector) -> Result<Vec<Pod>, kube::Error> {
    let selector = selector_string(selector);
    if selector.is_empty() {
        // A workload without a selector selects nothing rather than every pod.
        return Ok(Vec::new());
    }
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await?;
    Ok(pods.items)
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Scales the workload to `replicas` and sets (`Some`) or removes (`None`) the quiesce
/// annotations, in one patch.
pub async fn scale(
    client: &Client,
    namespace: &str,
    target: &TargetRef,
    replicas: i32,
    quiesced_by: Option<&str>,
    original_replicas: Option<i32>,
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({
        "metadata": {"annotations": {
            QUIESCED_BY: quiesced_by,
            ORIGINAL_REPLICAS: original_replicas.map(|r| r.to_string()),
        }},
        "spec": {"replicas": replicas},
    });
    merge_patch(client, namespace, target, &patch).await
}

/// Sets (`Some`) or removes (`None`) the `archivist.dev/quiesced-by` claim without scaling,
/// only if the workload is still at `resource_version` (a conflict, HTTP 409, otherwise): two
/// claimants that read the same version cannot both win.
pub async fn set_claim(
    client: &Client,
    namespace: &str,
    target: &TargetRef,
    holder: Option<&str>,
    resource_version: Option<&str>,
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({"metadata": {"resourceVersion": resource_version, "annotations": {QUIESCED_BY: holder}}});
    merge_patch(client, namespace, target, &patch).await
}

/// Scales the workload back to `replicas` and removes both quiesce annotations, only if the
/// workload is still at `resource_version` (HTTP 409 otherwise).
pub async fn release_stopped(
    client: &Client,
    namespace: &str,
    target: &TargetRef,
    replicas: i32,
    resource_version: Option<&str>,
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": resource_version,
            "annotations": {QUIESCED_BY: null, ORIGINAL_REPLICAS: null},
        },
        "spec": {"replicas": replicas},
    });
    merge_patch(client, namespace, target, &patch).await
}

/// A pod's IP: `Ok(None)` when the pod does not exist, `Ok(Some(None))` when it has no IP.
pub async fn pod_ip(client: &Client, namespace: &str, pod: &str) -> Result<Option<Option<String>>, kube::Error> {
    let found = Api::<Pod>::namespaced(client.clone(), namespace).get_opt(pod).await?;
    Ok(found.map(|p| p.status.and_then(|s| s.pod_ip)))
}

async fn merge_patch(client: &Client, namespace: &str, target: &TargetRef, patch: &serde_json::Value) -> Result<(), kube::Error> {
    let params = PatchParams::default();
    match target.kind {
        TargetKind::StatefulSet => {
            Api::<StatefulSet>::namespaced(client.clone(), namespace).patch(&target.name, &params, &Patch::Merge(patch)).await?;
        }
        TargetKind::Deployment => {
            Api::<Deployment>::namespaced(client.clone(), namespace).patch(&target.name, &params, &Patch::Merge(patch)).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn selectors_render_as_label_queries() {
        let sel = LabelSelector {
            match_labels: Some(BTreeMap::from([("app".to_string(), "mailstore".to_string())])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "b".into()]),
            }]),
        };
        assert_eq!(selector_string(&sel), "app=mailstore,tier in (a,b)");
        assert_eq!(selector_string(&LabelSelector::default()), "");
    }
}
