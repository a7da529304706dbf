//! The export of a Completed run (`status.export`): `Pending` → `Running` (scratch PVCs
//! restored from the snapshots, then the export Job) → `Exported` or `Failed`. The rules it
//! uses (when a run is due, names, the Job's report) are in `plan::export`.

use super::{until, JobObs, RunObservation, Step, IDLE_REQUEUE};
use crate::api::ExportState;
use crate::plan::export::{export_claim_name, export_items, forget_ids, parse_results, EXPORT_TIMEOUT, FORGET_RETRY};
use std::collections::BTreeMap;

static NO_CLAIMS: BTreeMap<String, bool> = BTreeMap::new();

/// What the export of a run is decided from.
#[derive(Debug, Clone, Copy)]
pub struct ExportObs<'a> {
    /// The export's scratch PVCs by name, `true` when bound.
    pub claims: &'a BTreeMap<String, bool>,
    /// The export Job, if created.
    pub job: Option<&'a JobObs>,
    /// The export Job's log, read once it succeeded (its result lines).
    pub log: Option<&'a str>,
    /// While the export is `Pending`: the repository (`RESTIC_REPOSITORY` of the policy's
    /// `export.repositorySecret`, credentials removed), or why it cannot be read.
    pub repository: Option<&'a Result<String, String>>,
    /// While the export is `Pending`: what holds the repository now (another run exporting
    /// to it, or its maintenance Job), in words.
    pub other_export: Option<&'a str>,
    /// Whether retention pruned the run (annotation `archivist.dev/prune`).
    pub prune_requested: bool,
    /// The Job forgetting a pruned run's repository snapshots, if created.
    pub forget_job: Option<&'a JobObs>,
}

impl Default for ExportObs<'_> {
    fn default() -> Self {
        Self { claims: &NO_CLAIMS, job: None, log: None, repository: None, other_export: None, prune_requested: false, forget_job: None }
    }
}

/// The next step of a Completed run whose export is under way.
pub fn next(obs: &RunObservation<'_>) -> Step {
    let Some(export) = &obs.status.export else { return Step::Done };
    let export_obs = &obs.export;
    let in_flight = matches!(export.state, ExportState::Pending | ExportState::Running);
    if in_flight && obs.policy.and_then(|p| p.export.as_ref()).is_none() {
        return Step::FinishExport { outcome: Err("the run's copy of its policy has no export".into()) };
    }
    match export.state {
        ExportState::Pending => match export_obs.repository {
            // One export per repository at a time (restic's locks would allow more, but one
            // mover at a time keeps a repository's load and lock contention bounded), and none
            // while its maintenance (`restic prune`) holds the exclusive lock.
            Some(Ok(_)) if export_obs.other_export.is_some() => Step::Wait {
                what: format!("waiting: {}; one export or maintenance per repository at a time", export_obs.other_export.unwrap_or_default()),
                requeue: Some(IDLE_REQUEUE),
            },
            Some(Ok(repository)) => Step::BeginExport { repository: repository.clone() },
            Some(Err(problem)) => Step::FinishExport { outcome: Err(problem.clone()) },
            None => Step::Wait { what: "the export's repository Secret to be read".into(), requeue: Some(IDLE_REQUEUE) },
        },
        ExportState::Running => running(obs),
        ExportState::Exported | ExportState::Failed => Step::Done,
    }
}

/// The next step of a finished run that retention pruned (`archivist.dev/prune`), once no
/// export is under way: forget its repository snapshots, then delete it. A failed forget is
/// recorded and tried again after [`FORGET_RETRY`]; the restore point stays until then.
pub fn pruning(obs: &RunObservation<'_>) -> Step {
    let ids = match forget_ids(obs.status) {
        Ok(ids) => ids,
        // An id that is not restic's is never passed on: reported, and looked at again later.
        Err(problem) => {
            return match retry_due(obs) {
                (true, _) => Step::ForgetFailed { message: problem },
                (false, wait) => wait,
            }
        }
    };
    if ids.is_empty() {
        return Step::DeletePruned { forgotten: Vec::new() };
    }
    match obs.export.forget_job {
        Some(JobObs::Succeeded) => Step::DeletePruned { forgotten: ids },
        Some(JobObs::Failed { message }) => Step::ForgetFailed { message: format!("the forget Job failed: {message}") },
        Some(JobObs::Running) => Step::Wait { what: "the forget Job is running".into(), requeue: Some(IDLE_REQUEUE) },
        None => match retry_due(obs) {
            (true, _) => Step::CreateForgetJob(ids),
            (false, wait) => wait,
        },
    }
}

/// Whether a forget may be tried now, and else how to wait: after a failure, only
/// [`FORGET_RETRY`] later.
fn retry_due(obs: &RunObservation<'_>) -> (bool, Step) {
    let failed_at = obs.status.export.as_ref().and_then(|e| e.forget_failed_at);
    let retry_at = failed_at.map(|at| at + chrono::Duration::from_std(FORGET_RETRY).unwrap_or_else(|_| chrono::Duration::minutes(10)));
    match retry_at {
        Some(at) if obs.now < at => (
            false,
            Step::Wait { what: format!("forgetting the repository snapshots failed; retrying at {}", at.to_rfc3339()), requeue: Some(until(obs.now, Some(at), FORGET_RETRY)) },
        ),
        _ => (true, Step::Done),
    }
}

fn running(obs: &RunObservation<'_>) -> Step {
    let export_obs = &obs.export;
    match export_obs.job {
        Some(JobObs::Succeeded) => {
            let outcome = match export_obs.log {
                Some(log) => parse_results(log, &export_items(obs.plan, obs.status.secret_copy.as_deref())),
                None => Err("the export Job succeeded, but its log could not be read".into()),
            };
            return Step::FinishExport { outcome };
        }
        Some(JobObs::Failed { message }) => return Step::FinishExport { outcome: Err(format!("the export Job failed: {message}")) },
        Some(JobObs::Running) | None => {}
    }
    let deadline = obs
        .status
        .export
        .as_ref()
        .and_then(|e| e.started_at)
        .map(|at| at + chrono::Duration::from_std(EXPORT_TIMEOUT).unwrap_or_else(|_| chrono::Duration::hours(12)));
    if deadline.is_some_and(|at| obs.now >= at) {
        return Step::FinishExport {
            outcome: Err(format!("the export did not finish within {} hours", EXPORT_TIMEOUT.as_secs() / 3600)),
        };
    }
    if export_obs.job.is_some() {
        return Step::Wait { what: "the export Job is running".into(), requeue: Some(until(obs.now, deadline, IDLE_REQUEUE)) };
    }
    let missing: Vec<usize> = (0..obs.plan.len()).filter(|i| !export_obs.claims.contains_key(&export_claim_name(obs.backup_name, *i))).collect();
    if !missing.is_empty() {
        return Step::CreateExportClaims(missing);
    }
    let unbound = export_obs.claims.values().filter(|bound| !**bound).count();
    if unbound > 0 {
        // Their binding wakes the run (`controllers::caches::RunChildren`).
        return Step::Wait { what: format!("{unbound} export scratch PVC(s) to bind"), requeue: Some(until(obs.now, deadline, IDLE_REQUEUE)) };
    }
    Step::CreateExportJob
}
