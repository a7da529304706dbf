//! Exporting restore points to a restic repository (`BackupPolicy.spec.export`): when a run is
//! due, the names of what its export makes, the repository as it may be shown, and what the
//! export Job reported. The state machine's steps are in `plan::backup::exporting`.

use crate::api::{
    ArchiveBackup, ArchiveBackupStatus, BackupPolicySpec, Component, ExportAfter, ExportSpec,
    ExportState, ExportedSnapshot, VerificationState, VerificationStatus,
};
use crate::plan::capture::PlannedItem;
use std::time::Duration;

/// Where an item is mounted in the export Job: `/export/<i>`, the plan item's index.
pub const MOUNT_ROOT: &str = "/export";

/// Where the copy of the master's Secrets is mounted in the export Job (a secret volume: in
/// memory, never written unencrypted to a PVC).
pub const SECRETS_MOUNT: &str = "/export/secrets";

/// What the export Job prints before each item's `restic backup --json` summary:
/// `archivist-export <index> <summary>`, and `archivist-export manifest <summary>` last.
pub const RESULT_PREFIX: &str = "archivist-export";

/// The result line of the manifest: `archivist-export manifest <summary>`.
pub const MANIFEST_RESULT: &str = "manifest";

/// The file name of the manifest in its repository snapshot.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The tag value `archivist.dev/component=manifest` of the manifest's snapshot.
pub const MANIFEST_COMPONENT: &str = "manifest";

/// One thing the export Job backs up: a plan item's restored volume, or the Secret copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportItem {
    /// The component it belongs to.
    pub component: Component,
    /// Its store; empty for master and secrets.
    pub store: String,
    /// The PVC it was captured from, or the Secret copy's name.
    pub claim: String,
    /// Where it is mounted in the Job.
    pub path: String,
}

/// What the export Job backs up, in order: every plan item (`/export/<index>`), then the
/// Secret copy when the run made one. The result line `archivist-export <i>` is item `i`.
pub fn export_items(plan: &[PlannedItem], secret_copy: Option<&str>) -> Vec<ExportItem> {
    let volumes = plan.iter().enumerate().map(|(i, item)| ExportItem {
        component: item.component,
        store: item.store.clone(),
        claim: item.claim().to_string(),
        path: mount_path(i),
    });
    let secrets = secret_copy.map(|copy| ExportItem { component: Component::Secrets, store: String::new(), claim: copy.to_string(), path: SECRETS_MOUNT.into() });
    volumes.chain(secrets).collect()
}

/// What a succeeded export Job reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// One repository snapshot per export item, in order.
    pub snapshots: Vec<ExportedSnapshot>,
    /// Bytes added to the repository, over the items and the manifest.
    pub bytes_added: u64,
    /// The manifest's repository snapshot.
    pub manifest: String,
}

/// The manifest stored beside a restore point's items: the ArchiveBackup as a new cluster
/// needs it to rebuild the restore point (its name, namespace, labels, spec, and status with
/// the items and the policy copy), without `status.export` (still being written) and without
/// anything of the cluster's own (uid, resourceVersion, managedFields, owner references).
pub fn manifest(backup: &ArchiveBackup) -> serde_json::Value {
    let mut status = backup.status.clone().unwrap_or_default();
    status.export = None;
    serde_json::json!({
        "apiVersion": "archivist.dev/v1alpha1",
        "kind": "ArchiveBackup",
        "metadata": {
            "name": backup.metadata.name,
            "namespace": backup.metadata.namespace,
            "labels": backup.metadata.labels,
            "creationTimestamp": backup.metadata.creation_timestamp,
        },
        "spec": backup.spec,
        "status": status,
    })
}

/// The longest an export may take, from `startedAt` (restoring the scratch volumes included;
/// the Job gets it as `activeDeadlineSeconds`): 12 hours.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(12 * 3600);

