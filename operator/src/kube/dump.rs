//! SQL dumps: a Job that dumps a database into a fresh PVC, which is then snapshotted.
//! Credentials come from the Secret through the Job's environment (`PGPASSWORD`, `MYSQL_PWD`),
//! never on a command line.

use super::labels::{item_labels, owned_by, BACKUP};
use crate::api::{ArchiveBackup, BackupPolicySpec, DumpSpec, SqlEngine, SqlSource};
use crate::plan::backup::JobObs;
use crate::plan::capture::PlannedItem;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, SecretKeySelector, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PropagationPolicy};
use kube::{Api, Client, ResourceExt};
use std::collections::BTreeMap;

/// The file a PostgreSQL dump is written to, in the dump volume.
pub const POSTGRES_DUMP_FILE: &str = "dump.pgdump";
/// The file a MySQL/MariaDB dump is written to, in the dump volume.
pub const MYSQL_DUMP_FILE: &str = "dump.sql";
/// Where the dump volume is mounted in the dump Job.
pub const DUMP_MOUNT: &str = "/dump";

/// The default port of an engine.
pub fn default_port(engine: SqlEngine) -> u16 {
    match engine {
        SqlEngine::PostgreSQL => 5432,
        SqlEngine::MySQL => 3306,
    }
}

/// The shell script of the dump container. It names no credential: they are in the
/// environment.
pub fn dump_script(engine: SqlEngine) -> String {
    match engine {
        SqlEngine::PostgreSQL => format!(
            "set -e; pg_dump --format=custom --no-owner --file={DUMP_MOUNT}/{POSTGRES_DUMP_FILE}.tmp; mv {DUMP_MOUNT}/{POSTGRES_DUMP_FILE}.tmp {DUMP_MOUNT}/{POSTGRES_DUMP_FILE}; sync"
        ),
        SqlEngine::MySQL => format!(
            "set -e; DUMP=$(command -v mariadb-dump || command -v mysqldump); \"$DUMP\" --single-transaction --routines --host=\"$MYSQL_HOST\" --port=\"$MYSQL_TCP_PORT\" --user=\"$MYSQL_USER\" \"$MYSQL_DATABASE\" > {DUMP_MOUNT}/{MYSQL_DUMP_FILE}.tmp; mv {DUMP_MOUNT}/{MYSQL_DUMP_FILE}.tmp {DUMP_MOUNT}/{MYSQL_DUMP_FILE}; sync"
        ),
    }
}

fn env(name: &str, value: String) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value), ..Default::default() }
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector { name: secret.into(), key: key.into(), optional: None }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The connection environment of a dump or restore container for `sql`.
pub fn connection_env(sql: &SqlSource, host: &str, port: u16, database: &str, credentials_secret: &str) -> Vec<EnvVar> {
    match sql.engine {
        SqlEngine::PostgreSQL => vec![
            env("PGHOST", host.into()),
            env("PGPORT", port.to_string()),
            env("PGDATABASE", database.into()),
            secret_env("PGUSER", credentials_secret, "username"),
            secret_env("PGPASSWORD", credentials_secret, "password"),
        ],
        SqlEngine::MySQL => vec![
            env("MYSQL_HOST", host.into()),
            env("MYSQL_TCP_PORT", port.to_string()),
            env("MYSQL_DATABASE", database.into()),
            secret_env("MYSQL_USER", credentials_secret, "username"),
            secret_env("MYSQL_PWD", credentials_secret, "password"),
        ],
    }
}

/// The dump PVC and Job of one SQL item.
pub fn dump_objects(backup: &ArchiveBackup, policy_name: &str, item: &PlannedItem, sql: &SqlSource, dump: &DumpSpec) -> (PersistentVolumeClaim, Job) {
    let name = item.claim().to_string();
    let backup_name = backup.name_any();
    let metadata = ObjectMeta {
        name: Some(name.clone()),
        namespace: backup.namespace(),
        labels: Some(item_labels(policy_name, &backup_name, item.component, &item.store)),
        owner_references: Some(owned_by(backup)),
        ..Default::default()
    };
    let pvc = PersistentVolumeClaim {
        metadata: metadata.clone(),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: dump.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), Quantity(dump.size.clone()))])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let image = dump.image.clone().unwrap_or_else(|| match sql.engine {
        SqlEngine::PostgreSQL => "postgres:16".into(),
        SqlEngine::MySQL => "mariadb:11".into(),
    });
    let port = sql.port.unwrap_or_else(|| default_port(sql.engine));
    let job = Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(1),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(BTreeMap::from([(BACKUP.to_string(), backup_name)])), ..Default::default() }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    containers: vec![Container {
                        name: "dump".into(),
                        image: Some(image),
                        command: Some(vec!["sh".into(), "-c".into(), dump_script(sql.engine)]),
                        env: Some(connection_env(sql, &sql.host, port, &sql.database, &sql.credentials_secret)),
                        volume_mounts: Some(vec![VolumeMount { name: "dump".into(), mount_path: DUMP_MOUNT.into(), ..Default::default() }]),
                        ..Default::default()
                    }],
                    volumes: Some(vec![Volume {
                        name: "dump".into(),
                        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: name, read_only: None }),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    (pvc, job)
}

/// What the state machine needs to know of a Job.
pub fn observe_job(job: &Job) -> JobObs {
    let status = job.status.clone().unwrap_or_default();
    if status.succeeded.unwrap_or(0) > 0 {
        return JobObs::Succeeded;
    }
    let failed = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Failed" && c.status == "True");
    match failed {
        Some(c) => JobObs::Failed {
            message: [c.reason.clone(), c.message.clone()].into_iter().flatten().collect::<Vec<_>>().join(": "),
        },
        None => JobObs::Running,
    }
}

