//! Shared pieces of the backup end-to-end tests (`backup_*.rs`): an operator per test, the
//! archive workload, policies and runs, and reading what a snapshot holds.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use archivist::api::{ArchiveBackup, BackupPhase, BackupPolicy, Component};
use archivist_e2e::snapshot_api::VolumeSnapshot;
use archivist_e2e::testing::operator::{ensure_crds, Operator};
use archivist_e2e::testing::volumes::{create_bound, from_snapshot, host_dir, pvc};
use archivist_e2e::testing::{eventually, wait_for};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{AttachParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::AsyncReadExt as _;

/// The `ignore` reason of every backup e2e test.
pub const NEEDS_CLUSTER: &str = "needs the local cluster: e2e/local-cluster up";
/// How long a run may take to finish in these tests.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Applies the CRDs (once) and starts an operator scoped to `namespace`.
pub async fn start_operator(client: &Client, namespace: &str) -> anyhow::Result<Operator> {
    ensure_crds(client).await?;
    Operator::start(namespace).await
}

/// Creates an object from YAML in `namespace`. The CRDs are applied first (once), since a test
/// may create its policy before any operator has started.
pub async fn create<K>(client: &Client, namespace: &str, yaml: &str) -> anyhow::Result<K>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
    K::DynamicType: Default,
{
    ensure_crds(client).await?;
    let object: K = serde_yaml::from_str(yaml).with_context(|| format!("invalid YAML:\n{yaml}"))?;
    Api::<K>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &object)
        .await
        .with_context(|| format!("failed to create {}", K::kind(&Default::default())))
}

/// Merge-patches an object.
pub async fn merge_patch<K>(client: &Client, namespace: &str, name: &str, patch: serde_json::Value) -> anyhow::Result<K>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("failed to patch {} {name}", K::kind(&Default::default())))
}

/// A PVC `name` (1Gi) with annotations, created and Bound; returns its host directory.
pub async fn data_pvc(client: &Client, namespace: &str, name: &str, annotations: &[(&str, &str)]) -> anyhow::Result<PathBuf> {
    let claim = archivist_e2e::testing::volumes::with_annotations(pvc(name, "1Gi"), annotations);
    let (_, pv) = create_bound(client, namespace, &claim).await?;
    host_dir(&pv)
}

/// Sets (or with `None` removes) an annotation on a PVC.
pub async fn annotate_pvc(client: &Client, namespace: &str, name: &str, key: &str, value: Option<&str>) -> anyhow::Result<()> {
    merge_patch::<PersistentVolumeClaim>(client, namespace, name, serde_json::json!({"metadata": {"annotations": {key: value}}}))
        .await
        .map(|_| ())
}

/// The archive server: a StatefulSet `name` with one container `server` (an idle process) that
/// mounts each claim of `claims` at `/<claim>`.
pub async fn archive_statefulset(client: &Client, namespace: &str, name: &str, replicas: i32, claims: &[&str]) -> anyhow::Result<()> {
    create_archive(client, namespace, name, replicas, claims, serde_json::json!({})).await
}

/// Creates the StatefulSet `name` whose one container `server` (with `container`'s fields
/// added) mounts each claim of `claims` at `/<claim>`, and waits for its ready replicas.
async fn create_archive(client: &Client, namespace: &str, name: &str, replicas: i32, claims: &[&str], container: serde_json::Value) -> anyhow::Result<()> {
    let mounts: Vec<_> = claims.iter().map(|c| serde_json::json!({"name": c, "mountPath": format!("/{c}")})).collect();
    let volumes: Vec<_> = claims
        .iter()
        .map(|c| serde_json::json!({"name": c, "persistentVolumeClaim": {"claimName": c}}))
        .collect();
    let mut server = serde_json::json!({"name": "server", "image": "ignored", "volumeMounts": mounts});
    if let (Some(server), Some(extra)) = (server.as_object_mut(), container.as_object()) {
        server.extend(extra.clone());
    }
    let sts = serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "serviceName": name,
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [server], "volumes": volumes}
            }
        }
    });
    create::<StatefulSet>(client, namespace, &serde_json::to_string(&sts)?).await?;
    wait_ready_replicas(client, namespace, name, replicas).await
}

