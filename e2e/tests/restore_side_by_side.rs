//! SideBySide: a temporary copy of the archive server runs with the restored data next to the
//! original; `ttlSecondsAfterFinished` removes the copy, never the restored PVCs.

mod backup_support;
mod restore_support;

use std::time::Duration;

use anyhow::{ensure, Context as _};
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

        // The TTL (20 s after completion) removes the copy and its pod, not the PVCs. The copy
        // is polled until it is gone: it was still there at `last_present` (taken before that
        // read), so it was removed after it, and it was gone at `first_absent`.
        let sts = Api::<StatefulSet>::namespaced(client.clone(), &ns);
        let done = r.status.as_ref().and_then(|s| s.completion_time).context("no completionTime")?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut last_present = None;
        let first_absent = loop {
            let before = chrono::Utc::now();
            if sts.get_opt(&copy).await?.is_none() {
                break chrono::Utc::now();
            }
            last_present = Some(before);
            ensure!(std::time::Instant::now() < deadline, "the copy {copy} was not removed within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let last_present = last_present.context("the copy was already gone at the first look, before the TTL could have passed")?;
        let seconds = |t: chrono::DateTime<chrono::Utc>| (t - done).num_milliseconds() as f64 / 1000.0;
        eprintln!("copy still there {:.2} s after completion, gone {:.2} s after (ttl 20 s)", seconds(last_present), seconds(first_absent));
        ensure!(seconds(last_present) >= 19.0, "the copy was last seen {:.2} s after completion: removed before the TTL", seconds(last_present));
        ensure!(seconds(first_absent) <= 35.0, "the copy was removed only {:.2} s after completion (ttl 20 s)", seconds(first_absent));
        let pods = Api::<Pod>::namespaced(client.clone(), &ns);
        archivist_e2e::testing::wait_for(&pods, &pod, Duration::from_secs(60), "the copy's pod to be gone", |p| p.is_none()).await?;
        let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
        for claim in &archive.claims {
            let pvc = pvcs.get_opt(&format!("{claim}-sbs")).await?.with_context(|| format!("restored PVC {claim}-sbs was removed with the copy"))?;
            ensure!(pvc.metadata.deletion_timestamp.is_none(), "restored PVC {claim}-sbs is being removed with the copy");
            // Labelled with the request, and not owned by it: restored data outlives it.
            ensure!(pvc.metadata.labels.as_ref().and_then(|l| l.get(RESTORE_LABEL)).map(String::as_str) == Some("r1"), "{claim}-sbs labels {:?}", pvc.metadata.labels);
            ensure!(pvc.metadata.owner_references.is_none(), "{claim}-sbs is owned: {:?}", pvc.metadata.owner_references);
        }
        let reasons = archivist_e2e::testing::operator::event_reasons_through(&client, &ns, "RestoreRequest", "r1", "WorkloadRemoved").await?;
        ensure!(reasons.iter().any(|r| r == "WorkloadRemoved"), "events: {reasons:?}");
        // The original archive is still there and running.
        wait_running(&client, &ns, &format!("{ARCHIVE}-0")).await?;
        Ok(())
    })
    .await;
}

/// The TTL deletes the copy the request made (its uid is in `status.workloadCopy`), never an
/// object that took the copy's name: the copy is deleted and a user's StatefulSet of the same
/// name is created before the TTL passes; long after the TTL it is still there.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn ttl_never_deletes_an_object_that_took_the_copys_name() {
    with_namespace("rs-sbs-ttl", |client, ns| async move {
        let options = ArchiveOptions { sql: false, stores: 1, ..ArchiveOptions::default() };
        let mut archive = archive_with_backup(&client, &ns, options).await?;
        const TTL: i64 = 20;
        request(&client, &ns, "r1", &format!("  source: {{backupName: b1}}\n  target: {{mode: SideBySide, nameSuffix: -sbs}}\n  ttlSecondsAfterFinished: {TTL}\n")).await?;
        let r = wait_restore_completed(&client, &ns, "r1", &mut archive.operator).await?;
        let done = r.status.as_ref().and_then(|s| s.completion_time).context("no completionTime")?;
        let copy = format!("{ARCHIVE}-sbs");
        let sts = Api::<StatefulSet>::namespaced(client.clone(), &ns);
        let made = sts.get(&copy).await?;
        let recorded = r.status.as_ref().and_then(|s| s.workload_copy.clone()).context("no status.workloadCopy")?;
        ensure!(recorded.name == copy && Some(&recorded.uid) == made.metadata.uid.as_ref(), "status.workloadCopy {recorded:?} is not the copy {:?}", made.metadata.uid);
        ensure!(made.metadata.labels.as_ref().and_then(|l| l.get(RESTORE_LABEL)).map(String::as_str) == Some("r1"), "the copy is not labelled: {:?}", made.metadata.labels);
        let owners: Vec<String> = made.metadata.owner_references.iter().flatten().map(|o| o.uid.clone()).collect();
        ensure!(r.metadata.uid.as_ref().is_some_and(|u| owners.contains(u)), "the copy is not owned by r1: {owners:?}");

        // The user removes the copy and makes their own StatefulSet of that name.
        sts.delete(&copy, &kube::api::DeleteParams::background()).await?;
        archivist_e2e::testing::wait_for(&sts, &copy, Duration::from_secs(30), "the copy to be gone", |s| s.is_none()).await?;
        let theirs = user_statefulset(&client, &ns, &copy).await?;
        let replaced_after = (chrono::Utc::now() - done).num_milliseconds() as f64 / 1000.0;
        ensure!(replaced_after < TTL as f64 - 2.0, "the copy was replaced only {replaced_after:.1} s after completion; the test needs it before the TTL ({TTL} s)");
        eprintln!("copy replaced by a user's StatefulSet {replaced_after:.1} s after completion (ttl {TTL} s)");

        // Well past the TTL (the operator's reconcile at the TTL has happened), it is still there.
        let until_checked = done + chrono::Duration::seconds(TTL + 10);
        while chrono::Utc::now() < until_checked {
            let now = sts.get_opt(&copy).await?.context("the TTL deleted the user's StatefulSet")?;
            ensure!(now.metadata.uid == theirs.metadata.uid, "the user's StatefulSet was replaced");
            ensure!(now.metadata.deletion_timestamp.is_none(), "the TTL is deleting the user's StatefulSet");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let r = Api::<archivist::api::RestoreRequest>::namespaced(client.clone(), &ns).get("r1").await?;
        ensure!(r.status.as_ref().and_then(|s| s.workload_copy.clone()) == Some(recorded), "status.workloadCopy changed: {:?}", r.status.as_ref().map(|s| &s.workload_copy));
        let reasons = archivist_e2e::testing::operator::event_reasons(&client, &ns, "RestoreRequest", "r1").await?;
        ensure!(!reasons.iter().any(|r| r == "WorkloadRemoved"), "events: {reasons:?}");
        Ok(())
    })
    .await;
}
