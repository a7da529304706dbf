//! Which backups unfinished RestoreRequests read from: retention never prunes them
//! (reason `restore-source`).
//!
//! A request is unfinished while its `status.phase` is anything but `Completed` or `Failed`
//! (also before the operator wrote one). It reads from:
//! - its `status.resolvedBackup`, once chosen;
//! - before that, the backup its source names: `spec.source.backupName`, or, for
//!   `policyName` + `select`, the backup that source resolves to now (the newest Completed, or
//!   newest verified, backup of the policy; see [`crate::plan::restore::resolve`]).
//!
//! The source is read from `status.acceptedSpec` when the request has one (the spec the
//! restore follows), else from `spec`.

use crate::api::{ArchiveBackup, RestorePhase, RestoreRequest};
use crate::plan::restore::resolve;
use std::collections::BTreeSet;

/// Whether a request is still to finish (phase not `Completed` or `Failed`).
pub fn unfinished(request: &RestoreRequest) -> bool {
    !matches!(
        request.status.as_ref().and_then(|s| s.phase),
        Some(RestorePhase::Completed | RestorePhase::Failed)
    )
}

/// The backup an unfinished request reads from; `None` for a finished request or when its
/// source names nothing that exists among `backups`.
pub fn restore_source(request: &RestoreRequest, backups: &[ArchiveBackup]) -> Option<String> {
    if !unfinished(request) {
        return None;
    }
    let status = request.status.as_ref();
    if let Some(resolved) = status.and_then(|s| s.resolved_backup.clone()) {
        return Some(resolved);
    }
    let spec = status.and_then(|s| s.accepted_spec.as_ref()).unwrap_or(&request.spec);
    if let Some(name) = &spec.source.backup_name {
        return Some(name.clone());
    }
    // Resolved like the restore will resolve it (a request without a namespace, as in a file
    // read offline, counts as being in the namespace it restores into).
    let namespace = request.metadata.namespace.clone().or_else(|| spec.target.namespace.clone()).unwrap_or_default();
    resolve(spec, &namespace, backups).ok().and_then(|b| b.metadata.name.clone())
}

/// The names of the backups that the unfinished requests among `requests` read from.
/// `requests` and `backups` are of one namespace.
pub fn restore_sources(requests: &[RestoreRequest], backups: &[ArchiveBackup]) -> BTreeSet<String> {
    requests.iter().filter_map(|r| restore_source(r, backups)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        ArchiveBackupSpec, ArchiveBackupStatus, BackupPhase, BackupReason, RestoreRequestSpec, RestoreRequestStatus,
        RestoreSelect, RestoreSource, VerificationState, VerificationStatus,
    };
    use chrono::{TimeZone, Utc};

    fn backup(name: &str, hour: u32, phase: BackupPhase, verified: bool) -> ArchiveBackup {
        let mut b = ArchiveBackup::new(name, ArchiveBackupSpec { policy_name: "p".into(), reason: BackupReason::Scheduled, hold: false });
        b.metadata.namespace = Some("mail".into());
        b.status = Some(ArchiveBackupStatus {
            phase: Some(phase),
            start_time: Utc.with_ymd_and_hms(2026, 11, 22, hour, 0, 0).single(),
            verification: verified.then_some(VerificationStatus { state: VerificationState::Passed, finished_at: None, message: None, reason: None }),
            ..Default::default()
        });
        b
    }

    fn request(source: RestoreSource, phase: Option<RestorePhase>, resolved: Option<&str>) -> RestoreRequest {
        let spec: RestoreRequestSpec = serde_json::from_value(serde_json::json!({"source": {}})).expect("spec");
        let mut r = RestoreRequest::new("r", RestoreRequestSpec { source, ..spec });
        r.metadata.namespace = Some("mail".into());
        r.status = Some(RestoreRequestStatus { phase, resolved_backup: resolved.map(str::to_string), ..Default::default() });
        r
    }

    fn named(name: &str) -> RestoreSource {
        RestoreSource { backup_name: Some(name.into()), ..Default::default() }
    }

    fn of_policy(select: RestoreSelect) -> RestoreSource {
        RestoreSource { policy_name: Some("p".into()), select: Some(select), backup_name: None, ..Default::default() }
    }

    #[test]
    fn the_backup_each_request_reads_from() {
        use RestorePhase::*;
        let backups = vec![
            backup("old-verified", 1, BackupPhase::Completed, true),
            backup("newest", 3, BackupPhase::Completed, false),
            backup("running", 4, BackupPhase::CapturingContent, false),
        ];
        let cases: Vec<(&str, RestoreRequest, Option<&str>)> = vec![
            ("a new request reads the backup it names", request(named("b1"), None, None), Some("b1")),
            ("a pending request too", request(named("b1"), Some(Pending), None), Some("b1")),
            ("a resolved request reads its resolved backup", request(named("b1"), Some(Restoring), Some("b1")), Some("b1")),
            ("the resolved backup wins over the spec", request(named("other"), Some(RunningHooks), Some("b1")), Some("b1")),
            ("a completed request reads nothing", request(named("b1"), Some(Completed), Some("b1")), None),
            ("a failed request reads nothing", request(named("b1"), Some(Failed), Some("b1")), None),
            ("Latest, unresolved: the newest Completed", request(of_policy(RestoreSelect::Latest), Some(Pending), None), Some("newest")),
            (
                "LatestVerified, unresolved: the newest verified",
                request(of_policy(RestoreSelect::LatestVerified), None, None),
                Some("old-verified"),
            ),
            (
                "a policy without backups resolves to nothing",
                request(RestoreSource { policy_name: Some("none".into()), ..Default::default() }, None, None),
                None,
            ),
        ];
        for (name, request, want) in cases {
            assert_eq!(restore_source(&request, &backups).as_deref(), want, "{name}");
        }
    }

    #[test]
    fn the_accepted_spec_is_the_source_that_counts() {
        let mut r = request(named("edited"), Some(RestorePhase::Pending), None);
        if let Some(status) = r.status.as_mut() {
            status.accepted_spec = Some(RestoreRequestSpec { source: named("accepted"), ..r.spec.clone() });
        }
        assert_eq!(restore_source(&r, &[]).as_deref(), Some("accepted"));
    }

    #[test]
    fn sources_of_many_requests_are_collected_once() {
        let requests = vec![
            request(named("b1"), Some(RestorePhase::Restoring), Some("b1")),
            request(named("b1"), None, None),
            request(named("b2"), Some(RestorePhase::Completed), Some("b2")),
            request(named("b3"), Some(RestorePhase::RunningHooks), Some("b3")),
        ];
        let got: Vec<String> = restore_sources(&requests, &[]).into_iter().collect();
        assert_eq!(got, ["b1", "b3"]);
    }
}
