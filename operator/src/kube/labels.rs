//! The `archivist.dev/*` labels and annotations of api.md, and owner references.

use crate::api::{ArchiveBackup, Component};
use crate::plan::names::component_word;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use std::collections::BTreeMap;

/// Label: the BackupPolicy a child object belongs to.
pub const POLICY: &str = "archivist.dev/policy";
/// Label: the ArchiveBackup a child object belongs to.
pub const BACKUP: &str = "archivist.dev/backup";
/// Label: the archive component (`master`, `metadata`, `content`, `index`, `secrets`).
pub const COMPONENT: &str = "archivist.dev/component";
/// Label: the store (empty for master and secrets).
pub const STORE: &str = "archivist.dev/store";
/// Annotation on a quiesced workload: the ArchiveBackup that quiesced it.
pub const QUIESCED_BY: &str = "archivist.dev/quiesced-by";
/// Annotation on a workload stopped by a backup: the replicas to scale back to.
pub const ORIGINAL_REPLICAS: &str = "archivist.dev/original-replicas";
/// Annotation on an ArchiveBackup that retention pruned (value: `retention`) while its export
/// is in a repository: its repository snapshots are forgotten (`restic forget`) before the
/// ArchiveBackup controller deletes it. Deleting an ArchiveBackup any other way (by hand, with
/// its namespace) leaves the repository alone: the copy off the cluster is what survives.
pub const PRUNE: &str = "archivist.dev/prune";
/// Annotation on a BackupPolicy: a new value requests a backup now.
pub const BACKUP_NOW: &str = "archivist.dev/backup-now";

/// The labels of an object made for one item of a backup.
pub fn item_labels(policy: &str, backup: &str, component: Component, store: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (POLICY.to_string(), policy.to_string()),
        (BACKUP.to_string(), backup.to_string()),
        (COMPONENT.to_string(), component_word(component).to_string()),
        (STORE.to_string(), store.to_string()),
    ])
}

/// The owner reference that makes a child object go when its ArchiveBackup is deleted.
pub fn owned_by(backup: &ArchiveBackup) -> Vec<OwnerReference> {
    backup.controller_owner_ref(&()).into_iter().collect()
}
