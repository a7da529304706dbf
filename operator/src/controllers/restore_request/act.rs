//! Act and record for restores: performs the step's one side effect idempotently, then
//! writes status (server-side apply) and publishes Events.

use super::super::error::{Context as _, Error};
use super::super::events::publish;
use super::super::Context;
use super::observe::Observed;
use crate::api::{
    ArchiveBackup, ArchiveBackupSpec, BackupReason, ConditionStatus, ReplacedClaim, RepositoryRestore, RestoreMapping, RestoreMode,
    RestorePhase, RestoreRequest, RestoreRequestStatus, RetainedVolume, SourceFrom, TargetKind, WorkloadCopy,
};
use crate::kube::{self as k, restore as build, workload, FIELD_MANAGER};
use crate::plan::claim::{ClaimObs as WorkloadClaim, Holder, WORKLOAD_CLAIMED};
use crate::plan::conditions;
use crate::plan::restore::ownership::{copy_name, kind_word};
use crate::plan::restore::repository::{self, reader_pod_name};
use crate::plan::restore::{self, shape, DataSource, ItemKind, RestoreItem, RestoreStep};
use crate::kube::redact::Redactor;
use crate::kube::repository as repo;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use std::collections::BTreeMap;
use std::time::Duration;

const SOON: Duration = Duration::from_millis(10);
/// How long a restore waits for a watch event before it looks again anyway: its pre-restore
/// backup, its target's workload and pods, its restored PVCs and its Jobs all wake it
/// (`controllers::caches`, and the controller's own watches); this is only a safety net.
const SAFETY_NET: Duration = Duration::from_secs(30);

