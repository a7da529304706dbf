//! Objects a restore creates: PVCs from VolumeSnapshots, Secrets from a backup's copy, SQL
//! restore Jobs, post-restore hook Jobs, the side-by-side workload copy, the mapping ConfigMap.

use super::dump::{connection_env, default_port, DUMP_MOUNT, MYSQL_DUMP_FILE, POSTGRES_DUMP_FILE};
use super::labels::{BACKUP, COMPONENT, STORE};
use crate::api::{Component, PostRestoreJob, RestoreRequest, SqlEngine, SqlSource};
use crate::plan::names::component_word;
use crate::plan::restore::{ItemKind, RestoreItem};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Secret, TypedLocalObjectReference,
    Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::ByteString;
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;

/// Label on everything a restore creates: the RestoreRequest's name.
pub const RESTORE: &str = crate::plan::validate::RESTORE_LABEL;
/// Where post-restore hooks see the restored PVCs: `/restore/<restored claim>`.
pub const HOOK_MOUNT_ROOT: &str = "/restore";

fn labels(request: &str, backup: &str, item: &RestoreItem) -> BTreeMap<String, String> {
    BTreeMap::from([
        (RESTORE.to_string(), request.to_string()),
        (BACKUP.to_string(), backup.to_string()),
        (COMPONENT.to_string(), component_word(item.component).to_string()),
        (STORE.to_string(), item.store.clone()),
    ])
}

fn owned_by(request: &RestoreRequest) -> Option<Vec<OwnerReference>> {
    request.controller_owner_ref(&()).map(|r| vec![r])
}

/// A PVC named `name`, restored from `snapshot`, shaped like `original` (storage class and
/// access modes) when the original still exists. Not owned by the request: restored data
/// outlives it.
pub fn claim_from_snapshot(
    request: &RestoreRequest,
    backup: &str,
    item: &RestoreItem,
    name: &str,
    snapshot: &str,
    size: Option<&str>,
    original: Option<&PersistentVolumeClaim>,
) -> PersistentVolumeClaim {
    let original_spec = original.and_then(|c| c.spec.clone()).unwrap_or_default();
    let original_size = original_spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone());
    let size = size.map(String::from).or(original_size).unwrap_or_else(|| "1Gi".to_string());
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: request.namespace(),
            labels: Some(labels(&request.name_any(), backup, item)),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(original_spec.access_modes.unwrap_or_else(|| vec!["ReadWriteOnce".into()])),
            storage_class_name: original_spec.storage_class_name,
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), Quantity(size))])),
                ..Default::default()
            }),
            data_source: Some(TypedLocalObjectReference {
                api_group: Some("snapshot.storage.k8s.io".into()),
                kind: "VolumeSnapshot".into(),
                name: snapshot.to_string(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Secret `item.restored`, holding the keys `<item.original>.<key>` of the backup's copy.
pub fn secret_from_copy(request: &RestoreRequest, backup: &str, item: &RestoreItem, copy: &Secret) -> Secret {
    let prefix = format!("{}.", item.original);
    let data: BTreeMap<String, ByteString> = copy
        .data
        .iter()
        .flatten()
        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|key| (key.to_string(), v.clone())))
        .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(item.restored.clone()),
            namespace: request.namespace(),
            labels: Some(labels(&request.name_any(), backup, item)),
            ..Default::default()
        },
        data: Some(data),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// Letters and digits spelled out, so the shell's pattern matching of [`database_name_check`]
/// does not depend on the container's locale (`[A-Z]` can match lowercase letters in some).
const LETTERS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DIGITS: &str = "0123456789";

/// Why an SQL restore Job is not built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlRestoreError {
    /// The item is not an SQL dump.
    #[error("{0} is not an SQL dump")]
    NotSql(String),
    /// A database name of the item is not a safe database name (validation should have
    /// refused the request; the Job builder refuses it as well, so no SQL is ever run with it).
    #[error("refusing to restore into database {name:?}: {reason}")]
    UnsafeDatabaseName {
        /// The refused name.
        name: String,
        /// Why it is refused.
        reason: String,
    },
}

