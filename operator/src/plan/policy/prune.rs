//! Maintenance of an export's repository (`export.pruneSchedule`): when a `restic prune` Job
//! is due, and how the last one ended. Pure: every input is an argument.
//!
//! Rules:
//! - Only a policy with `export`; the schedule is `pruneSchedule` (default weekly, `0 5 * *
//!   0`) in the policy's `timeZone`. Missed times start one prune, not one each
//!   ([`super::super::schedule::due_runs`]).
//! - Never while a run of the policy exports or forgets its repository snapshots: `restic
//!   prune` takes the repository's exclusive lock, which would fail them. A due prune starts
//!   once they are done. (The other way round, an export waits while a prune Job of its
//!   repository Secret runs: `plan::backup::exporting`.)
//! - One prune at a time: a Running one is followed until its Job ends; a Job that vanished
//!   counts as failed.
//! - The Job is named by the repository Secret and the scheduled time: policies sharing the
//!   Secret (and the schedule) share the Job.

use super::super::backup::JobObs;
use super::super::names::{fit, MAX_LABEL_NAME};
use super::super::schedule::{due_runs, Schedule};
use crate::api::{BackupPolicySpec, PruneState, PruneStatus};
use chrono::{DateTime, Utc};

/// The maintenance schedule when `export.pruneSchedule` is not set: Sundays at 05:00.
pub const DEFAULT_PRUNE_SCHEDULE: &str = "0 5 * * 0";

/// The label on a maintenance Job: `prune`.
pub const MAINTENANCE_LABEL: &str = "archivist.dev/maintenance";
/// The label on a maintenance Job naming its repository Secret.
pub const REPOSITORY_SECRET_LABEL: &str = "archivist.dev/repository-secret";

/// The prune Job of repository Secret `secret` for the scheduled time `at`.
pub fn prune_job_name(secret: &str, at: DateTime<Utc>) -> String {
    fit(&format!("{secret}-prune-{}", at.format("%Y%m%d%H%M")), MAX_LABEL_NAME)
}

/// What the maintenance is decided from.
#[derive(Debug, Clone, Copy)]
pub struct PruneObs<'a> {
    /// The current time.
    pub now: DateTime<Utc>,
    /// `metadata.creationTimestamp` of the policy (the schedule counts from it at first).
    pub created: DateTime<Utc>,
    /// The policy's spec.
    pub spec: &'a BackupPolicySpec,
    /// The recorded maintenance (`status.prune`).
    pub recorded: Option<&'a PruneStatus>,
    /// The recorded prune Job, as observed (only read while it is Running).
    pub job: Option<&'a JobObs>,
    /// A run of the policy exports, or forgets its repository snapshots.
    pub repository_in_use: bool,
}

/// The maintenance decision.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneDecision {
    /// The prune Job to create now: its name and the scheduled time.
    pub start: Option<(String, DateTime<Utc>)>,
    /// `status.prune` to record.
    pub status: Option<PruneStatus>,
    /// `status.nextPruneTime`.
    pub next: Option<DateTime<Utc>>,
}

