//! Rust types for the `snapshot.storage.k8s.io/v1` API (VolumeSnapshot, VolumeSnapshotContent,
//! VolumeSnapshotClass), as served by the CRDs in `e2e/crds/`. Field names follow upstream
//! (kubernetes-csi/external-snapshotter); the CRD YAML is the schema, so no schema is derived here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// API group of the snapshot API.
pub const GROUP: &str = "snapshot.storage.k8s.io";

/// Whether a VolumeSnapshotContent and its data outlive the VolumeSnapshot bound to it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Delete the content and the physical snapshot with the VolumeSnapshot.
    #[default]
    Delete,
    /// Keep the content and the physical snapshot.
    Retain,
}

/// A request for a point-in-time snapshot of a PVC (or for binding to an existing snapshot).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "snapshot.storage.k8s.io",
    version = "v1",
    kind = "VolumeSnapshot",
    namespaced,
    status = "VolumeSnapshotStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotSpec {
    /// What to snapshot.
    pub source: VolumeSnapshotSource,
    /// The class to use; unset means the default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,
}

/// Where a VolumeSnapshot comes from: exactly one of the fields.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotSource {
    /// A PVC in the snapshot's namespace, to take a new snapshot of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim_name: Option<String>,
    /// A pre-existing VolumeSnapshotContent to represent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_content_name: Option<String>,
}

/// Observed state of a VolumeSnapshot.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotStatus {
    /// The VolumeSnapshotContent this snapshot is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_volume_snapshot_content_name: Option<String>,
    /// When the point-in-time snapshot was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<Time>,
    /// Whether the snapshot can be restored from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_to_use: Option<bool>,
    /// Minimum size of a volume restored from this snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_size: Option<Quantity>,
    /// The last error while making the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<VolumeSnapshotError>,
    /// The VolumeGroupSnapshot this snapshot is part of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_group_snapshot_name: Option<String>,
}

/// An error reported while making a snapshot.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct VolumeSnapshotError {
    /// What failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
}

/// The snapshot as it exists on the storage system (cluster-scoped).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "snapshot.storage.k8s.io",
    version = "v1",
    kind = "VolumeSnapshotContent",
    status = "VolumeSnapshotContentStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotContentSpec {
    /// Whether this content and its data are deleted with the bound VolumeSnapshot.
    pub deletion_policy: DeletionPolicy,
    /// The CSI driver that made the snapshot.
    pub driver: String,
    /// The volume snapshotted, or the pre-existing snapshot's handle.
    pub source: VolumeSnapshotContentSource,
    /// Filesystem or Block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_volume_mode: Option<String>,
    /// The class the snapshot was made with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,
    /// The VolumeSnapshot this content is bound to.
    pub volume_snapshot_ref: ObjectReference,
}

/// Source of a VolumeSnapshotContent: exactly one of the fields.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotContentSource {
    /// CSI volume id of the volume to snapshot (dynamic provisioning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_handle: Option<String>,
    /// CSI snapshot id of a pre-existing snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_handle: Option<String>,
}

/// Observed state of a VolumeSnapshotContent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotContentStatus {
    /// When the snapshot was cut, in Unix nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<i64>,
    /// The last error while making the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<VolumeSnapshotError>,
    /// Whether the snapshot can be restored from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_to_use: Option<bool>,
    /// Size of the snapshot in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_size: Option<i64>,
    /// CSI snapshot id on the storage system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_handle: Option<String>,
    /// CSI group snapshot id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_group_snapshot_handle: Option<String>,
}

/// A class of snapshots: driver, parameters, deletion policy (cluster-scoped, no spec).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotClass {
    /// Always `snapshot.storage.k8s.io/v1`.
    pub api_version: String,
    /// Always `VolumeSnapshotClass`.
    pub kind: String,
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// The CSI driver that handles snapshots of this class.
    pub driver: String,
    /// Whether contents made with this class are deleted with their VolumeSnapshot.
    pub deletion_policy: DeletionPolicy,
    /// Driver-specific parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BTreeMap<String, String>>,
}

impl VolumeSnapshotClass {
    /// A class named `name` for `driver` with `deletion_policy`.
    pub fn new(name: &str, driver: &str, deletion_policy: DeletionPolicy) -> Self {
        Self {
            api_version: <Self as k8s_openapi::Resource>::API_VERSION.to_owned(),
            kind: <Self as k8s_openapi::Resource>::KIND.to_owned(),
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            driver: driver.to_owned(),
            deletion_policy,
            parameters: None,
        }
    }
}

impl k8s_openapi::Resource for VolumeSnapshotClass {
    const API_VERSION: &'static str = "snapshot.storage.k8s.io/v1";
    const GROUP: &'static str = GROUP;
    const KIND: &'static str = "VolumeSnapshotClass";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "volumesnapshotclasses";
    type Scope = k8s_openapi::ClusterResourceScope;
}

impl k8s_openapi::ListableResource for VolumeSnapshotClass {
    const LIST_KIND: &'static str = "VolumeSnapshotClassList";
}

impl k8s_openapi::Metadata for VolumeSnapshotClass {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Annotation that marks the default class (same key as upstream).
pub const IS_DEFAULT_CLASS_ANNOTATION: &str = "snapshot.storage.kubernetes.io/is-default-class";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_serializes_like_upstream() {
        let class = VolumeSnapshotClass::new("c", "d", DeletionPolicy::Retain);
        let json = serde_json::to_value(&class).expect("serializes");
        assert_eq!(json["apiVersion"], "snapshot.storage.k8s.io/v1");
        assert_eq!(json["kind"], "VolumeSnapshotClass");
        assert_eq!(json["deletionPolicy"], "Retain");
        assert_eq!(json["driver"], "d");
    }

    #[test]
    fn snapshot_status_reads_upstream_json() {
        let status: VolumeSnapshotStatus = serde_json::from_value(serde_json::json!({
            "boundVolumeSnapshotContentName": "snapcontent-1",
            "creationTime": "2024-01-02T03:04:05Z",
            "readyToUse": true,
            "restoreSize": "1Gi",
        }))
        .expect("parses");
        assert_eq!(status.ready_to_use, Some(true));
        assert_eq!(status.restore_size, Some(Quantity("1Gi".into())));
    }
}
