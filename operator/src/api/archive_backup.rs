//! `ArchiveBackup`: one backup run, and afterwards a restore point.

use super::backup_policy::{BackupPolicySpec, QuiesceMode};
use super::common::{conditions_schema, Condition};
use chrono::{DateTime, Utc};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One backup run of a BackupPolicy; once Completed, a restore point.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "archivist.dev",
    version = "v1alpha1",
    kind = "ArchiveBackup",
    doc = "One backup run of a BackupPolicy and, once Completed, a restore point. Deleting it deletes its VolumeSnapshots.",
    namespaced,
    status = "ArchiveBackupStatus",
    shortname = "abk",
    category = "archivist",
    printcolumn = r#"{"name":"Policy","type":"string","jsonPath":".spec.policyName"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Verified","type":"string","jsonPath":".status.verification.state"}"#,
    printcolumn = r#"{"name":"Started","type":"date","jsonPath":".status.startTime"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveBackupSpec {
    /// The BackupPolicy (in the same namespace) this backup runs.
    pub policy_name: String,
    /// Why the backup exists: `Scheduled`, `Manual` (default), `PreRestore` or `Drill`.
    #[serde(default)]
    pub reason: BackupReason,
    /// Legal hold: while true, retention never prunes this backup.
    #[serde(default)]
    pub hold: bool,
}

/// Why a backup was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BackupReason {
    /// Started by the policy's schedule.
    Scheduled,
    /// Requested by a person (an ArchiveBackup created by hand or `archivist.dev/backup-now`).
    #[default]
    Manual,
    /// Taken by an in-place RestoreRequest before it replaces the volumes.
    PreRestore,
    /// A periodic restore drill.
    Drill,
}

/// The phases of a backup run, in order; `Failed` can follow any phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BackupPhase {
    /// Accepted, not started.
    Pending,
    /// Freezing or stopping the archive.
    Quiescing,
    /// Capturing the master and each store's metadata.
    CapturingMetadata,
    /// Capturing each store's content (and index).
    CapturingContent,
    /// Every snapshot is cut: thawing or scaling the archive back.
    Releasing,
    /// Waiting until every snapshot is ready to use.
    Finalizing,
    /// Restoring into scratch volumes and running the verify Job.
    Verifying,
    /// A restore point.
    Completed,
    /// The run failed; `status.message` says why.
    Failed,
}

impl BackupPhase {
    /// Whether the run has ended (Completed or Failed).
    pub fn is_finished(self) -> bool {
        matches!(self, BackupPhase::Completed | BackupPhase::Failed)
    }
}

/// The part of the archive a captured item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Component {
    /// The master database.
    Master,
    /// A store's metadata.
    Metadata,
    /// A store's content.
    Content,
    /// A store's full-text index.
    Index,
    /// A one-volume store: its metadata, content and index in one volume
    /// (`stores[].volumeClaims`).
    Store,
    /// The copied Secrets (encryption keys).
    Secrets,
}

/// The state of a backup's verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum VerificationState {
    /// Not run yet.
    Pending,
    /// The verify Job succeeded.
    Passed,
    /// The verify Job failed.
    Failed,
    /// Verification is not enabled for this backup.
    Skipped,
}

/// How the archive was quiesced during the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuiesceStatus {
    /// The mode used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<QuiesceMode>,
    /// When the archive was frozen or stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiesced_at: Option<DateTime<Utc>>,
    /// When it was thawed or scaled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<DateTime<Utc>>,
    /// How long the archive was unavailable, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<f64>,
    /// `Stop` mode: the replicas to scale back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_replicas: Option<i32>,
    /// `Freeze` mode: the pods the freeze hook ran on; the thaw hook runs on the same pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<String>,
    /// `Freeze` mode: the pods whose thaw hook succeeded (or that are gone) while releasing;
    /// a retried release thaws only the others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thawed_pods: Vec<String>,
    /// How many release attempts failed so far; each retry waits exponentially longer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_attempts: Option<u32>,
    /// When the last release attempt failed; the next one is made after the backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_release_failure: Option<DateTime<Utc>>,
}

/// One captured volume or dump, in capture order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapturedItem {
    /// `master`, `metadata`, `content`, `index` or `secrets`.
    pub component: Component,
    /// The store the item belongs to; empty for master and secrets.
    // Omitted when empty: the local cluster's 1.20 API server rejects "" inside arrays of
    // custom resources ("must be of type string: null"), and absent reads back as "".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub store: String,
    /// The PVC that was snapshotted (for an SQL source, the dump PVC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_claim: Option<String>,
    /// For an SQL source: `<engine>://<host>:<port>/<database>` (no credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sql: Option<String>,
    /// The VolumeSnapshot holding the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot: Option<String>,
    /// When the snapshot was cut (its `status.creationTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_at: Option<DateTime<Utc>>,
    /// Whether the snapshot is ready to be restored from.
    #[serde(default)]
    pub ready_to_use: bool,
    /// The size a volume restored from the snapshot needs (a quantity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_size: Option<String>,
}

/// The result of verifying a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationStatus {
    /// `Pending`, `Passed`, `Failed` or `Skipped`.
    pub state: VerificationState,
    /// When verification finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// What the verification found, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What verified it: `Drill` when a restore drill passed; absent: the verify Job
    /// (`verification.afterBackup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<VerificationReason>,
}