/// Performs `step` and records the result.
pub async fn act(request: &RestoreRequest, ctx: &Context, obs: Observed, step: RestoreStep) -> Result<Action, Error> {
    let before = request.status.clone().unwrap_or_default();
    let mut status = before.clone();
    let now = obs.now;
    let generation = request.metadata.generation;
    check_spec_unchanged(ctx, request, &mut status, now).await;
    let items = planned_items(&obs);
    let action = match step {
        RestoreStep::Done => Action::await_change(),
        RestoreStep::Wait { what, requeue } => {
            status.message = Some(what);
            requeue.map_or_else(Action::await_change, Action::requeue)
        }
        RestoreStep::Refuse(why) => return refuse(ctx, request, &obs, status, "Refused", why).await,
        RestoreStep::Invalid(why) => return refuse(ctx, request, &obs, status, "InvalidSpec", why).await,
        RestoreStep::Accept { backup, from, repository_secret } => {
            let suffix = restore::suffix(&request.spec, &obs.uid);
            status.resolved_backup = Some(backup.clone());
            status.resolved_from = Some(from);
            status.accepted_spec = Some(request.spec.clone());
            status.accepted_generation = generation;
            status.name_suffix = Some(suffix.clone());
            status.phase = Some(RestorePhase::Restoring);
            status.start_time = Some(now);
            status.message = None;
            let resolved = obs.repository_backup.as_ref().or_else(|| obs.backups.iter().find(|b| b.metadata.name.as_deref() == Some(&backup)));
            if let (Some(secret), None) = (&repository_secret, &status.repository) {
                let repository = resolved.and_then(|b| b.status.as_ref()).and_then(|s| s.export.as_ref()).and_then(|e| e.repository.clone());
                status.repository = Some(RepositoryRestore { secret_name: secret.clone(), repository, manifest: None });
            }
            if let Some(b) = resolved {
                if let Ok(items) = restore::restore_items(&request.spec, b, &suffix, &obs.name, from) {
                    status.mapping = mapping(&items);
                }
            }
            let rebuild = resolved.and_then(|b| b.status.as_ref()).and_then(|s| s.indexes_included) == Some(false);
            let (cond, reason, message) = if rebuild {
                (ConditionStatus::True, "IndexesNotInBackup", "the backup holds no full-text index: rebuild it (postRestore hooks)")
            } else {
                (ConditionStatus::False, "IndexesRestored", "the backup holds the full-text indexes")
            };
            conditions::set(&mut status.conditions, "IndexRebuildRequired", cond, reason, message, now, generation);
            conditions::set(&mut status.conditions, "SpecAccepted", ConditionStatus::True, "Accepted", "the restore follows this spec", now, generation);
            conditions::set(&mut status.conditions, "Ready", ConditionStatus::False, "Restoring", format!("restoring {backup}"), now, generation);
            record(ctx, &obs, &status).await?;
            let source = match (&status.repository, from) {
                (Some(r), SourceFrom::Repository) => format!(" from repository {}", r.repository.clone().unwrap_or_else(|| format!("of Secret {}", r.secret_name))),
                _ => " from its snapshots".to_string(),
            };
            publish(ctx, request, EventType::Normal, "RestoreStarted", format!("restoring ArchiveBackup {backup}{source} ({:?})", request.spec.target.mode)).await;
            return Ok(Action::requeue(SOON));
        }
        RestoreStep::StartReader { secret } => {
            let name = reader_pod_name(&obs.name);
            let pod = repo::reader_pod(request, &name, &secret, reader_image(&obs).as_deref());
            let api = Api::<Pod>::namespaced(ctx.client.clone(), &obs.namespace);
            k::create_if_absent(&api, &pod).await.during(|| format!("failed to create repository reader Pod {}/{name}", obs.namespace))?;
            status.message = Some(format!("starting the repository reader pod {name}"));
            Action::requeue(Duration::from_secs(2))
        }
        RestoreStep::ReadRepository => return read_repository(ctx, request, &obs, status).await,
        RestoreStep::DeleteReader => {
            let name = reader_pod_name(&obs.name);
            let api = Api::<Pod>::namespaced(ctx.client.clone(), &obs.namespace);
            k::delete_if_present(&api, &name, &DeleteParams::default()).await.during(|| format!("failed to delete repository reader Pod {}/{name}", obs.namespace))?;
            Action::requeue(SOON)
        }
        RestoreStep::CreatePreRestoreBackup(name) => {
            status.pre_restore_backup = Some(name.clone());
            status.message = Some(format!("taking pre-restore backup {name}"));
            record(ctx, &obs, &status).await?;
            let policy = resolved_backup(&obs).map(|b| b.spec.policy_name.clone()).unwrap_or_default();
            let mut pre = ArchiveBackup::new(&name, ArchiveBackupSpec { policy_name: policy, reason: BackupReason::PreRestore, hold: false });
            pre.metadata.namespace = Some(obs.namespace.clone());
            pre.metadata.labels = Some(BTreeMap::from([(build::RESTORE.to_string(), obs.name.clone())]));
            let api = Api::<ArchiveBackup>::namespaced(ctx.client.clone(), &obs.namespace);
            k::create_if_absent(&api, &pre).await.during(|| format!("failed to create pre-restore ArchiveBackup {}/{name}", obs.namespace))?;
            return Ok(Action::requeue(SAFETY_NET));
        }
        RestoreStep::ClaimWorkload => {
            let target = obs.target_ref.clone().ok_or_else(|| Error::Inconsistent("no target to claim".into()))?;
            let holder = Holder::restore(&obs.namespace, &obs.name).to_string();
            workload::set_claim(&ctx.client, &obs.namespace, &target, Some(&holder), obs.target_version.as_deref())
                .await
                .during(|| format!("failed to claim {:?} {}/{}", target.kind, obs.namespace, target.name))?;
            let note = format!("the request holds archivist.dev/quiesced-by on {:?} {}", target.kind, target.name);
            conditions::set(&mut status.conditions, WORKLOAD_CLAIMED, ConditionStatus::True, "Claimed", note, now, generation);
            Action::requeue(SOON)
        }
        RestoreStep::WaitForWorkload { holder } => {
            let target = obs.target_ref.clone().ok_or_else(|| Error::Inconsistent("no target to wait for".into()))?;
            let what = format!("waiting: {:?} {} is quiesced by {holder}", target.kind, target.name);
            conditions::set(&mut status.conditions, WORKLOAD_CLAIMED, ConditionStatus::False, "HeldByAnother", what.clone(), now, generation);
            status.message = Some(what);
            Action::requeue(SAFETY_NET)
        }
        RestoreStep::RecordReplicas(replicas) => {
            status.original_replicas = Some(replicas);
            Action::requeue(SOON)
        }
        RestoreStep::ScaleToZero => {
            let target = obs.target_ref.clone().ok_or_else(|| Error::Inconsistent("no target to stop".into()))?;
            workload::scale(&ctx.client, &obs.namespace, &target, 0, Some(&crate::plan::claim::Holder::restore(&obs.namespace, &obs.name).to_string()), status.original_replicas)
                .await
                .during(|| format!("failed to stop {}/{}", obs.namespace, target.name))?;
            status.message = Some(format!("stopped {}; replacing its claims", target.name));
            Action::requeue(SAFETY_NET)
        }
        RestoreStep::RetainVolume { claim, volume } => {
            if !status.retained_volumes.iter().any(|r| r.volume == volume) {
                status.retained_volumes.push(RetainedVolume { claim: claim.clone(), volume: volume.clone() });
                record(ctx, &obs, &status).await?;
            }
            let patch = serde_json::json!({"spec": {"persistentVolumeReclaimPolicy": "Retain"}});
            Api::<PersistentVolume>::all(ctx.client.clone())
                .patch(&volume, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .during(|| format!("failed to set reclaim policy Retain on PersistentVolume {volume}"))?;
            Action::requeue(SOON)
        }
        RestoreStep::RecordClaim(replaced) => {
            // Recorded before the claim is deleted: the claim is recreated from this record.
            if !status.replaced_claims.iter().any(|r| r.name == replaced.name) {
                status.message = Some(format!("recorded the shape of claim {}; replacing it", replaced.name));
                status.replaced_claims.push(replaced);
                record(ctx, &obs, &status).await?;
            }
            return Ok(Action::requeue(SOON));
        }
        RestoreStep::DeleteClaim(claim) => {
            let claims = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &obs.namespace);
            k::delete_if_present(&claims, &claim, &DeleteParams::default())
                .await
                .during(|| format!("failed to delete old PVC {}/{claim}", obs.namespace))?;
            // The old claim is the user's (not labelled, not watched): look again shortly for
            // it to be gone.
            Action::requeue(Duration::from_millis(500))
        }
        RestoreStep::Create(indices) => {
            for i in indices {
                if let Some(item) = items.get(i) {
                    if let Some(why) = create_item(ctx, request, &obs, item).await? {
                        return fail(ctx, request, &obs, status, why).await;
                    }
                }
            }
            Action::requeue(SAFETY_NET)
        }
        RestoreStep::CreateWorkloadCopy => {
            if let Some(made) = create_copy(ctx, request, &obs, &items).await? {
                status.workload_copy = Some(made);
            }
            Action::requeue(SOON)
        }
        RestoreStep::RecordWorkloadCopy(copy) => {
            status.workload_copy = Some(copy);
            Action::requeue(SOON)
        }
        RestoreStep::EnterHooks => {
            status.phase = Some(RestorePhase::RunningHooks);
            status.message = None;
            status.mapping = mapping(&items);
            record(ctx, &obs, &status).await?;
            publish(ctx, request, EventType::Normal, "VolumesRestored", format!("{} item(s) restored", items.len())).await;
            return Ok(Action::requeue(SOON));
        }
        RestoreStep::CreateHook(index) => {
            if let Some(hook) = obs.spec.post_restore.get(index) {
                let claims: Vec<String> = items.iter().filter(|i| build::is_volume(i)).map(|i| i.restored.clone()).collect();
                let job = build::hook_job(request, &restore::hook_job_name(&obs.name, &hook.name), hook, &claims);
                let api = Api::namespaced(ctx.client.clone(), &obs.namespace);
                k::create_if_absent(&api, &job).await.during(|| format!("failed to create hook Job for {}", hook.name))?;
                status.message = Some(format!("running post-restore hook {}", hook.name));
            }
            Action::requeue(SAFETY_NET)
        }
        RestoreStep::ScaleBack(replicas) => {
            let target = obs.target_ref.clone().ok_or_else(|| Error::Inconsistent("no target to start".into()))?;
            workload::scale(&ctx.client, &obs.namespace, &target, replicas, None, None)
                .await
                .during(|| format!("failed to start {}/{} again", obs.namespace, target.name))?;
            Action::requeue(SOON)
        }
        RestoreStep::Complete => {
            let csv = restore::mapping_csv(&items);
            let cm = build::mapping_config_map(request, &restore::mapping_config_map_name(&obs.name), csv);
            Api::<ConfigMap>::namespaced(ctx.client.clone(), &obs.namespace)
                .patch(&cm.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&cm))
                .await
                .during(|| format!("failed to write ConfigMap {}/{}", obs.namespace, cm.name_any()))?;
            status.phase = Some(RestorePhase::Completed);
            status.completion_time = Some(now);
            status.mapping = mapping(&items);
            status.message = Some(restore::completion_message(&items, &status, obs.spec.target.mode));
            conditions::set(&mut status.conditions, "Ready", ConditionStatus::True, "Completed", "the restore completed", now, generation);
            record(ctx, &obs, &status).await?;
            ctx.metrics.restore_finished(true, duration(&status));
            if !obs.spec.post_restore.is_empty() {
                publish(ctx, request, EventType::Normal, "HooksCompleted", format!("{} post-restore hook(s) succeeded", obs.spec.post_restore.len())).await;
            }
            publish(ctx, request, EventType::Normal, "RestoreCompleted", status.message.clone().unwrap_or_default()).await;
            let ttl = obs.spec.ttl_seconds_after_finished.filter(|t| *t > 0 && obs.spec.target.mode == RestoreMode::SideBySide);
            return Ok(ttl.map_or_else(Action::await_change, |t| Action::requeue(Duration::from_secs(u64::from(t)))));
        }
        RestoreStep::Fail(why) => return fail(ctx, request, &obs, status, why).await,
        RestoreStep::DeleteWorkloadCopy(copy) => {
            // Only the object with the recorded uid: if the name was taken by another object
            // since it was observed, the precondition fails and nothing is deleted.
            let params = DeleteParams { preconditions: Some(Preconditions { uid: Some(copy.uid.clone()), resource_version: None }), ..DeleteParams::background() };
            let (ns, name) = (&obs.namespace, &copy.name);
            let deleted = match copy.kind {
                TargetKind::StatefulSet => delete_precondition(&Api::<StatefulSet>::namespaced(ctx.client.clone(), ns), name, &params).await,
                TargetKind::Deployment => delete_precondition(&Api::<Deployment>::namespaced(ctx.client.clone(), ns), name, &params).await,
            }
            .during(|| format!("failed to delete {} {ns}/{name} (uid {})", kind_word(copy.kind), copy.uid))?;
            match deleted {
                Deleted::Yes => publish(ctx, request, EventType::Normal, "WorkloadRemoved", format!("ttlSecondsAfterFinished passed: removed {} {name}; the restored PVCs stay", kind_word(copy.kind))).await,
                Deleted::OtherObject => {
                    publish(ctx, request, EventType::Normal, "WorkloadKept", format!("{} {ns}/{name} is not the copy this request made (uid {}); it is left as it is", kind_word(copy.kind), copy.uid)).await
                }
                Deleted::Gone => {}
            }
            Action::await_change()
        }
    };
    if status != before {
        record(ctx, &obs, &status).await?;
    }
    Ok(action)
}

