//! No step runs twice from a stale read: behind a proxy that delays every watch event by
//! 1.5 s, the controllers' caches lag behind their own writes, and still each freeze and thaw
//! hook runs exactly once per pod per run. The hooks are HTTP hooks served by the archive's
//! pods (`backup_support::http_hook_archive`).

mod backup_support;

use std::time::Duration;

use archivist_e2e::testing::operator::Operator;
use archivist_e2e::testing::with_namespace;
use backup_support::*;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn hooks_run_once_per_pod_per_run_when_watches_lag() {
    with_namespace("bk-stale", |client, ns| async move {
        let (proxy, mut operator) = Operator::start_behind_proxy(&client, &ns, Duration::from_millis(1500)).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        let live = data_pvc(&client, &ns, "content", &[]).await?;
        http_hook_archive(&client, &ns, "archive", 2, "content").await?;
        http_hook_policy(&client, &ns, "archive", &["meta"], &["content"]).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        let b1 = wait_completed(&client, &ns, "b1", &mut operator).await?;
        eprintln!("behind a 1.5 s watch delay: {}", timeline(&b1));
        eprintln!("operator requests through the proxy: {:?}", proxy.snapshot());
        let log = std::fs::read_to_string(live.join("hooks.log")).unwrap_or_default();
        let mut calls: Vec<&str> = log.lines().collect();
        calls.sort();
        anyhow::ensure!(
            calls == vec!["freeze archive-0", "freeze archive-1", "thaw archive-0", "thaw archive-1"],
            "each hook must run exactly once per pod; the hook log says:\n{log}"
        );
        Ok(())
    })
    .await;
}
