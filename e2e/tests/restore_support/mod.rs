//! Shared pieces of the restore end-to-end tests (`restore_*.rs`): an archive with a master and
//! stores on volumes (one store's metadata in PostgreSQL), backed up through the operator, and
//! helpers to run RestoreRequests and compare what they restored with what was backed up.
//!
//! Every test module declares `mod backup_support; mod restore_support;` (this module builds on
//! the backup tests' helpers).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _};
use archivist::api::{ArchiveBackup, ConditionStatus, RestorePhase, RestoreRequest};
use archivist_e2e::testing::databases::{Postgres, PASSWORD, USER};
use archivist_e2e::testing::operator::Operator;
use archivist_e2e::testing::{eventually, wait_for};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

use crate::backup_support::{
    archive_statefulset, create, data_pvc, exec, policy, start_backup, start_operator, wait_completed,
};

/// How long a restore may take in these tests.
pub const RESTORE_TIMEOUT: Duration = Duration::from_secs(180);
/// The label the operator puts on everything a restore creates.
pub const RESTORE_LABEL: &str = "archivist.dev/restore";
/// The PostgreSQL database holding the metadata of the SQL store.
pub const SQL_DATABASE: &str = "meta_s2";
/// The archive StatefulSet.
pub const ARCHIVE: &str = "archive";
/// The policy.
pub const POLICY: &str = "archive";
/// The backup every test restores.
pub const BACKUP: &str = "b1";

/// How the archive is made.
#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    /// Number of stores (`s1`, `s2`, ...); at least 1.
    pub stores: usize,
    /// Store `s2`'s metadata lives in PostgreSQL (else on a volume like the others).
    pub sql: bool,
    /// `includeIndexes` of the policy (store `s1` has an index volume `index-s1`).
    pub include_indexes: bool,
    /// Bytes of message data written into each content volume (as files of at most 64 MiB).
    pub content_bytes: u64,
    /// The `master` claim as created (its name is set to `master`); default: a 1Gi
    /// ReadWriteOnce claim of the default class.
    pub master_claim: Option<PersistentVolumeClaim>,
    /// The policy exports every run to the repository of this Secret (`spec.export`).
    pub export: Option<String>,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        Self { stores: 2, sql: true, include_indexes: true, content_bytes: 256 * 1024, master_claim: None, export: None }
    }
}

/// An archive, its operator and its Completed backup `b1`.
pub struct Archive {
    /// The operator scoped to the namespace.
    pub operator: Operator,
    /// The PostgreSQL server of store `s2` (with `sql`).
    pub postgres: Option<Postgres>,
    /// The completed backup.
    pub backup: ArchiveBackup,
    /// The volume claims of the archive (master, metadata, content, index).
    pub claims: Vec<String>,
    /// Host directory of each claim's volume.
    pub dirs: BTreeMap<String, PathBuf>,
    /// `sha256sum` listing of each claim's files as they were when backed up.
    pub checksums: BTreeMap<String, String>,
    /// The rows of the SQL store's `messages` table at the dump (`id|subject`).
    pub sql_rows: String,
}

/// Files of a volume, as the archive writes them: a few small ones and `content_bytes` of
/// message data.
fn write_files(dir: &Path, claim: &str, bytes: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("folder/sub"))?;
    std::fs::write(dir.join("README"), format!("volume {claim}\n"))?;
    std::fs::write(dir.join("folder/sub/msg-1.eml"), format!("Subject: hello from {claim}\n\nbody\n"))?;
    let mut left = bytes;
    let mut n = 0;
    while left > 0 {
        let chunk = left.min(64 * 1024 * 1024);
        let file = dir.join(format!("folder/blob-{n}.dat"));
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("head -c {chunk} /dev/urandom > '{}'", file.display()))
            .status()?;
        ensure!(status.success(), "writing {}", file.display());
        left -= chunk;
        n += 1;
    }
    Ok(())
}

/// The `sha256sum` listing (sorted by path) of every file under `dir`, on this host.
pub fn host_checksums(dir: &Path) -> anyhow::Result<String> {
    let output = Command::new("sh")
        .arg("-c")
        .arg("find . -type f | LC_ALL=C sort | xargs -r sha256sum")
        .current_dir(dir)
        .output()
        .with_context(|| format!("sha256sum in {}", dir.display()))?;
    ensure!(output.status.success(), "sha256sum in {} failed: {}", dir.display(), String::from_utf8_lossy(&output.stderr));
    Ok(String::from_utf8(output.stdout)?)
}

