//! Verification after a backup: the verify Job mounts scratch claims restored from the run's
//! snapshots under `/verify/<component>/<store>/<n>`. A command that finds what was written
//! before the backup passes (`verification.state: Passed`, `Verified=True`, Event `Verified`);
//! one that does not fails verification but not the restore point (`Completed`, `Failed`,
//! `Verified=False`, Event `VerificationFailed`). Either way the Job and the scratch claims go,
//! and the run is woken by its claims and its Job, not by a timer.

mod backup_support;

use std::time::Duration;

use archivist::api::{BackupPhase, ConditionStatus, VerificationState};
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::ListParams;
use kube::{Api, Client};

fn verifying(command: &str) -> String {
    format!(r#"
  target: {{kind: StatefulSet, name: archive}}
  quiesce: {{mode: None}}
  retention: {{keepLast: 5, keepVerified: 1}}
  verification:
    afterBackup: true
    image: busybox
    command: [sh, -c, '{command}']
    timeoutSeconds: 120
  stores:
  - name: s1
    metadata: {{volumeClaims: [meta]}}
    content: {{volumeClaims: [content]}}
"#)
}

/// How long a run with verification may take here at most: it is woken by its scratch claims
/// binding and its verify Job finishing (the run's children watches), never by the 30 s safety
/// net, which one step waiting on it would exceed.
const WOKEN_BY_EVENTS: Duration = Duration::from_secs(25);

async fn verified(client: &Client, ns: &str, name: &str, operator: &mut archivist_e2e::testing::operator::Operator, state: VerificationState) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    start_backup(client, ns, name, name.trim_start_matches("b-")).await?;
    let run = wait_finished(client, ns, name, operator).await?;
    let took = started.elapsed();
    anyhow::ensure!(took < WOKEN_BY_EVENTS, "{name} took {took:?} to back up and verify: a step waited for a timer, not a watch event");
    let status = run.status.clone().unwrap_or_default();
    anyhow::ensure!(phase(&run) == BackupPhase::Completed, "{name} ended {:?}: {:?}", phase(&run), status.message);
    let verification = status.verification.clone().ok_or_else(|| anyhow::anyhow!("{name} has no verification status"))?;
    anyhow::ensure!(verification.state == state, "{name}: verification {:?}, not {state:?}: {:?}", verification.state, verification.message);
    let want = if state == VerificationState::Passed { ConditionStatus::True } else { ConditionStatus::False };
    let condition = status.conditions.iter().find(|c| c.type_ == "Verified");
    anyhow::ensure!(condition.is_some_and(|c| c.status == want), "{name}: Verified condition {condition:?}");
    let event = if state == VerificationState::Passed { "Verified" } else { "VerificationFailed" };
    until(&format!("the {event} Event of {name}"), Duration::from_secs(10), || async {
        Ok(run_event_reasons(client, ns, name).await?.iter().any(|r| r == event))
    })
    .await?;
    until("the verify Job and scratch claims to be deleted", Duration::from_secs(30), || async {
        let jobs = Api::<Job>::namespaced(client.clone(), ns).list(&ListParams::default()).await?.items;
        let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns).list(&ListParams::default()).await?.items;
        let scratch = claims.iter().filter(|c| c.metadata.name.as_deref().is_some_and(|n| n.contains("-verify-"))).count();
        Ok(jobs.is_empty() && scratch == 0)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn verification_reads_the_restored_snapshots_and_passes_or_fails() {
    with_namespace("bk-verify", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        let meta = data_pvc(&client, &ns, "meta", &[]).await?;
        let content = data_pvc(&client, &ns, "content", &[]).await?;
        std::fs::write(meta.join("index.db"), "row 1\n")?;
        std::fs::write(content.join("msg-1.eml"), "Subject: verify me\n")?;
        archive_statefulset(&client, &ns, "archive", 1, &[]).await?;
        // Both files must be in the restored scratch claims, with what was written.
        policy(&client, &ns, "good", &verifying("grep -q \"row 1\" /verify/metadata/s1/0/index.db && grep -q \"verify me\" /verify/content/s1/0/msg-1.eml")).await?;
        policy(&client, &ns, "bad", &verifying("test -f /verify/content/s1/0/never-written.eml")).await?;
        verified(&client, &ns, "b-good", &mut operator, VerificationState::Passed).await?;
        verified(&client, &ns, "b-bad", &mut operator, VerificationState::Failed).await
    })
    .await;
}
