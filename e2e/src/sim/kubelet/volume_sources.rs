//! What a pod's volumes and environment refer to in the API: the config maps and secrets it
//! names, and the host directories of its claims' PersistentVolumes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use kube::api::Api;
use kube::{Client, ResourceExt as _};

use super::env::Sources;
use super::volumes::{HostVolume, VolumeError};

/// Names of the config maps and secrets the pod refers to (env, envFrom, volumes).
pub fn referenced_sources(pod: &Pod) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut cms, mut secrets) = (BTreeSet::new(), BTreeSet::new());
    let spec = pod.spec.as_ref();
    let containers = spec.iter().flat_map(|s| {
        s.init_containers
            .iter()
            .flatten()
            .chain(s.containers.iter())
    });
    for c in containers {
        for from in c.env_from.iter().flatten() {
            cms.extend(from.config_map_ref.as_ref().map(|r| r.name.clone()));
            secrets.extend(from.secret_ref.as_ref().map(|r| r.name.clone()));
        }
        for var in c.env.iter().flatten().filter_map(|v| v.value_from.as_ref()) {
            cms.extend(var.config_map_key_ref.as_ref().map(|r| r.name.clone()));
            secrets.extend(var.secret_key_ref.as_ref().map(|r| r.name.clone()));
        }
    }
    for v in spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        cms.extend(v.config_map.as_ref().map(|c| c.name.clone()));
        secrets.extend(v.secret.as_ref().and_then(|s| s.secret_name.clone()));
        for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            cms.extend(source.config_map.as_ref().map(|c| c.name.clone()));
            secrets.extend(source.secret.as_ref().map(|s| s.name.clone()));
        }
    }
    (cms, secrets)
}

/// Fetches every config map and secret the pod refers to (missing ones are left out).
pub async fn fetch_sources(client: &Client, pod: &Pod) -> anyhow::Result<Sources> {
    let namespace = pod.namespace().unwrap_or_default();
    let (cm_names, secret_names) = referenced_sources(pod);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let mut sources = Sources::default();
    for name in cm_names {
        if let Some(cm) = cms
            .get_opt(&name)
            .await
            .with_context(|| format!("failed to read configmap {namespace}/{name}"))?
        {
            sources.config_maps.insert(name, cm);
        }
    }
    for name in secret_names {
        if let Some(s) = secrets
            .get_opt(&name)
            .await
            .with_context(|| format!("failed to read secret {namespace}/{name}"))?
        {
            sources.secrets.insert(name, s);
        }
    }
    Ok(sources)
}

/// The host directories of the pod's claims, by claim name, read-only when the PV's only access
/// mode is `ReadOnlyMany` (as a CSI driver publishes a `MULTI_NODE_READER_ONLY` volume); a
/// claim that is not Bound to a PV with `spec.hostPath` yet is an error
/// ([`VolumeError::ClaimNotReady`]).
pub async fn claim_paths(
    client: &Client,
    pod: &Pod,
) -> Result<BTreeMap<String, HostVolume>, VolumeError> {
    let namespace = pod.namespace().unwrap_or_default();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let mut paths = BTreeMap::new();
    let volumes = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
    for claim_name in volumes
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.clone())
    {
        let not_ready = || VolumeError::ClaimNotReady(claim_name.clone());
        let claim = claims
            .get_opt(&claim_name)
            .await
            .context("failed to read claim")?
            .ok_or_else(not_ready)?;
        let bound = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        let pv_name = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .filter(|_| bound)
            .ok_or_else(not_ready)?;
        let pv = pvs
            .get_opt(&pv_name)
            .await
            .context("failed to read volume")?
            .ok_or_else(not_ready)?;
        let spec = pv.spec.unwrap_or_default();
        let read_only = spec.access_modes.as_deref() == Some(&["ReadOnlyMany".to_owned()][..]);
        let path = spec
            .host_path
            .map(|h| PathBuf::from(h.path))
            .ok_or_else(not_ready)?;
        std::fs::create_dir_all(&path)
            .with_context(|| format!("failed to create {}", path.display()))?;
        paths.insert(claim_name, HostVolume { path, read_only });
    }
    Ok(paths)
}
