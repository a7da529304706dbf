//! Lifetime of the simulated VolumeSnapshotContents (driver `archivist.dev/local`).
//!
//! Each such content carries the finalizer [`FINALIZER`]. When its bound VolumeSnapshot is gone,
//! a content with deletionPolicy Delete is deleted; Retain keeps it. When a content with
//! deletionPolicy Delete is deleted, its data directory (`<state-dir>/snapshots/<name>`) goes too,
//! once no shallow volume (a PV annotated [`BACKING_SNAPSHOT`]) reads it: until then the content
//! keeps its finalizer, as ceph-csi keeps a snapshot that backs shallow volumes.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::PersistentVolume;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt as _};
use serde_json::json;

use super::reconcile::ReconcileError;
use super::snapshots::{content_name_for, DRIVER};
use super::storage::BACKING_SNAPSHOT;
use super::volume_dirs::{remove_dir, snapshot_dir};
use super::SimContext;
use crate::snapshot_api::{DeletionPolicy, VolumeSnapshot, VolumeSnapshotContent};

/// Finalizer that keeps a content until its data directory has been handled.
pub const FINALIZER: &str = "sim.archivist.dev/snapshot-data";

/// The content controller; it is also triggered when a VolumeSnapshot changes or goes away.
pub fn controller(client: &kube::Client) -> Controller<VolumeSnapshotContent> {
    let wc = || watcher::Config::default().any_semantic();
    Controller::new(Api::<VolumeSnapshotContent>::all(client.clone()), wc()).watches(
        Api::<VolumeSnapshot>::all(client.clone()),
        wc(),
        |snapshot| {
            let name = snapshot
                .status
                .as_ref()
                .and_then(|s| s.bound_volume_snapshot_content_name.clone())
                .or_else(|| snapshot.uid().map(|uid| content_name_for(&uid)));
            name.map(|name| ObjectRef::new(&name))
        },
    )
}

/// Reconciles one VolumeSnapshotContent.
pub async fn reconcile(
    content: Arc<VolumeSnapshotContent>,
    ctx: Arc<SimContext>,
) -> Result<Action, ReconcileError> {
    if content.spec.driver != DRIVER {
        return Ok(Action::await_change());
    }
    let has_finalizer = content.finalizers().iter().any(|f| f == FINALIZER);
    if content.metadata.deletion_timestamp.is_some() {
        if has_finalizer {
            if let Some(pv) = shallow_volume_of(&ctx, &content.name_any()).await? {
                tracing::info!(content = content.name_any(), pv, "deletion waits: a shallow volume reads this snapshot's data");
                return Ok(Action::requeue(SHALLOW_VOLUME_POLL));
            }
            if content.spec.deletion_policy == DeletionPolicy::Delete {
                remove_dir(&snapshot_dir(&ctx.args.state_dir, &content.name_any())).await?;
                tracing::info!(content = content.name_any(), "deleted the snapshot data");
            }
            let others: Vec<&String> = content
                .finalizers()
                .iter()
                .filter(|f| *f != FINALIZER)
                .collect();
            set_finalizers(&ctx, &content, &others).await?;
        }
        return Ok(Action::await_change());
    }
    if !has_finalizer {
        let mut all: Vec<&String> = content.finalizers().iter().collect();
        let ours = FINALIZER.to_owned();
        all.push(&ours);
        set_finalizers(&ctx, &content, &all).await?;
    }
    delete_if_orphaned(&ctx, &content).await
}

/// How often a content whose deletion waits for a shallow volume is looked at again.
const SHALLOW_VOLUME_POLL: Duration = Duration::from_secs(2);

/// A PV that is a shallow volume of content `name` (its data, [`BACKING_SNAPSHOT`]), if any.
async fn shallow_volume_of(ctx: &SimContext, name: &str) -> anyhow::Result<Option<String>> {
    let pvs = Api::<PersistentVolume>::all(ctx.client.clone())
        .list(&Default::default())
        .await
        .context("failed to list PersistentVolumes")?;
    Ok(pvs
        .items
        .into_iter()
        .find(|pv| pv.annotations().get(BACKING_SNAPSHOT).map(String::as_str) == Some(name))
        .map(|pv| pv.name_any()))
}

/// Sets `metadata.finalizers` (a merge patch guarded by the resourceVersion it was read at;
/// JSON patches with `test` are rejected by the 1.20 API server).
async fn set_finalizers(
    ctx: &SimContext,
    content: &VolumeSnapshotContent,
    finalizers: &[&String],
) -> anyhow::Result<()> {
    let name = content.name_any();
    let patch = json!({ "metadata": { "finalizers": finalizers, "resourceVersion": content.resource_version() } });
    Api::<VolumeSnapshotContent>::all(ctx.client.clone())
        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .with_context(|| {
            format!("failed to update the finalizers of VolumeSnapshotContent {name}")
        })?;
    Ok(())
}

/// Deletes a content with deletionPolicy Delete whose VolumeSnapshot no longer exists.
async fn delete_if_orphaned(
    ctx: &SimContext,
    content: &VolumeSnapshotContent,
) -> Result<Action, ReconcileError> {
    if content.spec.deletion_policy != DeletionPolicy::Delete {
        return Ok(Action::await_change());
    }
    let reference = &content.spec.volume_snapshot_ref;
    let (Some(namespace), Some(snapshot_name)) =
        (reference.namespace.as_deref(), reference.name.as_deref())
    else {
        return Ok(Action::await_change());
    };
    let snapshot = Api::<VolumeSnapshot>::namespaced(ctx.client.clone(), namespace)
        .get_opt(snapshot_name)
        .await?;
    let bound = snapshot.is_some_and(|s| reference.uid.is_none() || s.uid() == reference.uid);
    if bound {
        return Ok(Action::await_change());
    }
    let name = content.name_any();
    match Api::<VolumeSnapshotContent>::all(ctx.client.clone())
        .delete(&name, &DeleteParams::default())
        .await
    {
        Ok(_) => {
            tracing::info!(content = %name, "the VolumeSnapshot is gone; deleting (deletionPolicy Delete)")
        }
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(err) => {
            return Err(anyhow::Error::new(err)
                .context(format!("failed to delete VolumeSnapshotContent {name}"))
                .into())
        }
    }
    Ok(Action::await_change())
}
