//! The rules of an ArchiveBackup created by hand (scheduled ones are made by the operator).

use super::backup_policy::POLICY_NAME_MAX;
use super::names::{self, LABEL_VALUE_MAX};
use super::{check_metadata, NameRules, Problems};
use crate::api::{ArchiveBackup, ArchiveBackupSpec, BackupReason};
use super::FieldError;

/// Checks a whole ArchiveBackup: `metadata` (a DNS-1123 name of at most 63 characters, since
/// it is the value of the `archivist.dev/backup` label on every snapshot) and
/// [`validate_archive_backup`].
pub fn validate_archive_backup_object(backup: &ArchiveBackup) -> Vec<FieldError> {
    let mut problems = Problems::default();
    check_metadata(
        &mut problems,
        &backup.metadata,
        &NameRules {
            max_len: LABEL_VALUE_MAX,
            why: "it is the value of the archivist.dev/backup label on its snapshots",
        },
    );
    let mut all = problems.into_vec();
    all.extend(validate_archive_backup(&backup.spec));
    // Retention never prunes a PreRestore backup: only the restore controller makes them, and
    // it labels each with its RestoreRequest. A hand-made one would be kept forever.
    let from_restore = backup.metadata.labels.as_ref().is_some_and(|l| l.contains_key(RESTORE_LABEL));
    if backup.spec.reason == BackupReason::PreRestore && !from_restore {
        all.push(FieldError::new(
            "spec.reason",
            format!("PreRestore backups are made by in-place RestoreRequests (labelled {RESTORE_LABEL}); use Manual (with hold: true to keep it)"),
        ));
    }
    all
}

/// The label the restore controller puts on the PreRestore backup it makes (the request's
/// name); defined with the restore rules.
pub use crate::plan::restore::RESTORE_LABEL;

/// Checks an ArchiveBackup spec: `policyName` must be a name a BackupPolicy can have.
pub fn validate_archive_backup(spec: &ArchiveBackupSpec) -> Vec<FieldError> {
    let mut problems = Problems::default();
    problems.check("spec.policyName", policy_name_problem(&spec.policy_name));
    problems.into_vec()
}

/// Why `name` cannot be the name of a BackupPolicy, if it cannot.
pub(crate) fn policy_name_problem(name: &str) -> Option<String> {
    names::dns1123_subdomain(name).or_else(|| {
        (name.len() > POLICY_NAME_MAX)
            .then(|| format!("{name:?} is longer than {POLICY_NAME_MAX} characters, so no BackupPolicy can have it"))
    })
}

/// Why `name` cannot be the name of an ArchiveBackup, if it cannot.
pub(crate) fn backup_name_problem(name: &str) -> Option<String> {
    names::dns1123_subdomain(name).or_else(|| {
        (name.len() > LABEL_VALUE_MAX)
            .then(|| format!("{name:?} is longer than {LABEL_VALUE_MAX} characters, so no ArchiveBackup can have it"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let backup = |name: &str, policy: &str| ArchiveBackup::new(name, ArchiveBackupSpec {
            policy_name: policy.into(),
            reason: Default::default(),
            hold: true,
        });
        let long = "b".repeat(64);
        let long_policy = "p".repeat(49);
        let cases = [
            (backup("mailstore-before-migration", "mailstore"), vec![]),
            (backup("mailstore-x", ""), vec!["spec.policyName"]),
            (backup("mailstore-x", "Mailstore"), vec!["spec.policyName"]),
            (backup("mailstore-x", &long_policy), vec!["spec.policyName"]),
            (backup(&long, "mailstore"), vec!["metadata.name"]),
            (backup("Before_Migration", "mailstore"), vec!["metadata.name"]),
        ];
        let mut by_hand = backup("pre-migration", "mailstore");
        by_hand.spec.reason = BackupReason::PreRestore;
        let mut by_restore = by_hand.clone();
        by_restore.metadata.labels = Some([(RESTORE_LABEL.to_string(), "r1".to_string())].into());
        let cases: Vec<(ArchiveBackup, Vec<&str>)> = cases.into_iter().chain([(by_hand, vec!["spec.reason"]), (by_restore, vec![])]).collect();
        for (i, (backup, want)) in cases.iter().enumerate() {
            let got: Vec<String> = validate_archive_backup_object(backup).into_iter().map(|e| e.field).collect();
            assert_eq!(&got, want, "case {i}");
        }
    }
}