/// Phase Failed after the restore started: an in-place restore releases its target first
/// (see [`release_in_place`]); `Ready=False` reason `Failed`, a `RestoreFailed` Event.
async fn fail(ctx: &Context, request: &RestoreRequest, obs: &Observed, mut status: RestoreRequestStatus, why: String) -> Result<Action, Error> {
    let mut why = why;
    if obs.spec.target.mode == RestoreMode::InPlace {
        why = release_in_place(ctx, obs, &status, why).await?;
    }
    status.phase = Some(RestorePhase::Failed);
    status.completion_time = Some(obs.now);
    status.message = Some(why.clone());
    conditions::set(&mut status.conditions, "Ready", ConditionStatus::False, "Failed", why.clone(), obs.now, request.metadata.generation);
    record(ctx, obs, &status).await?;
    ctx.metrics.restore_finished(false, duration(&status));
    publish(ctx, request, EventType::Warning, "RestoreFailed", why).await;
    Ok(Action::await_change())
}

/// Phase Failed before anything was created: `Ready=False` with `reason` (`InvalidSpec` for a
/// spec that breaks a validation rule, the message naming each field; `Refused` for a backup
/// that cannot be restored), and a `RestoreFailed` Event.
async fn refuse(ctx: &Context, request: &RestoreRequest, obs: &Observed, mut status: RestoreRequestStatus, reason: &str, why: String) -> Result<Action, Error> {
    status.phase = Some(RestorePhase::Failed);
    status.completion_time = Some(obs.now);
    status.message = Some(why.clone());
    conditions::set(&mut status.conditions, "Ready", ConditionStatus::False, reason, why.clone(), obs.now, request.metadata.generation);
    record(ctx, obs, &status).await?;
    ctx.metrics.restore_finished(false, None);
    publish(ctx, request, EventType::Warning, "RestoreFailed", format!("refused: {why}")).await;
    Ok(Action::await_change())
}