/// The archive's HTTP hook server: each POST appends `<path> <pod name>` to `/<claim>/hooks.log`.
const HOOK_SERVER: &str = r#"
import http.server, os, sys
ip, name, log_path = os.environ["POD_IP"], os.environ["POD_NAME"], sys.argv[1]
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        with open(log_path, "a") as log:
            log.write(self.path.strip("/") + " " + name + "\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer((ip, 8080), Hook).serve_forever()
"#;

/// An archive whose freeze and thaw hooks are HTTP hooks (see [`http_hook_policy`]): a
/// StatefulSet `name` whose pods serve them on port 8080 and log each call to `hooks.log` in
/// the claim `claim` (mounted at `/<claim>`). HTTP hooks go straight to the pod, so they work
/// for an operator behind `ApiProxy` (which does not proxy exec).
pub async fn http_hook_archive(client: &Client, namespace: &str, name: &str, replicas: i32, claim: &str) -> anyhow::Result<()> {
    let container = serde_json::json!({
        "command": ["python3", "-c", HOOK_SERVER, format!("/{claim}/hooks.log")],
        "env": [
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        ]
    });
    create_archive(client, namespace, name, replicas, &[claim], container).await?;
    // Give the Python servers a moment to listen.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

/// [`HOOK_SERVER`] over TLS, on port 8443, with the certificate and key `cert.pem` and
/// `key.pem` in the claim's directory.
const HTTPS_HOOK_SERVER: &str = r#"
import http.server, os, ssl, sys
ip, name, dir = os.environ["POD_IP"], os.environ["POD_NAME"], sys.argv[1]
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        with open(dir + "/hooks.log", "a") as log:
            log.write(self.path.strip("/") + " " + name + "\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer((ip, 8443), Hook)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(dir + "/cert.pem", dir + "/key.pem")
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"#;

/// An archive whose pods serve HTTPS hooks on port 8443 (see [`http_hook_archive`]) with the
/// certificate `cert.pem` and key `key.pem` already in the claim `claim`.
pub async fn https_hook_archive(client: &Client, namespace: &str, name: &str, claim: &str) -> anyhow::Result<()> {
    let container = serde_json::json!({
        "command": ["python3", "-c", HTTPS_HOOK_SERVER, format!("/{claim}")],
        "env": [
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        ]
    });
    create_archive(client, namespace, name, 1, &[claim], container).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

/// The Freeze policy `name` of the [`http_hook_archive`] `name`: one store `s1` of these
/// metadata and content claims.
pub async fn http_hook_policy(client: &Client, namespace: &str, name: &str, metadata: &[&str], content: &[&str]) -> anyhow::Result<BackupPolicy> {
    policy(client, namespace, name, &format!(r#"
  target: {{kind: StatefulSet, name: {name}}}
  quiesce:
    mode: Freeze
    freeze: {{http: {{port: 8080, path: /freeze}}}}
    thaw: {{http: {{port: 8080, path: /thaw}}}}
    timeoutSeconds: 120
  stores:
  - name: s1
    metadata: {{volumeClaims: [{}]}}
    content: {{volumeClaims: [{}]}}
"#, metadata.join(", "), content.join(", "))).await
}

/// Waits until the StatefulSet has `replicas` ready replicas.
pub async fn wait_ready_replicas(client: &Client, namespace: &str, name: &str, replicas: i32) -> anyhow::Result<()> {
    let api = Api::<StatefulSet>::namespaced(client.clone(), namespace);
    wait_for(&api, name, Duration::from_secs(60), &format!("StatefulSet {name} to have {replicas} ready replica(s)"), |s| {
        s.and_then(|s| s.status.as_ref()).map(|s| s.ready_replicas.unwrap_or(0)) == Some(replicas)
    })
    .await
    .map(|_| ())
}

/// `spec.replicas` of a StatefulSet.
pub async fn replicas(client: &Client, namespace: &str, name: &str) -> anyhow::Result<i32> {
    let sts = Api::<StatefulSet>::namespaced(client.clone(), namespace).get(name).await?;
    Ok(sts.spec.and_then(|s| s.replicas).unwrap_or(1))
}

/// Creates every object of the manifest file `path` (an example's YAML, as users apply it) in
/// `namespace` instead of its own (see [`apply_objects`]).
pub async fn apply_manifest(client: &Client, namespace: &str, path: &std::path::Path) -> anyhow::Result<()> {
    apply_objects(client, namespace, read_manifest(path)?).await.with_context(|| format!("{}", path.display()))
}

/// The documents of the multi-document YAML manifest at `path`.
pub fn read_manifest(path: &std::path::Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    serde_yaml::Deserializer::from_str(&text)
        .map(<serde_json::Value as serde::Deserialize>::deserialize)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}", path.display()))
}

/// Creates each object in `namespace` instead of the one it names; a Namespace object is
/// skipped. Secrets, StatefulSets, BackupPolicies and RestoreRequests.
pub async fn apply_objects(client: &Client, namespace: &str, objects: Vec<serde_json::Value>) -> anyhow::Result<()> {
    for mut object in objects {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        if kind == "Namespace" {
            continue;
        }
        object["metadata"]["namespace"] = serde_json::Value::String(namespace.to_string());
        let pp = kube::api::PostParams::default();
        let ns = namespace;
        match kind.as_str() {
            "Secret" => drop(Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), ns).create(&pp, &serde_json::from_value(object)?).await?),
            "StatefulSet" => drop(Api::<StatefulSet>::namespaced(client.clone(), ns).create(&pp, &serde_json::from_value(object)?).await?),
            "BackupPolicy" => drop(Api::<BackupPolicy>::namespaced(client.clone(), ns).create(&pp, &serde_json::from_value(object)?).await?),
            "RestoreRequest" => drop(Api::<archivist::api::RestoreRequest>::namespaced(client.clone(), ns).create(&pp, &serde_json::from_value(object)?).await?),
            other => anyhow::bail!("a {other}, which the tests do not create"),
        }
    }
    Ok(())
}

/// Creates the BackupPolicy `name` with this spec (YAML, indented under `spec:`).
pub async fn policy(client: &Client, namespace: &str, name: &str, spec: &str) -> anyhow::Result<BackupPolicy> {
    let yaml = format!("apiVersion: archivist.dev/v1alpha1\nkind: BackupPolicy\nmetadata: {{name: {name}}}\nspec:\n{spec}");
    create(client, namespace, &yaml).await
}

/// Creates a manual ArchiveBackup `name` of the policy `policy`.
pub async fn start_backup(client: &Client, namespace: &str, name: &str, policy: &str) -> anyhow::Result<ArchiveBackup> {
    let yaml = format!(
        "apiVersion: archivist.dev/v1alpha1\nkind: ArchiveBackup\nmetadata: {{name: {name}}}\nspec: {{policyName: {policy}, reason: Manual}}"
    );
    create(client, namespace, &yaml).await
}

/// The phase of a run (`Pending` before the operator wrote one).
pub fn phase(backup: &ArchiveBackup) -> BackupPhase {
    backup.status.as_ref().and_then(|s| s.phase).unwrap_or(BackupPhase::Pending)
}

/// Waits until run `name` captures content with the archive quiesced (phase CapturingContent,
/// `quiesce.quiescedAt` set): the moment the deletion, shutdown, restart, claim and leader
/// tests interrupt. Returns the run as then seen.
pub async fn wait_quiesced(client: &Client, namespace: &str, name: &str) -> anyhow::Result<ArchiveBackup> {
    let api = Api::<ArchiveBackup>::namespaced(client.clone(), namespace);
    wait_for(&api, name, Duration::from_secs(60), &format!("{name} to capture content while quiesced"), |b| {
        b.is_some_and(|b| {
            phase(b) == BackupPhase::CapturingContent
                && b.status.as_ref().and_then(|s| s.quiesce.as_ref()).is_some_and(|q| q.quiesced_at.is_some())
        })
    })
    .await?
    .with_context(|| format!("ArchiveBackup {name} vanished"))
}

/// Waits until the run is finished (Completed or Failed) and returns it.
pub async fn wait_finished(client: &Client, namespace: &str, name: &str, operator: &mut Operator) -> anyhow::Result<ArchiveBackup> {
    let api = Api::<ArchiveBackup>::namespaced(client.clone(), namespace);
    let result = wait_for(&api, name, RUN_TIMEOUT, &format!("ArchiveBackup {name} to finish"), |b| {
        b.is_some_and(|b| phase(b).is_finished())
    })
    .await;
    match result {
        Ok(b) => b.context("the ArchiveBackup vanished"),
        Err(e) => {
            operator.check_running()?;
            Err(e.context(format!("operator log tail:\n{}", operator.log_tail(30))))
        }
    }
}

/// Waits until the run Completed; fails with its message when it Failed.
pub async fn wait_completed(client: &Client, namespace: &str, name: &str, operator: &mut Operator) -> anyhow::Result<ArchiveBackup> {
    let backup = wait_finished(client, namespace, name, operator).await?;
    if phase(&backup) != BackupPhase::Completed {
        bail!(
            "ArchiveBackup {name} ended {:?}: {:?}\noperator log tail:\n{}",
            phase(&backup),
            backup.status.as_ref().and_then(|s| s.message.clone()),
            operator.log_tail(30)
        );
    }
    Ok(backup)
}

/// The VolumeSnapshot names of a run's items of `component`.
pub fn snapshots_of(backup: &ArchiveBackup, component: Component) -> Vec<String> {
    backup
        .status
        .iter()
        .flat_map(|s| s.items.iter())
        .filter(|i| i.component == component)
        .filter_map(|i| i.volume_snapshot.clone())
        .collect()
}

/// The one snapshot of `component`.
pub fn snapshot_of(backup: &ArchiveBackup, component: Component) -> anyhow::Result<String> {
    let all = snapshots_of(backup, component);
    match all.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!("expected one {component:?} snapshot in {:?}, found {all:?}", backup.metadata.name),
    }
}

/// Restores the VolumeSnapshot `snapshot` into a new PVC `claim` and returns its host directory.
pub async fn restore_to_dir(client: &Client, namespace: &str, snapshot: &str, claim: &str) -> anyhow::Result<PathBuf> {
    let (_, pv) = create_bound(client, namespace, &from_snapshot(pvc(claim, "1Gi"), snapshot)).await?;
    host_dir(&pv)
}

/// Checks that the snapshots exist and are ready to use.
pub async fn assert_snapshots_ready(client: &Client, namespace: &str, names: &[String]) -> anyhow::Result<()> {
    let api = Api::<VolumeSnapshot>::namespaced(client.clone(), namespace);
    for name in names {
        let snapshot = api.get(name).await.with_context(|| format!("VolumeSnapshot {name} is gone"))?;
        let ready = snapshot.status.as_ref().and_then(|s| s.ready_to_use) == Some(true);
        if !ready {
            bail!("VolumeSnapshot {name} is not ready to use: {:?}", snapshot.status);
        }
    }
    Ok(())
}

/// Runs `command` in the container of a pod: `(stdout, stderr, succeeded)`.
pub async fn exec(client: &Client, namespace: &str, pod: &str, container: &str, command: &[&str]) -> anyhow::Result<(String, String, bool)> {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    let params = AttachParams::default().container(container).stdin(false).stdout(true).stderr(true);
    let mut attached = pods.exec(pod, command.iter().copied(), &params).await.with_context(|| format!("exec in {pod}"))?;
    let mut stdout = attached.stdout().context("no stdout")?;
    let mut stderr = attached.stderr().context("no stderr")?;
    let status = attached.take_status().context("no status")?;
    let (mut out, mut err) = (String::new(), String::new());
    let (a, b) = tokio::join!(stdout.read_to_string(&mut out), stderr.read_to_string(&mut err));
    a?;
    b?;
    let status = status.await.and_then(|s| s.status).unwrap_or_default();
    attached.join().await.context("exec session")?;
    Ok((out, err, status == "Success"))
}

/// The reasons of the Events about an ArchiveBackup that are part of a run's story, oldest first.
pub async fn run_event_reasons(client: &Client, namespace: &str, backup: &str) -> anyhow::Result<Vec<String>> {
    let all = archivist_e2e::testing::operator::event_reasons(client, namespace, "ArchiveBackup", backup).await?;
    Ok(all)
}

/// [`run_event_reasons`] once one of them is `last` (Events follow the status they report; see
/// `event_reasons_through`).
pub async fn run_event_reasons_through(client: &Client, namespace: &str, backup: &str, last: &str) -> anyhow::Result<Vec<String>> {
    archivist_e2e::testing::operator::event_reasons_through(client, namespace, "ArchiveBackup", backup, last).await
}

/// Waits until `check` holds, polling every 100 ms.
pub async fn until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    eventually(what, timeout, || {
        let fut = check();
        async move { Ok(if fut.await? { Ok(()) } else { Err("not yet".to_owned()) }) }
    })
    .await
}

/// The names of the files directly in `dir`.
pub fn file_names(dir: &std::path::Path) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut names = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let entry = entry?;
        names.insert(entry.file_name().to_string_lossy().into_owned(), entry.metadata()?.len());
    }
    Ok(names)
}

