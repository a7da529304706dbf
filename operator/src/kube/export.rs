//! The export Job: every item of a restore point, restored into a scratch PVC, backed up with
//! `restic backup` into the policy's repository. The credentials reach restic only through
//! `envFrom` of `export.repositorySecret`; the script names no secret, and what it prints is
//! one result line per item (`plan::export::parse_results`).

use super::jobs::run_once_job;
use super::export_script::export_script;
use super::labels::POLICY;
use crate::api::{ArchiveBackup, BackupPolicy, ExportSpec, DEFAULT_EXPORT_IMAGE};
use crate::plan::policy::prune::{MAINTENANCE_LABEL, REPOSITORY_SECRET_LABEL};
use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use std::collections::BTreeMap;
use crate::plan::capture::PlannedItem;
use crate::plan::export::{
    export_claim_name, export_items, export_job_name, forget_job_name, manifest, mount_path, EXPORT_TIMEOUT, SECRETS_MOUNT,
};
use crate::plan::restore::repository::verified;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvFromSource, EnvVar, PersistentVolumeClaim,
    PersistentVolumeClaimVolumeSource, SecretEnvSource, SecretVolumeSource, Volume, VolumeMount,
};
use kube::ResourceExt;


/// The repository of `export.repositorySecret` as it may be shown (credentials removed), or
/// why the Secret cannot serve: missing, or without `RESTIC_REPOSITORY` or `RESTIC_PASSWORD`.
/// Read once per export, when it starts; the values never leave this function but the
/// redacted URL.
pub async fn repository(client: &kube::Client, namespace: &str, secret: &str) -> Result<Result<String, String>, kube::Error> {
    let api = kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), namespace);
    let Some(found) = super::get_opt(&api, secret).await? else {
        return Ok(Err(format!("export.repositorySecret: Secret {namespace}/{secret} not found")));
    };
    let value = |key: &str| {
        let data = found.data.as_ref().and_then(|d| d.get(key)).map(|v| String::from_utf8_lossy(&v.0).into_owned());
        data.or_else(|| found.string_data.as_ref().and_then(|d| d.get(key)).cloned()).filter(|v| !v.trim().is_empty())
    };
    let Some(url) = value("RESTIC_REPOSITORY") else {
        return Ok(Err(format!("export.repositorySecret: Secret {namespace}/{secret} has no RESTIC_REPOSITORY")));
    };
    if value("RESTIC_PASSWORD").is_none() {
        return Ok(Err(format!("export.repositorySecret: Secret {namespace}/{secret} has no RESTIC_PASSWORD")));
    }
    Ok(Ok(crate::plan::export::redact_repository(&url)))
}

/// restic's cache in the export Job (an emptyDir).
const CACHE_DIR: &str = "/cache";

/// The export's scratch PVC of plan item `index`, restored from its snapshot, of `spec`'s
/// `storageClassName` and `accessModes` when it names them.
pub fn scratch_claim(backup: &ArchiveBackup, plan: &[PlannedItem], index: usize, size: Option<String>, spec: &ExportSpec) -> PersistentVolumeClaim {
    let mut claim = super::verify::scratch_claim_named(backup, plan, index, size, export_claim_name(&backup.name_any(), index));
    if let Some(claim_spec) = claim.spec.as_mut() {
        if spec.storage_class_name.is_some() {
            claim_spec.storage_class_name.clone_from(&spec.storage_class_name);
        }
        if !spec.access_modes.is_empty() {
            claim_spec.access_modes = Some(spec.access_modes.clone());
        }
    }
    claim
}

/// The environment variable that carries the manifest into the export Job (it holds no
/// secret: names, sizes and times of the restore point).
pub const MANIFEST_ENV: &str = "ARCHIVIST_MANIFEST";

