//! The Helm chart's RBAC against the real API server of the local cluster: the ServiceAccount
//! and (Cluster)Roles that `helm template charts/archivist` renders are applied, the operator
//! binary runs outside the cluster with a token of that ServiceAccount (TokenRequest API), and a
//! Stop-mode backup of a one-replica StatefulSet must complete with no `forbidden` in the
//! operator's log; for a cluster-wide and a `watchNamespace` install, and a Freeze-mode backup
//! (exec hooks: pods/exec) for the latter.
//!
//! Needs `e2e/local-cluster up` (KUBECONFIG, else `target/local-cluster/kubeconfig`) and helm:
//! `$HELM`, else the copy `charts/test.sh --helm-path` fetches into
//! `~/.cache/archivist/helm/<version>/helm`. The operator binary: `$ARCHIVIST_BIN`, else the test
//! runs `cargo build -p archivist` and copies the binary to a private temporary path.
//!
//! ```sh
//! cargo test -p archivist-e2e --test chart_rbac -- --ignored
//! ```

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};

const MANAGER: &str = "chart-rbac-test";
const WAIT: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn admin_kubeconfig() -> PathBuf {
    std::env::var_os("KUBECONFIG").map(PathBuf::from).unwrap_or_else(|| repo().join("target/local-cluster/kubeconfig"))
}

async fn admin_client() -> Client {
    let path = admin_kubeconfig();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("no kubeconfig at {} ({e}); run e2e/local-cluster up", path.display()));
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("kubeconfig");
    Client::try_from(config).expect("client")
}


/// A private copy of the `archivist` binary (`$ARCHIVIST_BIN`, else built now): the shared
/// target directory's binary may be replaced by another build while the test runs.
fn archivist_binary(dir: &Path) -> PathBuf {
    let source = match std::env::var_os("ARCHIVIST_BIN") {
        Some(path) => PathBuf::from(path),
        None => {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-q", "-p", "archivist", "--bin", "archivist"])
                .current_dir(repo())
                .status()
                .expect("run cargo build -p archivist");
            assert!(status.success(), "cargo build -p archivist failed");
            let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("target"));
            target.join("debug/archivist")
        }
    };
    let copy = dir.join("archivist");
    std::fs::copy(&source, &copy).unwrap_or_else(|e| panic!("cannot copy {}: {e}", source.display()));
    copy
}

fn suffix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    format!("{:x}", (nanos ^ u128::from(std::process::id())) & 0xff_ffff)
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out after {WAIT:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn archive_backups() -> ApiResource {
    ar("archivist.dev", "v1alpha1", "ArchiveBackup", "archivebackups")
}

fn backup_policies() -> ApiResource {
    ar("archivist.dev", "v1alpha1", "BackupPolicy", "backuppolicies")
}

/// Applies the chart's CRDs (server-side apply) and waits until they are established.
async fn install_crds(client: &Client) {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    let dir = repo().join("charts/archivist/crds");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("charts/archivist/crds") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read CRD");
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text).expect("CRD YAML");
        let name = crd.name_any();
        api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&crd)).await.expect("apply CRD");
        names.push(name);
    }
    for name in names {
        wait_until(&format!("CRD {name} established"), || async {
            api.get(&name).await.ok().and_then(|c| c.status).and_then(|s| s.conditions).is_some_and(|cs| {
                cs.iter().any(|c| c.type_ == "Established" && c.status == "True")
            })
        })
        .await;
    }
}

