//! The simulated snapshot controller and CSI snapshotter for `snapshot.storage.k8s.io/v1`.
//!
//! - Keeps the default VolumeSnapshotClass `archivist-local` (driver `archivist.dev/local`,
//!   deletionPolicy Delete).
//! - For each VolumeSnapshot of a PVC (class with this driver, or none): when first seen, creates
//!   the bound VolumeSnapshotContent `snapcontent-<snapshot uid>` (as the CSI snapshot controller
//!   does); after the cut delay, the cut copies the volume's directory to
//!   `<state-dir>/snapshots/<content-name>` and records the cut in the content's status, then
//!   sets the snapshot's `boundVolumeSnapshotContentName`, `creationTime` and `restoreSize` (and
//!   `readyToUse: true` at once when there is no ready delay, else after it). The cut reads only
//!   caches and makes two writes after its delay, so its report follows the delay closely.
//! - Knobs, as annotations on the source PVC: see [`super::snapshot_knobs`].
//! - Deletion: see [`super::snapshot_contents`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use futures::StreamExt as _;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt as _};
use kube::{Api, ResourceExt as _};
use serde_json::json;

use super::quantity::{bytes_quantity, quantity_bytes};
use super::reconcile::{apply_params, drain, now, retry_after_error, ReconcileError};
use super::snapshot_knobs::{after, until, Knobs, FAIL};
use super::storage::PROVISIONER;
use super::volume_dirs::{create_dir_from, snapshot_dir, volume_dir};
use super::SimContext;
use crate::snapshot_api::{
    DeletionPolicy, VolumeSnapshot, VolumeSnapshotClass, VolumeSnapshotContent,
    VolumeSnapshotContentSource, VolumeSnapshotContentSpec, VolumeSnapshotContentStatus,
    VolumeSnapshotError, VolumeSnapshotStatus, IS_DEFAULT_CLASS_ANNOTATION,
};

/// Name of the default VolumeSnapshotClass.
pub const SNAPSHOT_CLASS: &str = "archivist-local";
/// CSI driver name of the simulated snapshots (the same driver as the storage).
pub const DRIVER: &str = PROVISIONER;
/// How often a snapshot whose source PVC is not bound yet is looked at again.
const SOURCE_POLL: Duration = Duration::from_secs(1);

/// Cuts, binds and deletes snapshots until a watch ends.
pub async fn run(ctx: SimContext) -> anyhow::Result<()> {
    ensure_snapshot_class(&ctx.client).await?;
    let ctx = Arc::new(ctx);
    let (classes, classes_feed) = cache(Api::<VolumeSnapshotClass>::all(ctx.client.clone()));
    let (claims, claims_feed) = cache(Api::<PersistentVolumeClaim>::all(ctx.client.clone()));
    let (volumes, volumes_feed) = cache(Api::<PersistentVolume>::all(ctx.client.clone()));
    let (contents, contents_feed) = cache(Api::<VolumeSnapshotContent>::all(ctx.client.clone()));
    let snapshot_ctx = Arc::new(SnapshotCtx {
        sim: ctx.clone(),
        first_seen: Mutex::new(HashMap::new()),
        classes,
        claims,
        volumes,
        contents,
    });
    let wc = || watcher::Config::default().any_semantic();
    let snapshots = Controller::new(Api::<VolumeSnapshot>::all(ctx.client.clone()), wc()).run(
        reconcile_snapshot,
        retry_after_error,
        snapshot_ctx,
    );
    let contents = super::snapshot_contents::controller(&ctx.client).run(
        super::snapshot_contents::reconcile,
        retry_after_error,
        ctx.clone(),
    );
    tokio::join!(
        drain("snapshots", snapshots),
        drain("snapshot-contents", contents),
        classes_feed,
        claims_feed,
        volumes_feed,
        contents_feed,
    );
    Err(anyhow!("the snapshot controllers stopped"))
}

/// A cache of every object of a kind, and the future that keeps it current.
fn cache<K>(api: Api<K>) -> (Store<K>, impl std::future::Future<Output = ()>)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let feed = reflector::reflector(writer, watcher(api, watcher::Config::default().any_semantic()))
        .default_backoff()
        .for_each(|_| futures::future::ready(()));
    (store, feed)
}