fn duration(status: &RestoreRequestStatus) -> Option<f64> {
    Some((status.completion_time? - status.start_time?).num_milliseconds() as f64 / 1000.0)
}

fn resolved_backup(obs: &Observed) -> Option<&ArchiveBackup> {
    if let Some(backup) = &obs.repository_backup {
        return Some(backup);
    }
    let name = obs.status.resolved_backup.as_ref()?;
    obs.backups.iter().find(|b| b.metadata.name.as_ref() == Some(name))
}

fn planned_items(obs: &Observed) -> Vec<RestoreItem> {
    let Some(backup) = resolved_backup(obs) else { return Vec::new() };
    let suffix = obs.status.name_suffix.clone().unwrap_or_else(|| restore::suffix(&obs.spec, &obs.uid));
    let from = obs.status.resolved_from.unwrap_or(SourceFrom::Snapshots);
    restore::restore_items(&obs.spec, backup, &suffix, &obs.name, from).unwrap_or_default()
}

/// The restic image that reads the repository: the request's, else the one the backup's
/// policy exported with, else the default.
fn reader_image(obs: &Observed) -> Option<String> {
    let named = obs.spec.source.repository.as_ref().and_then(|r| r.image.clone());
    let policy = resolved_backup(obs).and_then(|b| b.status.as_ref()).and_then(|s| s.policy_spec.as_ref()).and_then(|p| p.export.as_ref()).and_then(|e| e.image.clone());
    named.or(policy)
}