/// Decides the maintenance of a policy's repository.
pub fn decide(obs: &PruneObs<'_>) -> PruneDecision {
    let mut status = obs.recorded.cloned();
    let Some(export) = &obs.spec.export else { return PruneDecision { start: None, status, next: None } };
    if let Some(recorded) = status.as_mut().filter(|s| s.state == PruneState::Running) {
        match obs.job {
            Some(JobObs::Running) => {}
            Some(JobObs::Succeeded) => {
                recorded.state = PruneState::Succeeded;
                recorded.finished_at = Some(obs.now);
            }
            Some(JobObs::Failed { message }) => {
                recorded.state = PruneState::Failed;
                recorded.finished_at = Some(obs.now);
                recorded.message = Some(message.clone());
            }
            None => {
                recorded.state = PruneState::Failed;
                recorded.finished_at = Some(obs.now);
                recorded.message = Some(format!("the prune Job {} is gone before it finished", recorded.job));
            }
        }
    }
    let expression = export.prune_schedule.as_deref().unwrap_or(DEFAULT_PRUNE_SCHEDULE);
    let Ok(schedule) = Schedule::parse(expression, &obs.spec.time_zone) else { return PruneDecision { start: None, status, next: None } };
    let due = due_runs(&schedule, status.as_ref().map(|s| s.scheduled_at), obs.created, obs.now);
    let running = status.as_ref().is_some_and(|s| s.state == PruneState::Running);
    let start = match due.run_now {
        Some(at) if !running && !obs.repository_in_use => Some((prune_job_name(&export.repository_secret, at), at)),
        _ => None,
    };
    if let Some((job, at)) = &start {
        status = Some(PruneStatus { job: job.clone(), scheduled_at: *at, state: PruneState::Running, finished_at: None, message: None });
    }
    // A due prune that waits shows as due now.
    let next = if due.run_now.is_some() && start.is_none() { due.run_now } else { due.next };
    PruneDecision { start, status, next }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).single().expect("time")
    }

    fn spec(export: bool) -> BackupPolicySpec {
        let mut spec: BackupPolicySpec = serde_json::from_value(serde_json::json!({"target": {"kind": "StatefulSet", "name": "a"}, "stores": []})).expect("spec");
        if export {
            spec.export = Some(serde_json::from_value(serde_json::json!({"repositorySecret": "repo", "pruneSchedule": "0 5 * * *"})).expect("export"));
        }
        spec
    }

    fn recorded(state: PruneState, at: DateTime<Utc>) -> PruneStatus {
        PruneStatus { job: prune_job_name("repo", at), scheduled_at: at, state, finished_at: None, message: None }
    }

    #[test]
    fn a_due_prune_starts_when_the_repository_is_free() {
        let with = spec(true);
        let without = spec(false);
        let done = recorded(PruneState::Succeeded, t(10, 5));
        let running = recorded(PruneState::Running, t(11, 5));
        let failed_job = JobObs::Failed { message: "Fatal: unable to create lock".into() };
        // (case, spec, recorded, job, in use, now, want start, want state, want next)
        let cases: Vec<(&str, &BackupPolicySpec, Option<&PruneStatus>, Option<&JobObs>, bool, DateTime<Utc>, Option<DateTime<Utc>>, Option<PruneState>, Option<DateTime<Utc>>)> = vec![
            ("no export", &without, None, None, false, t(11, 6), None, None, None),
            ("first time: due since the policy was made", &with, None, None, false, t(11, 6), Some(t(11, 5)), Some(PruneState::Running), Some(t(12, 5))),
            ("not due yet", &with, Some(&done), None, false, t(11, 4), None, Some(PruneState::Succeeded), Some(t(11, 5))),
            ("due", &with, Some(&done), None, false, t(11, 5), Some(t(11, 5)), Some(PruneState::Running), Some(t(12, 5))),
            ("missed days start one", &with, Some(&done), None, false, t(14, 9), Some(t(14, 5)), Some(PruneState::Running), Some(t(15, 5))),
            ("due, the repository is in use: waits", &with, Some(&done), None, true, t(11, 6), None, Some(PruneState::Succeeded), Some(t(11, 5))),
            ("running", &with, Some(&running), Some(&JobObs::Running), false, t(11, 6), None, Some(PruneState::Running), Some(t(12, 5))),
            ("succeeded", &with, Some(&running), Some(&JobObs::Succeeded), false, t(11, 6), None, Some(PruneState::Succeeded), Some(t(12, 5))),
            ("failed", &with, Some(&running), Some(&failed_job), false, t(11, 6), None, Some(PruneState::Failed), Some(t(12, 5))),
            ("its Job vanished", &with, Some(&running), None, false, t(11, 6), None, Some(PruneState::Failed), Some(t(12, 5))),
            ("one at a time: the next is due while one runs", &with, Some(&running), Some(&JobObs::Running), false, t(12, 6), None, Some(PruneState::Running), Some(t(12, 5))),
        ];
        for (case, spec, recorded, job, in_use, now, start, state, next) in cases {
            let got = decide(&PruneObs { now, created: t(1, 0), spec, recorded, job, repository_in_use: in_use });
            assert_eq!(got.start.as_ref().map(|s| s.1), start, "{case}");
            if let Some((name, at)) = &got.start {
                assert_eq!(*name, prune_job_name("repo", *at), "{case}");
            }
            assert_eq!(got.status.as_ref().map(|s| s.state), state, "{case}");
            assert_eq!(got.next, next, "{case}");
        }
        let failed = decide(&PruneObs { now: t(11, 6), created: t(1, 0), spec: &with, recorded: Some(&running), job: Some(&failed_job), repository_in_use: false });
        let status = failed.status.expect("status");
        assert_eq!((status.finished_at, status.message.as_deref()), (Some(t(11, 6)), Some("Fatal: unable to create lock")));
    }

    #[test]
    fn the_job_name_fits_and_is_per_secret_and_time() {
        assert_eq!(prune_job_name("archive-repo", t(29, 5)), "archive-repo-prune-202611290500");
        let long = "s".repeat(70);
        assert!(prune_job_name(&long, t(29, 5)).len() <= MAX_LABEL_NAME);
        assert_ne!(prune_job_name(&long, t(29, 5)), prune_job_name(&long, t(30, 5)));
    }
}
