//! Objects a restore creates: PVCs from VolumeSnapshots, Secrets from a backup's copy, SQL
//! restore Jobs, post-restore hook Jobs, the side-by-side workload copy, the mapping ConfigMap.

use super::dump::{connection_env, default_port, DUMP_MOUNT, MYSQL_DUMP_FILE, POSTGRES_DUMP_FILE};
use super::labels::{BACKUP, COMPONENT, STORE};
use crate::api::{Component, PostRestoreJob, ReplacedClaim, RestoreRequest, SqlEngine, SqlSource};
use crate::plan::names::component_word;
use crate::plan::restore::{shape, ItemKind, RestoreItem};
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
pub const RESTORE: &str = crate::plan::restore::RESTORE_LABEL;
/// Where post-restore hooks see the restored PVCs: `/restore/<restored claim>`.
pub const HOOK_MOUNT_ROOT: &str = "/restore";

/// The labels of what a restore creates for `item`.
pub(super) fn labels(request: &str, backup: &str, item: &RestoreItem) -> BTreeMap<String, String> {
    BTreeMap::from([
        (RESTORE.to_string(), request.to_string()),
        (BACKUP.to_string(), backup.to_string()),
        (COMPONENT.to_string(), component_word(item.component).to_string()),
        (STORE.to_string(), item.store.clone()),
    ])
}

/// The owner reference to the request (for what goes with it: Jobs, the reader pod).
pub(super) fn owned_by(request: &RestoreRequest) -> Option<Vec<OwnerReference>> {
    request.controller_owner_ref(&()).map(|r| vec![r])
}