/// The export Job of `backup` (plan `plan`) under `spec`: every scratch PVC mounted read-only
/// at `/export/<index>`, the Secret copy (if any) as a secret volume at `/export/secrets`, the
/// manifest in `$ARCHIVIST_MANIFEST`, the repository Secret as the environment; stopped by
/// Kubernetes after `plan::export::EXPORT_TIMEOUT`.
pub fn export_job(backup: &ArchiveBackup, plan: &[PlannedItem], spec: &ExportSpec) -> Job {
    let name = backup.name_any();
    let namespace = backup.namespace().unwrap_or_default();
    let secret_copy = backup.status.as_ref().and_then(|s| s.secret_copy.clone());
    let items = export_items(plan, secret_copy.as_deref());
    let mut volumes: Vec<Volume> = (0..plan.len())
        .map(|i| Volume {
            name: format!("item-{i}"),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: export_claim_name(&name, i), read_only: Some(true) }),
            ..Default::default()
        })
        .collect();
    let mut mounts: Vec<VolumeMount> = (0..plan.len())
        .map(|i| VolumeMount { name: format!("item-{i}"), mount_path: mount_path(i), read_only: Some(true), ..Default::default() })
        .collect();
    if let Some(copy) = &secret_copy {
        volumes.push(Volume { name: "secrets".into(), secret: Some(SecretVolumeSource { secret_name: Some(copy.clone()), ..Default::default() }), ..Default::default() });
        mounts.push(VolumeMount { name: "secrets".into(), mount_path: SECRETS_MOUNT.into(), read_only: Some(true), ..Default::default() });
    }
    volumes.push(cache_volume());
    let script = export_script(&namespace, &backup.spec.policy_name, &name, &items, spec.check_read_data_percent, verified(backup));
    let manifest_env = EnvVar { name: MANIFEST_ENV.into(), value: Some(manifest(backup).to_string()), ..Default::default() };
    let container = restic_container(spec, "export", vec!["sh".into(), "-c".into(), script], vec![manifest_env], mounts);
    run_once_job(backup, export_job_name(&name), i64::try_from(EXPORT_TIMEOUT.as_secs()).ok(), container, volumes)
}

/// A container running restic `command` against `spec`'s repository ([`restic_container_of`]
/// with the export's image and Secret).
fn restic_container(spec: &ExportSpec, name: &str, command: Vec<String>, env: Vec<EnvVar>, mounts: Vec<VolumeMount>) -> Container {
    restic_container_of(spec.image.as_deref(), &spec.repository_secret, name, command, env, mounts)
}

/// A container running restic `command` against the repository of Secret `secret`: `image`
/// (default the mover image), the Secret as the environment (`envFrom`, the only way
/// credentials reach restic), restic's cache on the emptyDir `cache` (which the pod must
/// have, see [`cache_volume`]) at `/cache`, plus `env` and `mounts`.
pub fn restic_container_of(image: Option<&str>, secret: &str, name: &str, command: Vec<String>, env: Vec<EnvVar>, mut mounts: Vec<VolumeMount>) -> Container {
    mounts.push(VolumeMount { name: "cache".into(), mount_path: CACHE_DIR.into(), ..Default::default() });
    let cache = EnvVar { name: "RESTIC_CACHE_DIR".into(), value: Some(CACHE_DIR.into()), ..Default::default() };
    Container {
        name: name.into(),
        image: Some(image.unwrap_or(DEFAULT_EXPORT_IMAGE).to_string()),
        command: Some(command),
        env_from: Some(vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource { name: secret.to_string(), optional: Some(false) }),
            ..Default::default()
        }]),
        env: Some(std::iter::once(cache).chain(env).collect()),
        volume_mounts: Some(mounts),
        ..Default::default()
    }
}

/// restic's cache volume (an emptyDir) of the Jobs and pods that run restic.
pub fn cache_volume() -> Volume {
    Volume { name: "cache".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() }
}

/// The Job that forgets the repository snapshots `ids` of a pruned restore point:
/// `restic forget ID...` with no shell (the ids are checked by `plan::export::is_snapshot_id`
/// first), the repository Secret as the environment. `restic prune`, which frees the space,
/// is the repository's maintenance, not this Job's. Labelled `archivist.dev/maintenance:
/// forget` with the repository Secret: it holds the repository's exclusive lock, so exports
/// to it wait while it runs ([`running_exclusive_job`]).
pub fn forget_job(backup: &ArchiveBackup, spec: &ExportSpec, ids: &[String]) -> Job {
    let command = ["restic", "forget"].iter().map(ToString::to_string).chain(ids.iter().cloned()).collect();
    let container = restic_container(spec, "forget", command, Vec::new(), Vec::new());
    let mut job = run_once_job(backup, forget_job_name(&backup.name_any()), Some(3600), container, vec![cache_volume()]);
    job.metadata.labels.get_or_insert_with(BTreeMap::new).extend([
        (MAINTENANCE_LABEL.to_string(), "forget".to_string()),
        (REPOSITORY_SECRET_LABEL.to_string(), spec.repository_secret.clone()),
    ]);
    job
}

