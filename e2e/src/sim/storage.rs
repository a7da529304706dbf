//! The simulated CSI provisioner `archivist.dev/local`.
//!
//! - Keeps the default StorageClass `archivist-local` (volumeBindingMode Immediate).
//! - For each Pending PVC of a class with this provisioner (or of no class), creates the PV
//!   `pvc-<pvc uid>` with `spec.hostPath.path = <state-dir>/volumes/<pv-name>` (a fresh
//!   directory, or a copy of the data of the VolumeSnapshot / PVC named in `dataSource`), and
//!   pre-binds it (PV `claimRef` + PVC `spec.volumeName`); kube-controller-manager's PV binder
//!   completes the binding (annotations, both phases Bound).
//! - Keeps the StorageClass `archivist-local-shallow` (parameter `backingSnapshot: "true"`, as
//!   ceph-csi's CephFS driver has it): a PVC of that class restored from a VolumeSnapshot with
//!   `accessModes: [ReadOnlyMany]` is a *shallow* read-only volume, the snapshot's own data
//!   directory, provisioned at once with no copy. Its PV carries the annotation
//!   [`BACKING_SNAPSHOT`] (the content's name); the kubelet mounts any `ReadOnlyMany`-only PV
//!   read-only, and a snapshot's data stays while a shallow volume uses it. Any other PVC of
//!   the class is refused with a `ProvisioningFailed` Event, as ceph-csi refuses it.
//! - Reclaim: a Released PV of this provisioner with reclaimPolicy Delete loses its directory and
//!   is deleted (a shallow volume's snapshot data is not its own and stays); with Retain, PV and
//!   directory stay.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeSpec,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, ResourceExt as _};

use super::reconcile::{apply_params, drain, retry_after_error, ReconcileError};
use super::volume_dirs::{create_dir_from, remove_dir, snapshot_dir, volume_dir};
use super::SimContext;
use crate::snapshot_api::{VolumeSnapshot, GROUP as SNAPSHOT_GROUP};

/// Name of the default StorageClass.
pub const STORAGE_CLASS: &str = "archivist-local";
/// Name of the StorageClass of shallow read-only volumes backed by a snapshot.
pub const SHALLOW_STORAGE_CLASS: &str = "archivist-local-shallow";
/// The StorageClass parameter that makes a class's snapshot-restored volumes shallow
/// (ceph-csi's name for it).
pub const BACKING_SNAPSHOT_PARAMETER: &str = "backingSnapshot";
/// Annotation on a shallow volume's PV: the VolumeSnapshotContent whose data it is.
pub const BACKING_SNAPSHOT: &str = "sim.archivist.dev/backing-snapshot";
/// Provisioner (CSI driver) name of the simulated storage.
pub const PROVISIONER: &str = "archivist.dev/local";
/// Annotation the provisioner puts on its PVs (same key as Kubernetes' own provisioners).
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// How often a PVC waiting for its data source (a snapshot not yet ready) is looked at again.
const DATA_SOURCE_POLL: Duration = Duration::from_secs(1);
/// How soon a pre-bound PVC is checked again for the binder having completed the binding.
const BINDING_CHECK: Duration = Duration::from_secs(3);

/// Provisions and reclaims volumes until a watch ends.
pub async fn run(ctx: SimContext) -> anyhow::Result<()> {
    ensure_storage_class(&ctx.client).await?;
    let ctx = Arc::new(ctx);
    let wc = || watcher::Config::default().any_semantic();
    let claims = Controller::new(Api::<PersistentVolumeClaim>::all(ctx.client.clone()), wc()).run(
        reconcile_claim,
        retry_after_error,
        ctx.clone(),
    );
    let volumes = Controller::new(Api::<PersistentVolume>::all(ctx.client.clone()), wc()).run(
        reconcile_volume,
        retry_after_error,
        ctx.clone(),
    );
    tokio::join!(
        drain("pvc-provisioner", claims),
        drain("pv-reclaimer", volumes)
    );
    Err(anyhow!("the storage controllers stopped"))
}

