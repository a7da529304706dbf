//! No restore step runs twice from a stale read: behind a proxy that delays every watch event
//! by 1.5 s, the restore controller's cache lags behind its own status writes, and still a
//! SideBySide restore with a post-restore hook and a TTL creates each object once, reports
//! each Event once, and the copy the TTL deleted stays deleted.

mod backup_support;
mod restore_support;

use std::time::Duration;

use anyhow::ensure;
use archivist_e2e::testing::operator::{event_count, Operator};
use archivist_e2e::testing::{wait_for, with_namespace};
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Api;
use restore_support::*;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn restore_steps_run_once_when_watches_lag() {
    with_namespace("rs-stale", |client, ns| async move {
        let options = ArchiveOptions { sql: false, stores: 1, ..ArchiveOptions::default() };
        let mut archive = archive_with_backup(&client, &ns, options).await?;
        // The restore runs under an operator whose watches lag.
        archive.operator.terminate(Duration::from_secs(30)).await?;
        let (proxy, mut operator) = Operator::start_behind_proxy(&client, &ns, Duration::from_millis(1500)).await?;

        request(&client, &ns, "r1", r#"  source: {backupName: b1}
  target: {mode: SideBySide, nameSuffix: -sbs}
  ttlSecondsAfterFinished: 4
  postRestore:
  - name: check
    image: ignored
    command: [sh, -c, 'test -f /restore/content-s1-sbs/README']
"#).await?;
        wait_restore_completed(&client, &ns, "r1", &mut operator).await?;
        eprintln!("operator requests through the proxy: {:?}", proxy.snapshot());

        // Each object once: one POST per restored claim, Secret, hook Job and the copy.
        let (claims, jobs, secrets) = made_by(&client, &ns, "r1").await?;
        ensure!(!claims.is_empty() && jobs.len() == 1 && !secrets.is_empty(), "restored claims {claims:?}, jobs {jobs:?}, secrets {secrets:?}");
        for (resource, made) in [("persistentvolumeclaims", claims.len()), ("jobs", jobs.len()), ("secrets", secrets.len()), ("statefulsets", 1)] {
            let posts = proxy.requests("POST", resource);
            ensure!(posts == made as u64, "{posts} POST(s) of {resource} for {made} object(s): a step ran again from a stale read");
        }
        // Each Event once (a repeat would be a series of two). Events are published after the
        // status write the test waited for: wait until each is there, then count.
        for reason in ["RestoreStarted", "VolumesRestored", "HooksCompleted", "RestoreCompleted"] {
            until(&format!("the {reason} Event"), Duration::from_secs(20), || async {
                Ok(event_count(&client, &ns, "RestoreRequest", "r1", reason).await? > 0)
            })
            .await?;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        for reason in ["RestoreStarted", "VolumesRestored", "HooksCompleted", "RestoreCompleted"] {
            let seen = event_count(&client, &ns, "RestoreRequest", "r1", reason).await?;
            ensure!(seen == 1, "{reason} was reported {seen} time(s)");
        }

        // The TTL deletes the copy, and a stale status (still Restoring) never makes it again.
        let copy = format!("{ARCHIVE}-sbs");
        let statefulsets = Api::<StatefulSet>::namespaced(client.clone(), &ns);
        wait_for(&statefulsets, &copy, Duration::from_secs(60), "the TTL to delete the copy", |s| s.is_none()).await?;
        tokio::time::sleep(Duration::from_secs(5)).await;
        ensure!(statefulsets.get_opt(&copy).await?.is_none(), "the copy {copy} was made again after the TTL deleted it");
        ensure!(proxy.requests("POST", "statefulsets") == 1, "the copy was created again: {:?}", proxy.snapshot());
        ensure!(proxy.requests("DELETE", "statefulsets") == 1, "the copy was deleted {} time(s)", proxy.requests("DELETE", "statefulsets"));
        operator.check_running()?;
        Ok(())
    })
    .await;
}