/// Makes the archive in `ns` and backs it up (ArchiveBackup `b1`, Completed).
pub async fn archive_with_backup(client: &Client, ns: &str, options: ArchiveOptions) -> anyhow::Result<Archive> {
    let mut operator = start_operator(client, ns).await?;
    let mut claims = vec!["master".to_string()];
    for s in 1..=options.stores {
        if !(options.sql && s == 2) {
            claims.push(format!("meta-s{s}"));
        }
        claims.push(format!("content-s{s}"));
    }
    claims.push("index-s1".to_string());
    let mut dirs = BTreeMap::new();
    for claim in &claims {
        let dir = match &options.master_claim {
            Some(template) if claim == "master" => {
                let mut pvc = template.clone();
                pvc.metadata.name = Some(claim.clone());
                let (_, pv) = archivist_e2e::testing::volumes::create_bound(client, ns, &pvc).await?;
                archivist_e2e::testing::volumes::host_dir(&pv)?
            }
            _ => data_pvc(client, ns, claim, &[]).await?,
        };
        let bytes = if claim.starts_with("content-") { options.content_bytes } else { 4096 };
        write_files(&dir, claim, bytes)?;
        dirs.insert(claim.clone(), dir);
    }
    create::<Secret>(client, ns, "metadata: {name: master-key}\nstringData: {MailStoreMaster.key: s3cr3t-key}").await?;

    let mut sql_rows = String::new();
    let postgres = if options.sql {
        let pg = tokio::task::spawn_blocking(|| Postgres::start(SQL_DATABASE)).await??;
        pg.psql(SQL_DATABASE, "CREATE TABLE messages (id int PRIMARY KEY, subject text NOT NULL); \
            INSERT INTO messages SELECT i, 'subject ' || i FROM generate_series(1, 500) AS i;")?;
        sql_rows = pg.psql(SQL_DATABASE, "SELECT id, subject FROM messages ORDER BY id")?;
        create::<Secret>(client, ns, &format!(
            "metadata: {{name: pg-credentials}}\nstringData: {{username: {USER}, password: {PASSWORD}}}"
        )).await?;
        Some(pg)
    } else {
        None
    };

    archive_statefulset(client, ns, ARCHIVE, 1, &claims.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    let mut stores = String::new();
    for s in 1..=options.stores {
        let metadata = match &postgres {
            Some(pg) if s == 2 => format!(
                "{{sql: {{engine: PostgreSQL, host: 127.0.0.1, port: {}, database: {SQL_DATABASE}, credentialsSecret: pg-credentials}}}}",
                pg.port
            ),
            _ => format!("{{volumeClaims: [meta-s{s}]}}"),
        };
        let index = if s == 1 { "\n    index: {volumeClaims: [index-s1]}" } else { "" };
        stores.push_str(&format!(
            "  - name: s{s}\n    metadata: {metadata}\n    content: {{volumeClaims: [content-s{s}]}}{index}\n"
        ));
    }
    let export = options.export.as_ref().map(|secret| format!("  export: {{repositorySecret: {secret}}}\n")).unwrap_or_default();
    policy(client, ns, POLICY, &format!(
        "  target: {{kind: StatefulSet, name: {ARCHIVE}}}\n  quiesce: {{mode: Stop, timeoutSeconds: 60}}\n  includeIndexes: {}\n  master: {{volumeClaims: [master], secrets: [master-key]}}\n  dump: {{size: 1Gi, image: postgres:16}}\n{export}  stores:\n{stores}",
        options.include_indexes
    )).await?;
    start_backup(client, ns, BACKUP, POLICY).await?;
    let backup = wait_completed(client, ns, BACKUP, &mut operator).await?;
    let mut checksums = BTreeMap::new();
    for (claim, dir) in &dirs {
        checksums.insert(claim.clone(), host_checksums(dir)?);
    }
    crate::backup_support::wait_ready_replicas(client, ns, ARCHIVE, 1).await?;
    Ok(Archive { operator, postgres, backup, claims, dirs, checksums, sql_rows })
}

impl Archive {
    /// Changes every volume and the source database after the backup (the originals a
    /// restore must not touch, and that an in-place restore must replace).
    pub fn change_after_backup(&self) -> anyhow::Result<()> {
        for (claim, dir) in &self.dirs {
            std::fs::write(dir.join("README"), format!("volume {claim}, changed after the backup\n"))?;
            std::fs::write(dir.join("after-backup.eml"), "Subject: written after the backup\n")?;
        }
        if let Some(pg) = &self.postgres {
            pg.psql(SQL_DATABASE, "DELETE FROM messages WHERE id > 400; INSERT INTO messages VALUES (1000, 'after the backup');")?;
        }
        Ok(())
    }
}

/// Creates a RestoreRequest `name` with this spec (YAML, indented under `spec:`).
pub async fn request(client: &Client, ns: &str, name: &str, spec: &str) -> anyhow::Result<RestoreRequest> {
    create(client, ns, &request_yaml(name, spec)).await
}

/// The manifest of a RestoreRequest.
pub fn request_yaml(name: &str, spec: &str) -> String {
    format!("apiVersion: archivist.dev/v1alpha1\nkind: RestoreRequest\nmetadata: {{name: {name}}}\nspec:\n{spec}")
}

/// Applies a RestoreRequest manifest with server-side apply (as Argo CD or Flux would).
pub async fn apply_request(client: &Client, ns: &str, name: &str, spec: &str) -> anyhow::Result<RestoreRequest> {
    let object: serde_json::Value = serde_yaml::from_str(&request_yaml(name, spec))?;
    Api::<RestoreRequest>::namespaced(client.clone(), ns)
        .patch(name, &PatchParams::apply("e2e-gitops").force(), &Patch::Apply(&object))
        .await
        .with_context(|| format!("failed to apply RestoreRequest {name}"))
}

/// The phase of a request (`Pending` before the operator wrote one).
pub fn restore_phase(r: &RestoreRequest) -> RestorePhase {
    r.status.as_ref().and_then(|s| s.phase).unwrap_or(RestorePhase::Pending)
}

/// The status of condition `type_`.
pub fn condition(r: &RestoreRequest, type_: &str) -> Option<(ConditionStatus, String)> {
    r.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status, c.message.clone()))
}

