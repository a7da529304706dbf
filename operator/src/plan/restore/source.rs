//! Where a restore's data comes from (`spec.source.from`): the restore point's VolumeSnapshots
//! and Secret copy in the cluster, or its exported copy in a restic repository.
//!
//! - `Snapshots`: the ArchiveBackup the request names ([`super::resolve`]), from the cluster.
//! - `Auto` (default): the same when every VolumeSnapshot (and the Secret copy, when restored)
//!   still exists; else its exported copy.
//! - `Repository`: the ArchiveBackup's exported copy (`status.export`), from the repository
//!   its policy exported to, or the one `source.repository` names.
//! - No ArchiveBackup at all (an empty namespace, a new cluster) and `source.repository` set:
//!   the restore point is found by name in the repository's manifests (see
//!   [`super::repository::choose`]), read through the request's reader pod.

use super::{repository, resolve, restore_items, RestoreObservation, RestoreStep};
use crate::api::{ArchiveBackup, SourceFrom};
use std::time::Duration;

/// The request's repository reader pod as the restore sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaderObs {
    /// It carries this request's label (`archivist.dev/restore`): the request made it.
    pub mine: bool,
    /// Its container runs.
    pub running: bool,
    /// It ended or cannot start, and why.
    pub failed: Option<String>,
}

/// The decision about a request's source.
#[derive(Debug, Clone)]
pub enum Source<'a> {
    /// Restore `backup` from `from` (`Snapshots` or `Repository`).
    Resolved {
        /// The restore point (an ArchiveBackup object, or the one read from the repository).
        backup: &'a ArchiveBackup,
        /// Where its data comes from.
        from: SourceFrom,
        /// From the repository: the Secret with its restic environment.
        repository_secret: Option<String>,
    },
    /// The next step towards finding it (reading the repository), or why it is refused.
    Step(RestoreStep),
}

/// Decides where a request in phase Pending restores from (see the module's documentation).
pub fn decide<'a>(obs: &RestoreObservation<'a>) -> Source<'a> {
    let spec = obs.spec;
    let from = spec.source.from.unwrap_or_default();
    let named = spec.source.repository.as_ref().map(|r| r.secret_name.clone());
    let resolved = |backup: &'a ArchiveBackup, from: SourceFrom, repository_secret: Option<String>| {
        if let Some(secret) = repository_secret.as_deref().filter(|s| !obs.secrets.contains(*s)) {
            return Source::Step(RestoreStep::Refuse(format!("the repository Secret {}/{secret} does not exist", obs.namespace)));
        }
        Source::Resolved { backup, from, repository_secret }
    };
    if let Some(backup) = obs.repository_backup {
        return resolved(backup, SourceFrom::Repository, named);
    }
    match resolve(spec, obs.namespace, obs.backups) {
        Ok(backup) => {
            let name = backup.metadata.name.clone().unwrap_or_default();
            let secret = named.clone().or_else(|| policy_repository(backup));
            let missing = missing_in_cluster(obs, backup);
            match from {
                SourceFrom::Snapshots => resolved(backup, SourceFrom::Snapshots, None),
                SourceFrom::Auto if missing.is_empty() => resolved(backup, SourceFrom::Snapshots, None),
                SourceFrom::Auto | SourceFrom::Repository if repository::exported(backup) => match secret {
                    Some(secret) => resolved(backup, SourceFrom::Repository, Some(secret)),
                    None => Source::Step(RestoreStep::Refuse(format!(
                        "spec.source.repository: ArchiveBackup {name} was exported, but its policy copy names no repository Secret; name it in spec.source.repository.secretName"
                    ))),
                },
                _ if named.is_some() => catalog(obs),
                SourceFrom::Auto => Source::Step(RestoreStep::Refuse(format!(
                    "ArchiveBackup {name} cannot be restored: {} gone from the cluster, and it was not exported to a repository",
                    missing.join(", ")
                ))),
                SourceFrom::Repository => Source::Step(RestoreStep::Refuse(format!(
                    "spec.source.from: ArchiveBackup {name} was not exported to a repository (status.export is not Exported)"
                ))),
            }
        }
        Err(why) if from != SourceFrom::Snapshots && named.is_some() && !why.starts_with("spec.target.namespace") => catalog(obs),
        Err(why) => Source::Step(RestoreStep::Refuse(why)),
    }
}