/// The first commands of every SQL restore script: exit 4 (a message on stderr) unless
/// `$NEW_DATABASE` matches [`SQL_DATABASE_PATTERN`](crate::api::SQL_DATABASE_PATTERN), so the
/// script itself never uses a name that could end a string or an identifier, even if its
/// environment was changed after the Job builder checked it.
pub fn database_name_check() -> String {
    let max = crate::plan::validate::names::SQL_IDENTIFIER_MAX;
    let refuse = format!(
        "echo \"refusing the new database name: it must match {}\" >&2; exit 4",
        crate::api::SQL_DATABASE_PATTERN
    );
    format!(
        "case \"$NEW_DATABASE\" in ''|[!{LETTERS}_]*|*[!{LETTERS}{DIGITS}_]*) {refuse};; esac; if [ \"${{#NEW_DATABASE}}\" -gt {max} ]; then {refuse}; fi; "
    )
}

/// The shell script of an SQL restore: refuses (exit 4) an unsafe `$NEW_DATABASE`
/// ([`database_name_check`]), refuses (exit 3, a message on stderr) when the new database
/// exists, else creates it and loads the dump. No credential appears in it, and no SQL text is
/// built from the database name except, for MySQL, the `CREATE DATABASE` identifier in
/// backticks, after the name was checked:
/// - PostgreSQL: the existence check binds the name as a psql variable (`:'db'`, quoted by
///   psql); `createdb` and `pg_restore -d` take it as an argument.
/// - MySQL: the existence check lists the databases and compares each line with the name in
///   the shell (`grep -x -F`); the load takes it as an argument. `CREATE DATABASE` without
///   `IF NOT EXISTS` also fails on an existing database.
pub fn restore_script(engine: SqlEngine) -> String {
    let check = database_name_check();
    match engine {
        SqlEngine::PostgreSQL => format!(
            "set -e; {check}if echo \"SELECT 1 FROM pg_database WHERE datname = :'db'\" | psql -d postgres -v db=\"$NEW_DATABASE\" -tA | grep -q 1; then echo \"database $NEW_DATABASE already exists; refusing to overwrite it\" >&2; exit 3; fi; createdb --maintenance-db=postgres \"$NEW_DATABASE\"; pg_restore --no-owner --exit-on-error -d \"$NEW_DATABASE\" {DUMP_MOUNT}/{POSTGRES_DUMP_FILE}"
        ),
        SqlEngine::MySQL => format!(
            "set -e; {check}CLIENT=$(command -v mariadb || command -v mysql); DATABASES=$(\"$CLIENT\" --host=\"$MYSQL_HOST\" --port=\"$MYSQL_TCP_PORT\" --user=\"$MYSQL_USER\" -N -B -e 'SHOW DATABASES'); if printf '%s\\n' \"$DATABASES\" | grep -qxF -- \"$NEW_DATABASE\"; then echo \"database $NEW_DATABASE already exists; refusing to overwrite it\" >&2; exit 3; fi; \"$CLIENT\" --host=\"$MYSQL_HOST\" --port=\"$MYSQL_TCP_PORT\" --user=\"$MYSQL_USER\" -e \"CREATE DATABASE \\`$NEW_DATABASE\\`\"; \"$CLIENT\" --host=\"$MYSQL_HOST\" --port=\"$MYSQL_TCP_PORT\" --user=\"$MYSQL_USER\" \"$NEW_DATABASE\" < {DUMP_MOUNT}/{MYSQL_DUMP_FILE}"
        ),
    }
}

