//! `RestoreRequest`: a GitOps-friendly restore of a restore point into new volumes and databases.

use super::archive_backup::Component;
use super::backup_policy::TargetKind;
use super::common::{
    conditions_schema, without_string_rules, Condition, DATABASE_SUFFIX_PATTERN, DNS_LABEL_PATTERN,
    NAME_SUFFIX_PATTERN,
};
use chrono::{DateTime, Utc};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// A request to restore an ArchiveBackup. Never destructive: restored data goes into new PVCs
/// and databases; `InPlace` keeps the old volumes and takes a backup first.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "archivist.dev",
    version = "v1alpha1",
    kind = "RestoreRequest",
    doc = "A GitOps-friendly request to restore an ArchiveBackup into new PVCs and databases (side by side or in place), never destroying what is there.",
    namespaced,
    status = "RestoreRequestStatus",
    shortname = "rreq",
    category = "archivist",
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".status.resolvedBackup"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.target.mode"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRequestSpec {
    /// The restore point: a named backup, or the newest (verified) one of a policy.
    pub source: RestoreSource,
    /// Where and how to restore.
    #[serde(default)]
    pub target: RestoreTarget,
    /// The stores to restore; empty restores every store (partial restore otherwise).
    #[serde(default)]
    pub stores: Vec<String>,
    /// Whether the master database and the copied Secrets are restored. Default true.
    #[serde(default = "default_true")]
    pub include_master: bool,
    /// Where SQL dumps are restored (always into a NEW database).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_target: Option<SqlTarget>,
    /// Jobs run after the volumes are restored, with the restored PVCs mounted (journal replay,
    /// index rebuild); each must succeed for the request to complete.
    #[serde(default)]
    pub post_restore: Vec<PostRestoreJob>,
    /// `SideBySide`: remove the temporary archive server this many seconds after the request
    /// finished (0 or absent: keep it). Restored PVCs are never removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<u32>,
}

fn default_true() -> bool {
    true
}

/// Which backup to restore: either `backupName`, or `policyName` with `select`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSource {
    /// An ArchiveBackup in the request's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_name: Option<String>,
    /// A BackupPolicy in the request's namespace whose newest backup is restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    /// With `policyName`: `Latest` (default) or `LatestVerified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<RestoreSelect>,
    /// Where the data comes from: `Snapshots` (the restore point's VolumeSnapshots and Secret
    /// copy in the cluster), `Repository` (its off-cluster copy in a restic repository), or
    /// `Auto` (default): the snapshots when they all exist, else the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<SourceFrom>,
    /// The restic repository to restore from when no ArchiveBackup object is left (an empty
    /// namespace, a new cluster): restore points are then found by name in the manifests the
    /// exports stored there. Without it, a restore from the repository uses the repository
    /// the backup's policy exported to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<RepositorySource>,
}

/// Where a restore's data comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SourceFrom {
    /// The VolumeSnapshots when they all exist (and the Secret copy, when it is restored),
    /// else the restic repository.
    #[default]
    Auto,
    /// The restore point's VolumeSnapshots and Secret copy in the cluster.
    Snapshots,
    /// The restore point's exported copy in the restic repository.
    Repository,
}

/// A restic repository holding exported restore points.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositorySource {
    /// A Secret in the request's namespace with restic's environment: `RESTIC_REPOSITORY`,
    /// `RESTIC_PASSWORD`, and whatever the backend needs (the export's convention).
    pub secret_name: String,
    /// The namespace the restore point was exported from. Needed only when two namespaces
    /// exported a policy (or backup) of the same name to the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The restic image that reads the repository (default `restic/restic:0.17.3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// How a policy's backup is chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RestoreSelect {
    /// The newest Completed backup.
    #[default]
    Latest,
    /// The newest Completed backup whose verification passed.
    LatestVerified,
}

/// How the restored data is put in place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RestoreMode {
    /// New PVCs and databases only (default).
    #[default]
    Volumes,
    /// `Volumes` plus a temporary copy of the archive server mounting them.
    SideBySide,
    /// Replace the target's PVCs, keeping the old volumes and a pre-restore backup.
    InPlace,
}

/// Where to restore.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreTarget {
    /// `Volumes` (default), `SideBySide` or `InPlace`.
    #[serde(default)]
    pub mode: RestoreMode,
    /// The namespace to restore into. Default: the request's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Appended to every restored name. Default `-r-<first 5 characters of the request's uid>`.
    /// Lowercase letters, digits and `-`, ending with a letter or digit; empty only for
    /// `InPlace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(NAME_SUFFIX_PATTERN))]
    pub name_suffix: Option<String>,
}

/// The SQL server that restored dumps are written to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SqlTarget {
    /// Host of the server. Default: the host the dump was taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port of the server. Default: the port the dump was taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// A Secret with `username` and `password`. Default: the source's credentials Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
    /// Appended to the original database name to form the new database's name. Default
    /// `_restored`. 1 to 62 letters, digits and `_`; the new name must match
    /// `^[A-Za-z_][A-Za-z0-9_]{0,62}$` (at most 63 characters in all). The restore is refused
    /// if that database exists.
    #[serde(default = "default_database_suffix")]
    #[schemars(pattern(DATABASE_SUFFIX_PATTERN))]
    pub database_suffix: String,
}

fn default_database_suffix() -> String {
    "_restored".to_string()
}

/// A Job run after the restore, with every restored PVC mounted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostRestoreJob {
    /// The hook's name (a DNS label, unique in the request).
    #[schemars(pattern(DNS_LABEL_PATTERN), length(max = 63))]
    pub name: String,
    /// The container image.
    pub image: String,
    /// The command and its arguments.
    pub command: Vec<String>,
}

