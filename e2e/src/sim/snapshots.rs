//! The simulated snapshot controller and CSI snapshotter for `snapshot.storage.k8s.io/v1`.
//!
//! - Keeps the default VolumeSnapshotClass `archivist-local` (driver `archivist.dev/local`,
//!   deletionPolicy Delete).
//! - For each VolumeSnapshot of a PVC (class with this driver, or none): at the cut, copies the
//!   volume's directory to `<state-dir>/snapshots/<content-name>`, creates the bound
//!   VolumeSnapshotContent `snapcontent-<snapshot uid>`, sets `boundVolumeSnapshotContentName`,
//!   `creationTime` and `restoreSize`, then `readyToUse: true`.
//! - Knobs, as annotations on the source PVC: [`CUT_DELAY`], [`READY_DELAY`], [`FAIL`].
//! - Deletion: see [`super::snapshot_contents`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, ResourceExt as _};
use serde_json::json;

use super::quantity::{bytes_quantity, duration, quantity_bytes};
use super::reconcile::{apply_params, drain, now, retry_after_error, ReconcileError};
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
/// Source-PVC annotation: time from the VolumeSnapshot's creation to the cut (copy + `creationTime`).
pub const CUT_DELAY: &str = "sim.archivist.dev/snapshot-cut-delay";
/// Source-PVC annotation: time from the cut to `readyToUse: true`.
pub const READY_DELAY: &str = "sim.archivist.dev/snapshot-ready-delay";
/// Source-PVC annotation: `"true"` makes every snapshot of the PVC fail (`status.error`, never ready).
pub const FAIL: &str = "sim.archivist.dev/fail-snapshot";
/// How often a snapshot whose source PVC is not bound yet is looked at again.
const SOURCE_POLL: Duration = Duration::from_secs(1);

/// Cuts, binds and deletes snapshots until a watch ends.
pub async fn run(ctx: SimContext) -> anyhow::Result<()> {
    ensure_snapshot_class(&ctx.client).await?;
    let ctx = Arc::new(ctx);
    let snapshot_ctx = Arc::new(SnapshotCtx {
        sim: ctx.clone(),
        first_seen: Mutex::new(HashMap::new()),
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
        drain("snapshot-contents", contents)
    );
    Err(anyhow!("the snapshot controllers stopped"))
}

/// Context of the VolumeSnapshot controller.
struct SnapshotCtx {
    sim: Arc<SimContext>,
    /// When each VolumeSnapshot (by uid) was first seen: the start of its cut delay. More precise
    /// than `metadata.creationTimestamp` (whole seconds); a restarted simulator starts over.
    first_seen: Mutex<HashMap<String, Timestamp>>,
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

/// The knobs read from the source PVC's annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Knobs {
    /// Time from the snapshot's creation to the cut.
    pub cut_delay: Duration,
    /// Time from the cut to ready.
    pub ready_delay: Duration,
    /// The snapshot fails.
    pub fail: bool,
}

impl Knobs {
    /// Reads the knobs from annotations; unparsable values are errors.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let delay = |key: &str| -> anyhow::Result<Duration> {
            annotations
                .get(key)
                .map(|v| duration(v).with_context(|| format!("annotation {key}")))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        Ok(Self {
            cut_delay: delay(CUT_DELAY)?,
            ready_delay: delay(READY_DELAY)?,
            fail: annotations
                .get(FAIL)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        })
    }
}

fn after(at: Timestamp, delay: Duration) -> Timestamp {
    let delay = SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX);
    at.checked_add(delay).unwrap_or(Timestamp::MAX)
}

/// Time left until `at`, or `None` when it has passed.
fn until(at: Timestamp, now: Timestamp) -> Option<Duration> {
    let left = now.duration_until(at);
    if left.is_positive() {
        Duration::try_from(left).ok()
    } else {
        None
    }
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
    let Some(class) = Api::<VolumeSnapshotClass>::all(ctx.client.clone())
        .get_opt(&class_name)
        .await?
    else {
        return Ok(Action::await_change());
    };
    if class.driver != DRIVER {
        return Ok(Action::await_change());
    }
    let snapshots = Api::<VolumeSnapshot>::namespaced(ctx.client.clone(), &namespace);
    let id = format!("VolumeSnapshot {namespace}/{name}");

    let Some(pvc) = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&pvc_name)
        .await?
    else {
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
    let content = match contents.get_opt(&content_name).await? {
        Some(content) => content,
        None => {
            if let Some(left) = until(after(first_seen, knobs.cut_delay), now()) {
                return Ok(Action::requeue(left));
            }
            let Some(pv_name) = pvc
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.clone())
                .filter(|v| !v.is_empty())
            else {
                tracing::debug!("{id}: source PVC {pvc_name} is not bound yet");
                return Ok(Action::requeue(SOURCE_POLL));
            };
            cut(ctx, &snapshot, &class, &pv_name, &content_name)
                .await
                .with_context(|| format!("{id}: cut failed"))?
        }
    };

    // Bound: report the cut, and readiness once the ready delay has passed.
    let content_status = content.status.clone().unwrap_or_default();
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

/// The cut: copies the volume's directory and creates the bound VolumeSnapshotContent whose
/// status records the cut time and size.
async fn cut(
    ctx: &SimContext,
    snapshot: &VolumeSnapshot,
    class: &VolumeSnapshotClass,
    pv_name: &str,
    content_name: &str,
) -> anyhow::Result<VolumeSnapshotContent> {
    let cut_at = now();
    let source = volume_dir(&ctx.args.state_dir, pv_name);
    let target = snapshot_dir(&ctx.args.state_dir, content_name);
    create_dir_from(Some(&source), &target).await?;

    let pv = Api::<PersistentVolume>::all(ctx.client.clone())
        .get(pv_name)
        .await
        .with_context(|| format!("PV {pv_name}"))?;
    let capacity = pv
        .spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .with_context(|| format!("PV {pv_name} has no capacity"))?;
    let restore_size = i64::try_from(quantity_bytes(&capacity.0)?).context("capacity too large")?;

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
    let contents = Api::<VolumeSnapshotContent>::all(ctx.client.clone());
    match contents.create(&PostParams::default(), &content).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => {
            return Err(anyhow::Error::new(err).context(format!(
                "failed to create VolumeSnapshotContent {content_name}"
            )))
        }
    }
    let status = VolumeSnapshotContentStatus {
        creation_time: i64::try_from(cut_at.as_nanosecond()).ok(),
        ready_to_use: Some(false),
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
    Ok(patched)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_from_annotations() {
        let annotations = BTreeMap::from([
            (CUT_DELAY.to_owned(), "2s".to_owned()),
            (READY_DELAY.to_owned(), "500ms".to_owned()),
            (FAIL.to_owned(), "true".to_owned()),
        ]);
        let knobs = Knobs::from_annotations(&annotations).unwrap();
        assert_eq!(
            knobs,
            Knobs {
                cut_delay: Duration::from_secs(2),
                ready_delay: Duration::from_millis(500),
                fail: true
            }
        );
        assert_eq!(
            Knobs::from_annotations(&BTreeMap::new()).unwrap(),
            Knobs::default()
        );
        let bad = BTreeMap::from([(CUT_DELAY.to_owned(), "soon".to_owned())]);
        assert!(Knobs::from_annotations(&bad).is_err());
    }

    #[test]
    fn waiting() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = after(t0, Duration::from_secs(2));
        assert_eq!(until(t1, t0), Some(Duration::from_secs(2)));
        assert_eq!(until(t0, t1), None);
        assert_eq!(until(t0, t0), None);
    }
}