/// When `spec` exports: as set, else `Verified` when the policy verifies every backup.
pub fn after(spec: &ExportSpec, policy: &BackupPolicySpec) -> ExportAfter {
    spec.after.unwrap_or(if super::validate::verifies_backups(policy.verification.as_ref()) {
        ExportAfter::Verified
    } else {
        ExportAfter::Completed
    })
}

/// What a run that just became a restore point does about its export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnCompletion {
    /// The policy exports nothing.
    Off,
    /// Export it: record `export.state: Pending` in the same write that records `Completed`.
    Due,
    /// `after: Verified` and its verification did not pass: not exported (`Exported=False`,
    /// reason `NotVerified`, with this message).
    NotVerified(String),
}

/// What a run of `policy` that completes with `verification` does about its export.
pub fn on_completion(policy: &BackupPolicySpec, verification: Option<&VerificationStatus>) -> OnCompletion {
    let Some(spec) = &policy.export else { return OnCompletion::Off };
    match after(spec, policy) {
        ExportAfter::Completed => OnCompletion::Due,
        ExportAfter::Verified => match verification.map(|v| v.state) {
            Some(VerificationState::Passed) => OnCompletion::Due,
            state => OnCompletion::NotVerified(format!(
                "export.after is Verified and the verification {}; the restore point is not exported",
                match state {
                    Some(VerificationState::Failed) => "failed",
                    _ => "did not pass",
                }
            )),
        },
    }
}

/// How long after a failed `restic forget` it is tried again (a pruned restore point waits
/// meanwhile; the repository may be down or locked by another export).
pub const FORGET_RETRY: Duration = Duration::from_secs(600);

/// The Job that forgets a pruned restore point's repository snapshots.
pub fn forget_job_name(backup: &str) -> String {
    super::names::fit(&format!("{backup}-forget"), super::names::MAX_LABEL_NAME)
}