/// A PVC named `name`, restored from `snapshot` (`None`: created empty, for a fetch Job to
/// fill from the repository), with the shape `shape`: its storage class,
/// access modes (default `ReadWriteOnce`), volume mode, labels and annotations (without those
/// Kubernetes manages for the binding, see [`shape::is_managed_annotation`]), and its size, or
/// the snapshot's `size` when that is larger ([`shape::restored_size`]). `InPlace` passes the
/// record of the claim it replaces; the other modes the original's spec without its metadata.
/// The restore's labels (`archivist.dev/restore`, `backup`, `component`, `store`) are always
/// set. Not owned by the request: restored data outlives it.
pub fn restored_claim(
    request: &RestoreRequest,
    backup: &str,
    item: &RestoreItem,
    name: &str,
    snapshot: Option<&str>,
    size: Option<&str>,
    shape: Option<&ReplacedClaim>,
) -> PersistentVolumeClaim {
    let wanted = shape.cloned().unwrap_or_default();
    let mut all_labels = wanted.labels;
    all_labels.extend(labels(&request.name_any(), backup, item));
    let annotations: BTreeMap<String, String> = wanted.annotations.into_iter().filter(|(k, _)| !shape::is_managed_annotation(k)).collect();
    let access_modes = if wanted.access_modes.is_empty() { vec!["ReadWriteOnce".to_string()] } else { wanted.access_modes };
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: request.namespace(),
            labels: Some(all_labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(access_modes),
            storage_class_name: wanted.storage_class_name,
            volume_mode: wanted.volume_mode,
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), Quantity(shape::restored_size(wanted.size.as_deref(), size)))])),
                ..Default::default()
            }),
            data_source: snapshot.map(|snapshot| TypedLocalObjectReference {
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
    secret_from_keys(request, backup, item, copy.data.iter().flatten().map(|(k, v)| (k.as_str(), &v.0)))
}

/// The Secret `item.restored`, holding the keys `<item.original>.<key>` among `copy_keys`
/// (the backup's Secret copy, from the cluster or read back from the repository).
pub fn secret_from_keys<'a>(request: &RestoreRequest, backup: &str, item: &RestoreItem, copy_keys: impl Iterator<Item = (&'a str, &'a Vec<u8>)>) -> Secret {
    let prefix = format!("{}.", item.original);
    let data: BTreeMap<String, ByteString> =
        copy_keys.filter_map(|(k, v)| k.strip_prefix(&prefix).map(|key| (key.to_string(), ByteString(v.clone())))).collect();
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

/// The shell script that drops a database a restore created (a restore drill's teardown):
/// refuses (exit 4) an unsafe `$NEW_DATABASE` ([`database_name_check`]) first, then drops it
/// if it is there. No SQL text is built from the name but, for MySQL, the `DROP DATABASE`
/// identifier in backticks after the check; PostgreSQL binds it as a psql identifier variable
/// (`:"db"`, quoted by psql).
pub fn drop_script(engine: SqlEngine) -> String {
    let check = database_name_check();
    match engine {
        SqlEngine::PostgreSQL => format!(
            "set -e; {check}echo 'DROP DATABASE IF EXISTS :\"db\"' | psql -d postgres -v ON_ERROR_STOP=1 -v db=\"$NEW_DATABASE\""
        ),
        SqlEngine::MySQL => format!(
            "set -e; {check}CLIENT=$(command -v mariadb || command -v mysql); \"$CLIENT\" --host=\"$MYSQL_HOST\" --port=\"$MYSQL_TCP_PORT\" --user=\"$MYSQL_USER\" -e \"DROP DATABASE IF EXISTS \\`$NEW_DATABASE\\`\""
        ),
    }
}

/// The Job that drops the database the SQL restore Job `restore` created: the same image,
/// connection environment and `$NEW_DATABASE`, running [`drop_script`]; named
/// `<restore job>-drop`, labelled and owned like it. `None` when `restore` is not an SQL
/// restore Job (its container is not [`SQL_RESTORE_CONTAINER`], as a drop Job's is not; no
/// `NEW_DATABASE`; no engine's connection variables).
pub fn drop_database_job(restore: &Job) -> Option<Job> {
    let mut job = restore.clone();
    let name = crate::plan::names::fit(&format!("{}-drop", restore.metadata.name.as_deref()?), crate::plan::names::MAX_LABEL_NAME);
    let pod = job.spec.as_mut()?.template.spec.as_mut()?;
    let container = pod.containers.first_mut()?;
    if container.name != SQL_RESTORE_CONTAINER {
        // A drop Job (or anything else) is not a restore to undo.
        return None;
    }
    let env = container.env.clone().unwrap_or_default();
    let has = |key: &str| env.iter().any(|e| e.name == key);
    if !has("NEW_DATABASE") {
        return None;
    }
    let engine = if has("PGHOST") {
        SqlEngine::PostgreSQL
    } else if has("MYSQL_HOST") {
        SqlEngine::MySQL
    } else {
        return None;
    };
    container.name = "drop".into();
    container.command = Some(vec!["sh".into(), "-c".into(), drop_script(engine)]);
    container.volume_mounts = None;
    pod.volumes = None;
    job.metadata = ObjectMeta {
        name: Some(name),
        namespace: restore.metadata.namespace.clone(),
        labels: restore.metadata.labels.clone(),
        owner_references: restore.metadata.owner_references.clone(),
        ..Default::default()
    };
    if let Some(spec) = job.spec.as_mut() {
        spec.selector = None;
        spec.template.metadata.as_mut().map(|m| m.labels.as_mut().map(|l| l.retain(|k, _| k == RESTORE)));
    }
    job.status = None;
    Some(job)
}

/// The container of an SQL restore Job.
pub const SQL_RESTORE_CONTAINER: &str = "restore";

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
            name: SQL_RESTORE_CONTAINER.into(),
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

/// A one-pod Job of the request: never retried, stopped after a day, owned by the request.
pub(super) fn job_object(request: &RestoreRequest, name: &str, labels: BTreeMap<String, String>, container: Container, volumes: Vec<Volume>) -> Job {
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

/// The metadata of object `name` that goes with `request`: in its namespace, labelled with it
/// (`archivist.dev/restore`) and owned by it (the mapping ConfigMap, the reader pod, the
/// side-by-side workload copy).
pub(super) fn request_owned(request: &RestoreRequest, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: request.namespace(),
        labels: Some(BTreeMap::from([(RESTORE.to_string(), request.name_any())])),
        owner_references: owned_by(request),
        ..Default::default()
    }
}

/// The mapping ConfigMap `<request>-mapping` with key `restore.csv`.
pub fn mapping_config_map(request: &RestoreRequest, name: &str, csv: String) -> ConfigMap {
    ConfigMap {
        metadata: request_owned(request, name),
        data: Some(BTreeMap::from([("restore.csv".to_string(), csv)])),
        ..Default::default()
    }
}

/// What the side-by-side copy uses in place of the original's data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyRenames {
    /// Original claim name -> restored claim name.
    pub claims: BTreeMap<String, String>,
    /// Original database -> the new database its dump was restored into.
    pub databases: BTreeMap<String, String>,
}