/// The repository Secret of the policy copy the backup keeps.
fn policy_repository(backup: &ArchiveBackup) -> Option<String> {
    let policy = backup.status.as_ref()?.policy_spec.as_ref()?;
    policy.export.as_ref().map(|e| e.repository_secret.clone())
}

/// The cluster objects a snapshot restore of `backup` needs that are gone: VolumeSnapshots,
/// and the Secret copy when it is restored. Empty when every one exists (or when the items
/// cannot be planned: the restore itself then says why).
fn missing_in_cluster(obs: &RestoreObservation<'_>, backup: &ArchiveBackup) -> Vec<String> {
    let Ok(items) = restore_items(obs.spec, backup, "", obs.name, SourceFrom::Snapshots) else { return Vec::new() };
    let mut missing: Vec<String> = items
        .iter()
        .filter_map(|item| match &item.kind {
            super::ItemKind::Volume { from: super::DataSource::Cluster(snapshot), .. } | super::ItemKind::Sql { from: super::DataSource::Cluster(snapshot), .. } => {
                (!obs.volume_snapshots.contains(snapshot)).then(|| format!("VolumeSnapshot {snapshot}"))
            }
            super::ItemKind::Secret { from: super::DataSource::Cluster(copy) } => (!obs.secrets.contains(copy)).then(|| format!("Secret {copy}")),
            _ => None,
        })
        .collect();
    missing.dedup();
    missing
}

/// Finding the restore point in the repository: start the reader pod, wait for it, then read.
fn catalog<'a>(obs: &RestoreObservation<'a>) -> Source<'a> {
    let secret = obs.spec.source.repository.as_ref().map(|r| r.secret_name.clone()).unwrap_or_default();
    if !obs.secrets.contains(&secret) {
        return Source::Step(RestoreStep::Refuse(format!(
            "spec.source.repository.secretName: Secret {}/{secret} does not exist",
            obs.namespace
        )));
    }
    Source::Step(match reader_ready(obs) {
        Ok(true) => match obs.repository_locked {
            Some(holder) => RestoreStep::Wait { what: format!("waiting: {holder}; the repository is locked"), requeue: Some(Duration::from_secs(10)) },
            None => RestoreStep::ReadRepository,
        },
        Ok(false) => RestoreStep::Wait { what: "waiting for the repository reader pod to start".into(), requeue: Some(Duration::from_secs(2)) },
        Err(RestoreStep::Fail(why)) => RestoreStep::Refuse(why),
        Err(step) => step,
    })
}

/// Whether the reader pod runs: `Ok(true)` it does, `Ok(false)` it is starting, or the step
/// to take: start it (`StartReader`), or fail (it failed, or the name belongs to another pod).
pub fn reader_ready(obs: &RestoreObservation<'_>) -> Result<bool, RestoreStep> {
    let pod = repository::reader_pod_name(obs.name);
    match &obs.reader {
        None => {
            let secret = obs
                .status
                .repository
                .as_ref()
                .map(|r| r.secret_name.clone())
                .or_else(|| obs.spec.source.repository.as_ref().map(|r| r.secret_name.clone()))
                .unwrap_or_default();
            Err(RestoreStep::StartReader { secret })
        }
        Some(reader) if !reader.mine => Err(RestoreStep::Fail(format!("Pod {}/{pod} exists and was not made by this request", obs.namespace))),
        Some(ReaderObs { failed: Some(why), .. }) => Err(RestoreStep::Fail(format!("the repository reader pod {pod} failed: {why}"))),
        Some(reader) => Ok(reader.running),
    }
}
