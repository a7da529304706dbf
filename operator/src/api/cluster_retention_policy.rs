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
    printcolumn = r#"{"name":"Selector","type":"string","jsonPath":".spec.namespaceSelector"}"#,
    printcolumn = r#"{"name":"Governed","type":"integer","jsonPath":".status.governedPolicies"}"#,
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
}

/// The observed state of a ClusterRetentionPolicy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRetentionPolicyStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// How many BackupPolicies it governs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governed_policies: Option<u32>,
    /// How many restore points those policies have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governed_restore_points: Option<u32>,
    /// How many restore points it has pruned (beyond what the policies alone would prune).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_restore_points: Option<u32>,
}