/// Whether `id` is a restic snapshot id (8 to 64 lowercase hexadecimal digits): the ids are
/// read from a status, which anyone allowed to write it could change, and become arguments of
/// `restic forget`.
pub fn is_snapshot_id(id: &str) -> bool {
    (8..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The repository snapshots of an exported restore point that `restic forget` removes: every
/// item's and the manifest's. Empty when it was never exported; an id that is not a restic
/// snapshot id is an error naming its field.
pub fn forget_ids(status: &ArchiveBackupStatus) -> Result<Vec<String>, String> {
    let Some(export) = status.export.as_ref().filter(|e| e.state == ExportState::Exported) else { return Ok(Vec::new()) };
    let items = export.snapshots.iter().enumerate().map(|(i, s)| (format!("status.export.snapshots[{i}].id"), &s.id));
    let manifest = export.manifest.iter().map(|m| ("status.export.manifest".to_string(), m));
    items
        .chain(manifest)
        .map(|(field, id)| if is_snapshot_id(id) { Ok(id.clone()) } else { Err(format!("{field}: {id:?} is not a restic snapshot id")) })
        .collect()
}

/// Whether the run's export is under way (`Pending` or `Running`): the run is not settled.
pub fn in_flight(status: &ArchiveBackupStatus) -> bool {
    status.export.as_ref().is_some_and(|e| matches!(e.state, ExportState::Pending | ExportState::Running))
}

/// The scratch PVC that the export restores plan item `index` into. Not the verify Job's
/// names: those claims may still be terminating when the export starts.
pub fn export_claim_name(backup: &str, index: usize) -> String {
    super::names::fit(&format!("{backup}-export-{index}"), super::names::MAX_NAME)
}

/// The export Job of a run.
pub fn export_job_name(backup: &str) -> String {
    super::names::fit(&format!("{backup}-export"), super::names::MAX_LABEL_NAME)
}

/// Where plan item `index` is mounted in the export Job.
pub fn mount_path(index: usize) -> String {
    format!("{MOUNT_ROOT}/{index}")
}

/// A restic repository as it may be shown: any `user:password@` after the scheme's `//`
/// removed, for example `rest:https://user:pw@host/repo` as `rest:https://host/repo`.
/// (`sftp:user@host:/path` has no password in it and stays.) A password with a raw `/` in it
/// (not a valid URL, but typed) is removed too: when the text before the first `@` has a `:`,
/// everything up to the last `@` before the next `/` goes. That may hide a little more than
/// the credentials of an odd URL (`host:1/a@b` shows as `b`), never less.
pub fn redact_repository(repository: &str) -> String {
    let repository = repository.trim();
    let Some(start) = repository.find("://").map(|i| i + 3) else { return repository.to_string() };
    let rest = &repository[start..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    if let Some(at) = rest[..authority_end].rfind('@') {
        return format!("{}{}", &repository[..start], &rest[at + 1..]);
    }
    let Some(first_at) = rest.find('@').filter(|at| rest[..*at].contains(':')) else { return repository.to_string() };
    let segment_end = rest[first_at..].find('/').map_or(rest.len(), |i| first_at + i);
    let last_at = rest[..segment_end].rfind('@').unwrap_or(first_at);
    format!("{}{}", &repository[..start], &rest[last_at + 1..])
}

/// What the export Job reported in `log`: lines `archivist-export <index> <summary>`, one per
/// export item in order, and `archivist-export manifest <summary>`, where a summary is
/// `restic backup --json`'s last line. Every other line is ignored (it is never copied
/// anywhere: it may hold anything). An item or the manifest without its line is an error.
pub fn parse_results(log: &str, items: &[ExportItem]) -> Result<ExportReport, String> {
    let mut found: Vec<Option<(String, u64, u64)>> = vec![None; items.len()];
    let mut manifest: Option<(String, u64, u64)> = None;
    for line in log.lines() {
        let Some(rest) = line.trim().strip_prefix(RESULT_PREFIX).and_then(|r| r.strip_prefix(' ')) else { continue };
        let Some((which, summary)) = rest.split_once(' ') else { continue };
        let slot = if which == MANIFEST_RESULT {
            &mut manifest
        } else {
            let Ok(index) = which.parse::<usize>() else { continue };
            let count = items.len();
            found.get_mut(index).ok_or_else(|| format!("the export Job reported item {index}, but the restore point has {count} item(s)"))?
        };
        *slot = Some(summary_of(which, summary)?);
    }
    let missing: Vec<String> = found.iter().enumerate().filter(|(_, f)| f.is_none()).map(|(i, _)| i.to_string()).collect();
    if !missing.is_empty() {
        return Err(format!("the export Job reported no repository snapshot for item(s) {}", missing.join(", ")));
    }
    let (manifest, _, manifest_added) = manifest.ok_or("the export Job reported no repository snapshot of the manifest")?;
    let mut bytes_added = manifest_added;
    let snapshots = items
        .iter()
        .zip(found.into_iter().flatten())
        .map(|(item, (id, bytes, data_added))| {
            bytes_added = bytes_added.saturating_add(data_added);
            ExportedSnapshot { component: item.component, store: item.store.clone(), claim: item.claim.clone(), id, bytes }
        })
        .collect();
    Ok(ExportReport { snapshots, bytes_added, manifest })
}

/// `(snapshot_id, total_bytes_processed, data_added)` of a `restic backup --json` summary.
fn summary_of(which: &str, summary: &str) -> Result<(String, u64, u64), String> {
    let summary: serde_json::Value =
        serde_json::from_str(summary).map_err(|e| format!("the export Job's summary of item {which} is not JSON: {e}"))?;
    let id = summary.get("snapshot_id").and_then(|v| v.as_str()).filter(|id| !id.is_empty());
    let id = id.ok_or_else(|| format!("the export Job's summary of item {which} names no snapshot_id"))?;
    let number = |key: &str| summary.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0);
    Ok((id.to_string(), number("total_bytes_processed"), number("data_added")))
}

#[cfg(test)]
mod tests;