/// Waits until the request is Completed or Failed.
pub async fn wait_restore_finished(client: &Client, ns: &str, name: &str, operator: &mut Operator) -> anyhow::Result<RestoreRequest> {
    let api = Api::<RestoreRequest>::namespaced(client.clone(), ns);
    let result = wait_for(&api, name, RESTORE_TIMEOUT, &format!("RestoreRequest {name} to finish"), |r| {
        r.is_some_and(|r| matches!(restore_phase(r), RestorePhase::Completed | RestorePhase::Failed))
    })
    .await;
    match result {
        Ok(r) => r.context("the RestoreRequest vanished"),
        Err(e) => {
            operator.check_running()?;
            Err(e.context(format!("operator log tail:\n{}", operator.log_tail(30))))
        }
    }
}

/// Waits until the request Completed; fails with its message when it Failed.
pub async fn wait_restore_completed(client: &Client, ns: &str, name: &str, operator: &mut Operator) -> anyhow::Result<RestoreRequest> {
    let r = wait_restore_finished(client, ns, name, operator).await?;
    if restore_phase(&r) != RestorePhase::Completed {
        bail!(
            "RestoreRequest {name} ended {:?}: {:?}\noperator log tail:\n{}",
            restore_phase(&r),
            r.status.as_ref().and_then(|s| s.message.clone()),
            operator.log_tail(30)
        );
    }
    Ok(r)
}

/// Waits until the request Failed and returns its message; fails when it Completed.
pub async fn wait_restore_failed(client: &Client, ns: &str, name: &str, operator: &mut Operator) -> anyhow::Result<String> {
    let r = wait_restore_finished(client, ns, name, operator).await?;
    ensure!(restore_phase(&r) == RestorePhase::Failed, "RestoreRequest {name} should have failed: {:?}", r.status);
    let message = r.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default();
    let (ready, ready_message) = condition(&r, "Ready").context("no Ready condition")?;
    ensure!(ready == ConditionStatus::False, "Ready is {ready:?} on a failed request");
    ensure!(ready_message == message, "Ready says {ready_message:?}, the message {message:?}");
    Ok(message)
}

/// The restored name of `original` in the request's mapping.
pub fn restored_name(r: &RestoreRequest, original: &str) -> anyhow::Result<String> {
    r.status
        .as_ref()
        .and_then(|s| s.mapping.iter().find(|m| m.original == original))
        .map(|m| m.restored.clone())
        .with_context(|| format!("{original} is not in the mapping {:?}", r.status.as_ref().map(|s| &s.mapping)))
}

/// Names of the PVCs / Jobs / Secrets labelled as made by request `name`.
pub async fn made_by(client: &Client, ns: &str, name: &str) -> anyhow::Result<(Vec<String>, Vec<String>, Vec<String>)> {
    let lp = ListParams::default().labels(&format!("{RESTORE_LABEL}={name}"));
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns).list(&lp).await?.items.iter().map(|o| o.name_any()).collect();
    let jobs = Api::<Job>::namespaced(client.clone(), ns).list(&lp).await?.items.iter().map(|o| o.name_any()).collect();
    let secrets = Api::<Secret>::namespaced(client.clone(), ns).list(&lp).await?.items.iter().map(|o| o.name_any()).collect();
    Ok((pvcs, jobs, secrets))
}

