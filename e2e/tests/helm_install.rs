//! Installed as users install it: the operator image built from this checkout and pushed to the
//! local cluster's registry, `helm install charts/archivist` with that image, and the operator
//! running as a pod of the simulated kubelet (the image's own rootfs, user 65532, a read-only
//! root, the in-cluster ServiceAccount token) under the chart's ServiceAccount and RBAC alone.
//! The Deployment becomes Ready through its `/readyz` probe; the pod takes a Freeze backup
//! (exec hooks), reports it in its `/metrics` gauges (scraped from the pod's IP, as Prometheus
//! does), and makes a SideBySide restore. `helm upgrade` to a second image tag with two
//! replicas, while a backup runs, makes that run once and leaves one leader; `helm uninstall`
//! keeps the CRDs and the backups.
//!
//! Needs `e2e/local-cluster up` (its registry: `LOCAL_REGISTRY`, else the address `up` wrote),
//! helm (`$HELM`, else `charts/test.sh --helm-path`), and the packages `operator/build-image`
//! installs (buildah).
//!
//! ```sh
//! cargo test -p archivist-e2e --test helm_install -- --ignored --nocapture
//! ```

mod backup_support;
mod restore_support;

use std::time::Duration;

use anyhow::{ensure, Context as _};
use archivist::api::{ArchiveBackup, BackupPhase, RestorePhase, RestoreRequest};
use archivist_e2e::testing::helm::{build_and_push_operator_image, helm, local_registry};
use archivist_e2e::testing::pods::is_ready;
use archivist_e2e::testing::{wait_for, with_namespace};
use backup_support::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, LogParams};
use kube::{Api, Client, ResourceExt};