pub mod sql;

/// A one-line timeline of a run (seconds after `startTime`), for diagnosis and reports.
pub fn timeline(backup: &ArchiveBackup) -> String {
    let Some(status) = backup.status.as_ref() else { return "no status".into() };
    let Some(start) = status.start_time else { return "no startTime".into() };
    let at = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| format!("{:.3}", (t - start).num_milliseconds() as f64 / 1000.0)).unwrap_or_else(|| "-".into())
    };
    let quiesce = status.quiesce.clone().unwrap_or_default();
    let items: Vec<String> = status
        .items
        .iter()
        .map(|i| format!("{:?}/{}@{}", i.component, i.source_claim.as_deref().or(i.source_sql.as_deref()).unwrap_or("?"), at(i.captured_at)))
        .collect();
    format!(
        "quiesced@{} cuts [{}] released@{} completed@{} window={:?}",
        at(quiesce.quiesced_at),
        items.join(", "),
        at(quiesce.released_at),
        at(status.completion_time),
        quiesce.window_seconds
    )
}

/// Creates Secret `name` with restic's environment for repository `url`.
pub async fn repository_secret(client: &Client, ns: &str, name: &str, url: &str, password: &str) -> anyhow::Result<()> {
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "stringData": {"RESTIC_REPOSITORY": url, "RESTIC_PASSWORD": password},
    }))?;
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), ns).create(&Default::default(), &secret).await?;
    Ok(())
}

/// Waits until the export of run `name` ended (Exported or Failed).
pub async fn wait_export_ended(client: &Client, ns: &str, name: &str, operator: &Operator) -> anyhow::Result<ArchiveBackup> {
    let api = Api::<ArchiveBackup>::namespaced(client.clone(), ns);
    let ended = |b: Option<&ArchiveBackup>| {
        b.and_then(|b| b.status.as_ref()).and_then(|s| s.export.as_ref()).is_some_and(|e| matches!(e.state, archivist::api::ExportState::Exported | archivist::api::ExportState::Failed))
    };
    match wait_for(&api, name, Duration::from_secs(120), &format!("the export of {name} to end"), ended).await {
        Ok(b) => b.ok_or_else(|| anyhow::anyhow!("{name} vanished")),
        Err(e) => Err(e.context(format!("operator log tail:\n{}", operator.log_tail(40)))),
    }
}
