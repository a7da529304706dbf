//! What a restore drill makes and removes: its SideBySide RestoreRequest, the evidence on the
//! drilled ArchiveBackup, and the teardown of what the request restored.

use super::restore::RESTORE;
use crate::api::{
    ArchiveBackup, BackupPolicy, Component, ConditionStatus, DrillState, DrillStatus, RestoreMode, RestoreRequest, RestoreRequestSpec,
    RestoreSource, RestoreTarget, VerificationReason, VerificationState, VerificationStatus,
};
use crate::plan::conditions;
use crate::plan::policy::drill::{self as plan, CopyPod, DRILL_LABEL};
use crate::api::SqlTarget;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client, Resource, ResourceExt};
use std::collections::BTreeMap;

/// The drill's RestoreRequest `name`: a SideBySide restore of every store of `backup` into
/// the policy's namespace, labelled `archivist.dev/drill: <policy>` and owned by the policy
/// (deleting the policy deletes it, and with it the copy). SQL dumps go into new databases
/// named with the drill's own suffix ([`plan::database_suffix`]), so a drill never meets the
/// databases of a user's restore or of another drill.
pub fn drill_request(policy: &BackupPolicy, name: &str, backup: &str, started: chrono::DateTime<chrono::Utc>) -> RestoreRequest {
    let spec = RestoreRequestSpec {
        source: RestoreSource { backup_name: Some(backup.to_string()), ..Default::default() },
        target: RestoreTarget { mode: RestoreMode::SideBySide, ..Default::default() },
        stores: Vec::new(),
        include_master: true,
        sql_target: Some(SqlTarget { host: None, port: None, credentials_secret: None, database_suffix: plan::database_suffix(started) }),
        post_restore: Vec::new(),
        ttl_seconds_after_finished: None,
    };
    let mut request = RestoreRequest::new(name, spec);
    request.metadata.namespace = policy.namespace();
    request.metadata.labels = Some(BTreeMap::from([(DRILL_LABEL.to_string(), policy.name_any())]));
    request.metadata.owner_references = policy.controller_owner_ref(&()).map(|r| vec![r]);
    request
}

/// The pods of the drill's copy: those labelled `archivist.dev/restore: <request>` (the
/// copy's pod template carries only that label).
pub async fn copy_pods(client: &Client, namespace: &str, request: &str) -> Result<Vec<CopyPod>, kube::Error> {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace).list(&ListParams::default().labels(&format!("{RESTORE}={request}"))).await?;
    Ok(pods
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let status = p.status.unwrap_or_default();
            let ready = status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
            CopyPod { name: p.metadata.name.unwrap_or_default(), ip: status.pod_ip, ready }
        })
        .collect())
}

/// The restored Secrets of `request` (their values are replaced in a probe's output).
pub fn restored_secrets(request: Option<&RestoreRequest>) -> Vec<String> {
    let mapping = request.and_then(|r| r.status.as_ref()).map(|s| s.mapping.as_slice()).unwrap_or_default();
    mapping.iter().filter(|m| m.component == Component::Secrets).map(|m| m.restored.clone()).collect()
}

/// What a teardown did.
#[derive(Debug, Default)]
pub struct TornDown {
    /// Whether it is over: false while a database is being dropped (nothing else was deleted
    /// yet, so the request and its restore Jobs, the record of what it created, stay).
    pub complete: bool,
    /// Databases whose drop Job failed: left as they are, named in an Event.
    pub databases_kept: Vec<String>,
    /// The PVCs and Secrets deleted (or already going).
    pub deleted: Vec<String>,
    /// Objects named in the mapping that carry no label of the request, or a request of the
    /// drill's name that the drill did not make: left alone.
    pub kept: Vec<String>,
}

/// Deletes what the drill's `request` restored, when it is a drill request of `policy`
/// (labelled `archivist.dev/drill: <policy>`; another request that took its name is kept, and
/// reported in [`TornDown::kept`]): first the databases its SQL restore Jobs created
/// ([`drop_databases`]; nothing else is deleted until those drops ended), then each PVC and
/// Secret its `status.mapping` names, and each dump PVC its SQL restore Jobs read, that also
/// carries the request's label `archivist.dev/restore` (both records of ownership), then the
/// request itself with its uid as precondition; the copy, the Jobs and the mapping ConfigMap
/// are owned by the request and go with it. `None` (the request is gone): nothing.
pub async fn tear_down(client: &Client, namespace: &str, policy: &str, request: Option<&RestoreRequest>) -> Result<TornDown, kube::Error> {
    let mut done = TornDown::default();
    let Some(request) = request else {
        done.complete = true;
        return Ok(done);
    };
    let name = request.name_any();
    if !plan::made_by_drill(request, policy) {
        // Someone else's request took the name: neither it nor what it restored is ours.
        done.kept.push(format!("RestoreRequest {name}"));
        done.complete = true;
        return Ok(done);
    }
    let Some(dump_claims) = drop_databases(client, namespace, &name, &mut done).await? else {
        return Ok(done);
    };
    let mapping = request.status.as_ref().map(|s| s.mapping.as_slice()).unwrap_or_default();
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace);
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    // What the mapping names, and the dump PVCs the SQL restore Jobs loaded their databases
    // from (named in those Jobs): Secrets or PVCs.
    let owned = mapping
        .iter()
        .map(|item| (item.component == Component::Secrets, item.restored.clone()))
        .chain(dump_claims.into_iter().map(|claim| (false, claim)));
    for (is_secret, object) in owned {
        let deleted = if is_secret { delete_restored_by(&secrets, &object, &name).await? } else { delete_restored_by(&claims, &object, &name).await? };
        match deleted {
            Some(true) => done.deleted.push(object),
            Some(false) => done.kept.push(object),
            None => {}
        }
    }
    let api = Api::<RestoreRequest>::namespaced(client.clone(), namespace);
    let params = DeleteParams { preconditions: request.uid().map(|uid| Preconditions { uid: Some(uid), resource_version: None }), ..DeleteParams::background() };
    match api.delete(&name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
        Err(e) => return Err(e),
    }
    done.complete = true;
    Ok(done)
}