/// How long the operator's Deployment may take to become Ready (pull, unpack, start, sync).
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a backup or restore by the operator pod may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn helm_installed_operator_backs_up_and_restores_as_a_pod() {
    with_namespace("helm", |client, ns| async move {
        let registry = local_registry()?;
        let image = tokio::task::spawn_blocking(move || build_and_push_operator_image(&registry, "e2e")).await??;
        eprintln!("pushed {}:{}@{}", image.repository, image.tag, image.digest);

        // The release is named after the namespace: its ClusterRole names are then unique.
        let release = ns.clone();
        let install: Vec<String> = vec![
            "install".into(), release.clone(), "charts/archivist".into(), "--namespace".into(), ns.clone(),
            "--set".into(), format!("image.repository={}", image.repository),
            "--set".into(), format!("image.tag={}", image.tag),
            "--set".into(), "image.pullPolicy=Always".into(),
            "--set".into(), format!("watchNamespace={ns}"),
            // The simulated pods share the host's network: each replica listens on its own IP.
            "--set".into(), "metrics.listenOnPodIP=true".into(),
        ];
        let out = tokio::task::spawn_blocking(move || helm(&install)).await??;
        eprintln!("{out}");

        let operator_pod = wait_deployment_ready(&client, &ns, &release).await?;
        let status = operator_pod.status.clone().unwrap_or_default();
        let container = status.container_statuses.unwrap_or_default().into_iter().next().context("no container status")?;
        let want_id = format!("docker-pullable://{}@{}", image.repository, image.digest);
        ensure!(container.image_id == want_id, "the operator runs image {:?}, not the pushed {want_id}", container.image_id);

        // A Freeze backup with exec hooks, by the operator pod.
        data_pvc(&client, &ns, "meta", &[]).await?;
        let content = data_pvc(&client, &ns, "content", &[]).await?;
        std::fs::write(content.join("msg-1.eml"), "message 1\n")?;
        archive_statefulset(&client, &ns, "archive", 1, &["meta", "content"]).await?;
        policy(&client, &ns, "archive", r#"
  target: {kind: StatefulSet, name: archive}
  quiesce:
    mode: Freeze
    freeze: {exec: {container: server, command: ["sh", "-c", "echo frozen > /meta/frozen; echo x >> /meta/freezes"]}}
    thaw: {exec: {container: server, command: ["sh", "-c", "rm -f /meta/frozen"]}}
    timeoutSeconds: 60
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        let backups = Api::<ArchiveBackup>::namespaced(client.clone(), &ns);
        let backup = wait_phase(&client, &ns, &operator_pod.name_any(), "ArchiveBackup b1", || {
            let backups = backups.clone();
            async move {
                let b = backups.get("b1").await?;
                let phase = phase(&b);
                Ok(phase.is_finished().then_some((phase == BackupPhase::Completed, b)))
            }
        })
        .await?;
        eprintln!("{}", timeline(&backup));

        // What Prometheus scrapes from the pod's IP: the gauges computed from the objects. (The
        // API server's pod proxy refuses loopback addresses, which the simulated pods have.)
        let pod_ip = status.pod_ip.clone().context("the operator pod has no IP")?;
        let scraped = http_get(&format!("{pod_ip}:8080"), "/metrics").await?;
        let done = backup.status.as_ref().and_then(|s| s.completion_time).context("no completionTime")?;
        for want in [
            format!(r#"archivist_restore_points{{namespace="{ns}",policy="archive"}} 1"#),
            format!(r#"archivist_backup_in_progress{{namespace="{ns}",policy="archive"}} 0"#),
            format!(r#"archivist_backup_last_success_timestamp_seconds{{namespace="{ns}",policy="archive"}} {}"#, done.timestamp_millis() as f64 / 1000.0),
        ] {
            ensure!(scraped.lines().any(|l| l == want || l.starts_with(&format!("{want}.")) ), "/metrics lacks {want:?}:\n{scraped}");
        }
        let held = format!(r#"archivist_archive_quiesced{{namespace="{ns}",workload="archive"}} 1"#);
        ensure!(!scraped.lines().any(|l| l == held), "/metrics says the released archive is held quiesced:\n{scraped}");

        // A SideBySide restore of it, by the operator pod.
        restore_support::request(&client, &ns, "r1", "  source: {backupName: b1}\n  target: {mode: SideBySide, nameSuffix: -sbs}\n").await?;
        let requests = Api::<RestoreRequest>::namespaced(client.clone(), &ns);
        wait_phase(&client, &ns, &operator_pod.name_any(), "RestoreRequest r1", || {
            let requests = requests.clone();
            async move {
                let r = requests.get("r1").await?;
                let phase = restore_support::restore_phase(&r);
                Ok(matches!(phase, RestorePhase::Completed | RestorePhase::Failed).then_some((phase == RestorePhase::Completed, r)))
            }
        })
        .await?;
        // Every metric the chart's dashboard and alerts query is one the operator exports, once
        // it has made a backup and a restore (a counter appears with its first sample, which
        // the operator records after the status the test saw: scraped until it is there).
        let mut queried = std::collections::BTreeSet::new();
        for file in ["charts/archivist/files/dashboard.json", "charts/archivist/files/alerts.yaml"] {
            let text = std::fs::read_to_string(archivist_e2e::testing::operator::repo_dir().join(file))?;
            let names = metric_names(&text);
            ensure!(!names.is_empty(), "{file} queries no archivist_ metric");
            queried.extend(names);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let scraped = http_get(&format!("{pod_ip}:8080"), "/metrics").await?;
            let missing: Vec<&String> = queried.iter().filter(|name| !scraped.lines().any(|l| l.starts_with(&format!("# TYPE {name} ")))).collect();
            if missing.is_empty() {
                break;
            }
            ensure!(tokio::time::Instant::now() < deadline, "the dashboard or alerts query {missing:?}, which /metrics does not export:\n{scraped}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let pods = Api::<Pod>::namespaced(client.clone(), &ns);
        wait_for(&pods, "archive-sbs-0", Duration::from_secs(60), "the restored copy archive-sbs-0 to be ready", is_ready).await?;
        let read = restore_support::pod_read(&client, &ns, "archive-sbs-0", "server", "/content/msg-1.eml").await?;
        ensure!(read == "message 1\n", "the restored copy reads {read:?}");

        // The operator acted as the chart's ServiceAccount: nothing in its log was forbidden.
        let log = pod_log(&client, &ns, &operator_pod.name_any()).await;
        ensure!(!log.contains("forbidden"), "the operator's log has a forbidden request:\n{log}");

        // `helm upgrade` to a second tag with two replicas, a backup started as the rollout
        // begins: the old pod hands the Lease over, and the run is made once (one freeze, one
        // BackupStarted, one snapshot per item), whoever finishes it.
        let registry = local_registry()?;
        let second = tokio::task::spawn_blocking(move || build_and_push_operator_image(&registry, "e2e-2")).await??;
        let upgrade: Vec<String> = vec![
            "upgrade".into(), release.clone(), "charts/archivist".into(), "--namespace".into(), ns.clone(), "--reuse-values".into(),
            "--set".into(), format!("image.tag={}", second.tag),
            "--set".into(), "replicas=2".into(),
        ];
        let out = tokio::task::spawn_blocking(move || helm(&upgrade)).await??;
        eprintln!("{out}");
        start_backup(&client, &ns, "b2", "archive").await?;
        let b2 = wait_phase(&client, &ns, &operator_pod.name_any(), "ArchiveBackup b2", || {
            let backups = backups.clone();
            async move {
                let b = backups.get("b2").await?;
                let phase = phase(&b);
                Ok(phase.is_finished().then_some((phase == BackupPhase::Completed, b)))
            }
        })
        .await?;
        eprintln!("{}", timeline(&b2));
        let upgraded = wait_rolled_out(&client, &ns, &release, &format!("{}:{}", second.repository, second.tag), 2).await?;
        let freezes = restore_support::pod_read(&client, &ns, "archive-0", "server", "/meta/freezes").await?;
        ensure!(freezes.lines().count() == 2, "the freeze hook ran {} times for b1 and b2", freezes.lines().count());
        for reason in ["BackupStarted", "Quiesced", "Released", "BackupCompleted"] {
            let count = archivist_e2e::testing::operator::event_count(&client, &ns, "ArchiveBackup", "b2", reason).await?;
            ensure!(count == 1, "b2 reported {reason} {count} times");
        }
        let snapshots = Api::<archivist_e2e::snapshot_api::VolumeSnapshot>::namespaced(client.clone(), &ns)
            .list(&ListParams::default().labels("archivist.dev/backup=b2"))
            .await?
            .items;
        ensure!(snapshots.len() == 2, "b2 has {} VolumeSnapshots, not one per item", snapshots.len());

        // One of the two new pods takes the Lease (within its takeover time), and from then on
        // exactly one leads at every scrape.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        let mut led_since: Option<tokio::time::Instant> = None;
        loop {
            let mut leaders = Vec::new();
            for pod in &upgraded {
                let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone()).context("an upgraded pod has no IP")?;
                let scraped = http_get(&format!("{ip}:8080"), "/metrics").await?;
                if scraped.lines().any(|l| l == "archivist_leader 1") {
                    leaders.push(pod.name_any());
                }
            }
            ensure!(leaders.len() <= 1, "two pods lead at once: {leaders:?}");
            match (leaders.len(), led_since) {
                (1, None) => led_since = Some(tokio::time::Instant::now()),
                (1, Some(since)) if since.elapsed() >= Duration::from_secs(5) => break,
                (0, Some(_)) => anyhow::bail!("the leader stopped leading with no upgrade going on"),
                _ => {}
            }
            ensure!(tokio::time::Instant::now() < deadline, "no pod leads 40 s after the rollout");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }

        // Uninstalling keeps the CRDs and the restore points.
        let uninstall = vec!["uninstall".into(), release.clone(), "--namespace".into(), ns.clone()];
        let out = tokio::task::spawn_blocking(move || helm(&uninstall)).await??;
        eprintln!("{out}");
        let crds = Api::<CustomResourceDefinition>::all(client.clone());
        for crd in ["archivebackups.archivist.dev", "backuppolicies.archivist.dev", "restorerequests.archivist.dev"] {
            ensure!(crds.get_opt(crd).await?.is_some(), "helm uninstall removed the CRD {crd}");
        }
        ensure!(backups.get_opt("b1").await?.is_some(), "helm uninstall removed the ArchiveBackup b1");

        // The documented uninstall (charts/README.md): `archivist release-finalizers` takes the
        // finalizers no operator will clear any more, and the namespace then deletes cleanly.
        let policies = Api::<archivist::api::BackupPolicy>::namespaced(client.clone(), &ns);
        ensure!(!policies.get("archive").await?.finalizers().is_empty(), "the policy has no finalizer to release");
        let out = tokio::process::Command::new(archivist_e2e::testing::operator::archivist_bin())
            .args(["release-finalizers", "-n", &ns, "--kubeconfig"])
            .arg(archivist_e2e::testing::kubeconfig_path())
            .output()
            .await?;
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!("{said}{}", String::from_utf8_lossy(&out.stderr));
        ensure!(out.status.success() && said.contains(&format!("backuppolicy {ns}/archive: removed archivist.dev/deletion-policy")), "release-finalizers: {said}");
        let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
        namespaces.delete(&ns, &Default::default()).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while namespaces.get_opt(&ns).await?.is_some() {
            ensure!(tokio::time::Instant::now() < deadline, "namespace {ns} still Terminating 120 s after the documented uninstall");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    })
    .await;
}

/// Waits until the release's Deployment has a ready replica; returns that pod. On timeout the
/// error shows the pods' container states and the operator's log.
async fn wait_deployment_ready(client: &Client, ns: &str, release: &str) -> anyhow::Result<Pod> {
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    // The chart names the Deployment `<release>-archivist`; it and its pods carry the release.
    let selector = format!("app.kubernetes.io/instance={release}");
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        let ready: i32 = deployments
            .list(&ListParams::default().labels(&selector))
            .await?
            .items
            .iter()
            .filter_map(|d| d.status.as_ref().and_then(|s| s.ready_replicas))
            .sum();
        let listed = pods.list(&ListParams::default().labels(&selector)).await?.items;
        if ready >= 1 {
            if let Some(pod) = listed.into_iter().find(|p| is_ready(Some(p))) {
                return Ok(pod);
            }
        } else if tokio::time::Instant::now() >= deadline {
            let mut report = String::new();
            for pod in &listed {
                let states = pod.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
                report.push_str(&format!("pod {}: {:?}\n{}\n", pod.name_any(), states.iter().map(|c| &c.state).collect::<Vec<_>>(), pod_log(client, ns, &pod.name_any()).await));
            }
            anyhow::bail!("Deployment {release} not ready after {READY_TIMEOUT:?}:\n{report}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the release's Deployment runs `replicas` ready pods of `image` and no other pod;
/// returns them.
async fn wait_rolled_out(client: &Client, ns: &str, release: &str, image: &str, replicas: usize) -> anyhow::Result<Vec<Pod>> {
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let selector = format!("app.kubernetes.io/instance={release}");
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        let listed = pods.list(&ListParams::default().labels(&selector)).await?.items;
        let runs_image = |p: &Pod| p.spec.as_ref().is_some_and(|s| s.containers.iter().all(|c| c.image.as_deref() == Some(image)));
        let rolled = listed.len() == replicas && listed.iter().all(|p| runs_image(p) && is_ready(Some(p)) && p.metadata.deletion_timestamp.is_none());
        if rolled {
            return Ok(listed);
        }
        if tokio::time::Instant::now() >= deadline {
            let states: Vec<String> = listed.iter().map(|p| format!("{} ready={} image_ok={}", p.name_any(), is_ready(Some(p)), runs_image(p))).collect();
            anyhow::bail!("the rollout to {image} did not finish within {READY_TIMEOUT:?}: {states:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Polls `check` until it returns `Some((succeeded, object))`; fails with the operator pod's log
/// when it did not succeed or on timeout.
async fn wait_phase<T, F, Fut>(client: &Client, ns: &str, operator_pod: &str, what: &str, mut check: F) -> anyhow::Result<T>
where
    T: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<(bool, T)>>>,
{
    let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
    loop {
        if let Some((succeeded, object)) = check().await? {
            if succeeded {
                return Ok(object);
            }
            anyhow::bail!("{what} failed: {object:?}\noperator log:\n{}", pod_log(client, ns, operator_pod).await);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("{what} did not finish within {RUN_TIMEOUT:?}\noperator log:\n{}", pod_log(client, ns, operator_pod).await);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The last 60 lines of the pod's log (through the API server and the simulated kubelet).
async fn pod_log(client: &Client, ns: &str, pod: &str) -> String {
    let params = LogParams { tail_lines: Some(60), ..LogParams::default() };
    Api::<Pod>::namespaced(client.clone(), ns).logs(pod, &params).await.unwrap_or_else(|e| format!("(no log: {e})"))
}

/// The metric families a text of queries names: each `archivist_…` word, with the suffixes of
/// a histogram's or counter's series (`_bucket`, `_sum`, `_count`, `_total`) taken off.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for (start, _) in text.match_indices("archivist_") {
        if text[..start].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let word: String = text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let family = ["_bucket", "_sum", "_count", "_total"].iter().find_map(|s| word.strip_suffix(s)).unwrap_or(&word);
        names.insert(family.to_string());
    }
    names
}

/// The body of `GET path` from `addr` (plain HTTP/1.0, as a scraper would ask).
async fn http_get(addr: &str, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").with_context(|| format!("no HTTP response from {addr}: {response:?}"))?;
    ensure!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "GET {path} from {addr}: {head}");
    Ok(body.to_string())
}