/// Creates or updates the default StorageClass `archivist-local` and the class of shallow
/// volumes `archivist-local-shallow`.
async fn ensure_storage_class(client: &kube::Client) -> anyhow::Result<()> {
    let class = |name: &str, default: bool, parameters: Option<BTreeMap<String, String>>| StorageClass {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            annotations: default.then(|| {
                BTreeMap::from([(
                    "storageclass.kubernetes.io/is-default-class".to_owned(),
                    "true".to_owned(),
                )])
            }),
            ..ObjectMeta::default()
        },
        provisioner: PROVISIONER.to_owned(),
        reclaim_policy: Some("Delete".to_owned()),
        volume_binding_mode: Some("Immediate".to_owned()),
        parameters,
        ..StorageClass::default()
    };
    let shallow = BTreeMap::from([(BACKING_SNAPSHOT_PARAMETER.to_owned(), "true".to_owned())]);
    for class in [
        class(STORAGE_CLASS, true, None),
        class(SHALLOW_STORAGE_CLASS, false, Some(shallow)),
    ] {
        let name = class.metadata.name.clone().unwrap_or_default();
        Api::<StorageClass>::all(client.clone())
            .patch(&name, &apply_params(), &Patch::Apply(&class))
            .await
            .with_context(|| format!("failed to apply StorageClass {name}"))?;
    }
    Ok(())
}

/// Whether volumes of `class` restored from a snapshot are shallow (`backingSnapshot: "true"`).
fn is_shallow(class: &StorageClass) -> bool {
    class
        .parameters
        .as_ref()
        .and_then(|p| p.get(BACKING_SNAPSHOT_PARAMETER))
        .is_some_and(|v| v == "true")
}

/// Why a PVC of a shallow class cannot be provisioned, if it cannot: it must be restored from a
/// VolumeSnapshot and ask for `ReadOnlyMany` only (ceph-csi's rules for `backingSnapshot`).
pub fn shallow_claim_problem(spec: &k8s_openapi::api::core::v1::PersistentVolumeClaimSpec) -> Option<String> {
    let from_snapshot = spec
        .data_source
        .as_ref()
        .is_some_and(|s| s.kind == "VolumeSnapshot" && s.api_group.as_deref() == Some(SNAPSHOT_GROUP));
    if !from_snapshot {
        return Some("a shallow volume (backingSnapshot) must be restored from a VolumeSnapshot".into());
    }
    let modes = spec.access_modes.clone().unwrap_or_default();
    if modes != ["ReadOnlyMany"] {
        return Some(format!(
            "a shallow volume (backingSnapshot) is read-only: accessModes must be [ReadOnlyMany], not {modes:?}"
        ));
    }
    None
}

/// Publishes the Warning Event `ProvisioningFailed` on `pvc` (as the CSI external-provisioner
/// does); a failure to publish is only logged.
async fn provisioning_failed(client: &kube::Client, pvc: &PersistentVolumeClaim, problem: &str) {
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    use kube::Resource as _;
    let reporter = Reporter { controller: PROVISIONER.to_owned(), instance: None };
    let event = Event {
        type_: EventType::Warning,
        reason: "ProvisioningFailed".into(),
        note: Some(problem.to_owned()),
        action: "Provisioning".into(),
        secondary: None,
    };
    if let Err(err) = Recorder::new(client.clone(), reporter).publish(&event, &pvc.object_ref(&())).await {
        tracing::warn!(pvc = pvc.name_any(), "failed to publish ProvisioningFailed: {err}");
    }
}

/// Name of the PV provisioned for a PVC.
pub fn pv_name_for(claim_uid: &str) -> String {
    format!("pvc-{claim_uid}")
}