/// The object `name` from `store`, or read from the API server when the store does not have it
/// (yet): a cache miss costs a request, never a wrong answer.
async fn cached<K>(store: &Store<K>, api: Api<K>, namespace: Option<&str>, name: &str) -> kube::Result<Option<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let key = ObjectRef::new(name);
    let key = match namespace {
        Some(ns) => key.within(ns),
        None => key,
    };
    match store.get(&key) {
        Some(found) => Ok(Some(found.as_ref().clone())),
        None => api.get_opt(name).await,
    }
}

/// Context of the VolumeSnapshot controller.
struct SnapshotCtx {
    sim: Arc<SimContext>,
    /// When each VolumeSnapshot (by uid) was first seen: the start of its cut delay. More precise
    /// than `metadata.creationTimestamp` (whole seconds); a restarted simulator starts over.
    first_seen: Mutex<HashMap<String, Timestamp>>,
    /// The VolumeSnapshotClasses, PVCs, PVs and VolumeSnapshotContents, read from caches so
    /// that a cut costs only its writes (a real CSI snapshotter works from informers too).
    classes: Store<VolumeSnapshotClass>,
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    contents: Store<VolumeSnapshotContent>,
}

impl SnapshotCtx {
    fn first_seen(&self, uid: &str) -> Timestamp {
        let mut seen = self
            .first_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *seen.entry(uid.to_owned()).or_insert_with(now)
    }

    fn forget(&self, uid: &str) {
        let mut seen = self
            .first_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        seen.remove(uid);
    }
}

/// Creates or updates the default VolumeSnapshotClass `archivist-local`.
async fn ensure_snapshot_class(client: &kube::Client) -> anyhow::Result<()> {
    let mut class = VolumeSnapshotClass::new(SNAPSHOT_CLASS, DRIVER, DeletionPolicy::Delete);
    class.metadata.annotations = Some(BTreeMap::from([(
        IS_DEFAULT_CLASS_ANNOTATION.to_owned(),
        "true".to_owned(),
    )]));
    Api::<VolumeSnapshotClass>::all(client.clone())
        .patch(SNAPSHOT_CLASS, &apply_params(), &Patch::Apply(&class))
        .await
        .with_context(|| format!("failed to apply VolumeSnapshotClass {SNAPSHOT_CLASS}"))?;
    Ok(())
}

/// Name of the VolumeSnapshotContent made for a VolumeSnapshot (upstream's naming).
pub fn content_name_for(snapshot_uid: &str) -> String {
    format!("snapcontent-{snapshot_uid}")
}