/// The Job restoring an SQL item's dump (from its restored dump PVC) into the new database.
/// Refuses an item that is not an SQL dump, and a database name (the new one or the
/// original) that is not a safe name ([`crate::plan::validate::names::sql_database`]),
/// whatever validation decided before.
pub fn sql_restore_job(request: &RestoreRequest, backup: &str, item: &RestoreItem, image: Option<&str>) -> Result<Job, SqlRestoreError> {
    let ItemKind::Sql { claim, job, engine, host, port, credentials_secret, .. } = &item.kind else {
        return Err(SqlRestoreError::NotSql(item.original.clone()));
    };
    for name in [&item.restored, &item.original] {
        if let Some(reason) = crate::plan::validate::names::sql_database(name) {
            return Err(SqlRestoreError::UnsafeDatabaseName { name: name.clone(), reason });
        }
    }
    let source = SqlSource {
        engine: *engine,
        host: host.clone(),
        port: *port,
        database: item.original.clone(),
        credentials_secret: credentials_secret.clone(),
    };
    let port = port.unwrap_or_else(|| default_port(*engine));
    let mut env = connection_env(&source, host, port, &item.original, credentials_secret);
    env.push(EnvVar { name: "NEW_DATABASE".into(), value: Some(item.restored.clone()), ..Default::default() });
    let image = image.map(String::from).unwrap_or_else(|| match engine {
        SqlEngine::PostgreSQL => "postgres:16".into(),
        SqlEngine::MySQL => "mariadb:11".into(),
    });
    Ok(job_object(
        request,
        job,
        labels(&request.name_any(), backup, item),
        Container {
            name: "restore".into(),
            image: Some(image),
            command: Some(vec!["sh".into(), "-c".into(), restore_script(*engine)]),
            env: Some(env),
            volume_mounts: Some(vec![VolumeMount { name: "dump".into(), mount_path: DUMP_MOUNT.into(), read_only: Some(true), ..Default::default() }]),
            ..Default::default()
        },
        vec![Volume {
            name: "dump".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: claim.clone(), read_only: Some(true) }),
            ..Default::default()
        }],
    ))
}

/// A post-restore hook Job with every restored volume mounted at `/restore/<claim>`.
pub fn hook_job(request: &RestoreRequest, name: &str, hook: &PostRestoreJob, claims: &[String]) -> Job {
    let volumes: Vec<Volume> = claims
        .iter()
        .enumerate()
        .map(|(i, claim)| Volume {
            name: format!("restored-{i}"),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: claim.clone(), read_only: None }),
            ..Default::default()
        })
        .collect();
    let mounts: Vec<VolumeMount> = claims
        .iter()
        .enumerate()
        .map(|(i, claim)| VolumeMount { name: format!("restored-{i}"), mount_path: format!("{HOOK_MOUNT_ROOT}/{claim}"), ..Default::default() })
        .collect();
    job_object(
        request,
        name,
        BTreeMap::from([(RESTORE.to_string(), request.name_any())]),
        Container {
            name: hook.name.clone(),
            image: Some(hook.image.clone()),
            command: Some(hook.command.clone()),
            env: Some(vec![EnvVar { name: "ARCHIVIST_RESTORE_REQUEST".into(), value: Some(request.name_any()), ..Default::default() }]),
            volume_mounts: Some(mounts),
            ..Default::default()
        },
        volumes,
    )
}

fn job_object(request: &RestoreRequest, name: &str, labels: BTreeMap<String, String>, container: Container, volumes: Vec<Volume>) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: request.namespace(),
            labels: Some(labels.clone()),
            owner_references: owned_by(request),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(super::jobs::RESTORE_JOB_DEADLINE_SECONDS),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(BTreeMap::from([(RESTORE.to_string(), request.name_any())])), ..Default::default() }),
                spec: Some(PodSpec { restart_policy: Some("Never".into()), containers: vec![container], volumes: Some(volumes), ..Default::default() }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The mapping ConfigMap `<request>-mapping` with key `restore.csv`.
pub fn mapping_config_map(request: &RestoreRequest, name: &str, csv: String) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: request.namespace(),
            labels: Some(BTreeMap::from([(RESTORE.to_string(), request.name_any())])),
            owner_references: owned_by(request),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("restore.csv".to_string(), csv)])),
        ..Default::default()
    }
}