/// Checks that request `name` created nothing: no PVC, Job or Secret of its own, no mapping.
pub async fn assert_nothing_created(client: &Client, ns: &str, name: &str) -> anyhow::Result<()> {
    let (pvcs, jobs, secrets) = made_by(client, ns, name).await?;
    ensure!(pvcs.is_empty() && jobs.is_empty() && secrets.is_empty(), "{name} created PVCs {pvcs:?}, Jobs {jobs:?}, Secrets {secrets:?}");
    let cm = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), ns).get_opt(&format!("{name}-mapping")).await?;
    ensure!(cm.is_none(), "{name} wrote its mapping ConfigMap");
    Ok(())
}

/// A StatefulSet a user made, with no pods: its own selector, nothing of Archivist.
pub async fn user_statefulset(client: &Client, ns: &str, name: &str) -> anyhow::Result<StatefulSet> {
    let sts = serde_json::json!({
        "metadata": {"name": name, "labels": {"made-by": "a-user"}},
        "spec": {
            "serviceName": name,
            "replicas": 0,
            "selector": {"matchLabels": {"app": format!("user-{name}")}},
            "template": {
                "metadata": {"labels": {"app": format!("user-{name}")}},
                "spec": {"containers": [{"name": "main", "image": "ignored"}]}
            }
        }
    });
    create::<StatefulSet>(client, ns, &serde_json::to_string(&sts)?).await
}

/// Starts a pod `name` (an idle process) mounting each claim at `/<claim>` and waits until it runs.
pub async fn reader_pod(client: &Client, ns: &str, name: &str, claims: &[String]) -> anyhow::Result<()> {
    let mounts: Vec<_> = claims.iter().enumerate().map(|(i, c)| serde_json::json!({"name": format!("v{i}"), "mountPath": format!("/{c}")})).collect();
    let volumes: Vec<_> = claims
        .iter()
        .enumerate()
        .map(|(i, c)| serde_json::json!({"name": format!("v{i}"), "persistentVolumeClaim": {"claimName": c}}))
        .collect();
    let pod = serde_json::json!({
        "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "main", "image": "ignored", "volumeMounts": mounts}], "volumes": volumes}
    });
    create::<Pod>(client, ns, &serde_json::to_string(&pod)?).await?;
    wait_running(client, ns, name).await
}

/// Waits until the pod `name` is Running.
pub async fn wait_running(client: &Client, ns: &str, name: &str) -> anyhow::Result<()> {
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    wait_for(&pods, name, Duration::from_secs(90), &format!("pod {name} to run"), |p| {
        p.and_then(|p| p.status.as_ref()).and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await
    .map(|_| ())
}

/// The `sha256sum` listing of every file under `dir` as the container of `pod` sees it.
pub async fn pod_checksums(client: &Client, ns: &str, pod: &str, container: &str, dir: &str) -> anyhow::Result<String> {
    let (out, err, ok) = exec(client, ns, pod, container, &[
        "sh", "-c", &format!("cd '{dir}' && find . -type f | LC_ALL=C sort | xargs -r sha256sum"),
    ])
    .await?;
    ensure!(ok, "sha256sum in {pod}:{dir} failed: {err}");
    Ok(out)
}

/// Reads one file in a pod.
pub async fn pod_read(client: &Client, ns: &str, pod: &str, container: &str, path: &str) -> anyhow::Result<String> {
    let (out, err, ok) = exec(client, ns, pod, container, &["cat", path]).await?;
    ensure!(ok, "cat {path} in {pod} failed: {err}");
    Ok(out)
}

/// Waits until `check` returns true (polling every 100 ms).
pub async fn until<F, Fut>(what: &str, timeout: Duration, check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    crate::backup_support::until(what, timeout, check).await
}

/// The databases on the server whose name starts with `prefix`, sorted.
pub fn databases(pg: &Postgres, prefix: &str) -> anyhow::Result<Vec<String>> {
    let out = pg.psql("postgres", &format!("SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%' ORDER BY datname"))?;
    Ok(out.lines().map(str::to_owned).filter(|l| !l.is_empty()).collect())
}

/// Keeps `eventually` in scope for test modules.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Result<T, String>>>,
{
    eventually(what, timeout, check).await
}
