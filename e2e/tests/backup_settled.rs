//! A finished restore point costs nothing (issue 12, "settle finished objects"): after a
//! restart, an operator whose runs are all finished and released makes no request for them and
//! never writes them. Counted behind the API proxy, which sees only the operator's own
//! requests; a run's dump Jobs are listed (by the label `archivist.dev/backup`) only when the
//! run is observed (`archivist.dev/backup=<run>`), so `LIST jobs by archivist.dev/backup=` counts the runs that were observed.
//! And the operator watches only its own Jobs and VolumeSnapshots (by their labels), not every
//! Job and snapshot of the cluster.

mod backup_support;

use std::time::Duration;

use archivist_e2e::testing::operator::Operator;
use archivist_e2e::testing::with_namespace;
use backup_support::*;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn finished_runs_cost_no_requests_after_a_restart() {
    with_namespace("bk-settled", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        data_pvc(&client, &ns, "content", &[]).await?;
        archive_statefulset(&client, &ns, "archive", 1, &[]).await?;
        let store = "  stores:\n  - name: s1\n    metadata: {volumeClaims: [meta]}\n    content: {volumeClaims: [content]}\n";
        // Three crash-consistent policies (no finalizer, no claim) and one that stops the
        // archive (finalizer and claim, both gone once it is released).
        for (name, quiesce) in [("p1", "{mode: None}"), ("p2", "{mode: None}"), ("p3", "{mode: None}"), ("stop", "{mode: Stop, timeoutSeconds: 60}")] {
            policy(&client, &ns, name, &format!("  target: {{kind: StatefulSet, name: archive}}\n  quiesce: {quiesce}\n{store}")).await?;
            start_backup(&client, &ns, &format!("{name}-b1"), name).await?;
        }
        for name in ["p1", "p2", "p3", "stop"] {
            wait_completed(&client, &ns, &format!("{name}-b1"), &mut operator).await?;
        }
        wait_ready_replicas(&client, &ns, "archive", 1).await?;
        operator.terminate(Duration::from_secs(30)).await?;

        let (proxy, mut operator) = Operator::start_behind_proxy(&client, &ns, Duration::ZERO).await?;
        // Start-up reconciles every object once; give it time to do so.
        tokio::time::sleep(Duration::from_secs(10)).await;
        operator.check_running()?;
        let counts = proxy.snapshot();
        eprintln!("operator requests in its first 10 s, with 4 finished runs: {counts:?}");
        let observed = proxy.requests("LIST", "jobs by archivist.dev/backup=");
        anyhow::ensure!(observed == 0, "finished runs were observed after the restart: {observed} LIST jobs by archivist.dev/backup=");
        for write in ["PATCH archivebackups", "PATCH archivebackups/status", "PUT archivebackups", "PUT archivebackups/status"] {
            let n = counts.get(write).copied().unwrap_or(0);
            anyhow::ensure!(n == 0, "finished runs were written: {n} {write}");
        }
        // A new run of one of them is still noticed and done.
        start_backup(&client, &ns, "p1-b2", "p1").await?;
        wait_completed(&client, &ns, "p1-b2", &mut operator).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn only_the_operators_own_jobs_and_snapshots_are_watched() {
    with_namespace("bk-own-watches", |client, ns| async move {
        let (proxy, mut operator) = Operator::start_behind_proxy(&client, &ns, Duration::ZERO).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        operator.check_running()?;
        let counts = proxy.snapshot();
        eprintln!("operator requests at start-up: {counts:?}");
        let get = |key: &str| counts.get(key).copied().unwrap_or(0);
        for verb in ["LIST", "WATCH"] {
            let jobs = get(&format!("{verb} jobs"));
            // By archivist.dev/backup, archivist.dev/restore or archivist.dev/maintenance.
            let prefix = format!("{verb} jobs by archivist.dev/");
            let ours: u64 = counts.iter().filter(|(key, _)| key.starts_with(&prefix)).map(|(_, n)| *n).sum();
            anyhow::ensure!(jobs > 0 && jobs == ours, "{verb}: {jobs} requests on Jobs, {ours} of them by our labels");
            let snapshots = get(&format!("{verb} volumesnapshots"));
            let ours = get(&format!("{verb} volumesnapshots by archivist.dev/backup"));
            anyhow::ensure!(snapshots > 0 && snapshots == ours, "{verb}: {snapshots} requests on VolumeSnapshots, {ours} of them by our label");
        }
        Ok(())
    })
    .await;
}
