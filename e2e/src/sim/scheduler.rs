//! The simulated scheduler: binds every unscheduled pod to the one node, once all of its
//! PersistentVolumeClaims are Bound (the storage part binds them).

use std::collections::BTreeMap;

use anyhow::Context as _;
use futures::{stream, StreamExt as _};
use k8s_openapi::api::core::v1::{Binding, ObjectReference, PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt as _};
use kube::{Client, ResourceExt as _};

/// Why a pod is not bound yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// The named claim does not exist yet.
    ClaimMissing(String),
    /// The named claim exists but is not Bound to a volume yet.
    ClaimUnbound(String),
}

/// Watches unscheduled pods and claims; binds each pod as soon as it can run.
pub async fn run(client: Client, node_name: String) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::all(client.clone());
    let claims: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let (pod_store, pod_writer) = reflector::store();
    let (claim_store, claim_writer) = reflector::store();
    let pod_events = reflector::reflector(
        pod_writer,
        watcher(pods, watcher::Config::default().fields("spec.nodeName=")),
    )
    .default_backoff()
    .map(|event| {
        event
            .map(|_| ())
            .context("watching unscheduled pods failed")
    })
    .boxed();
    let claim_events =
        reflector::reflector(claim_writer, watcher(claims, watcher::Config::default()))
            .default_backoff()
            .map(|event| {
                event
                    .map(|_| ())
                    .context("watching PersistentVolumeClaims failed")
            })
            .boxed();
    let mut events = stream::select(pod_events, claim_events);
    while let Some(event) = events.next().await {
        if let Err(err) = event {
            tracing::warn!(error = %format!("{err:#}"), "scheduler watch error");
            continue;
        }
        schedule_ready_pods(&client, &node_name, &pod_store, &claim_store).await;
    }
    anyhow::bail!("scheduler watch streams ended")
}

/// Binds every pod in `pods` whose claims are all Bound.
async fn schedule_ready_pods(
    client: &Client,
    node_name: &str,
    pods: &Store<Pod>,
    claims: &Store<PersistentVolumeClaim>,
) {
    let claim_phases: BTreeMap<(String, String), String> = claims
        .state()
        .iter()
        .map(|claim| {
            let phase = claim
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            (
                (claim.namespace().unwrap_or_default(), claim.name_any()),
                phase,
            )
        })
        .collect();
    for pod in pods.state() {
        let unscheduled = pod
            .spec
            .as_ref()
            .is_some_and(|s| s.node_name.as_deref().unwrap_or("").is_empty());
        if !unscheduled || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let namespace = pod.namespace().unwrap_or_default();
        if let Err(wait) = claims_bound(&pod, |claim| {
            claim_phases
                .get(&(namespace.clone(), claim.to_string()))
                .cloned()
        }) {
            tracing::debug!(pod = %pod.name_any(), ?wait, "pod waits for its claims");
            continue;
        }
        if let Err(err) = bind(client, &namespace, &pod.name_any(), node_name).await {
            tracing::warn!(error = %format!("{err:#}"), "binding failed");
        }
    }
}

/// `Ok` when every PersistentVolumeClaim the pod mounts is Bound; `phase_of` looks a claim's
/// phase up by name in the pod's namespace (`None`: the claim does not exist).
pub fn claims_bound(pod: &Pod, phase_of: impl Fn(&str) -> Option<String>) -> Result<(), Wait> {
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
    for claim in volumes
        .into_iter()
        .flatten()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
    {
        match phase_of(&claim.claim_name).as_deref() {
            None => return Err(Wait::ClaimMissing(claim.claim_name.clone())),
            Some("Bound") => {}
            Some(_) => return Err(Wait::ClaimUnbound(claim.claim_name.clone())),
        }
    }
    Ok(())
}

/// Creates the pod's `binding` subresource, which sets `spec.nodeName` and `PodScheduled`.
async fn bind(client: &Client, namespace: &str, pod: &str, node_name: &str) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(pod.to_string()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node_name.to_string()),
            ..Default::default()
        },
    };
    match pods
        .create_subresource::<_, serde_json::Value>(
            "binding",
            pod,
            &PostParams::default(),
            &binding,
        )
        .await
    {
        Ok(_) => {
            tracing::info!(%namespace, %pod, node = %node_name, "pod bound");
            Ok(())
        }
        // Already bound (a racing event) or already gone: nothing to do.
        Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => Ok(()),
        Err(err) => {
            Err(err).with_context(|| format!("failed to bind pod {namespace}/{pod} to {node_name}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, PodSpec, Volume};

    fn pod_with_claims(claims: &[&str]) -> Pod {
        let volumes = claims
            .iter()
            .map(|c| Volume {
                name: format!("v-{c}"),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: c.to_string(),
                    read_only: None,
                }),
                ..Default::default()
            })
            .collect();
        Pod {
            spec: Some(PodSpec {
                volumes: Some(volumes),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn pod_without_claims_is_schedulable() {
        assert_eq!(claims_bound(&Pod::default(), |_| None), Ok(()));
    }

    #[test]
    fn pod_waits_for_missing_and_unbound_claims() {
        let pod = pod_with_claims(&["a", "b"]);
        assert_eq!(
            claims_bound(&pod, |_| None),
            Err(Wait::ClaimMissing("a".into()))
        );
        let phase = |c: &str| Some(if c == "a" { "Bound" } else { "Pending" }.to_string());
        assert_eq!(
            claims_bound(&pod, phase),
            Err(Wait::ClaimUnbound("b".into()))
        );
        assert_eq!(claims_bound(&pod, |_| Some("Bound".into())), Ok(()));
    }
}
