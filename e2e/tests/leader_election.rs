//! A second operator: two processes run with leader election; only the Lease holder acts. The
//! leader is SIGKILLed while a run has the archive stopped: the standby takes the Lease over
//! within the lease duration, releases the archive (the run fails, OperatorRestarted), and no
//! process made anything twice or acted while standing by.

mod backup_support;

use std::time::{Duration, Instant};

use archivist::api::BackupPhase;
use archivist_e2e::snapshot_api::VolumeSnapshot;
use archivist_e2e::testing::operator::{ensure_crds, Operator};
use archivist_e2e::testing::{eventually, kubeconfig_path, with_namespace};
use backup_support::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::ListParams;
use kube::{Api, Client};

async fn holder(client: &Client, ns: &str) -> anyhow::Result<Option<String>> {
    let lease = Api::<Lease>::namespaced(client.clone(), ns).get_opt("archivist-leader").await?;
    Ok(lease.and_then(|l| l.spec).and_then(|s| s.holder_identity).filter(|h| !h.is_empty()))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn the_standby_takes_over_a_killed_leader_and_releases_the_archive() {
    with_namespace("leader", |client, ns| async move {
        ensure_crds(&client).await?;
        let mut a = Operator::start_with(&ns, &kubeconfig_path(), &[("POD_NAME", "op-a")]).await?;
        let leader_a = eventually("a Lease holder", Duration::from_secs(30), || async {
            Ok(holder(&client, &ns).await?.ok_or_else(|| "no holder yet".to_string()))
        })
        .await?;
        anyhow::ensure!(leader_a == "op-a", "the first process does not lead: {leader_a}");
        let mut b = Operator::start_with(&ns, &kubeconfig_path(), &[("POD_NAME", "op-b")]).await?;

        data_pvc(&client, &ns, "meta", &[]).await?;
        data_pvc(&client, &ns, "content", &[("sim.archivist.dev/snapshot-cut-delay", "40s")]).await?;
        archive_statefulset(&client, &ns, "archive", 2, &[]).await?;
        policy(&client, &ns, "archive", r#"
  target: {kind: StatefulSet, name: archive}
  quiesce: {mode: Stop, timeoutSeconds: 300}
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        wait_quiesced(&client, &ns, "b1").await?;
        anyhow::ensure!(replicas(&client, &ns, "archive").await? == 0, "not stopped");
        let standby_log = std::fs::read_to_string(&b.log)?;
        anyhow::ensure!(!standby_log.contains("\"next step\""), "the standby reconciled while another process led:\n{}", b.log_tail(20));

        a.kill().await?;
        let killed = Instant::now();
        let leader_b = eventually("the standby to take the Lease over", Duration::from_secs(30), || async {
            Ok(match holder(&client, &ns).await? {
                Some(h) if h == "op-b" => Ok(h),
                other => Err(format!("holder {other:?}")),
            })
        })
        .await?;
        let takeover = killed.elapsed();
        eprintln!("{leader_b} took over {:.2} s after the leader was killed", takeover.as_secs_f64());
        anyhow::ensure!(takeover <= Duration::from_secs(15), "the takeover took {takeover:?}, more than the 15 s allowed");
        until("the archive to be scaled back to 2", Duration::from_secs(30), || async { Ok(replicas(&client, &ns, "archive").await? == 2) }).await?;
        eprintln!("archive released {:.2} s after the leader was killed", killed.elapsed().as_secs_f64());
        let b1 = wait_finished(&client, &ns, "b1", &mut b).await?;
        let message = b1.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default();
        anyhow::ensure!(phase(&b1) == BackupPhase::Failed && message.contains("restarted"), "b1 ended {:?}: {message}", phase(&b1));
        // Every object of the run is the one planned item's, made once (deterministic names;
        // a second create would have been refused, so also no extra name exists).
        let planned: std::collections::BTreeSet<String> = b1.status.iter().flat_map(|s| s.items.iter()).filter_map(|i| i.volume_snapshot.clone()).collect();
        let made: Vec<String> = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns)
            .list(&ListParams::default().labels("archivist.dev/backup=b1"))
            .await?
            .items
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .collect();
        anyhow::ensure!(made.iter().all(|m| planned.contains(m)), "snapshots outside the plan: {made:?} vs {planned:?}");
        let unique: std::collections::BTreeSet<&String> = made.iter().collect();
        anyhow::ensure!(unique.len() == made.len(), "a snapshot name twice: {made:?}");
        b.check_running()?;
        wait_ready_replicas(&client, &ns, "archive", 2).await
    })
    .await;
}