async fn reconcile_claim(
    pvc: Arc<PersistentVolumeClaim>,
    ctx: Arc<SimContext>,
) -> Result<Action, ReconcileError> {
    let (Some(namespace), Some(uid), Some(spec)) = (pvc.namespace(), pvc.uid(), pvc.spec.as_ref())
    else {
        return Ok(Action::await_change());
    };
    let name = pvc.name_any();
    let phase = pvc.status.as_ref().and_then(|s| s.phase.as_deref());
    if pvc.metadata.deletion_timestamp.is_some() || matches!(phase, Some("Bound" | "Lost")) {
        return Ok(Action::await_change());
    }
    let class_name = match spec.storage_class_name.as_deref() {
        Some("") => return Ok(Action::await_change()), // explicitly no class: static binding only
        Some(class) => class.to_owned(),
        None => STORAGE_CLASS.to_owned(),
    };
    let Some(class) = Api::<StorageClass>::all(ctx.client.clone())
        .get_opt(&class_name)
        .await?
    else {
        return Ok(Action::await_change());
    };
    if class.provisioner != PROVISIONER {
        return Ok(Action::await_change());
    }
    let shallow = is_shallow(&class);
    if shallow {
        if let Some(problem) = shallow_claim_problem(spec) {
            tracing::warn!(pvc = %format_args!("{namespace}/{name}"), "not provisioned: {problem}");
            provisioning_failed(&ctx.client, &pvc, &problem).await;
            return Ok(Action::await_change());
        }
    }
    let pv_name = pv_name_for(&uid);
    match spec.volume_name.as_deref() {
        Some(volume) if volume == pv_name => {
            // Pre-bound by us; the binder completes it. Look again in case it did not.
            return Ok(Action::requeue(BINDING_CHECK));
        }
        Some(volume) if !volume.is_empty() => return Ok(Action::await_change()), // someone else's PV
        _ => {}
    }

    let source = match data_source_dir(&pvc, &namespace, &ctx).await? {
        DataSource::Ready(dir) => dir,
        DataSource::Waiting(why) => {
            tracing::debug!(pvc = %format_args!("{namespace}/{name}"), "waiting: {why}");
            return Ok(Action::requeue(DATA_SOURCE_POLL));
        }
    };
    let (dir, backing) = match (shallow, source) {
        // The snapshot's own data: nothing to copy.
        (true, Some(snapshot)) => {
            let content = snapshot.file_name().map(|n| n.to_string_lossy().into_owned());
            (snapshot, content)
        }
        (_, source) => {
            let dir = volume_dir(&ctx.args.state_dir, &pv_name);
            create_dir_from(source.as_deref(), &dir)
                .await
                .with_context(|| {
                    format!("failed to prepare the volume directory of PVC {namespace}/{name}")
                })?;
            (dir, None)
        }
    };
    let mut annotations = BTreeMap::from([(PROVISIONED_BY.to_owned(), PROVISIONER.to_owned())]);
    if let Some(content) = backing {
        annotations.insert(BACKING_SNAPSHOT.to_owned(), content);
    }

    let capacity = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .cloned()
        .with_context(|| format!("PVC {namespace}/{name} requests no storage"))?;
    let pv = PersistentVolume {
        metadata: ObjectMeta {
            name: Some(pv_name.clone()),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeSpec {
            access_modes: spec.access_modes.clone(),
            capacity: Some(BTreeMap::from([("storage".to_owned(), capacity)])),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("PersistentVolumeClaim".to_owned()),
                namespace: Some(namespace.clone()),
                name: Some(name.clone()),
                uid: Some(uid.clone()),
                resource_version: pvc.resource_version(),
                ..ObjectReference::default()
            }),
            host_path: Some(HostPathVolumeSource {
                path: dir.to_string_lossy().into_owned(),
                type_: Some("Directory".to_owned()),
            }),
            persistent_volume_reclaim_policy: Some(
                class
                    .reclaim_policy
                    .clone()
                    .unwrap_or_else(|| "Delete".to_owned()),
            ),
            storage_class_name: Some(class_name),
            volume_mode: spec.volume_mode.clone(),
            mount_options: class.mount_options.clone(),
            ..PersistentVolumeSpec::default()
        }),
        ..PersistentVolume::default()
    };
    let pvs = Api::<PersistentVolume>::all(ctx.client.clone());
    match pvs.create(&PostParams::default(), &pv).await {
        Ok(_) => {
            tracing::info!(pvc = %format_args!("{namespace}/{name}"), pv = %pv_name, "provisioned")
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => {
            return Err(anyhow::Error::new(err)
                .context(format!("failed to create PV {pv_name}"))
                .into())
        }
    }
    Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &namespace)
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": { "volumeName": pv_name } })),
        )
        .await
        .with_context(|| format!("failed to set spec.volumeName of PVC {namespace}/{name}"))?;
    Ok(Action::requeue(BINDING_CHECK))
}

