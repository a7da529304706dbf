//! `ClusterRetentionPolicy`: cluster-wide retention floors and ceilings.

use super::common::{conditions_schema, Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Cluster-wide retention rules over the BackupPolicies in the namespaces it selects. The
/// effective retention of a policy is its own, clamped by every matching cluster policy:
/// floors raise it (compliance), ceilings lower it (storage, privacy). Held backups are always
/// kept.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "archivist.dev",
    version = "v1alpha1",
    kind = "ClusterRetentionPolicy",
    doc = "Cluster-wide retention floors (compliance) and ceilings (storage, privacy) over the BackupPolicies of the namespaces it selects.",
    status = "ClusterRetentionPolicyStatus",
    shortname = "crp",
    category = "archivist",
    printcolumn = r#"{"name":"Hold","type":"boolean","jsonPath":".spec.legalHold"}"#,
    printcolumn = r#"{"name":"Policies","type":"integer","jsonPath":".status.policies"}"#,
    printcolumn = r#"{"name":"Restore Points","type":"integer","jsonPath":".status.restorePoints"}"#,
    printcolumn = r#"{"name":"Storage Bytes","type":"integer","jsonPath":".status.storageBytes"}"#,
    printcolumn = r#"{"name":"Pruned","type":"integer","jsonPath":".status.prunedTotal"}"#,
    printcolumn = r#"{"name":"Orphans Deleted","type":"integer","priority":1,"jsonPath":".status.orphansDeleted"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Evaluated","type":"date","jsonPath":".status.lastEvaluated"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRetentionPolicySpec {
    /// The namespaces whose BackupPolicies this applies to, by namespace labels. Absent or
    /// empty: every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Floor: every policy keeps at least this many daily restore points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_keep_daily: Option<u32>,
    /// Floor: every policy keeps at least this many verified restore points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_keep_verified: Option<u32>,
    /// Floor: Completed restore points younger than this many days are never pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_retention_days: Option<u32>,
    /// Ceiling: restore points older than this many days are pruned, whatever the policy says
    /// (held, in-progress and the last verified restore point excepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retention_days: Option<u32>,
    /// Ceiling: at most this many Completed restore points per policy (held, in-progress and
    /// the last verified restore point excepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restore_points_per_policy: Option<u32>,
    /// Legal hold: while true, every ArchiveBackup of every matching policy is kept, whatever
    /// its phase, the policy's rules and the ceilings say (retention reason `cluster-hold`).
    /// Setting it back to false lets retention prune again at the policies' next evaluation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
    /// Orphan collection: a VolumeSnapshot labelled `archivist.dev/backup` in a matching
    /// namespace whose ArchiveBackup is gone is marked (annotation
    /// `archivist.dev/orphaned-since`), and deleted once it has been an orphan this many
    /// seconds (default 86400), with an Event and a count in `status.orphansDeleted`. A
    /// snapshot whose ArchiveBackup comes back is unmarked. Nothing without that label is ever
    /// touched. Where several cluster policies match, the shortest period applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphan_grace_period_seconds: Option<u32>,
}

/// The observed state of a ClusterRetentionPolicy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRetentionPolicyStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: True (reason `Evaluated`) when the spec is valid; False (reason `InvalidSpec`,
    /// naming the fields) when not: then only its floors and legal hold apply.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// How many BackupPolicies it governs (those of the namespaces it matches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<u32>,
    /// How many restore points (Completed ArchiveBackups) those policies have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_points: Option<u32>,
    /// The sum of the `restoreSize` of those restore points' items, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_bytes: Option<u64>,
    /// How many restore points its ceilings (`maxRetentionDays`, `maxRestorePointsPerPolicy`)
    /// have pruned, beyond what the policies alone would prune.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_total: Option<u64>,
    /// How many orphaned VolumeSnapshots it has deleted (`orphanGracePeriodSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphans_deleted: Option<u64>,
    /// When the operator last computed this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluated: Option<chrono::DateTime<chrono::Utc>>,
}