/// The maintenance Job `name` of `policy`'s repository: `restic prune` with no shell, the
/// repository Secret as the environment; labelled `archivist.dev/maintenance: prune`, with the
/// repository Secret and the policy; owned by the policy; stopped after
/// [`EXPORT_TIMEOUT`], removed a week after it finished (where the TTL controller runs).
pub fn prune_job(policy: &BackupPolicy, name: &str, spec: &ExportSpec) -> Job {
    let command = vec!["restic".to_string(), "prune".to_string()];
    let container = restic_container(spec, "prune", command, Vec::new(), Vec::new());
    let labels = BTreeMap::from([
        (MAINTENANCE_LABEL.to_string(), "prune".to_string()),
        (REPOSITORY_SECRET_LABEL.to_string(), spec.repository_secret.clone()),
        (POLICY.to_string(), policy.name_any()),
    ]);
    Job {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: policy.namespace(),
            labels: Some(labels.clone()),
            owner_references: policy.controller_owner_ref(&()).map(|r| vec![r]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: i64::try_from(EXPORT_TIMEOUT.as_secs()).ok(),
            ttl_seconds_after_finished: Some(7 * 24 * 3600),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                spec: Some(PodSpec { restart_policy: Some("Never".into()), containers: vec![container], volumes: Some(vec![cache_volume()]), ..Default::default() }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A running Job of repository Secret `secret` in `namespace` that holds the repository's
/// exclusive lock (`restic prune` or `restic forget`), as `<Job> (restic <command>)`; one list
/// by label.
pub async fn running_exclusive_job(client: &kube::Client, namespace: &str, secret: &str) -> Result<Option<String>, kube::Error> {
    let selector = format!("{MAINTENANCE_LABEL},{REPOSITORY_SECRET_LABEL}={secret}");
    let jobs = kube::Api::<Job>::namespaced(client.clone(), namespace).list(&kube::api::ListParams::default().labels(&selector)).await?;
    Ok(jobs.items.iter().find(|j| super::dump::observe_job(j) == crate::plan::backup::JobObs::Running).map(|j| {
        let command = j.labels().get(MAINTENANCE_LABEL).cloned().unwrap_or_default();
        format!("{} (restic {command})", j.name_any())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ArchiveBackupSpec, Component};
    use crate::kube::labels::BACKUP;
    use crate::plan::capture::{CaptureStage, ItemSource};

    fn plan() -> Vec<PlannedItem> {
        let item = |component, store: &str, claim: &str| PlannedItem {
            stage: CaptureStage::Metadata,
            component,
            store: store.into(),
            source: ItemSource::Claim(claim.into()),
            snapshot: format!("s-{claim}"),
        };
        vec![item(Component::Metadata, "s1", "meta"), item(Component::Content, "s1", "content")]
    }

    #[test]
    fn scratch_claims_take_the_policy_class_and_access_modes() {
        let backup = ArchiveBackup::new("b1", ArchiveBackupSpec { policy_name: "mail".into(), reason: Default::default(), hold: false });
        let shallow = ExportSpec { storage_class_name: Some("archivist-local-shallow".into()), access_modes: vec!["ReadOnlyMany".into()], ..Default::default() };
        // (spec, class, access modes)
        let cases = [(ExportSpec::default(), None, vec!["ReadWriteOnce"]), (shallow, Some("archivist-local-shallow"), vec!["ReadOnlyMany"])];
        for (spec, class, modes) in cases {
            let claim = scratch_claim(&backup, &plan(), 1, Some("2Gi".into()), &spec);
            let claim_spec = claim.spec.expect("spec");
            assert_eq!(claim.metadata.name.as_deref(), Some(export_claim_name("b1", 1).as_str()));
            assert_eq!(claim_spec.storage_class_name.as_deref(), class);
            assert_eq!(claim_spec.access_modes, Some(modes.iter().map(ToString::to_string).collect()));
            assert_eq!(claim_spec.data_source.map(|d| d.name), Some("s-content".to_string()));
        }
    }

    #[test]
    fn the_job_takes_the_repository_from_the_secret_only() {
        let mut backup = ArchiveBackup::new("b1", ArchiveBackupSpec { policy_name: "mail".into(), reason: Default::default(), hold: false });
        backup.metadata.namespace = Some("ns".into());
        backup.status = Some(crate::api::ArchiveBackupStatus { secret_copy: Some("b1-secrets".into()), ..Default::default() });
        let spec = ExportSpec { repository_secret: "archive-repo".into(), image: None, after: None, prune_schedule: None, check_read_data_percent: 10, ..Default::default() };
        let job = export_job(&backup, &plan(), &spec);
        let pod = job.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod");
        let container = &pod.containers[0];
        assert_eq!(container.image.as_deref(), Some(DEFAULT_EXPORT_IMAGE));
        let env_from = container.env_from.as_ref().expect("envFrom");
        assert_eq!(env_from[0].secret_ref.as_ref().map(|s| s.name.as_str()), Some("archive-repo"));
        let env = container.env.as_ref().expect("env");
        assert!(env.iter().all(|e| !e.name.starts_with("RESTIC_REPOSITORY") && !e.name.starts_with("RESTIC_PASSWORD")), "{env:?}");
        let manifest = env.iter().find(|e| e.name == MANIFEST_ENV).and_then(|e| e.value.clone()).expect("manifest");
        let manifest: serde_json::Value = serde_json::from_str(&manifest).expect("manifest JSON");
        assert_eq!((manifest["kind"].as_str(), manifest["metadata"]["name"].as_str()), (Some("ArchiveBackup"), Some("b1")));
        let command = container.command.as_ref().expect("command").join(" ");
        assert!(!command.contains("RESTIC_PASSWORD") && !command.contains("--password") && !command.contains("-r "), "{command}");
        for want in [
            "--host 'ns/mail'",
            "--tag 'archivist.dev/policy=mail' --tag 'archivist.dev/backup=b1' --tag 'archivist.dev/component=metadata' --tag 'archivist.dev/store=s1' --tag 'archivist.dev/claim=meta'",
            "cd '/export/1'",
            "backup 1 --host 'ns/mail'",
            "echo \"archivist-export $label $summary\"",
            "restic check --read-data-subset=10%",
            "cd '/export/secrets'",
            "--tag 'archivist.dev/component=secrets' --tag 'archivist.dev/store=' --tag 'archivist.dev/claim=b1-secrets'",
            "backup 2 --host 'ns/mail'",
            "printf '%s' \"$ARCHIVIST_MANIFEST\" >&3",
            "exec restic backup --json --quiet --host 'ns/mail'",
            "--tag 'archivist.dev/component=manifest' --tag 'archivist.dev/store=' --tag 'archivist.dev/claim=b1' --stdin --stdin-filename manifest.json",
        ] {
            assert!(command.contains(want), "missing {want:?} in {command}");
        }
        assert!(!command.contains("archivist.dev/verified"), "not verified: {command}");
        let claims: Vec<&str> = pod.volumes.iter().flatten().filter_map(|v| v.persistent_volume_claim.as_ref()).map(|c| c.claim_name.as_str()).collect();
        assert_eq!(claims, ["b1-export-0", "b1-export-1"]);
        let secrets: Vec<&str> = pod.volumes.iter().flatten().filter_map(|v| v.secret.as_ref()).filter_map(|s| s.secret_name.as_deref()).collect();
        assert_eq!(secrets, ["b1-secrets"], "the Secret copy is a secret volume, never a PVC");
        assert_eq!(job.spec.and_then(|s| s.backoff_limit), Some(0));
    }

    #[test]
    fn the_manifest_of_a_verified_restore_point_is_tagged_verified() {
        let items = export_items(&plan(), None);
        for (verified, tagged) in [(true, true), (false, false)] {
            let script = export_script("ns", "mail", "b1", &items, 0, verified);
            let manifest = script.lines().find(|l| l.contains("exec restic backup")).expect("manifest line");
            assert_eq!(manifest.contains("--tag 'archivist.dev/verified=true'"), tagged, "{manifest}");
            let volumes = script.lines().filter(|l| l.contains("backup 0 ") || l.contains("backup 1 "));
            assert!(volumes.into_iter().all(|l| !l.contains("verified")), "only the manifest is tagged");
        }
    }

    #[test]
    fn jobs_that_lock_the_repository_say_so_in_their_labels() {
        let mut backup = ArchiveBackup::new("b1", ArchiveBackupSpec { policy_name: "mail".into(), reason: Default::default(), hold: false });
        backup.metadata.namespace = Some("ns".into());
        backup.metadata.uid = Some("b-uid".into());
        let spec = ExportSpec { repository_secret: "archive-repo".into(), image: None, after: None, prune_schedule: None, check_read_data_percent: 0, ..Default::default() };
        let forget = forget_job(&backup, &spec, &["0123abcd".into()]);
        let policy: BackupPolicy = serde_json::from_value(serde_json::json!({
            "apiVersion": "archivist.dev/v1alpha1", "kind": "BackupPolicy",
            "metadata": {"name": "mail", "namespace": "ns", "uid": "p-uid"},
            "spec": {"target": {"kind": "StatefulSet", "name": "a"}, "stores": []}
        }))
        .expect("policy");
        let prune = prune_job(&policy, "archive-repo-prune-202611290500", &spec);
        for (job, command, owner) in [(&forget, "forget", "ArchiveBackup"), (&prune, "prune", "BackupPolicy")] {
            let labels = job.metadata.labels.clone().unwrap_or_default();
            assert_eq!(labels.get(MAINTENANCE_LABEL).map(String::as_str), Some(command));
            assert_eq!(labels.get(REPOSITORY_SECRET_LABEL).map(String::as_str), Some("archive-repo"));
            let container = &job.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod").containers[0];
            assert_eq!(container.command.as_ref().map(|c| c[..2].join(" ")), Some(format!("restic {command}")));
            assert_eq!(job.metadata.owner_references.as_ref().map(|o| o[0].kind.as_str()), Some(owner));
        }
        assert_eq!(forget.metadata.labels.unwrap_or_default().get(BACKUP).map(String::as_str), Some("b1"), "the run's children watch still sees it");
        assert_eq!(prune.spec.and_then(|s| s.backoff_limit), Some(0));
    }
}