/// The Secrets a run of `policy` references, whose values must never appear in what it
/// reports: the credentials Secret of every SQL source and the `master.secrets`.
pub fn referenced_secrets(policy: &BackupPolicySpec) -> Vec<&str> {
    let sql = policy.stores.iter().flat_map(|s| [Some(&s.metadata), Some(&s.content), s.index.as_ref()]).flatten().filter_map(|d| d.sql.as_ref());
    let master = policy.master.iter().flat_map(|m| m.secrets.iter());
    let export = policy.export.iter().map(|e| e.repository_secret.as_str());
    sql.map(|s| s.credentials_secret.as_str()).chain(master.map(String::as_str)).chain(export).collect()
}

/// Deletes a dump Job (with its pods) and its PVC; already gone is fine.
pub async fn delete_dump(client: &Client, namespace: &str, name: &str) -> Result<(), kube::Error> {
    let background = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() };
    super::delete_if_present(&Api::<Job>::namespaced(client.clone(), namespace), name, &background).await?;
    super::delete_if_present(&Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace), name, &DeleteParams::default()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ArchiveBackupSpec, BackupReason, Component};
    use crate::plan::capture::{CaptureStage, ItemSource};

    fn backup() -> ArchiveBackup {
        let mut b = ArchiveBackup::new("b1", ArchiveBackupSpec { policy_name: "p".into(), reason: BackupReason::Manual, hold: false });
        b.metadata.namespace = Some("mail".into());
        b.metadata.uid = Some("uid-1".into());
        b
    }

    fn sql(engine: SqlEngine) -> SqlSource {
        SqlSource { engine, host: "db.mail.svc".into(), port: None, database: "meta".into(), credentials_secret: "db-credentials".into() }
    }

    /// The real dump Job, for both engines: every credential (user and password alike) is a
    /// `secretKeyRef` of the policy's Secret, no other variable reads a Secret or names a
    /// credential, and the command holds no credential option or variable.
    #[test]
    fn dump_jobs_take_every_credential_from_the_secret() {
        let cases = [
            (SqlEngine::PostgreSQL, [("PGUSER", "username"), ("PGPASSWORD", "password")]),
            (SqlEngine::MySQL, [("MYSQL_USER", "username"), ("MYSQL_PWD", "password")]),
        ];
        for (engine, credentials) in cases {
            let source = sql(engine);
            let item = PlannedItem {
                stage: CaptureStage::Metadata,
                component: Component::Metadata,
                store: "s1".into(),
                source: ItemSource::Sql { sql: source.clone(), dump_claim: "b1-dump-metadata-s1".into() },
                snapshot: "snap".into(),
            };
            let dump = DumpSpec { storage_class_name: None, size: "1Gi".into(), image: Some("postgres:16".into()) };
            let (_, job) = dump_objects(&backup(), "p", &item, &source, &dump);
            let pod = job.spec.as_ref().and_then(|s| s.template.spec.clone()).expect("pod spec");
            assert!(pod.init_containers.is_none(), "{engine:?}");
            assert_eq!(pod.containers.len(), 1, "{engine:?}");
            let c = &pod.containers[0];
            let env = c.env.clone().unwrap_or_default();
            for (name, key) in credentials {
                let var = env.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("{engine:?}: no {name}"));
                assert_eq!(var.value, None, "{engine:?}: {name} must not be a literal");
                let from = var.value_from.as_ref().and_then(|f| f.secret_key_ref.as_ref()).expect("a secretKeyRef");
                assert_eq!((from.name.as_str(), from.key.as_str()), ("db-credentials", key), "{engine:?}: {name}");
            }
            for var in env.iter().filter(|e| !credentials.iter().any(|(name, _)| *name == e.name)) {
                assert!(var.value_from.is_none(), "{engine:?}: {} reads {:?}", var.name, var.value_from);
                let value = var.value.clone().unwrap_or_default();
                assert!(!value.to_lowercase().contains("password"), "{engine:?}: {}={value}", var.name);
            }
            assert!(c.env_from.is_none(), "{engine:?}: no envFrom (it would expose every key)");
            let words: Vec<String> = c.command.iter().chain(c.args.iter()).flatten().cloned().collect();
            assert!(!words.is_empty(), "{engine:?}");
            for word in &words {
                for forbidden in ["PASSWORD", "MYSQL_PWD", " -p", "--password", "db-credentials"] {
                    assert!(!word.contains(forbidden), "{engine:?}: the command names {forbidden:?}: {word}");
                }
            }
            let json = serde_json::to_string(&job).expect("json");
            assert_eq!(json.matches("password").count(), json.matches("\"key\":\"password\"").count(), "{engine:?}: {json}");
        }
    }

    #[test]
    fn dump_scripts_name_no_credentials() {
        for engine in [SqlEngine::PostgreSQL, SqlEngine::MySQL] {
            let script = dump_script(engine);
            assert!(!script.contains("PASSWORD") && !script.contains("PWD") && !script.contains("-p "), "{script}");
        }
        let sql = SqlSource {
            engine: SqlEngine::MySQL,
            host: "db".into(),
            port: None,
            database: "meta".into(),
            credentials_secret: "creds".into(),
        };
        let env = connection_env(&sql, "db", 3306, "meta", "creds");
        let pwd = env.iter().find(|e| e.name == "MYSQL_PWD").expect("password env");
        assert!(pwd.value.is_none(), "the password comes from the Secret, never a literal");
    }
}
