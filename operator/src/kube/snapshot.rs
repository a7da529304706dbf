//! `snapshot.storage.k8s.io/v1` VolumeSnapshots: the client-side type (the CRD itself comes
//! with the cluster's CSI snapshotter) and the adapter the backup controller uses.

use super::time::parse_rfc3339;
use crate::plan::backup::SnapshotObs;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The spec of a VolumeSnapshot (upstream schema, the fields Archivist uses).
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "snapshot.storage.k8s.io",
    version = "v1",
    kind = "VolumeSnapshot",
    namespaced,
    status = "VolumeSnapshotStatus",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotSpec {
    /// What to snapshot.
    pub source: VolumeSnapshotSource,
    /// The VolumeSnapshotClass; absent: the default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,
}

/// The source of a VolumeSnapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotSource {
    /// The PVC to snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim_name: Option<String>,
    /// A pre-provisioned VolumeSnapshotContent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_content_name: Option<String>,
}

/// The status of a VolumeSnapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotStatus {
    /// The bound VolumeSnapshotContent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_volume_snapshot_content_name: Option<String>,
    /// When the cut was made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<String>,
    /// Whether the snapshot can be restored from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_to_use: Option<bool>,
    /// The size a restored volume needs (a quantity, or a number of bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_size: Option<serde_json::Value>,
    /// Set when the snapshot failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<VolumeSnapshotError>,
}

/// A VolumeSnapshot's error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotError {
    /// What failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

impl VolumeSnapshot {
    /// What the backup state machine needs to know of this snapshot.
    pub fn observe(&self) -> SnapshotObs {
        let status = self.status.clone().unwrap_or_default();
        SnapshotObs {
            cut_at: status.creation_time.as_deref().and_then(parse_rfc3339),
            ready_to_use: status.ready_to_use.unwrap_or(false),
            error: status.error.map(|e| e.message.unwrap_or_else(|| "snapshot failed (no message)".to_string())),
        }
    }

    /// `status.restoreSize` as a quantity string.
    pub fn restore_size(&self) -> Option<String> {
        match self.status.as_ref()?.restore_size.as_ref()? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}