async fn reconcile_snapshot(
    snapshot: Arc<VolumeSnapshot>,
    sctx: Arc<SnapshotCtx>,
) -> Result<Action, ReconcileError> {
    let ctx = &sctx.sim;
    let (Some(namespace), Some(uid)) = (snapshot.namespace(), snapshot.uid()) else {
        return Ok(Action::await_change());
    };
    let name = snapshot.name_any();
    let status = snapshot.status.clone().unwrap_or_default();
    if snapshot.metadata.deletion_timestamp.is_some()
        || status.error.is_some()
        || status.ready_to_use == Some(true)
    {
        sctx.forget(&uid);
        return Ok(Action::await_change());
    }
    let first_seen = sctx.first_seen(&uid);
    let Some(pvc_name) = snapshot.spec.source.persistent_volume_claim_name.clone() else {
        return Ok(Action::await_change()); // pre-provisioned snapshots are not simulated
    };
    let class_name = snapshot
        .spec
        .volume_snapshot_class_name
        .clone()
        .unwrap_or_else(|| SNAPSHOT_CLASS.to_owned());
    let classes = Api::<VolumeSnapshotClass>::all(ctx.client.clone());
    let Some(class) = cached(&sctx.classes, classes, None, &class_name).await? else {
        return Ok(Action::await_change());
    };
    if class.driver != DRIVER {
        return Ok(Action::await_change());
    }
    let snapshots = Api::<VolumeSnapshot>::namespaced(ctx.client.clone(), &namespace);
    let id = format!("VolumeSnapshot {namespace}/{name}");

    let claims = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &namespace);
    let Some(pvc) = cached(&sctx.claims, claims, Some(&namespace), &pvc_name).await? else {
        tracing::debug!("{id}: source PVC {pvc_name} does not exist yet");
        return Ok(Action::requeue(SOURCE_POLL));
    };
    let knobs = Knobs::from_annotations(pvc.annotations())
        .with_context(|| format!("PVC {namespace}/{pvc_name}"))?;
    if knobs.fail {
        let error = VolumeSnapshotError {
            message: Some(format!(
                "simulated failure: source PVC {pvc_name} has annotation {FAIL}=true"
            )),
            time: Some(Time(now())),
        };
        patch_snapshot_status(
            &snapshots,
            &name,
            json!({ "readyToUse": false, "error": error }),
        )
        .await?;
        tracing::info!("{id}: failed (simulated)");
        return Ok(Action::await_change());
    }

    let content_name = content_name_for(&uid);
    let contents = Api::<VolumeSnapshotContent>::all(ctx.client.clone());
    let bound = status.bound_volume_snapshot_content_name.as_deref() == Some(content_name.as_str())
        && status.creation_time.is_some();
    let content_status = if bound {
        // Cut and reported: only readiness is left, read from the content (its cut time is
        // exact to the nanosecond; the snapshot's is whole seconds).
        let cut_status = |c: Option<VolumeSnapshotContent>| c.and_then(|c| c.status).filter(|s| s.creation_time.is_some());
        // The cache first; it may not have seen the cut's status yet, then a GET.
        match cut_status(sctx.contents.get(&ObjectRef::new(&content_name)).map(|c| c.as_ref().clone())) {
            Some(status) => status,
            None => cut_status(contents.get_opt(&content_name).await?).unwrap_or_default(),
        }
    } else {
        let Some(pv_name) = pvc
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .filter(|v| !v.is_empty())
        else {
            tracing::debug!("{id}: source PVC {pvc_name} is not bound yet");
            return Ok(Action::requeue(SOURCE_POLL));
        };
        // As the CSI snapshot controller does, the content is made when the snapshot is first
        // seen; the cut delay is the driver's CreateSnapshot call, and only the cut follows it.
        let pv = ensure_content(&sctx, &snapshot, &class, &pv_name, &content_name)
            .await
            .with_context(|| format!("{id}: creating its content failed"))?;
        if let Some(left) = until(after(first_seen, knobs.cut_delay), now()) {
            return Ok(Action::requeue(left));
        }
        cut(&sctx, &pv, &content_name, knobs.ready_delay)
            .await
            .with_context(|| format!("{id}: cut failed"))?
    };

    // Report the cut, and readiness once the ready delay has passed.
    let cut_at = content_status
        .creation_time
        .map(|ns| Timestamp::from_nanosecond(i128::from(ns)))
        .transpose()
        .context("content creationTime out of range")?
        .unwrap_or_else(now);
    let ready_at = after(cut_at, knobs.ready_delay);
    let wait = until(ready_at, now());
    let ready = wait.is_none();
    if content_status.ready_to_use != Some(ready) {
        patch_content_status(&contents, &content_name, json!({ "readyToUse": ready })).await?;
    }
    let restore_size = content_status
        .restore_size
        .and_then(|bytes| u64::try_from(bytes).ok())
        .map(|bytes| Quantity(bytes_quantity(bytes)));
    let wanted = VolumeSnapshotStatus {
        bound_volume_snapshot_content_name: Some(content_name.clone()),
        creation_time: Some(Time(cut_at)),
        ready_to_use: Some(ready),
        restore_size,
        ..status.clone()
    };
    if wanted != status {
        patch_snapshot_status(
            &snapshots,
            &name,
            serde_json::to_value(&wanted).context("serialize status")?,
        )
        .await?;
        if ready {
            tracing::info!("{id}: ready ({content_name})");
        }
    }
    Ok(wait.map_or_else(Action::await_change, Action::requeue))
}