/// `helm template` of the ServiceAccount and RBAC templates, one YAML value per object.
fn render_rbac(release: &str, namespace: &str, set: &[String]) -> Vec<serde_yaml::Value> {
    let mut cmd = Command::new(archivist_e2e::testing::helm::helm_binary().expect("helm"));
    cmd.args(["template", release])
        .arg(repo().join("charts/archivist"))
        .args(["--namespace", namespace, "--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml"]);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().expect("run helm template");
    assert!(out.status.success(), "helm template failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| <serde_yaml::Value as serde::Deserialize>::deserialize(d).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// Creates each rendered object with the admin client, the way `kubectl apply` would.
async fn apply_rendered(client: &Client, objects: &[serde_yaml::Value]) -> Vec<(String, String)> {
    let pp = PatchParams::apply(MANAGER).force();
    let mut made = Vec::new();
    for object in objects {
        let kind = object["kind"].as_str().expect("kind").to_string();
        let name = object["metadata"]["name"].as_str().expect("name").to_string();
        let ns = object["metadata"]["namespace"].as_str().map(str::to_string);
        let body = Patch::Apply(object);
        let result = match (kind.as_str(), ns.as_deref()) {
            ("ServiceAccount", Some(ns)) => Api::<ServiceAccount>::namespaced(client.clone(), ns).patch(&name, &pp, &body).await.map(|_| ()),
            ("Role", Some(ns)) => Api::<Role>::namespaced(client.clone(), ns).patch(&name, &pp, &body).await.map(|_| ()),
            ("RoleBinding", Some(ns)) => Api::<RoleBinding>::namespaced(client.clone(), ns).patch(&name, &pp, &body).await.map(|_| ()),
            ("ClusterRole", None) => Api::<ClusterRole>::all(client.clone()).patch(&name, &pp, &body).await.map(|_| ()),
            ("ClusterRoleBinding", None) => Api::<ClusterRoleBinding>::all(client.clone()).patch(&name, &pp, &body).await.map(|_| ()),
            other => panic!("the chart rendered an unexpected RBAC object {other:?} {name}"),
        };
        result.unwrap_or_else(|e| panic!("applying {kind} {name} failed: {e}"));
        made.push((kind, name));
    }
    made
}

/// A kubeconfig that authenticates as `system:serviceaccount:<ns>:<sa>` with a TokenRequest.
async fn service_account_kubeconfig(client: &Client, ns: &str, sa: &str, path: &Path) {
    let request = TokenRequest {
        spec: TokenRequestSpec { audiences: vec![], expiration_seconds: Some(3600), ..Default::default() },
        ..Default::default()
    };
    let token = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_token_request(sa, &PostParams::default(), &request)
        .await
        .expect("TokenRequest for the chart's ServiceAccount")
        .status
        .expect("token status")
        .token;
    let admin = kube::config::Kubeconfig::read_from(admin_kubeconfig()).expect("admin kubeconfig");
    let cluster = admin.clusters[0].cluster.clone().expect("cluster");
    let server = cluster.server.expect("server");
    let ca = cluster.certificate_authority_data.expect("certificate-authority-data");
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\n\
         users:\n- name: {sa}\n  user:\n    token: {token}\ncontexts:\n- name: sa\n  context:\n    cluster: local\n    user: {sa}\n    namespace: {ns}\n\
         current-context: sa\n"
    );
    std::fs::write(path, yaml).expect("write the ServiceAccount's kubeconfig");
}

async fn client_from(path: &Path) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("config");
    Client::try_from(config).expect("client")
}

/// The operator process; killed when dropped.
struct Operator {
    child: Child,
    log: PathBuf,
}

