//! The requests of one run, by the operator alone (issue 12): a Freeze run with 3 volumes (one
//! metadata, two content), HTTP hooks, the operator behind `ApiProxy`. It prints the writes
//! and the reads by verb and resource (the figures in `e2e/BENCHMARKS.md`), proves that the run
//! observes what it made from the operator's caches (no LIST of its snapshots, Jobs or PVCs by
//! its label), and that a finished run settles: once it is Completed, nothing writes to it or
//! about it again.

mod backup_support;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;

use archivist_e2e::testing::operator::Operator;
use archivist_e2e::testing::proxy::{since, writes_by_resource, ApiProxy};
use archivist_e2e::testing::with_namespace;
use backup_support::*;

/// Waits until the operator has written nothing for `quiet`; returns its writes so far.
async fn settled_writes(proxy: &ApiProxy, quiet: Duration) -> anyhow::Result<BTreeMap<String, u64>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut last = writes_by_resource(&proxy.snapshot());
    loop {
        tokio::time::sleep(quiet).await;
        let now = writes_by_resource(&proxy.snapshot());
        if now == last {
            return Ok(now);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the operator kept writing: {:?}", since(&now, &last));
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_freeze_run_of_three_volumes_writes_little_and_then_nothing() {
    with_namespace("bk-writes", |client, ns| async move {
        let (proxy, mut operator) = Operator::start_behind_proxy(&client, &ns, Duration::ZERO).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        data_pvc(&client, &ns, "content-a", &[]).await?;
        data_pvc(&client, &ns, "content-b", &[]).await?;
        http_hook_archive(&client, &ns, "archive", 1, "content-a").await?;
        http_hook_policy(&client, &ns, "archive", &["meta"], &["content-a", "content-b"]).await?;
        // The policy's own first writes (its finalizer, its first status) come before the run.
        let before = settled_writes(&proxy, Duration::from_secs(3)).await?;
        let before_reads = proxy.snapshot();
        start_backup(&client, &ns, "b1", "archive").await?;
        let b1 = wait_completed(&client, &ns, "b1", &mut operator).await?;
        // Fewer writes, not fewer Events: every Event of a good run (api.md), in order.
        let want = ["BackupStarted", "Quiesced", "MetadataCaptured", "ContentCaptured", "Released", "BackupCompleted"];
        let events = until("the run's six Events", Duration::from_secs(20), || async {
            Ok(run_event_reasons(&client, &ns, "b1").await?.len() >= want.len())
        })
        .await;
        let reasons = run_event_reasons(&client, &ns, "b1").await?;
        eprintln!("status: {}", serde_json::to_string(&b1.status)?);
        events.with_context(|| format!("Events so far: {reasons:?}"))?;
        anyhow::ensure!(reasons == want, "Events {reasons:?}, want {want:?}");
        let run = settled_writes(&proxy, Duration::from_secs(3)).await?;
        let by_run = since(&run, &before);
        let total: u64 = by_run.values().sum();
        println!("one Freeze run, 3 volumes: {total} operator writes (Leases left out): {by_run:?}");
        // Reads: the run's children come from the caches, woken by their watches; a LIST by
        // the run's own label (`archivist.dev/backup=b1`) would be a reconcile listing them.
        let reads: BTreeMap<String, u64> = since(&proxy.snapshot(), &before_reads)
            .into_iter()
            .filter(|(k, _)| (k.starts_with("GET ") || k.starts_with("LIST ")) && !k.contains("leases"))
            .collect();
        println!("one Freeze run, 3 volumes: operator reads: {reads:?}");
        let listed_children: Vec<&String> = reads.keys().filter(|k| k.starts_with("LIST ") && k.ends_with("by archivist.dev/backup=")).collect();
        anyhow::ensure!(listed_children.is_empty(), "the run listed what it made instead of reading the caches: {listed_children:?}");
        eprintln!("{}", timeline(&b1));
        // Settled: a finished run costs nothing. 15 s more without a single write (a timer, a
        // resync or a status rewrite would show here).
        tokio::time::sleep(Duration::from_secs(15)).await;
        let later = since(&writes_by_resource(&proxy.snapshot()), &run);
        anyhow::ensure!(later.is_empty(), "the finished run was written to again: {later:?}");
        Ok(())
    })
    .await;
}
