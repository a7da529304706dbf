//! Test helpers for the simulated storage: PVCs, their PVs' host directories, VolumeSnapshots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, TypedLocalObjectReference,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Client};

use super::wait_for;
use crate::snapshot_api::{VolumeSnapshot, VolumeSnapshotSource, VolumeSnapshotSpec};

/// How long a PVC may take to become Bound.
pub const BIND_TIMEOUT: Duration = Duration::from_secs(30);

/// A ReadWriteOnce PVC requesting `size` (default class unless `class` is given).
pub fn pvc(name: &str, size: &str) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(size.to_owned()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// `pvc` with these annotations added.
pub fn with_annotations(
    mut pvc: PersistentVolumeClaim,
    annotations: &[(&str, &str)],
) -> PersistentVolumeClaim {
    let map = pvc.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (key, value) in annotations {
        map.insert((*key).to_owned(), (*value).to_owned());
    }
    pvc
}

/// `pvc` of the StorageClass `class`.
pub fn with_class(mut pvc: PersistentVolumeClaim, class: &str) -> PersistentVolumeClaim {
    if let Some(spec) = pvc.spec.as_mut() {
        spec.storage_class_name = Some(class.to_owned());
    }
    pvc
}

/// `pvc` restored from the VolumeSnapshot `snapshot` (its `dataSource`).
pub fn from_snapshot(mut pvc: PersistentVolumeClaim, snapshot: &str) -> PersistentVolumeClaim {
    if let Some(spec) = pvc.spec.as_mut() {
        spec.data_source = Some(TypedLocalObjectReference {
            api_group: Some(crate::snapshot_api::GROUP.to_owned()),
            kind: "VolumeSnapshot".to_owned(),
            name: snapshot.to_owned(),
        });
    }
    pvc
}

/// Creates `pvc` in `namespace`, waits until it is Bound and returns it with its PV.
pub async fn create_bound(
    client: &Client,
    namespace: &str,
    pvc: &PersistentVolumeClaim,
) -> anyhow::Result<(PersistentVolumeClaim, PersistentVolume)> {
    let api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace);
    let name = pvc.metadata.name.clone().context("PVC without a name")?;
    api.create(&PostParams::default(), pvc)
        .await
        .with_context(|| format!("failed to create PVC {name}"))?;
    wait_bound(client, namespace, &name, BIND_TIMEOUT).await
}

/// Waits until the PVC `name` is Bound; returns it with its PV.
pub async fn wait_bound(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<(PersistentVolumeClaim, PersistentVolume)> {
    let api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace);
    let bound = wait_for(
        &api,
        name,
        timeout,
        &format!("PVC {namespace}/{name} to be Bound"),
        |pvc| {
            pvc.and_then(|p| p.status.as_ref())
                .and_then(|s| s.phase.as_deref())
                == Some("Bound")
        },
    )
    .await?
    .context("PVC vanished")?;
    let pv_name = bound
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .context("Bound PVC without volumeName")?;
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get(&pv_name)
        .await
        .with_context(|| format!("PV {pv_name}"))?;
    Ok((bound, pv))
}

/// The host directory behind a PV of the simulated storage (`spec.hostPath.path`).
pub fn host_dir(pv: &PersistentVolume) -> anyhow::Result<PathBuf> {
    pv.spec
        .as_ref()
        .and_then(|s| s.host_path.as_ref())
        .map(|h| PathBuf::from(&h.path))
        .context("PV without hostPath")
}

/// The cluster's state dir, derived from a PV's host directory (`<state>/volumes/<pv>`).
pub fn state_dir(pv: &PersistentVolume) -> anyhow::Result<PathBuf> {
    let dir = host_dir(pv)?;
    dir.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .context("hostPath too short")
}

/// The directory holding the data of the VolumeSnapshotContent `content` (for assertions).
pub fn snapshot_data_dir(state_dir: &Path, content: &str) -> PathBuf {
    state_dir.join("snapshots").join(content)
}

/// A VolumeSnapshot of the PVC `pvc` (default class unless `class` is given).
pub fn snapshot(name: &str, pvc: &str, class: Option<&str>) -> VolumeSnapshot {
    VolumeSnapshot::new(
        name,
        VolumeSnapshotSpec {
            source: VolumeSnapshotSource {
                persistent_volume_claim_name: Some(pvc.to_owned()),
                volume_snapshot_content_name: None,
            },
            volume_snapshot_class_name: class.map(str::to_owned),
        },
    )
}

/// Waits until the VolumeSnapshot `name` has `readyToUse: true`.
pub async fn wait_snapshot_ready(
    api: &Api<VolumeSnapshot>,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<VolumeSnapshot> {
    wait_for(
        api,
        name,
        timeout,
        &format!("VolumeSnapshot {name} to be ready"),
        |s| {
            s.and_then(|s| s.status.as_ref())
                .and_then(|s| s.ready_to_use)
                == Some(true)
        },
    )
    .await?
    .context("VolumeSnapshot vanished")
}
