//! Observe: everything the restore state machine decides from.

use super::super::error::{Context as _, Error};
use super::super::Context;
use crate::api::{ArchiveBackup, RestorePhase, RestoreRequest, RestoreRequestSpec, RestoreRequestStatus, TargetKind, TargetRef};
use crate::kube::snapshot::VolumeSnapshot;
use crate::plan::restore::repository::reader_pod_name;
use crate::plan::restore::source::ReaderObs;
use crate::kube::dump;
use crate::kube::redact::LazyRedactor;
use crate::kube::restore::RESTORE;
use crate::kube::workload;
use crate::plan::backup::JobObs;
use crate::plan::claim::{ClaimObs as WorkloadClaim, Holder};
use crate::plan::restore::ownership::{copy_name, ObjectObs};
use crate::plan::restore::{self, shape, ClaimObs, RestoreObservation, RestoreStep};
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use std::collections::{BTreeMap, BTreeSet};

/// What was observed for one request.
pub struct Observed {
    /// The request's namespace.
    pub namespace: String,
    /// The request's name.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// When.
    pub now: DateTime<Utc>,
    /// The spec the restore follows (accepted copy once started).
    pub spec: RestoreRequestSpec,
    /// The recorded status.
    pub status: RestoreRequestStatus,
    /// ArchiveBackups of the namespace.
    pub backups: Vec<ArchiveBackup>,
    /// PVCs of the namespace.
    pub claims: BTreeMap<String, PersistentVolumeClaim>,
    /// PV reclaim policies.
    pub volumes: BTreeMap<String, String>,
    /// The request's Jobs.
    pub jobs: BTreeMap<String, JobObs>,
    /// Secret names of the namespace.
    pub secrets: BTreeSet<String>,
    /// The target of the resolved backup's policy.
    pub target_ref: Option<TargetRef>,
    /// (replicas, live pods) of the target.
    pub target: Option<(i32, u32)>,
    /// The claim on the target as this request sees it.
    pub target_claim: WorkloadClaim,
    /// The target's resourceVersion when read: the precondition of this request's claim.
    pub target_version: Option<String>,
    /// The object named like the side-by-side copy, when it exists.
    pub copy: Option<ObjectObs>,
    /// The ConfigMap named like the mapping ConfigMap, when it exists.
    pub mapping: Option<ObjectObs>,
    /// Names of the namespace's VolumeSnapshots (read only while the request is Pending).
    pub volume_snapshots: BTreeSet<String>,
    /// The pod named like the request's repository reader, when it exists.
    pub reader: Option<ReaderObs>,
    /// The restore point read from the repository (`status.repository.manifest`).
    pub repository_backup: Option<ArchiveBackup>,
    /// A prune or forget Job of the repository Secret that runs, in words.
    pub repository_locked: Option<String>,
    claim_obs: BTreeMap<String, ClaimObs>,
}

/// What the restore needs of its reader pod.
fn reader_obs(pod: &Pod, request: &str) -> ReaderObs {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    let running = phase == "Running" && status.and_then(|s| s.container_statuses.as_ref()).is_some_and(|c| c.iter().all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some())));
    let waiting = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
        .find(|w| matches!(w.reason.as_deref(), Some("CreateContainerConfigError" | "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName")))
        .map(|w| format!("{}: {}", w.reason.clone().unwrap_or_default(), w.message.clone().unwrap_or_default()));
    let ended = matches!(phase, "Succeeded" | "Failed").then(|| format!("it ended ({phase}) {}", status.and_then(|s| s.message.clone()).unwrap_or_default().trim().to_string()));
    ReaderObs {
        mine: pod.labels().get(RESTORE).map(String::as_str) == Some(request),
        running,
        failed: waiting.or(ended).map(|w| w.trim().to_string()),
    }
}

/// What the ownership rules need of an object ([`ObjectObs`]).
fn object_obs(meta: &ObjectMeta) -> ObjectObs {
    ObjectObs {
        uid: meta.uid.clone().unwrap_or_default(),
        restored_by: meta.labels.as_ref().and_then(|l| l.get(RESTORE)).cloned(),
        owner_uids: meta.owner_references.iter().flatten().map(|o| o.uid.clone()).collect(),
    }
}

