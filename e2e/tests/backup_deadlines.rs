//! Nothing waits forever: a verify command that runs longer than `verification.timeoutSeconds`
//! ends verification (the run stays a restore point, verification Failed, `Verified=False`
//! reason `Timeout`), and a snapshot that never becomes ready fails the run at
//! `snapshotReadyTimeoutSeconds`, after which the policy's next run goes ahead.

mod backup_support;

use std::time::{Duration, Instant};

use archivist::api::{ArchiveBackup, BackupPhase, ConditionStatus, VerificationState};
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::ListParams;
use kube::{Api, Client};

const STORE: &str = r#"
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#;

async fn archive(client: &Client, ns: &str, extra: &str) -> anyhow::Result<()> {
    data_pvc(client, ns, "meta", &[]).await?;
    data_pvc(client, ns, "content", &[]).await?;
    archive_statefulset(client, ns, "archive", 1, &[]).await?;
    policy(client, ns, "archive", &format!("  target: {{kind: StatefulSet, name: archive}}\n  quiesce: {{mode: None}}\n{STORE}{extra}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_verify_command_past_its_timeout_fails_verification_not_the_restore_point() {
    with_namespace("bk-verify-timeout", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        archive(&client, &ns, r#"
  retention: {keepLast: 3, keepVerified: 1}
  verification:
    afterBackup: true
    image: busybox
    command: [sh, -c, "sleep 120"]
    timeoutSeconds: 5
"#)
        .await?;
        let started = Instant::now();
        start_backup(&client, &ns, "b1", "archive").await?;
        let b1 = wait_finished(&client, &ns, "b1", &mut operator).await?;
        let took = started.elapsed();
        let status = b1.status.clone().unwrap_or_default();
        let verification = status.verification.clone();
        eprintln!("b1 ended {:?} after {took:?}: verification {verification:?}", phase(&b1));
        anyhow::ensure!(phase(&b1) == BackupPhase::Completed, "b1 ended {:?}: {:?}", phase(&b1), status.message);
        let verification = verification.ok_or_else(|| anyhow::anyhow!("b1 has no verification status"))?;
        anyhow::ensure!(verification.state == VerificationState::Failed, "verification {:?}", verification.state);
        let message = verification.message.clone().unwrap_or_default();
        anyhow::ensure!(message.contains("verification.timeoutSeconds (5s)"), "the message does not name the timeout: {message}");
        let verified = status.conditions.iter().find(|c| c.type_ == "Verified");
        anyhow::ensure!(
            verified.is_some_and(|c| c.status == ConditionStatus::False && c.reason == "Timeout"),
            "Verified condition: {verified:?}"
        );
        anyhow::ensure!(took < Duration::from_secs(90), "the run waited for the verify command ({took:?}), not for its timeout");
        until("the VerificationFailed Event", Duration::from_secs(10), || async {
            Ok(run_event_reasons(&client, &ns, "b1").await?.last().map(String::as_str) == Some("VerificationFailed"))
        })
        .await?;
        // The verify Job and the scratch volumes are gone.
        until("the verify Job and scratch PVCs to be deleted", Duration::from_secs(30), || async {
            let jobs = Api::<Job>::namespaced(client.clone(), &ns).list(&ListParams::default()).await?.items;
            let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns).list(&ListParams::default()).await?.items;
            let scratch = claims.iter().filter(|c| c.metadata.name.as_deref().is_some_and(|n| n.contains("-verify-"))).count();
            Ok(jobs.is_empty() && scratch == 0)
        })
        .await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_snapshot_never_ready_fails_the_run_at_its_deadline_and_the_next_run_goes_ahead() {
    with_namespace("bk-ready-timeout", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        archive(&client, &ns, "  snapshotReadyTimeoutSeconds: 5\n").await?;
        annotate_pvc(&client, &ns, "content", "sim.archivist.dev/snapshot-ready-delay", Some("1h")).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        let b1 = wait_finished(&client, &ns, "b1", &mut operator).await?;
        let message = b1.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default();
        eprintln!("b1 ended {:?}: {message}", phase(&b1));
        anyhow::ensure!(phase(&b1) == BackupPhase::Failed, "b1 ended {:?}: {message}", phase(&b1));
        anyhow::ensure!(message.contains("snapshotReadyTimeoutSeconds (5s)"), "the message does not name the deadline: {message}");
        let ready = b1.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready").cloned());
        anyhow::ensure!(ready.as_ref().is_some_and(|c| c.reason == "SnapshotReadyTimeout"), "Ready condition: {ready:?}");
        until("b1's BackupFailed Event", Duration::from_secs(10), || async {
            Ok(run_event_reasons(&client, &ns, "b1").await?.last().map(String::as_str) == Some("BackupFailed"))
        })
        .await?;
        // The failed run no longer blocks the policy: the next run starts and completes.
        annotate_pvc(&client, &ns, "content", "sim.archivist.dev/snapshot-ready-delay", None).await?;
        start_backup(&client, &ns, "b2", "archive").await?;
        wait_completed(&client, &ns, "b2", &mut operator).await?;
        let b1 = Api::<ArchiveBackup>::namespaced(client.clone(), &ns).get("b1").await?;
        anyhow::ensure!(phase(&b1) == BackupPhase::Failed, "b1 is now {:?}", phase(&b1));
        Ok(())
    })
    .await;
}
