//! Exporting restore points to a restic repository (`BackupPolicy.spec.export`): when a run is
//! due, the names of what its export makes, the repository as it may be shown, and what the
//! export Job reported. The state machine's steps are in `plan::backup::exporting`.

use crate::api::{
    ArchiveBackupStatus, BackupPolicySpec, ExportAfter, ExportSpec, ExportState, ExportedSnapshot,
    VerificationState, VerificationStatus,
};
use crate::plan::capture::PlannedItem;
use std::time::Duration;

/// Where an item is mounted in the export Job: `/export/<i>`, the plan item's index.
pub const MOUNT_ROOT: &str = "/export";

/// What the export Job prints before each item's `restic backup --json` summary:
/// `archivist-export <index> <summary>`.
pub const RESULT_PREFIX: &str = "archivist-export";

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
/// (`sftp:user@host:/path` has no password in it and stays.)
pub fn redact_repository(repository: &str) -> String {
    let repository = repository.trim();
    let Some(start) = repository.find("://").map(|i| i + 3) else { return repository.to_string() };
    let rest = &repository[start..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &repository[..start], &rest[at + 1..]),
        None => repository.to_string(),
    }
}

/// The repository snapshots the export Job reported in `log` (lines
/// `archivist-export <index> <restic backup --json summary>`), one per plan item in order,
/// and the bytes the export added to the repository. Every other line is ignored (it is never
/// copied anywhere: it may hold anything). An item without its line is an error.
pub fn parse_results(log: &str, plan: &[PlannedItem]) -> Result<(Vec<ExportedSnapshot>, u64), String> {
    let mut found: Vec<Option<(String, u64, u64)>> = vec![None; plan.len()];
    for line in log.lines() {
        let Some(rest) = line.trim().strip_prefix(RESULT_PREFIX).and_then(|r| r.strip_prefix(' ')) else { continue };
        let Some((index, summary)) = rest.split_once(' ') else { continue };
        let Ok(index) = index.parse::<usize>() else { continue };
        let Some(slot) = found.get_mut(index) else {
            return Err(format!("the export Job reported item {index}, but the restore point has {} item(s)", plan.len()));
        };
        let summary: serde_json::Value =
            serde_json::from_str(summary).map_err(|e| format!("the export Job's summary of item {index} is not JSON: {e}"))?;
        let id = summary.get("snapshot_id").and_then(|v| v.as_str()).filter(|id| !id.is_empty());
        let Some(id) = id else {
            return Err(format!("the export Job's summary of item {index} names no snapshot_id"));
        };
        let number = |key: &str| summary.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0);
        *slot = Some((id.to_string(), number("total_bytes_processed"), number("data_added")));
    }
    let missing: Vec<String> = found.iter().enumerate().filter(|(_, f)| f.is_none()).map(|(i, _)| i.to_string()).collect();
    if !missing.is_empty() {
        return Err(format!("the export Job reported no repository snapshot for item(s) {}", missing.join(", ")));
    }
    let mut added = 0u64;
    let snapshots = plan
        .iter()
        .zip(found.into_iter().flatten())
        .map(|(item, (id, bytes, data_added))| {
            added = added.saturating_add(data_added);
            ExportedSnapshot { component: item.component, store: item.store.clone(), claim: item.claim().to_string(), id, bytes }
        })
        .collect();
    Ok((snapshots, added))
}

#[cfg(test)]
mod tests;