impl CopyRenames {
    /// The restored claims and databases of a request's items.
    pub fn of(items: &[RestoreItem]) -> Self {
        let claims = items.iter().filter(|i| is_volume(i)).map(|i| (i.original.clone(), i.restored.clone())).collect();
        let databases = items.iter().filter(|i| i.is_sql()).map(|i| (i.original.clone(), i.restored.clone())).collect();
        Self { claims, databases }
    }
}

/// Rewrites a pod template for the side-by-side copy: claims are replaced by the restored
/// ones (StatefulSet claim templates become plain volumes of ordinal 0's restored claim);
/// every environment variable of a container or init container whose value is exactly a
/// restored database's original name names the new database instead, so a server that takes
/// its database from its environment works on the restored metadata and never writes into the
/// original database; and the labels are only `archivist.dev/restore`, so the original's
/// Services never route to the copy.
fn rewrite_template(template: &mut PodTemplateSpec, request: &str, renames: &CopyRenames, claim_templates: &[(String, String)]) {
    let claims = &renames.claims;
    let meta = template.metadata.get_or_insert_with(Default::default);
    meta.labels = Some(BTreeMap::from([(RESTORE.to_string(), request.to_string())]));
    let spec = template.spec.get_or_insert_with(Default::default);
    let containers = spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten());
    for var in containers.flat_map(|c| c.env.iter_mut().flatten()) {
        if let Some(restored) = var.value.as_deref().and_then(|value| renames.databases.get(value)) {
            var.value = Some(restored.clone());
        }
    }
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
/// claims and pointed at the restored databases ([`rewrite_template`]), owned by the request.
pub fn statefulset_copy(request: &RestoreRequest, original: &StatefulSet, name: &str, renames: &CopyRenames) -> StatefulSet {
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
    rewrite_template(&mut spec.template, &request.name_any(), renames, &claim_templates);
    spec.replicas = Some(1);
    spec.service_name = Some(name.to_string());
    spec.selector = LabelSelector { match_labels: Some(BTreeMap::from([(RESTORE.to_string(), request.name_any())])), match_expressions: None };
    StatefulSet {
        metadata: request_owned(request, name),
        spec: Some(spec),
        status: None,
    }
}

/// The side-by-side copy of a Deployment (see [`statefulset_copy`]).
pub fn deployment_copy(request: &RestoreRequest, original: &Deployment, name: &str, renames: &CopyRenames) -> Deployment {
    let mut spec = original.spec.clone().unwrap_or_default();
    rewrite_template(&mut spec.template, &request.name_any(), renames, &[]);
    spec.replicas = Some(1);
    spec.selector = LabelSelector { match_labels: Some(BTreeMap::from([(RESTORE.to_string(), request.name_any())])), match_expressions: None };
    Deployment { metadata: request_owned(request, name), spec: Some(spec), status: None }
}