/// The repository Secret the restore reads (recorded at acceptance, or named by the request).
fn repository_secret(obs: &Observed) -> String {
    obs.status
        .repository
        .as_ref()
        .map(|r| r.secret_name.clone())
        .or_else(|| obs.spec.source.repository.as_ref().map(|r| r.secret_name.clone()))
        .unwrap_or_default()
}

/// Reads the restore point the request names from the repository, through the reader pod:
/// the catalog of its snapshots, the choice ([`repository::choose`]), then the chosen
/// manifest; records them in `status.repository` (the next reconcile accepts the restore), or
/// refuses the request when the repository cannot be read or holds no such restore point.
async fn read_repository(ctx: &Context, request: &RestoreRequest, obs: &Observed, mut status: RestoreRequestStatus) -> Result<Action, Error> {
    let secret = repository_secret(obs);
    let url = match crate::kube::export::repository(&ctx.client, &obs.namespace, &secret)
        .await
        .during(|| format!("failed to read Secret {}/{secret}", obs.namespace))?
    {
        Ok(url) => url,
        Err(why) => return refuse(ctx, request, obs, status, "Refused", why.replacen("export.repositorySecret", "spec.source.repository.secretName", 1)).await,
    };
    let redactor = Redactor::load(&ctx.client, &obs.namespace, [secret.as_str()]).await.during(|| format!("failed to read Secret {}/{secret}", obs.namespace))?;
    let pod = reader_pod_name(&obs.name);
    let exec = |command: Vec<String>| repo::run(&ctx.exec_client, &obs.namespace, &pod, command, &redactor);
    let listed = exec(repository::catalog_command(&obs.spec.source)).await.during(|| format!("failed to run restic in Pod {}/{pod}", obs.namespace))?;
    let chosen = match listed.and_then(|out| repository::parse_catalog(&out)).and_then(|catalog| repository::choose(&obs.spec.source, &catalog)) {
        Ok(chosen) => chosen,
        Err(why) => return refuse(ctx, request, obs, status, "Refused", format!("repository {url}: {why}")).await,
    };
    let Some(command) = repository::manifest_command(&chosen.manifest) else {
        return refuse(ctx, request, obs, status, "Refused", format!("repository {url}: {:?} is not a snapshot id", chosen.manifest)).await;
    };
    let read = exec(command).await.during(|| format!("failed to run restic in Pod {}/{pod}", obs.namespace))?;
    let backup = match read.and_then(|manifest| repository::backup_from_manifest(&manifest, &chosen, Some(url.clone()))) {
        Ok(backup) => backup,
        Err(why) => return refuse(ctx, request, obs, status, "Refused", format!("repository {url}: {why}")).await,
    };
    let manifest = serde_json::to_value(&backup).map_err(|e| Error::Inconsistent(format!("the manifest of {} cannot be recorded: {e}", chosen.backup)))?;
    status.repository = Some(RepositoryRestore { secret_name: secret, repository: Some(url.clone()), manifest: Some(manifest) });
    status.message = Some(format!("found ArchiveBackup {} of namespace {} in repository {url}", chosen.backup, chosen.namespace));
    record(ctx, obs, &status).await?;
    publish(ctx, request, EventType::Normal, "RestorePointFound", status.message.clone().unwrap_or_default()).await;
    Ok(Action::requeue(SOON))
}

