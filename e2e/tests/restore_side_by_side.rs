//! SideBySide: a temporary copy of the archive server runs with the restored data next to the
//! original; `ttlSecondsAfterFinished` removes the copy, never the restored PVCs.

mod backup_support;
mod restore_support;

use std::time::Duration;

use anyhow::ensure;
use archivist_e2e::testing::with_namespace;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Api;
use restore_support::*;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn side_by_side_copy_runs_on_restored_data_and_ttl_removes_only_the_copy() {
    with_namespace("rs-sbs", |client, ns| async move {
        let options = ArchiveOptions { sql: false, ..ArchiveOptions::default() };
        let mut archive = archive_with_backup(&client, &ns, options).await?;
        archive.change_after_backup()?;

        request(&client, &ns, "r1", "  source: {policyName: archive, select: Latest}\n  target: {mode: SideBySide, nameSuffix: -sbs}\n  ttlSecondsAfterFinished: 20\n").await?;
        let r = wait_restore_completed(&client, &ns, "r1", &mut archive.operator).await?;
        ensure!(r.status.as_ref().and_then(|s| s.resolved_backup.as_deref()) == Some(BACKUP), "{:?}", r.status);

        // The copy `archive-sbs` runs one pod that mounts the restored claims at the original
        // paths and sees the backed-up data (not what was written after the backup).
        let copy = format!("{ARCHIVE}-sbs");
        let pod = format!("{copy}-0");
        wait_running(&client, &ns, &pod).await?;
        let spec = Api::<Pod>::namespaced(client.clone(), &ns).get(&pod).await?.spec.unwrap_or_default();
        let claims: Vec<String> = spec.volumes.unwrap_or_default().iter().filter_map(|v| v.persistent_volume_claim.as_ref().map(|p| p.claim_name.clone())).collect();
        for claim in &archive.claims {
            ensure!(claims.contains(&format!("{claim}-sbs")), "the copy's pod mounts {claims:?}, not {claim}-sbs");
            let seen = pod_checksums(&client, &ns, &pod, "server", &format!("/{claim}")).await?;
            ensure!(seen == archive.checksums[claim], "{claim} in the copy differs from the backup:\n{seen}\nvs\n{}", archive.checksums[claim]);
        }
        ensure!(pod_read(&client, &ns, &pod, "server", "/content-s1/README").await? == "volume content-s1\n", "the copy sees changed data");
        // The original still runs on its own (changed) data.
        ensure!(pod_read(&client, &ns, &format!("{ARCHIVE}-0"), "server", "/content-s1/README").await?.contains("changed after the backup"), "original changed");

        // The TTL (20 s after completion) removes the copy and its pod, not the PVCs.
        let sts = Api::<StatefulSet>::namespaced(client.clone(), &ns);
        let started = std::time::Instant::now();
        archivist_e2e::testing::wait_for(&sts, &copy, Duration::from_secs(60), "the copy to be removed", |s| s.is_none()).await?;
        let after = started.elapsed();
        let pods = Api::<Pod>::namespaced(client.clone(), &ns);
        archivist_e2e::testing::wait_for(&pods, &pod, Duration::from_secs(60), "the copy's pod to be gone", |p| p.is_none()).await?;
        eprintln!("copy removed {after:?} after the request was seen Completed (ttl 20 s)");
        let done = r.status.as_ref().and_then(|s| s.completion_time).expect("completionTime");
        let elapsed = (chrono::Utc::now() - done).num_milliseconds() as f64 / 1000.0;
        ensure!(elapsed >= 19.0, "the copy was removed {elapsed} s after completion, before the TTL");
        let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
        for claim in &archive.claims {
            let pvc = pvcs.get_opt(&format!("{claim}-sbs")).await?;
            ensure!(pvc.is_some_and(|p| p.metadata.deletion_timestamp.is_none()), "restored PVC {claim}-sbs was removed with the copy");
        }
        let reasons = archivist_e2e::testing::operator::event_reasons(&client, &ns, "RestoreRequest", "r1").await?;
        ensure!(reasons.iter().any(|r| r == "WorkloadRemoved"), "events: {reasons:?}");
        // The original archive is still there and running.
        wait_running(&client, &ns, &format!("{ARCHIVE}-0")).await?;
        Ok(())
    })
    .await;
}