/// Drops every database the request `request` created: one whose SQL restore Job (labelled
/// with the request) succeeded, since that script refuses a database that exists
/// ([`super::restore::restore_script`]); a database whose restore Job did not succeed may be
/// someone else's and is never dropped. One drop Job per database
/// ([`super::restore::drop_database_job`], owned by the request). Once every drop Job has
/// ended (a failed one is reported in `done.databases_kept`): the dump PVCs the restore Jobs
/// read, to delete with the rest; `None` while a drop runs.
async fn drop_databases(client: &Client, namespace: &str, request: &str, done: &mut TornDown) -> Result<Option<Vec<String>>, kube::Error> {
    use crate::plan::backup::JobObs;
    let api = Api::<Job>::namespaced(client.clone(), namespace);
    let jobs = api.list(&ListParams::default().labels(&format!("{RESTORE}={request}"))).await?.items;
    let by_name: BTreeMap<String, &Job> = jobs.iter().map(|j| (j.name_any(), j)).collect();
    let mut ended = true;
    for restore in jobs.iter().filter(|j| super::dump::observe_job(j) == JobObs::Succeeded) {
        let Some(drop) = super::restore::drop_database_job(restore) else { continue };
        let database = new_database(restore).unwrap_or_default();
        match by_name.get(&drop.name_any()) {
            None => {
                super::create_if_absent(&api, &drop).await?;
                ended = false;
            }
            Some(existing) => match super::dump::observe_job(existing) {
                JobObs::Succeeded => {}
                JobObs::Running => ended = false,
                JobObs::Failed { message } => done.databases_kept.push(format!("{database} ({message})")),
            },
        }
    }
    if !ended {
        return Ok(None);
    }
    let dump_claims = jobs
        .iter()
        .filter(|j| new_database(j).is_some())
        .flat_map(|j| j.spec.iter().flat_map(|s| s.template.spec.iter()).flat_map(|p| p.volumes.iter().flatten()))
        .filter_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.clone()))
        .collect::<std::collections::BTreeSet<_>>();
    Ok(Some(dump_claims.into_iter().collect()))
}

/// The `NEW_DATABASE` of an SQL restore Job.
fn new_database(job: &Job) -> Option<String> {
    let container = job.spec.as_ref()?.template.spec.as_ref()?.containers.first()?;
    container.env.iter().flatten().find(|e| e.name == "NEW_DATABASE").and_then(|e| e.value.clone())
}

/// Deletes `name` if it carries the label `archivist.dev/restore: <request>`, with its uid as
/// precondition: `Some(true)` deleted, `Some(false)` kept (not the request's), `None` absent.
async fn delete_restored_by<K>(api: &Api<K>, name: &str, request: &str) -> Result<Option<bool>, kube::Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let Some(object) = api.get_opt(name).await? else { return Ok(None) };
    if object.labels().get(RESTORE).map(String::as_str) != Some(request) {
        return Ok(Some(false));
    }
    let params = DeleteParams { preconditions: object.uid().map(|uid| Preconditions { uid: Some(uid), resource_version: None }), ..DeleteParams::background() };
    match api.delete(name, &params).await {
        Ok(_) => Ok(Some(true)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Some(false)),
        Err(e) => Err(e),
    }
}

/// Writes `drill` as the evidence on its backup (`status.drill`); a passed drill also marks
/// the backup's verification `Passed` (reason `Drill`) and its condition `Verified`. A failed
/// drill leaves an earlier verification as it is. Read fresh and written with its
/// resourceVersion (a conflict retries the reconcile). `false`: the backup is gone.
pub async fn record_on_backup(client: &Client, namespace: &str, drill: &DrillStatus) -> Result<bool, kube::Error> {
    let api = Api::<ArchiveBackup>::namespaced(client.clone(), namespace);
    let Some(backup) = api.get_opt(&drill.backup).await? else { return Ok(false) };
    let mut status = backup.status.clone().unwrap_or_default();
    let evidence = DrillStatus { torn_down: false, ..drill.clone() };
    status.drill = Some(evidence);
    if drill.state == DrillState::Passed {
        let now = drill.finished_at.unwrap_or_else(chrono::Utc::now);
        let message = format!("restore drill {} passed", drill.restore_request);
        status.verification = Some(VerificationStatus { state: VerificationState::Passed, finished_at: Some(now), message: Some(message.clone()), reason: Some(VerificationReason::Drill) });
        conditions::set(&mut status.conditions, "Verified", ConditionStatus::True, "DrillPassed", message, now, backup.metadata.generation);
    }
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": backup.resource_version()},
        "status": {"drill": status.drill, "verification": status.verification, "conditions": status.conditions},
    });
    match api.patch_status(&drill.backup, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}