fn mapping(items: &[RestoreItem]) -> Vec<RestoreMapping> {
    items
        .iter()
        .map(|i| RestoreMapping { component: i.component, store: i.store.clone(), original: i.original.clone(), restored: i.restored.clone() })
        .collect()
}

async fn record(ctx: &Context, obs: &Observed, status: &RestoreRequestStatus) -> Result<(), Error> {
    let api = Api::<RestoreRequest>::namespaced(ctx.client.clone(), &obs.namespace);
    k::apply_status(&api, &obs.name, status)
        .await
        .during(|| format!("failed to write status of RestoreRequest {}/{}", obs.namespace, obs.name))
}

/// Refuses spec changes after the restore started: the restore goes on with the accepted spec
/// and the `SpecAccepted` condition says so.
async fn check_spec_unchanged(ctx: &Context, request: &RestoreRequest, status: &mut RestoreRequestStatus, now: chrono::DateTime<chrono::Utc>) {
    let (Some(accepted), Some(generation)) = (status.accepted_generation, request.metadata.generation) else { return };
    if accepted == generation || status.accepted_spec.as_ref() == Some(&request.spec) {
        return;
    }
    let message = format!(
        "the spec is immutable once the restore started: generation {generation} is refused; the restore follows the spec of generation {accepted}"
    );
    let was_refused = conditions::status_of(&status.conditions, "SpecAccepted") == Some(ConditionStatus::False);
    conditions::set(&mut status.conditions, "SpecAccepted", ConditionStatus::False, "SpecChangeRefused", message.clone(), now, Some(generation));
    if !was_refused {
        publish(ctx, request, EventType::Warning, "SpecChangeRefused", message).await;
    }
}