/// Rewrites a pod template for the side-by-side copy: claims are replaced by the restored
/// ones (`claims`: original claim name -> restored claim name; StatefulSet claim templates
/// become plain volumes of ordinal 0's restored claim), and the labels are only
/// `archivist.dev/restore`, so the original's Services never route to the copy.
fn rewrite_template(template: &mut PodTemplateSpec, request: &str, claims: &BTreeMap<String, String>, claim_templates: &[(String, String)]) {
    let meta = template.metadata.get_or_insert_with(Default::default);
    meta.labels = Some(BTreeMap::from([(RESTORE.to_string(), request.to_string())]));
    let spec = template.spec.get_or_insert_with(Default::default);
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    for volume in volumes.iter_mut() {
        if let Some(pvc) = volume.persistent_volume_claim.as_mut() {
            if let Some(restored) = claims.get(&pvc.claim_name) {
                pvc.claim_name = restored.clone();
            }
        }
    }
    for (template_name, original_claim) in claim_templates {
        if let Some(restored) = claims.get(original_claim) {
            volumes.push(Volume {
                name: template_name.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: restored.clone(), read_only: None }),
                ..Default::default()
            });
        }
    }
}

/// The side-by-side copy of a StatefulSet: one replica, named `name`, mounting the restored
/// claims, owned by the request.
pub fn statefulset_copy(request: &RestoreRequest, original: &StatefulSet, name: &str, claims: &BTreeMap<String, String>) -> StatefulSet {
    let mut spec = original.spec.clone().unwrap_or_default();
    let original_name = original.name_any();
    let claim_templates: Vec<(String, String)> = spec
        .volume_claim_templates
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| t.metadata.name)
        .map(|t| (t.clone(), format!("{t}-{original_name}-0")))
        .collect();
    rewrite_template(&mut spec.template, &request.name_any(), claims, &claim_templates);
    spec.replicas = Some(1);
    spec.service_name = Some(name.to_string());
    spec.selector = LabelSelector { match_labels: Some(BTreeMap::from([(RESTORE.to_string(), request.name_any())])), match_expressions: None };
    StatefulSet {
        metadata: copy_meta(request, name),
        spec: Some(spec),
        status: None,
    }
}

/// The side-by-side copy of a Deployment (see [`statefulset_copy`]).
pub fn deployment_copy(request: &RestoreRequest, original: &Deployment, name: &str, claims: &BTreeMap<String, String>) -> Deployment {
    let mut spec = original.spec.clone().unwrap_or_default();
    rewrite_template(&mut spec.template, &request.name_any(), claims, &[]);
    spec.replicas = Some(1);
    spec.selector = LabelSelector { match_labels: Some(BTreeMap::from([(RESTORE.to_string(), request.name_any())])), match_expressions: None };
    Deployment { metadata: copy_meta(request, name), spec: Some(spec), status: None }
}

fn copy_meta(request: &RestoreRequest, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: request.namespace(),
        labels: Some(BTreeMap::from([(RESTORE.to_string(), request.name_any())])),
        owner_references: owned_by(request),
        ..Default::default()
    }
}