/// Whether a component's restored claim is mounted by hooks (every volume item is).
pub fn is_volume(item: &RestoreItem) -> bool {
    matches!(item.kind, ItemKind::Volume { .. }) && item.component != Component::Secrets
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::RestoreRequestSpec;
    use crate::plan::restore::DataSource;
    use k8s_openapi::api::apps::v1::StatefulSetSpec;
    use k8s_openapi::api::core::v1::PersistentVolumeClaim as Pvc;

    /// RestoreRequest `mail/req` (uid `uid-1`) of backup `b`.
    pub(crate) fn request() -> RestoreRequest {
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
        let renames = CopyRenames { claims, databases: BTreeMap::new() };
        let copy = statefulset_copy(&request(), &original, "mailstore-r", &renames);
        let spec = copy.spec.expect("spec");
        assert_eq!(spec.replicas, Some(1));
        assert!(spec.volume_claim_templates.is_none());
        let volumes = spec.template.spec.and_then(|s| s.volumes).expect("volumes");
        assert_eq!(volumes[0].persistent_volume_claim.as_ref().map(|p| p.claim_name.as_str()), Some("data-mailstore-0-r"));
        let labels = spec.template.metadata.and_then(|m| m.labels).expect("labels");
        assert!(!labels.contains_key("app"), "the original's Service must not select the copy");
        assert_eq!(copy.metadata.owner_references.map(|o| o.len()), Some(1));
    }

    fn volume_item(original: &str, restored: &str) -> RestoreItem {
        RestoreItem {
            component: Component::Master,
            store: String::new(),
            original: original.into(),
            restored: restored.into(),
            kind: ItemKind::Volume { from: DataSource::Cluster("snap-master".into()), size: Some("1Gi".into()) },
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The copy's environment names the restored databases: a variable whose value is exactly
    /// an original database's name (in a container or an init container) is rewritten; any
    /// other value, and a value from a Secret or ConfigMap, is left as it is.
    #[test]
    fn the_copy_is_pointed_at_the_restored_databases_through_its_environment() {
        let env = |pairs: &[(&str, &str)]| -> Option<Vec<EnvVar>> {
            Some(pairs.iter().map(|(name, value)| EnvVar { name: name.to_string(), value: Some(value.to_string()), ..Default::default() }).collect())
        };
        let from_secret = EnvVar {
            name: "PGPASSWORD".into(),
            value_from: Some(k8s_openapi::api::core::v1::EnvVarSource {
                secret_key_ref: Some(k8s_openapi::api::core::v1::SecretKeySelector { name: "db".into(), key: "password".into(), optional: None }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut server_env = env(&[("PGDATABASE", "meta_s2"), ("PGHOST", "db"), ("OTHER_DB", "meta_s2_archive"), ("MYSQL_DATABASE", "meta_s3")]).unwrap_or_default();
        server_env.push(from_secret.clone());
        let original = Deployment {
            metadata: ObjectMeta { name: Some("mailstore".into()), ..Default::default() },
            spec: Some(k8s_openapi::api::apps::v1::DeploymentSpec {
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        containers: vec![Container { name: "server".into(), env: Some(server_env), ..Default::default() }],
                        init_containers: Some(vec![Container { name: "migrate".into(), env: env(&[("DB", "meta_s2")]), ..Default::default() }]),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        };
        let renames = CopyRenames { claims: BTreeMap::new(), databases: map(&[("meta_s2", "meta_s2_restored"), ("meta_s3", "meta_s3_restored")]) };
        let copy = deployment_copy(&request(), &original, "mailstore-r", &renames);
        let pod = copy.spec.and_then(|s| s.template.spec).expect("pod spec");
        let values = |c: &Container| -> Vec<(String, Option<String>)> { c.env.iter().flatten().map(|e| (e.name.clone(), e.value.clone())).collect() };
        let cases: [(&str, Vec<(String, Option<String>)>, Vec<(&str, Option<&str>)>); 2] = [
            (
                "server",
                values(&pod.containers[0]),
                vec![
                    ("PGDATABASE", Some("meta_s2_restored")),
                    ("PGHOST", Some("db")),
                    ("OTHER_DB", Some("meta_s2_archive")),
                    ("MYSQL_DATABASE", Some("meta_s3_restored")),
                    ("PGPASSWORD", None),
                ],
            ),
            ("init container", pod.init_containers.as_ref().map(|c| values(&c[0])).unwrap_or_default(), vec![("DB", Some("meta_s2_restored"))]),
        ];
        for (case, got, want) in cases {
            let want: Vec<(String, Option<String>)> = want.into_iter().map(|(n, v)| (n.to_string(), v.map(str::to_string))).collect();
            assert_eq!(got, want, "{case}");
        }
        assert_eq!(pod.containers[0].env.as_ref().and_then(|e| e.last()), Some(&from_secret), "a value from a Secret is kept");
        // Without restored databases nothing changes.
        let unchanged = deployment_copy(&request(), &original, "mailstore-r", &CopyRenames::default());
        let env_of = |d: &Deployment| d.spec.as_ref().and_then(|s| s.template.spec.as_ref()).map(|p| p.containers[0].env.clone());
        assert_eq!(env_of(&unchanged), env_of(&original));
    }

    /// The in-place restore recreates a claim from its record: same storage class, access
    /// modes, size, volume mode, labels and annotations, plus the snapshot as data source and
    /// the restore's labels; without a record, the defaults.
    #[test]
    fn a_recreated_claim_has_the_recorded_shape() {
        let record = ReplacedClaim {
            name: "master".into(),
            storage_class_name: Some("gold".into()),
            access_modes: vec!["ReadWriteMany".into(), "ReadOnlyMany".into()],
            size: Some("2Gi".into()),
            volume_mode: Some("Filesystem".into()),
            labels: map(&[("tier", "gold"), ("empty", ""), (RESTORE, "an-earlier-request")]),
            annotations: map(&[("note", "keep me"), ("blank", ""), ("pv.kubernetes.io/bind-completed", "yes")]),
            volume: Some("pv-old".into()),
        };
        type Expect = (Option<&'static str>, Vec<&'static str>, &'static str, Option<&'static str>, Vec<(&'static str, &'static str)>, Vec<(&'static str, &'static str)>);
        let ours = [(RESTORE, "req"), (BACKUP, "b"), (COMPONENT, "master"), (STORE, "")];
        let cases: Vec<(&str, Option<ReplacedClaim>, Option<&str>, Expect)> = vec![
            (
                "the record",
                Some(record.clone()),
                Some("1Gi"),
                (
                    Some("gold"),
                    vec!["ReadWriteMany", "ReadOnlyMany"],
                    "2Gi",
                    Some("Filesystem"),
                    [("tier", "gold"), ("empty", "")].into_iter().chain(ours).collect(),
                    vec![("note", "keep me"), ("blank", "")],
                ),
            ),
            (
                "a snapshot larger than the record",
                Some(record.clone()),
                Some("3Gi"),
                (
                    Some("gold"),
                    vec!["ReadWriteMany", "ReadOnlyMany"],
                    "3Gi",
                    Some("Filesystem"),
                    [("tier", "gold"), ("empty", "")].into_iter().chain(ours).collect(),
                    vec![("note", "keep me"), ("blank", "")],
                ),
            ),
            (
                "explicitly no class",
                Some(ReplacedClaim { storage_class_name: Some(String::new()), ..record.clone() }),
                Some("1Gi"),
                (
                    Some(""),
                    vec!["ReadWriteMany", "ReadOnlyMany"],
                    "2Gi",
                    Some("Filesystem"),
                    [("tier", "gold"), ("empty", "")].into_iter().chain(ours).collect(),
                    vec![("note", "keep me"), ("blank", "")],
                ),
            ),
            ("no record", None, Some("1Gi"), (None, vec!["ReadWriteOnce"], "1Gi", None, ours.to_vec(), vec![])),
        ];
        for (name, shape, snapshot_size, (class, modes, size, volume_mode, labels, annotations)) in cases {
            let pvc = restored_claim(&request(), "b", &volume_item("master", "master"), "master", Some("snap-master"), snapshot_size, shape.as_ref());
            let spec = pvc.spec.clone().expect("spec");
            assert_eq!(pvc.metadata.name.as_deref(), Some("master"), "{name}");
            assert_eq!(spec.storage_class_name.as_deref(), class, "{name}");
            assert_eq!(spec.access_modes, Some(modes.iter().map(|m| m.to_string()).collect()), "{name}");
            let requested = spec.resources.and_then(|r| r.requests).and_then(|r| r.get("storage").cloned()).map(|q| q.0);
            assert_eq!(requested.as_deref(), Some(size), "{name}");
            assert_eq!(spec.volume_mode.as_deref(), volume_mode, "{name}");
            assert_eq!(pvc.metadata.labels, Some(map(&labels)), "{name}");
            assert_eq!(pvc.metadata.annotations.unwrap_or_default(), map(&annotations), "{name}: the binder's annotations are never copied");
            let source = spec.data_source.expect("a data source");
            assert_eq!((source.api_group.as_deref(), source.kind.as_str(), source.name.as_str()), (Some("snapshot.storage.k8s.io"), "VolumeSnapshot", "snap-master"), "{name}");
            assert!(spec.volume_name.is_none(), "{name}: never pre-bound to the old volume");
            assert!(pvc.metadata.owner_references.is_none(), "{name}: restored data outlives the request");
        }
    }

    /// Everything the restore creates carries `archivist.dev/restore: <request>`; what it may
    /// delete (or Kubernetes deletes with it) is owned by the request; restored data (PVCs,
    /// Secrets) is not owned, so it outlives the request.
    #[test]
    fn every_object_is_labelled_and_only_disposable_ones_are_owned() {
        let r = request();
        let original = StatefulSet {
            metadata: ObjectMeta { name: Some("mailstore".into()), ..Default::default() },
            spec: Some(StatefulSetSpec::default()),
            status: None,
        };
        let deployment = Deployment { metadata: ObjectMeta { name: Some("mailstore".into()), ..Default::default() }, ..Default::default() };
        let secret = secret_from_copy(&r, "b", &RestoreItem { component: Component::Secrets, ..volume_item("key", "key-r") }, &Secret::default());
        let hook = PostRestoreJob { name: "replay".into(), image: "busybox".into(), command: vec!["true".into()] };
        let sql = sql_restore_job(&r, "b", &sql_item(SqlEngine::PostgreSQL, "meta", "meta_restored"), None).expect("a Job");
        let objects: Vec<(&str, ObjectMeta, bool)> = vec![
            ("restored PVC", restored_claim(&r, "b", &volume_item("master", "master-r"), "master-r", Some("snap"), None, None).metadata, false),
            ("restored Secret", secret.metadata, false),
            ("SQL restore Job", sql.metadata, true),
            ("hook Job", hook_job(&r, "req-hook-replay", &hook, &["master-r".into()]).metadata, true),
            ("mapping ConfigMap", mapping_config_map(&r, "req-mapping", String::new()).metadata, true),
            ("StatefulSet copy", statefulset_copy(&r, &original, "mailstore-r", &CopyRenames::default()).metadata, true),
            ("Deployment copy", deployment_copy(&r, &deployment, "mailstore-r", &CopyRenames::default()).metadata, true),
        ];
        for (what, meta, owned) in objects {
            assert_eq!(meta.labels.as_ref().and_then(|l| l.get(RESTORE)).map(String::as_str), Some("req"), "{what}");
            let owners: Vec<(String, String, Option<bool>)> =
                meta.owner_references.iter().flatten().map(|o| (o.kind.clone(), o.uid.clone(), o.controller)).collect();
            if owned {
                assert_eq!(owners, vec![("RestoreRequest".to_string(), "uid-1".to_string(), Some(true))], "{what}");
            } else {
                assert!(owners.is_empty(), "{what}: {owners:?}");
            }
        }
    }

    fn sql_item(engine: SqlEngine, original: &str, restored: &str) -> RestoreItem {
        RestoreItem {
            component: Component::Metadata,
            store: "s1".into(),
            original: original.into(),
            restored: restored.into(),
            kind: ItemKind::Sql {
                from: DataSource::Cluster("snap".into()),
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
        let volume = RestoreItem { kind: ItemKind::Volume { from: DataSource::Cluster("s".into()), size: None }, ..sql_item(SqlEngine::MySQL, "m", "m_r") };
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

    /// The drop scripts run by `sh` against fake clients that record their arguments and
    /// stdin: the name reaches SQL only as psql's identifier variable or in backticks after
    /// the check, and an unsafe name never reaches a client.
    #[test]
    fn drop_scripts_drop_only_a_checked_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        for client in ["mariadb", "psql"] {
            let path = dir.path().join(client);
            std::fs::write(&path, "#!/bin/sh\nprintf '%s|' \"$*\" >> \"$FAKE_LOG\"\ncat >> \"$FAKE_LOG\" 2>/dev/null || true\n").expect("fake");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        }
        let run = |engine: SqlEngine, new: &str| {
            let log = dir.path().join("log");
            let _ = std::fs::remove_file(&log);
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(drop_script(engine))
                .env_clear()
                .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
                .env("FAKE_LOG", &log)
                .env("NEW_DATABASE", new)
                .envs([("MYSQL_HOST", "db"), ("MYSQL_TCP_PORT", "3306"), ("MYSQL_USER", "u")])
                .stdin(std::process::Stdio::null())
                .output()
                .expect("sh runs");
            (output.status.code(), std::fs::read_to_string(&log).unwrap_or_default())
        };
        let (code, calls) = run(SqlEngine::PostgreSQL, "meta_d20261204");
        assert_eq!(code, Some(0));
        assert_eq!(calls, "-d postgres -v ON_ERROR_STOP=1 -v db=meta_d20261204|DROP DATABASE IF EXISTS :\"db\"\n");
        let (code, calls) = run(SqlEngine::MySQL, "meta_d20261204");
        assert_eq!(code, Some(0));
        assert!(calls.starts_with("--host=db --port=3306 --user=u -e DROP DATABASE IF EXISTS `meta_d20261204`|"), "{calls}");
        for engine in [SqlEngine::PostgreSQL, SqlEngine::MySQL] {
            for hostile in ["x`; DROP DATABASE y; --", "x\"; DROP DATABASE y; --", "", "meta-d"] {
                let (code, calls) = run(engine, hostile);
                assert_eq!(code, Some(4), "{engine:?} {hostile:?}");
                assert!(calls.is_empty(), "{engine:?}: the client ran with {hostile:?}: {calls}");
            }
        }
    }

    /// The drop Job undoes exactly a restore Job: same connection and database, its own
    /// script, no dump volume; a drop Job, a hook Job or a Job without `NEW_DATABASE` has none.
    #[test]
    fn a_drop_job_is_made_from_an_sql_restore_job_only() {
        let r = request();
        for engine in [SqlEngine::PostgreSQL, SqlEngine::MySQL] {
            let restore = sql_restore_job(&r, "b", &sql_item(engine, "meta", "meta_d20261204"), None).expect("restore Job");
            let drop = drop_database_job(&restore).expect("a drop Job");
            assert_eq!(drop.metadata.name.as_deref(), Some("req-sql-metadata-s1-drop"));
            assert_eq!(drop.metadata.owner_references, restore.metadata.owner_references, "owned by the request");
            let (c, r) = (container(&drop), container(&restore));
            assert_eq!(c.env, r.env, "{engine:?}");
            assert_eq!(c.command, Some(vec!["sh".into(), "-c".into(), drop_script(engine)]));
            assert!(c.volume_mounts.is_none() && drop.spec.as_ref().and_then(|s| s.template.spec.as_ref()).and_then(|p| p.volumes.as_ref()).is_none());
            assert!(drop_database_job(&drop).is_none(), "{engine:?}: a drop Job was taken for a restore");
        }
        let hook = PostRestoreJob { name: "replay".into(), image: "busybox".into(), command: vec!["true".into()] };
        assert!(drop_database_job(&hook_job(&r, "req-hook-replay", &hook, &[])).is_none());
    }
}