/// Creates what restores `item` (its PVC, fetch Job, SQL restore Job or Secret). `Ok(Some(why))`
/// when the item cannot be restored: the repository did not give back its Secret copy.
async fn create_item(ctx: &Context, request: &RestoreRequest, obs: &Observed, item: &RestoreItem) -> Result<Option<String>, Error> {
    let backup = obs.status.resolved_backup.clone().unwrap_or_default();
    let ns = &obs.namespace;
    match &item.kind {
        ItemKind::Volume { from: DataSource::Repository(_), size } => {
            create_fetched(ctx, request, obs, item, &item.restored, size.as_deref(), claim_shape(obs, item)).await?;
        }
        ItemKind::Volume { from: DataSource::Cluster(snapshot), size } => {
            let shape = claim_shape(obs, item);
            let pvc = build::restored_claim(request, &backup, item, &item.restored, Some(snapshot), size.as_deref(), shape.as_ref());
            let api = Api::namespaced(ctx.client.clone(), ns);
            k::create_if_absent(&api, &pvc).await.during(|| format!("failed to create PVC {ns}/{} from {snapshot}", item.restored))?;
        }
        ItemKind::Sql { from: DataSource::Repository(_), size, claim, .. } if !fetched(obs, item, claim) => {
            create_fetched(ctx, request, obs, item, claim, size.as_deref(), None).await?;
        }
        ItemKind::Sql { from, size, claim, .. } => {
            if obs.claims.contains_key(claim) {
                let image = resolved_backup(obs)
                    .and_then(|b| b.status.as_ref())
                    .and_then(|s| s.policy_spec.as_ref())
                    .and_then(|p| p.dump.as_ref())
                    .and_then(|d| d.image.clone());
                // The builder refuses an unsafe database name even if validation was bypassed.
                let job = build::sql_restore_job(request, &backup, item, image.as_deref()).map_err(|e| Error::Inconsistent(e.to_string()))?;
                let api = Api::namespaced(ctx.client.clone(), ns);
                k::create_if_absent(&api, &job).await.during(|| format!("failed to create SQL restore Job for database {}", item.restored))?;
            } else if let DataSource::Cluster(snapshot) = from {
                let pvc = build::restored_claim(request, &backup, item, claim, Some(snapshot), size.as_deref(), None);
                let api = Api::namespaced(ctx.client.clone(), ns);
                k::create_if_absent(&api, &pvc).await.during(|| format!("failed to create dump PVC {ns}/{claim}"))?;
            }
        }
        ItemKind::Secret { from: DataSource::Repository(id) } => {
            let secret = repository_secret(obs);
            let redactor = Redactor::load(&ctx.client, ns, [secret.as_str()]).await.during(|| format!("failed to read Secret {ns}/{secret}"))?;
            let pod = reader_pod_name(&obs.name);
            let command = repository::secrets_command(id).ok_or_else(|| Error::Inconsistent(format!("{id:?} is not a snapshot id")))?;
            let read = repo::run(&ctx.exec_client, ns, &pod, command, &redactor).await.during(|| format!("failed to run restic in Pod {ns}/{pod}"))?;
            // The values stay in memory: never logged, never in status or an Event.
            let data = match read.and_then(|tar| repository::secret_data(&tar)) {
                Ok(data) => data,
                Err(why) => return Ok(Some(format!("reading the Secret copy (repository snapshot {id}) for Secret {} failed: {why}", item.restored))),
            };
            let restored = build::secret_from_keys(request, &backup, item, data.iter().map(|(k, v)| (k.as_str(), v)));
            let api = Api::<Secret>::namespaced(ctx.client.clone(), ns);
            k::create_if_absent(&api, &restored).await.during(|| format!("failed to create Secret {ns}/{}", item.restored))?;
        }
        ItemKind::Secret { from: DataSource::Cluster(copy) } => {
            let api = Api::<Secret>::namespaced(ctx.client.clone(), ns);
            let source = api.get(copy).await.during(|| format!("failed to read the backup's Secret copy {ns}/{copy}"))?;
            let secret = build::secret_from_copy(request, &backup, item, &source);
            k::create_if_absent(&api, &secret).await.during(|| format!("failed to create Secret {ns}/{}", item.restored))?;
        }
    }
    Ok(None)
}

/// Whether the fetch Job of a repository item restored into `claim` exists (it fills the
/// claim before anything reads it).
fn fetched(obs: &Observed, item: &RestoreItem, claim: &str) -> bool {
    obs.jobs.contains_key(&repository::fetch_job_name(&obs.name, item.component, &item.store, claim))
}

/// A repository item: its empty PVC `claim` (sized from the recorded `restoreSize`), then,
/// once the claim exists, the fetch Job that restores the files into it.
async fn create_fetched(ctx: &Context, request: &RestoreRequest, obs: &Observed, item: &RestoreItem, claim: &str, size: Option<&str>, shape: Option<ReplacedClaim>) -> Result<(), Error> {
    let backup = obs.status.resolved_backup.clone().unwrap_or_default();
    let ns = &obs.namespace;
    if !obs.claims.contains_key(claim) {
        let pvc = build::restored_claim(request, &backup, item, claim, None, size, shape.as_ref());
        let api = Api::namespaced(ctx.client.clone(), ns);
        k::create_if_absent(&api, &pvc).await.during(|| format!("failed to create PVC {ns}/{claim}"))?;
        return Ok(());
    }
    let secret = repository_secret(obs);
    let job = repo::fetch_job(request, &backup, item, claim, &secret, reader_image(obs).as_deref())
        .ok_or_else(|| Error::Inconsistent(format!("no fetch Job for PVC {claim}: the item's repository snapshot id is not an id")))?;
    let api = Api::namespaced(ctx.client.clone(), ns);
    k::create_if_absent(&api, &job).await.during(|| format!("failed to create fetch Job for PVC {ns}/{claim}"))?;
    Ok(())
}