/// Where a new volume's data comes from.
enum DataSource {
    /// Start from a copy of this directory, or empty (`None`).
    Ready(Option<PathBuf>),
    /// The source is not ready yet (the reason is logged).
    Waiting(String),
}

/// Resolves `dataSource` (or `dataSourceRef`): a VolumeSnapshot that is ready, or a Bound PVC
/// provisioned here (a clone).
async fn data_source_dir(
    pvc: &PersistentVolumeClaim,
    namespace: &str,
    ctx: &SimContext,
) -> anyhow::Result<DataSource> {
    let Some(spec) = pvc.spec.as_ref() else {
        return Ok(DataSource::Ready(None));
    };
    let source = spec
        .data_source
        .as_ref()
        .map(|s| (s.api_group.clone(), s.kind.clone(), s.name.clone()))
        .or_else(|| {
            spec.data_source_ref
                .as_ref()
                .map(|s| (s.api_group.clone(), s.kind.clone(), s.name.clone()))
        });
    let Some((group, kind, source_name)) = source else {
        return Ok(DataSource::Ready(None));
    };
    match (group.as_deref().unwrap_or(""), kind.as_str()) {
        (SNAPSHOT_GROUP, "VolumeSnapshot") => {
            let snapshots = Api::<VolumeSnapshot>::namespaced(ctx.client.clone(), namespace);
            let Some(snapshot) = snapshots.get_opt(&source_name).await? else {
                return Ok(DataSource::Waiting(format!(
                    "VolumeSnapshot {source_name} does not exist"
                )));
            };
            let status = snapshot.status.unwrap_or_default();
            match (
                status.ready_to_use,
                status.bound_volume_snapshot_content_name,
            ) {
                (Some(true), Some(content)) => {
                    let dir = snapshot_dir(&ctx.args.state_dir, &content);
                    if !tokio::fs::try_exists(&dir).await.unwrap_or(false) {
                        anyhow::bail!(
                            "the data of VolumeSnapshot {namespace}/{source_name} is missing ({})",
                            dir.display()
                        );
                    }
                    Ok(DataSource::Ready(Some(dir)))
                }
                _ => Ok(DataSource::Waiting(format!(
                    "VolumeSnapshot {source_name} is not ready"
                ))),
            }
        }
        ("", "PersistentVolumeClaim") => {
            let claims = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), namespace);
            let Some(source) = claims.get_opt(&source_name).await? else {
                return Ok(DataSource::Waiting(format!(
                    "PVC {source_name} does not exist"
                )));
            };
            match source.spec.and_then(|s| s.volume_name) {
                Some(volume) if !volume.is_empty() => Ok(DataSource::Ready(Some(volume_dir(
                    &ctx.args.state_dir,
                    &volume,
                )))),
                _ => Ok(DataSource::Waiting(format!(
                    "PVC {source_name} is not bound"
                ))),
            }
        }
        (group, kind) => {
            tracing::warn!(
                pvc = pvc.name_any(),
                "unsupported dataSource {group}/{kind}; provisioning an empty volume"
            );
            Ok(DataSource::Ready(None))
        }
    }
}

async fn reconcile_volume(
    pv: Arc<PersistentVolume>,
    ctx: Arc<SimContext>,
) -> Result<Action, ReconcileError> {
    let ours = pv.annotations().get(PROVISIONED_BY).map(String::as_str) == Some(PROVISIONER);
    let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
    let policy = pv
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref());
    if !ours
        || phase != Some("Released")
        || policy != Some("Delete")
        || pv.metadata.deletion_timestamp.is_some()
    {
        return Ok(Action::await_change());
    }
    let name = pv.name_any();
    if !pv.annotations().contains_key(BACKING_SNAPSHOT) {
        remove_dir(&volume_dir(&ctx.args.state_dir, &name)).await?;
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pv.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match Api::<PersistentVolume>::all(ctx.client.clone())
        .delete(&name, &params)
        .await
    {
        Ok(_) => tracing::info!(pv = %name, "reclaimed (Delete)"),
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(err) => {
            return Err(anyhow::Error::new(err)
                .context(format!("failed to delete PV {name}"))
                .into())
        }
    }
    Ok(Action::await_change())
}
