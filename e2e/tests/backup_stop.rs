//! Stop mode: the archive StatefulSet is scaled to 0 while the snapshots are cut and back to its
//! replicas afterwards; the snapshot holds what was written before the backup.

mod backup_support;

use std::time::{Duration, Instant};

use archivist::api::{BackupPhase, Component};
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn stop_mode_scales_to_zero_while_capturing_and_back_after() {
    with_namespace("bk-stop", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        // The cut delay keeps the run in Capturing* long enough to observe the stopped archive.
        data_pvc(&client, &ns, "meta", &[("sim.archivist.dev/snapshot-cut-delay", "2s")]).await?;
        data_pvc(&client, &ns, "content", &[("sim.archivist.dev/snapshot-cut-delay", "3s")]).await?;
        archive_statefulset(&client, &ns, "archive", 1, &["meta", "content"]).await?;
        let (_, err, ok) = exec(&client, &ns, "archive-0", "server", &[
            "sh", "-c", "echo 'message 1' > /content/msg-1.eml && echo 'row 1' > /meta/index.db && sync",
        ])
        .await?;
        anyhow::ensure!(ok, "writing the archive's data failed: {err}");

        policy(&client, &ns, "archive", r#"
  target: {kind: StatefulSet, name: archive}
  quiesce: {mode: Stop, timeoutSeconds: 60}
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#).await?;
        start_backup(&client, &ns, "b1", "archive").await?;

        // Watch: replicas must be 0 whenever the run is capturing.
        let backups = Api::<archivist::api::ArchiveBackup>::namespaced(client.clone(), &ns);
        let deadline = Instant::now() + RUN_TIMEOUT;
        let mut seen_capturing_stopped = false;
        loop {
            let backup = backups.get("b1").await?;
            let replicas = replicas(&client, &ns, "archive").await?;
            let phase = phase(&backup);
            if matches!(phase, BackupPhase::CapturingMetadata | BackupPhase::CapturingContent) {
                anyhow::ensure!(replicas == 0, "replicas is {replicas} while the run is {phase:?}");
                seen_capturing_stopped = true;
            }
            if phase.is_finished() {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "run b1 did not finish: {:?}", backup.status);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::ensure!(seen_capturing_stopped, "never saw the run capturing");
        let backup = wait_completed(&client, &ns, "b1", &mut operator).await?;
        let status = backup.status.clone().unwrap_or_default();

        // Back to its replicas, and running again.
        anyhow::ensure!(replicas(&client, &ns, "archive").await? == 1, "replicas not restored");
        wait_ready_replicas(&client, &ns, "archive", 1).await?;
        let quiesce = status.quiesce.clone().unwrap_or_default();
        anyhow::ensure!(quiesce.original_replicas == Some(1), "originalReplicas: {quiesce:?}");
        let window = quiesce.window_seconds.ok_or_else(|| anyhow::anyhow!("no quiesce.windowSeconds: {quiesce:?}"))?;
        anyhow::ensure!(window > 0.0, "window {window}");
        // The pods' removal wakes the stopping run (the pod watch): the window is the two cut
        // delays (5 s) and the pods' stop, not the run's 30 s safety net.
        anyhow::ensure!(window < 20.0, "the archive was stopped {window} s: the run was not woken by its pods going");

        // The content snapshot, restored into a new PVC mounted by a pod, holds the message.
        let content = snapshot_of(&backup, Component::Content)?;
        restore_to_dir(&client, &ns, &content, "restored-content").await?;
        create::<Pod>(&client, &ns, r#"
metadata: {name: reader}
spec:
  containers:
  - {name: main, image: ignored, volumeMounts: [{name: restored, mountPath: /restored}]}
  volumes: [{name: restored, persistentVolumeClaim: {claimName: restored-content}}]
"#).await?;
        let pods = Api::<Pod>::namespaced(client.clone(), &ns);
        archivist_e2e::testing::wait_for(&pods, "reader", Duration::from_secs(60), "pod reader to run", |p| {
            p.and_then(|p| p.status.as_ref()).and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .await?;
        let (out, err, ok) = exec(&client, &ns, "reader", "main", &["cat", "/restored/msg-1.eml"]).await?;
        anyhow::ensure!(ok && out == "message 1\n", "restored content: {out:?} {err}");

        // The story, in the order of api.md.
        let reasons = run_event_reasons_through(&client, &ns, "b1", "BackupCompleted").await?;
        let expected = ["BackupStarted", "Quiesced", "MetadataCaptured", "ContentCaptured", "Released", "BackupCompleted"];
        anyhow::ensure!(reasons == expected, "Events: {reasons:?}, expected {expected:?}");
        eprintln!("stop mode: {}", timeline(&backup));
        Ok(())
    })
    .await;
}

/// Stop mode on a Deployment: scaled to 0 while capturing, back to its replicas after, with the
/// claim and the recorded replicas as for a StatefulSet.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn stop_mode_works_on_a_deployment() {
    use k8s_openapi::api::apps::v1::Deployment;
    with_namespace("bk-stop-deploy", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        data_pvc(&client, &ns, "content", &[("sim.archivist.dev/snapshot-cut-delay", "3s")]).await?;
        create::<Deployment>(&client, &ns, r#"
metadata: {name: archive}
spec:
  replicas: 2
  selector: {matchLabels: {app: archive}}
  template:
    metadata: {labels: {app: archive}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: server, image: ignored, volumeMounts: [{name: content, mountPath: /content}]}]
      volumes: [{name: content, persistentVolumeClaim: {claimName: content}}]
"#).await?;
        let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
        let ready = |want: i32| move |d: Option<&Deployment>| d.and_then(|d| d.status.as_ref()).and_then(|s| s.ready_replicas).unwrap_or(0) == want;
        archivist_e2e::testing::wait_for(&deployments, "archive", Duration::from_secs(60), "the Deployment to be ready", ready(2)).await?;
        policy(&client, &ns, "archive", r#"
  target: {kind: Deployment, name: archive}
  quiesce: {mode: Stop, timeoutSeconds: 60}
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        wait_quiesced(&client, &ns, "b1").await?;
        let stopped = deployments.get("archive").await?;
        anyhow::ensure!(stopped.spec.as_ref().and_then(|s| s.replicas) == Some(0), "the Deployment was not stopped while capturing");
        let holder = stopped.metadata.annotations.clone().unwrap_or_default().get("archivist.dev/quiesced-by").cloned();
        anyhow::ensure!(holder == Some(format!("{ns}/b1")), "the Deployment's claim is {holder:?}");
        let b1 = wait_completed(&client, &ns, "b1", &mut operator).await?;
        let quiesce = b1.status.and_then(|s| s.quiesce).unwrap_or_default();
        anyhow::ensure!(quiesce.original_replicas == Some(2), "originalReplicas {:?}", quiesce.original_replicas);
        let after = deployments.get("archive").await?;
        anyhow::ensure!(after.spec.as_ref().and_then(|s| s.replicas) == Some(2), "not scaled back to 2");
        anyhow::ensure!(!after.metadata.annotations.unwrap_or_default().contains_key("archivist.dev/quiesced-by"), "the claim stayed");
        archivist_e2e::testing::wait_for(&deployments, "archive", Duration::from_secs(60), "the Deployment to be ready again", ready(2)).await?;
        Ok(())
    })
    .await;
}