/// Creates the VolumeSnapshotContent bound to `snapshot` unless it exists (one write, once), and
/// returns the source PV (from the cache).
async fn ensure_content(
    sctx: &SnapshotCtx,
    snapshot: &VolumeSnapshot,
    class: &VolumeSnapshotClass,
    pv_name: &str,
    content_name: &str,
) -> anyhow::Result<PersistentVolume> {
    let ctx = &sctx.sim;
    let contents = Api::<VolumeSnapshotContent>::all(ctx.client.clone());
    let pv = cached(&sctx.volumes, Api::<PersistentVolume>::all(ctx.client.clone()), None, pv_name)
        .await?
        .with_context(|| format!("PV {pv_name} does not exist"))?;
    if cached(&sctx.contents, contents.clone(), None, content_name).await?.is_some() {
        return Ok(pv);
    }
    let content = VolumeSnapshotContent {
        metadata: ObjectMeta {
            name: Some(content_name.to_owned()),
            ..ObjectMeta::default()
        },
        spec: VolumeSnapshotContentSpec {
            deletion_policy: class.deletion_policy,
            driver: DRIVER.to_owned(),
            source: VolumeSnapshotContentSource {
                volume_handle: Some(pv_name.to_owned()),
                snapshot_handle: None,
            },
            source_volume_mode: Some(
                pv.spec
                    .as_ref()
                    .and_then(|s| s.volume_mode.clone())
                    .unwrap_or_else(|| "Filesystem".to_owned()),
            ),
            volume_snapshot_class_name: class.metadata.name.clone(),
            volume_snapshot_ref: ObjectReference {
                api_version: Some("snapshot.storage.k8s.io/v1".to_owned()),
                kind: Some("VolumeSnapshot".to_owned()),
                namespace: snapshot.namespace(),
                name: Some(snapshot.name_any()),
                uid: snapshot.uid(),
                resource_version: snapshot.resource_version(),
                ..ObjectReference::default()
            },
        },
        status: None,
    };
    match contents.create(&PostParams::default(), &content).await {
        Ok(_) => Ok(pv),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(pv),
        Err(err) => Err(anyhow::Error::new(err).context(format!("failed to create VolumeSnapshotContent {content_name}"))),
    }
}

/// The cut: copies the volume's directory and records the cut time, size and (with no ready
/// delay) readiness in the content's status: one write and a copy, no read (the caches hold the
/// content). A content whose status holds a cut time was cut already (a simulator restarted
/// after the cut, before reporting it): its status is returned as it is, and the data is not
/// copied again.
async fn cut(
    sctx: &SnapshotCtx,
    pv: &PersistentVolume,
    content_name: &str,
    ready_delay: Duration,
) -> anyhow::Result<VolumeSnapshotContentStatus> {
    let ctx = &sctx.sim;
    let contents = Api::<VolumeSnapshotContent>::all(ctx.client.clone());
    let existing = cached(&sctx.contents, contents.clone(), None, content_name).await?;
    if let Some(status) = existing.as_ref().and_then(|c| c.status.clone()).filter(|s| s.creation_time.is_some()) {
        return Ok(status);
    }
    let cut_at = now();
    let pv_name = pv.name_any();
    let capacity = pv
        .spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .with_context(|| format!("PV {pv_name} has no capacity"))?;
    let restore_size = i64::try_from(quantity_bytes(&capacity.0)?).context("capacity too large")?;
    let source = volume_dir(&ctx.args.state_dir, &pv_name);
    let target = snapshot_dir(&ctx.args.state_dir, content_name);
    create_dir_from(Some(&source), &target).await?;
    let status = VolumeSnapshotContentStatus {
        creation_time: i64::try_from(cut_at.as_nanosecond()).ok(),
        ready_to_use: Some(ready_delay.is_zero()),
        restore_size: Some(restore_size),
        snapshot_handle: Some(content_name.to_owned()),
        ..VolumeSnapshotContentStatus::default()
    };
    let patched = patch_content_status(
        &contents,
        content_name,
        serde_json::to_value(&status).context("serialize status")?,
    )
    .await?;
    tracing::info!(content = content_name, pv = pv_name, "cut");
    Ok(patched.status.unwrap_or(status))
}

async fn patch_snapshot_status(
    api: &Api<VolumeSnapshot>,
    name: &str,
    status: serde_json::Value,
) -> anyhow::Result<()> {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .with_context(|| format!("failed to patch the status of VolumeSnapshot {name}"))?;
    Ok(())
}

async fn patch_content_status(
    api: &Api<VolumeSnapshotContent>,
    name: &str,
    status: serde_json::Value,
) -> anyhow::Result<VolumeSnapshotContent> {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .with_context(|| format!("failed to patch the status of VolumeSnapshotContent {name}"))
}