/// Whether a component's restored claim is mounted by hooks (every volume item is).
pub fn is_volume(item: &RestoreItem) -> bool {
    matches!(item.kind, ItemKind::Volume { .. }) && item.component != Component::Secrets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RestoreRequestSpec;
    use k8s_openapi::api::apps::v1::StatefulSetSpec;
    use k8s_openapi::api::core::v1::PersistentVolumeClaim as Pvc;

    fn request() -> RestoreRequest {
        let spec: RestoreRequestSpec = serde_json::from_value(serde_json::json!({"source": {"backupName": "b"}})).expect("spec");
        let mut r = RestoreRequest::new("req", spec);
        r.metadata.namespace = Some("mail".into());
        r.metadata.uid = Some("uid-1".into());
        r
    }

    #[test]
    fn statefulset_copy_mounts_restored_claims_and_never_matches_the_original() {
        let original = StatefulSet {
            metadata: ObjectMeta { name: Some("mailstore".into()), ..Default::default() },
            spec: Some(StatefulSetSpec {
                selector: LabelSelector { match_labels: Some(BTreeMap::from([("app".into(), "mailstore".into())])), match_expressions: None },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some(BTreeMap::from([("app".into(), "mailstore".into())])), ..Default::default() }),
                    spec: Some(PodSpec { containers: vec![], ..Default::default() }),
                },
                volume_claim_templates: Some(vec![Pvc { metadata: ObjectMeta { name: Some("data".into()), ..Default::default() }, ..Default::default() }]),
                replicas: Some(3),
                ..Default::default()
            }),
            status: None,
        };
        let claims = BTreeMap::from([("data-mailstore-0".to_string(), "data-mailstore-0-r".to_string())]);
        let copy = statefulset_copy(&request(), &original, "mailstore-r", &claims);
        let spec = copy.spec.expect("spec");
        assert_eq!(spec.replicas, Some(1));
        assert!(spec.volume_claim_templates.is_none());
        let volumes = spec.template.spec.and_then(|s| s.volumes).expect("volumes");
        assert_eq!(volumes[0].persistent_volume_claim.as_ref().map(|p| p.claim_name.as_str()), Some("data-mailstore-0-r"));
        let labels = spec.template.metadata.and_then(|m| m.labels).expect("labels");
        assert!(!labels.contains_key("app"), "the original's Service must not select the copy");
        assert_eq!(copy.metadata.owner_references.map(|o| o.len()), Some(1));
    }

    fn sql_item(engine: SqlEngine, original: &str, restored: &str) -> RestoreItem {
        RestoreItem {
            component: Component::Metadata,
            store: "s1".into(),
            original: original.into(),
            restored: restored.into(),
            kind: ItemKind::Sql {
                snapshot: "snap".into(),
                size: None,
                claim: "dump-r".into(),
                job: "req-sql-metadata-s1".into(),
                engine,
                host: "db.mail.svc".into(),
                port: None,
                credentials_secret: "db-credentials".into(),
            },
        }
    }

    /// The container of a Job's pod template.
    fn container(job: &Job) -> Container {
        job.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.containers.first().cloned())
            .expect("a container")
    }

    #[test]
    fn sql_restore_jobs_take_every_credential_from_the_secret() {
        let cases = [
            (SqlEngine::PostgreSQL, [("PGUSER", "username"), ("PGPASSWORD", "password")]),
            (SqlEngine::MySQL, [("MYSQL_USER", "username"), ("MYSQL_PWD", "password")]),
        ];
        for (engine, credentials) in cases {
            let job = sql_restore_job(&request(), "b", &sql_item(engine, "meta", "meta_restored"), None).expect("a Job");
            let c = container(&job);
            let env = c.env.clone().unwrap_or_default();
            for (name, key) in credentials {
                let var = env.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("{engine:?}: no {name}"));
                assert_eq!(var.value, None, "{engine:?}: {name} must not be a literal");
                let from = var.value_from.as_ref().and_then(|f| f.secret_key_ref.as_ref()).expect("a secretKeyRef");
                assert_eq!((from.name.as_str(), from.key.as_str()), ("db-credentials", key), "{engine:?}: {name}");
            }
            // Only the credentials come from the Secret; every other variable is a literal
            // that names no credential.
            for var in env.iter().filter(|e| !credentials.iter().any(|(name, _)| *name == e.name)) {
                assert!(var.value_from.is_none(), "{engine:?}: {} reads {:?}", var.name, var.value_from);
                let value = var.value.clone().unwrap_or_default();
                assert!(!value.to_lowercase().contains("password"), "{engine:?}: {}={value}", var.name);
            }
            let words: Vec<String> = c.command.iter().chain(c.args.iter()).flatten().cloned().collect();
            assert!(!words.is_empty());
            for word in &words {
                for forbidden in ["PASSWORD", "MYSQL_PWD", "-p", "--password", "db-credentials"] {
                    let pattern = if forbidden.starts_with('-') { format!(" {forbidden}") } else { forbidden.to_string() };
                    assert!(!word.contains(&pattern), "{engine:?}: the command names {forbidden:?}: {word}");
                }
            }
            // The serialized Job holds "password" only as the Secret key of the secretKeyRef.
            let json = serde_json::to_string(&job).expect("json");
            assert_eq!(json.matches("password").count(), json.matches("\"key\":\"password\"").count(), "{engine:?}: {json}");
        }
    }

    #[test]
    fn sql_restore_jobs_refuse_unsafe_database_names() {
        let hostile = ["meta_x'; DROP DATABASE y; --", "meta_x`; DROP DATABASE y; --", "meta-restored", "", &"m".repeat(64)];
        for engine in [SqlEngine::PostgreSQL, SqlEngine::MySQL] {
            for name in hostile {
                let refused = sql_restore_job(&request(), "b", &sql_item(engine, "meta", name), None);
                assert!(
                    matches!(&refused, Err(SqlRestoreError::UnsafeDatabaseName { name: n, .. }) if n == name),
                    "{engine:?} {name:?}: {refused:?}"
                );
                let refused = sql_restore_job(&request(), "b", &sql_item(engine, name, "meta_restored"), None);
                assert!(matches!(refused, Err(SqlRestoreError::UnsafeDatabaseName { .. })), "{engine:?} original {name:?}");
            }
            assert!(sql_restore_job(&request(), "b", &sql_item(engine, "meta", "meta_restored"), None).is_ok());
        }
        let volume = RestoreItem { kind: ItemKind::Volume { snapshot: "s".into(), size: None }, ..sql_item(SqlEngine::MySQL, "m", "m_r") };
        assert_eq!(sql_restore_job(&request(), "b", &volume, None), Err(SqlRestoreError::NotSql("m".into())));
    }

    /// The scripts' own name check, run by `sh` with `NEW_DATABASE` set: a name that could end
    /// a string or an identifier never reaches the SQL client.
    #[test]
    fn the_restore_scripts_check_the_name_themselves() {
        let check = format!("{}echo accepted", database_name_check());
        let long = "m".repeat(63);
        let too_long = "m".repeat(64);
        let cases: [(&str, bool); 12] = [
            ("meta_restored", true),
            ("_Meta2", true),
            (&long, true),
            (&too_long, false),
            ("", false),
            ("2meta", false),
            ("meta-restored", false),
            ("x'; DROP DATABASE y; --", false),
            ("x`; DROP DATABASE y; --", false),
            ("x$(touch /tmp/pwned)", false),
            ("a b", false),
            ("caf\u{e9}", false),
        ];
        for (name, accepted) in cases {
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(&check)
                .env_clear()
                .env("NEW_DATABASE", name)
                .output()
                .expect("sh runs");
            let stdout = String::from_utf8_lossy(&output.stdout);
            if accepted {
                assert!(output.status.success() && stdout.trim() == "accepted", "{name:?} was refused: {output:?}");
            } else {
                assert_eq!(output.status.code(), Some(4), "{name:?} was accepted: {output:?}");
                assert!(String::from_utf8_lossy(&output.stderr).contains("refusing the new database name"), "{output:?}");
            }
        }
        for engine in [SqlEngine::PostgreSQL, SqlEngine::MySQL] {
            let script = restore_script(engine);
            assert!(script.starts_with(&format!("set -e; {}", database_name_check())), "{engine:?}: the check comes first");
        }
    }

    /// The MySQL script run by `sh` against a fake client that records its arguments: an
    /// existing database (listed by `SHOW DATABASES`) is refused before anything is created, a
    /// similar name does not count, the new name reaches SQL only in `CREATE DATABASE` in
    /// backticks, and an unsafe name never reaches the client.
    #[test]
    fn the_mysql_script_refuses_existing_databases_without_sql_from_the_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let client = dir.path().join("mariadb");
        std::fs::write(
            &client,
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> \"$FAKE_LOG\"\ncase \"$*\" in *'SHOW DATABASES'*) printf '%s\\n' information_schema mysql \"$FAKE_EXISTING\";; esac\n",
        )
        .expect("fake client");
        std::fs::set_permissions(&client, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let script = restore_script(SqlEngine::MySQL);
        let run = |new: &str, existing: &str| {
            let log = dir.path().join(format!("log-{}", new.len()));
            let _ = std::fs::remove_file(&log);
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .env_clear()
                .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
                .env("FAKE_LOG", &log)
                .env("FAKE_EXISTING", existing)
                .env("NEW_DATABASE", new)
                .envs([("MYSQL_HOST", "db"), ("MYSQL_TCP_PORT", "3306"), ("MYSQL_USER", "u")])
                .output()
                .expect("sh runs");
            (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned(), std::fs::read_to_string(&log).unwrap_or_default())
        };

        let (code, stderr, calls) = run("meta_restored", "meta_restored");
        assert_eq!(code, Some(3), "{stderr}");
        assert!(stderr.contains("database meta_restored already exists; refusing to overwrite it"), "{stderr}");
        assert_eq!(calls.lines().count(), 1, "only the listing ran: {calls}");

        // Not there (a longer name is another database): created, with the name in backticks;
        // loading then fails here, as there is no /dump/dump.sql.
        let (code, stderr, calls) = run("meta_restored", "meta_restored_old");
        assert_ne!(code, Some(0), "{stderr}");
        let lines: Vec<&str> = calls.lines().collect();
        assert_eq!(lines.len(), 2, "{calls}");
        assert!(lines[0].ends_with("-N -B -e SHOW DATABASES") && !lines[0].contains("meta_restored"), "{calls}");
        assert!(lines[1].ends_with("-e CREATE DATABASE `meta_restored`"), "{calls}");

        let (code, stderr, calls) = run("x`; DROP DATABASE y; --", "");
        assert_eq!(code, Some(4), "{stderr}");
        assert!(calls.is_empty(), "the client ran with an unsafe name: {calls}");
    }

    /// No SQL text is built from the name before the check, and MySQL's existence check binds
    /// nothing into SQL at all: it compares the listed names in the shell.
    #[test]
    fn no_sql_string_is_built_from_the_name() {
        let mysql = restore_script(SqlEngine::MySQL);
        assert!(!mysql.contains("'$NEW_DATABASE'"), "{mysql}");
        assert!(mysql.contains("-e 'SHOW DATABASES'") && mysql.contains("grep -qxF -- \"$NEW_DATABASE\""), "{mysql}");
        // The one SQL argument in double quotes (the only kind the shell interpolates into).
        let interpolated: Vec<&str> = mysql.match_indices("-e \"").map(|(i, _)| &mysql[i..]).collect();
        assert_eq!(interpolated.len(), 1, "{mysql}");
        assert!(interpolated[0].starts_with("-e \"CREATE DATABASE \\`$NEW_DATABASE\\`\";"), "{mysql}");
        let postgres = restore_script(SqlEngine::PostgreSQL);
        assert!(postgres.contains("datname = :'db'") && postgres.contains("-v db=\"$NEW_DATABASE\""), "{postgres}");
        assert!(!postgres.contains("'$NEW_DATABASE'"), "{postgres}");
    }

    #[test]
    fn restore_scripts_name_no_credentials_and_refuse_existing_databases() {
        for engine in [SqlEngine::PostgreSQL, SqlEngine::MySQL] {
            let script = restore_script(engine);
            assert!(script.contains("already exists; refusing"), "{script}");
            assert!(!script.contains("PASSWORD") && !script.contains("PWD"), "{script}");
        }
    }
}