/// The phases of a restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RestorePhase {
    /// Accepted, not started.
    Pending,
    /// Creating PVCs and databases.
    Restoring,
    /// Running the `postRestore` Jobs.
    RunningHooks,
    /// Done.
    Completed,
    /// Refused or failed; the `Ready` condition says why.
    Failed,
}

/// Where one item was restored to (also in ConfigMap `<request>-mapping`, key `restore.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreMapping {
    /// `master`, `metadata`, `content`, `index` or `secrets`.
    pub component: Component,
    /// The store; empty for master and secrets.
    // Omitted when empty: Kubernetes 1.20 rejects "" inside arrays of custom resources
    // ("must be of type string: null"), and absent reads back as "".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub store: String,
    /// The original PVC, database or Secret.
    pub original: String,
    /// The restored PVC, database or Secret.
    pub restored: String,
}

/// The observed state of a restore.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRequestStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` and `IndexRebuildRequired`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Where the restore is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RestorePhase>,
    /// The ArchiveBackup being restored; fixed once chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_backup: Option<String>,
    /// Where the data comes from, fixed once chosen: `Snapshots` or `Repository`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_from: Option<SourceFrom>,
    /// A restore from the repository: the repository and the restore point read from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<RepositoryRestore>,
    /// What was restored where.
    #[serde(default)]
    pub mapping: Vec<RestoreMapping>,
    /// When the restore started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    /// When the restore finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<DateTime<Utc>>,
    /// What happened, in words (why it failed, where old volumes are kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The spec as it was when the restore started; the restore follows it even if the
    /// object's spec is changed later (such changes are refused, see the `SpecAccepted`
    /// condition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "without_string_rules::<Option<RestoreRequestSpec>>")]
    pub accepted_spec: Option<RestoreRequestSpec>,
    /// The `metadata.generation` whose spec was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_generation: Option<i64>,
    /// The suffix appended to restored names (the spec's, or the default derived from the uid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_suffix: Option<String>,
    /// `InPlace`: the ArchiveBackup of the state before the restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_restore_backup: Option<String>,
    /// `InPlace`: the target's replicas before it was stopped (it is scaled back to them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_replicas: Option<i32>,
    /// `InPlace`: the PersistentVolumes that held the replaced claims' data; kept (reclaim
    /// policy `Retain`), so nothing is lost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retained_volumes: Vec<RetainedVolume>,
    /// `InPlace`: the shape of each claim the restore replaces, recorded before the claim is
    /// deleted; the claim is recreated from this record (and the snapshot as its data source).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced_claims: Vec<ReplacedClaim>,
    /// `SideBySide`: the workload copy this request created, recorded right after it was
    /// created. `ttlSecondsAfterFinished` deletes only this object (its uid, as a delete
    /// precondition), never another object that took its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_copy: Option<WorkloadCopy>,
}

/// A restore from a restic repository, as recorded when it was resolved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryRestore {
    /// The Secret with the repository's restic environment.
    pub secret_name: String,
    /// The repository (`RESTIC_REPOSITORY`) with any credentials removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The restore point as its manifest in the repository describes it (an ArchiveBackup
    /// whose `status.export.snapshots` name the repository snapshot of every item), when no
    /// ArchiveBackup object was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved_object")]
    pub manifest: Option<serde_json::Value>,
}

/// An object kept as it is: the API server stores every field of it.
fn preserved_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

/// The side-by-side copy of the target workload that a request created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadCopy {
    /// `StatefulSet` or `Deployment`, as the target.
    pub kind: TargetKind,
    /// Its name (`<target><suffix>`).
    pub name: String,
    /// Its `metadata.uid` when it was created.
    pub uid: String,
}

/// A claim an in-place restore replaced, as it was before it was deleted.
// Every field that may be empty is omitted when empty, and map values are nullable: the 1.20
// API server turns "" inside arrays of custom resources into null.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplacedClaim {
    /// The claim's name (also the name it is recreated under).
    pub name: String,
    /// `spec.storageClassName`; absent: the claim named none (the cluster's default class),
    /// `""`: explicitly no class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// `spec.accessModes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_modes: Vec<String>,
    /// The requested size, `spec.resources.requests.storage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// `spec.volumeMode` (`Filesystem` or `Block`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_mode: Option<String>,
    /// The claim's labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_values_as_empty")]
    #[schemars(schema_with = "nullable_string_map")]
    pub labels: BTreeMap<String, String>,
    /// The claim's annotations, without those Kubernetes' volume binding and provisioning
    /// manage (`pv.kubernetes.io/*`, `volume.beta.kubernetes.io/*`, `volume.kubernetes.io/*`):
    /// they describe the old binding, not the claim.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_values_as_empty")]
    #[schemars(schema_with = "nullable_string_map")]
    pub annotations: BTreeMap<String, String>,
    /// The PersistentVolume the claim was bound to (kept, see `retainedVolumes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
}

/// A map of strings whose values may be null: the 1.20 API server reads `""` inside arrays of
/// custom resources as null, and refuses null for a plain string.
fn nullable_string_map(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": {"type": "string", "nullable": true}
    })
}

/// Reads a map of strings in which a null value stands for `""` (see [`nullable_string_map`]).
fn null_values_as_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error> {
    let map = Option::<BTreeMap<String, Option<String>>>::deserialize(deserializer)?;
    Ok(map.unwrap_or_default().into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect())
}

/// A PersistentVolume kept by an in-place restore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetainedVolume {
    /// The claim that was replaced.
    pub claim: String,
    /// The PersistentVolume that still holds the old data.
    pub volume: String,
}