/// The Secrets whose values a restore's Job logs must never show: those the backup's policy
/// referenced (SQL credentials, `master.secrets`), the backup's copy of the master secrets,
/// and the SQL target's credentials.
fn referenced_secrets<'a>(spec: &'a RestoreRequestSpec, backup: Option<&'a ArchiveBackup>) -> Vec<&'a str> {
    let status = backup.and_then(|b| b.status.as_ref());
    let mut names: Vec<&str> = status.and_then(|s| s.policy_spec.as_deref()).map(dump::referenced_secrets).unwrap_or_default();
    names.extend(status.and_then(|s| s.secret_copy.as_deref()));
    names.extend(spec.sql_target.as_ref().and_then(|t| t.credentials_secret.as_deref()));
    names
}

/// Reads everything a restore step may need.
pub async fn observe(request: &RestoreRequest, ctx: &Context) -> Result<Observed, Error> {
    let namespace = request.namespace().ok_or_else(|| Error::MissingNamespace(request.name_any()))?;
    let name = request.name_any();
    let uid = request.uid().unwrap_or_default();
    let client = &ctx.client;
    let status = request.status.clone().unwrap_or_default();
    let spec = status.accepted_spec.clone().unwrap_or_else(|| request.spec.clone());
    let backups = Api::<ArchiveBackup>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default())
        .await
        .during(|| format!("failed to list ArchiveBackups in {namespace}"))?
        .items;
    let claims: BTreeMap<String, PersistentVolumeClaim> = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default())
        .await
        .during(|| format!("failed to list PVCs in {namespace}"))?
        .items
        .into_iter()
        .map(|c| (c.name_any(), c))
        .collect();
    let claim_obs = claims
        .iter()
        .map(|(n, c)| {
            let status = c.status.as_ref();
            (
                n.clone(),
                ClaimObs {
                    bound: status.and_then(|s| s.phase.as_deref()) == Some("Bound"),
                    volume: c.spec.as_ref().and_then(|s| s.volume_name.clone()),
                    restored_by: c.labels().get(RESTORE).cloned(),
                    deleting: c.metadata.deletion_timestamp.is_some(),
                    shape: shape::record_of(c),
                },
            )
        })
        .collect();
    let mut volumes = BTreeMap::new();
    let pv_api = Api::<PersistentVolume>::all(client.clone());
    if spec.target.mode == crate::api::RestoreMode::InPlace {
        for volume in claims.values().filter_map(|c| c.spec.as_ref().and_then(|s| s.volume_name.clone())) {
            if let Some(pv) = pv_api.get_opt(&volume).await.during(|| format!("failed to read PersistentVolume {volume}"))? {
                let policy = pv.spec.and_then(|s| s.persistent_volume_reclaim_policy).unwrap_or_default();
                volumes.insert(volume, policy);
            }
        }
    }
    let secrets = Api::<Secret>::namespaced(client.clone(), &namespace)
        .list_metadata(&ListParams::default())
        .await
        .during(|| format!("failed to list Secrets in {namespace}"))?
        .items
        .into_iter()
        .map(|s| s.name_any())
        .collect();
    // A manifest that no longer reads as an ArchiveBackup is treated as absent: the request
    // reads the repository again (or, once Restoring, fails: the backup is gone).
    let repository_backup: Option<ArchiveBackup> =
        status.repository.as_ref().and_then(|r| r.manifest.clone()).and_then(|m| serde_json::from_value(m).ok());
    let resolved = repository_backup
        .as_ref()
        .or_else(|| status.resolved_backup.as_ref().and_then(|b| backups.iter().find(|x| x.metadata.name.as_ref() == Some(b))))
        .or_else(|| restore::resolve(&spec, &namespace, &backups).ok());
    let mut hidden = referenced_secrets(&spec, resolved);
    hidden.extend(status.repository.as_ref().map(|r| r.secret_name.as_str()));
    hidden.extend(spec.source.repository.as_ref().map(|r| r.secret_name.as_str()));
    let redactor = LazyRedactor::new(client, &namespace, hidden);
    let jobs = crate::kube::jobs::list(client, &namespace, &format!("{RESTORE}={name}"), &redactor)
        .await
        .during(|| format!("failed to list Jobs of {namespace}/{name} (or, for a failed one, its Secrets to redact)"))?;
    let target_ref = resolved.and_then(|b| b.status.as_ref()).and_then(|s| s.policy_spec.as_ref()).map(|p| p.target.clone());
    let mapping = Api::<ConfigMap>::namespaced(client.clone(), &namespace)
        .get_metadata_opt(&restore::mapping_config_map_name(&name))
        .await
        .during(|| format!("failed to read ConfigMap {namespace}/{}", restore::mapping_config_map_name(&name)))?
        .map(|m| object_obs(&m.metadata));
    let mut target_claim = WorkloadClaim::Free;
    let mut target_version = None;
    let (target, copy) = match &target_ref {
        Some(t) => {
            let read = workload::observe(client, &namespace, t)
                .await
                .during(|| format!("failed to read target {:?} {namespace}/{}", t.kind, t.name))?;
            if let Some(w) = &read {
                target_claim = WorkloadClaim::of(w.claim_holder(), &Holder::restore(&namespace, &name));
                target_version = w.resource_version.clone();
            }
            let observed = read.map(|w| (w.obs.replicas, w.obs.live_pods));
            let suffix = status.name_suffix.clone().unwrap_or_else(|| restore::suffix(&spec, &uid));
            let copy = copy_name(t, &suffix);
            let found = match t.kind {
                TargetKind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), &namespace).get_metadata_opt(&copy).await.map(|m| m.map(|m| object_obs(&m.metadata))),
                TargetKind::Deployment => Api::<Deployment>::namespaced(client.clone(), &namespace).get_metadata_opt(&copy).await.map(|m| m.map(|m| object_obs(&m.metadata))),
            }
            .during(|| format!("failed to read {namespace}/{copy}"))?;
            (observed, found)
        }
        None => (None, None),
    };
    // Only `from: Auto` asks whether every snapshot still exists.
    let volume_snapshots = if status.phase.is_none_or(|p| p == RestorePhase::Pending) && spec.source.from.unwrap_or_default() == crate::api::SourceFrom::Auto {
        Api::<VolumeSnapshot>::namespaced(client.clone(), &namespace)
            .list_metadata(&ListParams::default())
            .await
            .during(|| format!("failed to list VolumeSnapshots in {namespace}"))?
            .items
            .into_iter()
            .map(|s| s.name_any())
            .collect()
    } else {
        BTreeSet::new()
    };
    // The reader pod exists only for a request that reads a repository: no request otherwise.
    let reader = if spec.source.repository.is_some() || status.repository.is_some() {
        Api::<Pod>::namespaced(client.clone(), &namespace)
            .get_opt(&reader_pod_name(&name))
            .await
            .during(|| format!("failed to read Pod {namespace}/{}", reader_pod_name(&name)))?
            .map(|pod| reader_obs(&pod, &name))
    } else {
        None
    };
    // While the request reads the repository (finding the restore point, or restoring from
    // it): one list of the Secret's maintenance Jobs.
    let reading = match status.phase.unwrap_or(RestorePhase::Pending) {
        RestorePhase::Pending => spec.source.repository.as_ref().map(|r| r.secret_name.clone()).filter(|_| reader.is_some()),
        RestorePhase::Restoring if status.resolved_from == Some(crate::api::SourceFrom::Repository) => status.repository.as_ref().map(|r| r.secret_name.clone()),
        _ => None,
    };
    let repository_locked = match reading {
        Some(secret) => crate::kube::export::running_exclusive_job(client, &namespace, &secret)
            .await
            .during(|| format!("failed to list the maintenance Jobs of {namespace}/{secret}"))?
            .map(|job| format!("the maintenance Job {job} of the repository of Secret {secret} runs")),
        None => None,
    };
    Ok(Observed {
        namespace,
        name,
        uid,
        now: Utc::now(),
        spec,
        status,
        backups,
        claims,
        volumes,
        jobs,
        secrets,
        target_ref,
        target,
        target_claim,
        target_version,
        copy,
        mapping,
        volume_snapshots,
        reader,
        repository_backup,
        repository_locked,
        claim_obs,
    })
}

impl Observed {
    /// Decides the next step (pure: `plan::restore::next`).
    pub fn next_step(&self) -> RestoreStep {
        restore::next(&RestoreObservation {
            now: self.now,
            name: &self.name,
            namespace: &self.namespace,
            uid: &self.uid,
            spec: &self.spec,
            status: &self.status,
            backups: &self.backups,
            claims: &self.claim_obs,
            volumes: &self.volumes,
            jobs: &self.jobs,
            secrets: &self.secrets,
            target: self.target,
            target_claim: &self.target_claim,
            copy: self.copy.clone(),
            mapping: self.mapping.clone(),
            volume_snapshots: &self.volume_snapshots,
            reader: self.reader.clone(),
            repository_backup: self.repository_backup.as_ref(),
            repository_locked: self.repository_locked.as_deref(),
        })
    }
}