/// What verified a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum VerificationReason {
    /// A restore drill of the backup passed (`status.drill`).
    Drill,
}

/// How a restore drill is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DrillState {
    /// The drill's RestoreRequest restores the copy, or the probe runs.
    Running,
    /// The copy came up and the probe passed.
    Passed,
    /// The restore, the copy or the probe failed (`message`).
    Failed,
}

/// One restore drill: the evidence of a backup's restorability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrillStatus {
    /// `Running`, `Passed` or `Failed`.
    pub state: DrillState,
    /// The ArchiveBackup drilled.
    pub backup: String,
    /// The SideBySide RestoreRequest the drill created (labelled `archivist.dev/drill`).
    pub restore_request: String,
    /// When the drill started.
    pub started_at: DateTime<Utc>,
    /// When it passed or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// What happened, in words (why it failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The first 4 KiB of the probe's output, with the restored Secrets' values replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Whether what the drill restored (the RestoreRequest, the copy, its PVCs and Secrets)
    /// has been deleted again. Recorded on the policy only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub torn_down: bool,
}

/// Where the export of a restore point stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ExportState {
    /// Due: the run is a restore point and waits for its export to start.
    Pending,
    /// The export Job runs.
    Running,
    /// Every item is in the repository (`snapshots`).
    Exported,
    /// The export failed (`message`); the restore point is still valid in the cluster, and
    /// the next run exports normally.
    Failed,
}

/// The export of a restore point to a restic repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportStatus {
    /// `Pending`, `Running`, `Exported` or `Failed`.
    pub state: ExportState,
    /// The repository (`RESTIC_REPOSITORY`) with any credentials removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// When the export Job was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When the export ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Bytes the export added to the repository (after restic's deduplication and
    /// compression), summed over the items and the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_added: Option<u64>,
    /// What happened, in words (why it failed, or what it waits for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// One restic snapshot per exported item, in capture order (the Secret copy last).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<ExportedSnapshot>,
    /// The restic snapshot of the manifest (`manifest.json`, tagged
    /// `archivist.dev/component=manifest`): this ArchiveBackup's spec and status as a new
    /// cluster needs them to rebuild the restore point. Written last, so a restore point whose
    /// manifest is in the repository has every item there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// When forgetting the repository snapshots of this restore point, pruned by retention,
    /// last failed (`message` says why); it is tried again 10 minutes later, and the restore
    /// point is deleted only once they are forgotten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forget_failed_at: Option<DateTime<Utc>>,
}

/// One item of a restore point in the restic repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportedSnapshot {
    /// The item's component.
    pub component: Component,
    /// The item's store; empty for master and secrets.
    // Omitted when empty, as `CapturedItem.store` (the 1.20 API server rejects "" in arrays).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub store: String,
    /// The PVC the item was captured from (for an SQL source, the dump PVC).
    pub claim: String,
    /// The restic snapshot's id, as restic printed it.
    pub id: String,
    /// Bytes of the item's files restic read.
    pub bytes: u64,
}

/// The observed state of a backup run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveBackupStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Quiesced`, `Captured`, `Ready` (restorable) and `Verified`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Where the run is; see the backup run in the API documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BackupPhase>,
    /// When the run started: the restore point's time, used by retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    /// When the run reached Completed or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<DateTime<Utc>>,
    /// When the run entered its current `phase`; the deadlines of `Finalizing`
    /// (`snapshotReadyTimeoutSeconds`) and `Verifying` (`verification.timeoutSeconds`) count
    /// from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_start_time: Option<DateTime<Utc>>,
    /// How the archive was quiesced and for how long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiesce: Option<QuiesceStatus>,
    /// What was captured, in capture order.
    #[serde(default)]
    pub items: Vec<CapturedItem>,
    /// The Secret holding copies of the policy's `master.secrets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_copy: Option<String>,
    /// Whether index volumes were captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indexes_included: Option<bool>,
    /// The verification result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationStatus>,
    /// The newest restore drill of this restore point (`verification.drillSchedule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillStatus>,
    /// The off-cluster copy (`BackupPolicy.spec.export`); absent when the policy exports
    /// nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportStatus>,
    /// Why the run failed (or what it waits for), in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The policy's spec as it was when the run started; later edits do not change the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::common::without_string_rules::<Option<BackupPolicySpec>>")]
    // Boxed: most ArchiveBackups a cache holds are settled, with no copy (`plan::backup::cached`),
    // and an unboxed `None` would still take the spec's whole size in each of them.
    pub policy_spec: Option<Box<BackupPolicySpec>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_without_a_store_is_written_without_the_field_and_read_back_empty() {
        let item: CapturedItem = serde_json::from_value(serde_json::json!({"component": "master", "readyToUse": true})).expect("item");
        assert_eq!(item.store, "");
        let json = serde_json::to_value(&item).expect("json");
        assert!(json.get("store").is_none(), "{json}");
        let mapping = crate::api::RestoreMapping { component: Component::Secrets, store: String::new(), original: "k".into(), restored: "k-r".into() };
        assert!(serde_json::to_value(&mapping).expect("json").get("store").is_none());
    }
}