impl Operator {
    fn start(binary: &Path, kubeconfig: &Path, namespace: &str, release_namespace: &str, log: PathBuf) -> (Self, u16) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let out = std::fs::File::create(&log).expect("operator log");
        let child = Command::new(binary)
            .args(["run", "--namespace", namespace, "--metrics-addr", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,kube=warn")
            .env("POD_NAME", "archivist-chart-rbac-test")
            // As the chart's Deployment sets it: the leader-election Lease lives there.
            .env("POD_NAMESPACE", release_namespace)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log fd"))
            .stderr(out)
            .spawn()
            .expect("start the archivist operator");
        (Self { child, log }, port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on the operator's metrics port: the HTTP status code.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The log lines that report an RBAC refusal (HTTP 403, "forbidden").
fn forbidden_lines(log: &str) -> String {
    log.lines()
        .filter(|l| l.to_lowercase().contains("forbidden") || l.contains("code: 403"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What one run of the test made, removed when dropped (also when the test fails).
struct Cleanup {
    client: Client,
    namespaces: Vec<String>,
    cluster_objects: Vec<(String, String)>,
    work_namespace: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let client = self.client.clone();
        let namespaces = std::mem::take(&mut self.namespaces);
        let objects = std::mem::take(&mut self.cluster_objects);
        let work = self.work_namespace.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                // The operator is gone by now: drop the policies' finalizers so the namespace can go.
                let policies = Api::<DynamicObject>::namespaced_with(client.clone(), &work, &backup_policies());
                if let Ok(list) = policies.list(&ListParams::default()).await {
                    for p in list.items {
                        let patch = serde_json::json!({"metadata": {"finalizers": null}});
                        let _ = policies.patch(&p.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await;
                    }
                }
                for (kind, name) in objects {
                    let _ = match kind.as_str() {
                        "ClusterRole" => Api::<ClusterRole>::all(client.clone()).delete(&name, &DeleteParams::default()).await.map(|_| ()),
                        "ClusterRoleBinding" => Api::<ClusterRoleBinding>::all(client.clone()).delete(&name, &DeleteParams::default()).await.map(|_| ()),
                        _ => Ok(()),
                    };
                }
                for ns in namespaces {
                    let _ = Api::<Namespace>::all(client.clone()).delete(&ns, &DeleteParams::default()).await;
                }
            });
        })
        .join();
    }
}

async fn create_namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("namespace");
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("create namespace");
}

async fn create_dynamic(client: &Client, ns: &str, resource: &ApiResource, yaml: &str) {
    let object: DynamicObject = serde_yaml::from_str(yaml).expect("object YAML");
    Api::<DynamicObject>::namespaced_with(client.clone(), ns, resource)
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("create {} failed: {e}", resource.kind));
}

/// Installs the chart's RBAC (cluster-wide, or `watchNamespace` = the work namespace), runs the
/// operator as the chart's ServiceAccount watching the work namespace, and takes a backup with
/// `quiesce` (`Stop` or `Freeze`).
async fn backup_as_the_chart_service_account(namespaced_install: bool, quiesce: &str) {
    let client = admin_client().await;
    let sfx = suffix();
    let mode = format!("{}-{}", if namespaced_install { "ns" } else { "cl" }, &quiesce[..1].to_lowercase());
    let release = format!("archivist-rbac-{mode}-{sfx}");
    let system = format!("chart-rbac-sys-{mode}-{sfx}");
    let work = format!("chart-rbac-{mode}-{sfx}");
    let tmp = std::env::temp_dir().join(format!("archivist-chart-rbac-{mode}-{sfx}"));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let binary = archivist_binary(&tmp);

    install_crds(&client).await;
    let mut cleanup = Cleanup { client: client.clone(), namespaces: vec![], cluster_objects: vec![], work_namespace: work.clone() };
    for ns in [&system, &work] {
        create_namespace(&client, ns).await;
        cleanup.namespaces.push(ns.clone());
    }

    // The chart's ServiceAccount and RBAC, as `helm template | kubectl apply` would install them.
    let set = if namespaced_install { vec![format!("watchNamespace={work}")] } else { vec![] };
    let objects = render_rbac(&release, &system, &set);
    let kinds: BTreeMap<String, usize> = objects.iter().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(o["kind"].as_str().unwrap_or("").to_string()).or_default() += 1;
        m
    });
    let want: BTreeMap<String, usize> = if namespaced_install {
        // The namespaced rules in watchNamespace, and the leader-election Lease's Role in the
        // release namespace.
        [("ServiceAccount", 1), ("Role", 2), ("RoleBinding", 2), ("ClusterRole", 1), ("ClusterRoleBinding", 1)]
    } else {
        [("ServiceAccount", 1), ("ClusterRole", 1), ("ClusterRoleBinding", 1), ("Role", 1), ("RoleBinding", 1)]
    }
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(kinds, want, "the chart rendered other RBAC objects than expected");
    let made = apply_rendered(&client, &objects).await;
    cleanup.cluster_objects = made.into_iter().filter(|(k, _)| k.starts_with("Cluster")).collect();

    // A kubeconfig for system:serviceaccount:<system>:<release> (the chart's full name).
    let kubeconfig = tmp.join("kubeconfig");
    service_account_kubeconfig(&client, &system, &release, &kubeconfig).await;
    let sa_client = client_from(&kubeconfig).await;
    let all_backups = Api::<DynamicObject>::all_with(sa_client.clone(), &archive_backups());
    let cluster_list = all_backups.list(&ListParams::default().limit(1)).await;
    if namespaced_install {
        assert!(
            matches!(&cluster_list, Err(kube::Error::Api(s)) if s.code == 403),
            "a watchNamespace install must not list ArchiveBackups in every namespace: {cluster_list:?}"
        );
    } else {
        // What an operator without --namespace does: list and watch everywhere.
        cluster_list.expect("a cluster-wide install lists ArchiveBackups in every namespace");
        for resource in [backup_policies(), ar("snapshot.storage.k8s.io", "v1", "VolumeSnapshot", "volumesnapshots"), ar("batch", "v1", "Job", "jobs")] {
            Api::<DynamicObject>::all_with(sa_client.clone(), &resource)
                .list(&ListParams::default().limit(1))
                .await
                .unwrap_or_else(|e| panic!("a cluster-wide install lists {} in every namespace: {e}", resource.kind));
        }
    }
    // Nothing outside the rules: the operator may never delete a Namespace.
    let ns_delete = Api::<Namespace>::all(sa_client.clone()).delete(&work, &DeleteParams::default()).await;
    assert!(matches!(&ns_delete, Err(kube::Error::Api(s)) if s.code == 403), "the operator may not delete Namespaces: {ns_delete:?}");

    // The operator, outside the cluster, as that ServiceAccount, watching the work namespace
    // (so that it leaves other tests' objects alone).
    let (mut operator, port) = Operator::start(&binary, &kubeconfig, &work, &system, tmp.join("operator.log"));
    wait_until("the operator's /readyz", || {
        let ready = http_status(port, "/readyz") == Some(200);
        async move { ready }
    })
    .await;

    // The archive: a one-replica StatefulSet with one volumeClaimTemplate.
    let sts: StatefulSet = serde_yaml::from_str(
        r#"
metadata: {name: mailstore}
spec:
  replicas: 1
  serviceName: mailstore
  selector: {matchLabels: {app: mailstore}}
  template:
    metadata: {labels: {app: mailstore}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: server
          image: busybox:1.36
          command: [sh, -c, "echo archive > /data/master.db; exec sleep 3600"]
          volumeMounts: [{name: master, mountPath: /data}]
  volumeClaimTemplates:
    - metadata: {name: master}
      spec:
        accessModes: [ReadWriteOnce]
        storageClassName: archivist-local
        resources: {requests: {storage: 64Mi}}
"#,
    )
    .expect("StatefulSet YAML");
    let statefulsets = Api::<StatefulSet>::namespaced(client.clone(), &work);
    statefulsets.create(&PostParams::default(), &sts).await.expect("create StatefulSet");
    wait_until("the StatefulSet's pod to be ready", || async {
        statefulsets.get("mailstore").await.ok().and_then(|s| s.status).and_then(|s| s.ready_replicas) == Some(1)
    })
    .await;

    // Stop scales the StatefulSet to 0 and back; Freeze runs exec hooks (pods/exec).
    let quiesce_spec = match quiesce {
        "Stop" => "{mode: Stop, timeoutSeconds: 60}".to_string(),
        "Freeze" => "{mode: Freeze, timeoutSeconds: 60, \
                     freeze: {exec: {container: server, command: [sh, -c, 'touch /data/frozen']}}, \
                     thaw: {exec: {container: server, command: [sh, -c, 'rm /data/frozen']}}}"
            .to_string(),
        other => panic!("unknown quiesce mode {other}"),
    };
    create_dynamic(
        &client,
        &work,
        &backup_policies(),
        &format!(
            r#"
apiVersion: archivist.dev/v1alpha1
kind: BackupPolicy
metadata: {{name: mailstore}}
spec:
  target: {{kind: StatefulSet, name: mailstore}}
  quiesce: {quiesce_spec}
  master: {{volumeClaims: [master]}}
  volumeSnapshotClassName: archivist-local
"#
        ),
    )
    .await;
    create_dynamic(
        &client,
        &work,
        &archive_backups(),
        r#"
apiVersion: archivist.dev/v1alpha1
kind: ArchiveBackup
metadata: {name: mailstore-rbac}
spec: {policyName: mailstore, reason: Manual}
"#,
    )
    .await;

    let backups = Api::<DynamicObject>::namespaced_with(client.clone(), &work, &archive_backups());
    let mut phase = String::new();
    let deadline = Instant::now() + WAIT;
    while phase != "Completed" {
        let backup = backups.get("mailstore-rbac").await.expect("get ArchiveBackup");
        phase = backup.data["status"]["phase"].as_str().unwrap_or("").to_string();
        let refused = forbidden_lines(&operator.log());
        assert!(refused.is_empty(), "the operator was refused something by RBAC:\n{refused}");
        assert!(
            phase != "Failed" && Instant::now() < deadline && operator.alive(),
            "the backup did not complete (phase {phase:?}, status {}); operator log:\n{}",
            backup.data["status"],
            operator.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Released: scaled back to one replica; the policy got its finalizer and a status.
    wait_until("the StatefulSet back at one ready replica", || async {
        statefulsets.get("mailstore").await.ok().and_then(|s| s.status).and_then(|s| s.ready_replicas) == Some(1)
    })
    .await;
    let policies = Api::<DynamicObject>::namespaced_with(client.clone(), &work, &backup_policies());
    wait_until("the BackupPolicy's finalizer and status", || async {
        policies.get("mailstore").await.ok().is_some_and(|p| {
            p.finalizers().iter().any(|f| f == "archivist.dev/deletion-policy") && p.data["status"].is_object()
        })
    })
    .await;

    // Deleting the policy runs its finalizer (deletionPolicy Retain) while the operator runs.
    policies.delete("mailstore", &DeleteParams::default()).await.expect("delete BackupPolicy");
    wait_until("the BackupPolicy to be gone (finalizer removed by the operator)", || async {
        matches!(policies.get_opt("mailstore").await, Ok(None))
    })
    .await;

    let refused = forbidden_lines(&operator.log());
    drop(operator);
    assert!(refused.is_empty(), "the operator was refused something by RBAC:\n{refused}");
    drop(cleanup);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn cluster_wide_install_rbac_allows_a_stop_backup() {
    backup_as_the_chart_service_account(false, "Stop").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn watch_namespace_install_rbac_allows_a_stop_backup() {
    backup_as_the_chart_service_account(true, "Stop").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn watch_namespace_install_rbac_allows_a_freeze_backup_with_exec_hooks() {
    backup_as_the_chart_service_account(true, "Freeze").await;
}