/// The shape a restored volume claim takes. `InPlace`: the record of the claim it replaces
/// (`status.replacedClaims`). Otherwise: the original's storage class, access modes, size and
/// volume mode when it exists (not its labels and annotations: the restored claim is a new
/// object beside it).
fn claim_shape(obs: &Observed, item: &RestoreItem) -> Option<ReplacedClaim> {
    if obs.spec.target.mode == RestoreMode::InPlace {
        return obs.status.replaced_claims.iter().find(|r| r.name == item.original).cloned();
    }
    obs.claims.get(&item.original).map(|c| ReplacedClaim { labels: BTreeMap::new(), annotations: BTreeMap::new(), ..shape::record_of(c) })
}

/// How a delete with a uid precondition ended.
enum Deleted {
    /// The object with that uid was deleted.
    Yes,
    /// The name belongs to another object now (the precondition failed): kept.
    OtherObject,
    /// Nothing has the name.
    Gone,
}

async fn delete_precondition<K>(api: &Api<K>, name: &str, params: &DeleteParams) -> Result<Deleted, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, params).await {
        Ok(_) => Ok(Deleted::Yes),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Deleted::Gone),
        Err(e) if k::is_conflict(&e) => Ok(Deleted::OtherObject),
        Err(e) => Err(e),
    }
}

/// Creates the side-by-side copy and returns what to record of it (kind, name, uid). `None`
/// when the name was taken meanwhile (the next reconcile decides whose it is).
async fn create_copy(ctx: &Context, request: &RestoreRequest, obs: &Observed, items: &[RestoreItem]) -> Result<Option<WorkloadCopy>, Error> {
    let Some(target) = &obs.target_ref else { return Err(Error::Inconsistent("no target to copy".into())) };
    let name = copy_name(target, obs.status.name_suffix.as_deref().unwrap_or_default());
    let renames = build::CopyRenames::of(items);
    let ns = &obs.namespace;
    let created = match target.kind {
        TargetKind::StatefulSet => {
            let api = Api::<StatefulSet>::namespaced(ctx.client.clone(), ns);
            let original = api.get(&target.name).await.during(|| format!("failed to read StatefulSet {ns}/{}", target.name))?;
            create_new(&api, &build::statefulset_copy(request, &original, &name, &renames)).await
        }
        TargetKind::Deployment => {
            let api = Api::<Deployment>::namespaced(ctx.client.clone(), ns);
            let original = api.get(&target.name).await.during(|| format!("failed to read Deployment {ns}/{}", target.name))?;
            create_new(&api, &build::deployment_copy(request, &original, &name, &renames)).await
        }
    }
    .during(|| format!("failed to create {} {ns}/{name}", kind_word(target.kind)))?;
    Ok(created.map(|uid| WorkloadCopy { kind: target.kind, name, uid }))
}

/// Creates `object`; its uid, or `None` when the name is taken (HTTP 409).
async fn create_new<K>(api: &Api<K>, object: &K) -> Result<Option<String>, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(made) => Ok(made.uid()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
        Err(e) => Err(e),
    }
}

/// A failed in-place restore starts the target again when none of its claims was replaced
/// yet; otherwise it stays stopped (starting it would give it empty claims) and the message
/// says where the old data is.
async fn release_in_place(ctx: &Context, obs: &Observed, status: &RestoreRequestStatus, why: String) -> Result<String, Error> {
    let (Some(target), Some(replicas)) = (&obs.target_ref, status.original_replicas) else { return Ok(why) };
    if obs.target_claim != WorkloadClaim::Mine {
        // Never stopped by this request (another holder has it, or nobody): nothing to start.
        return Ok(why);
    }
    if status.retained_volumes.is_empty() {
        workload::scale(&ctx.client, &obs.namespace, target, replicas, None, None)
            .await
            .during(|| format!("failed to start {}/{} again", obs.namespace, target.name))?;
        return Ok(format!("{why}; {} was started again unchanged", target.name));
    }
    let kept: Vec<String> = status.retained_volumes.iter().map(|r| format!("{} (was {})", r.volume, r.claim)).collect();
    Ok(format!("{why}; {} is left stopped because its claims were being replaced; the old volumes are kept: {}", target.name, kept.join(", ")))
}
