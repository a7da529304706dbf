//! Restore drills (`verification.drillSchedule`, `drillProbe`, `archivist.dev/drill-now`): a
//! drill restores the newest settled backup side by side, probes the copy, records the evidence
//! on the backup and the policy, marks a passed backup verified, and tears down everything it
//! restored, never touching the original archive.

mod backup_support;
mod restore_support;

use std::time::Duration;

use anyhow::{ensure, Context as _};
use archivist::api::{BackupPolicy, DrillState, DrillStatus, VerificationReason, VerificationState};
use archivist_e2e::testing::operator::event_reasons_through;
use archivist_e2e::testing::with_namespace;
use backup_support::merge_patch;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use kube::api::ListParams;
use kube::{Api, Client};
use restore_support::*;

/// How long one drill may take here (restore, copy start, probe, teardown).
const DRILL_TIMEOUT: Duration = Duration::from_secs(180);

/// Sets the policy's drill probe command and requests a drill (`drill-now: <request>`).
async fn drill_with(client: &Client, ns: &str, request: &str, command: &str) -> anyhow::Result<()> {
    merge_patch::<BackupPolicy>(client, ns, POLICY, serde_json::json!({
        "metadata": {"annotations": {"archivist.dev/drill-now": request}},
        "spec": {
            "retention": {"keepLast": 3, "keepVerified": 1},
            "verification": {
                // Yearly: the drills here are the requested ones.
                "drillSchedule": "0 4 1 1 *",
                "drillProbe": {"exec": {"container": "server", "command": ["sh", "-c", command]}, "timeoutSeconds": 30},
                "timeoutSeconds": 150,
            },
        },
    }))
    .await?;
    Ok(())
}

/// Waits until the policy's drill for `request` (`lastDrillNowRequest`) is torn down; returns it.
async fn drill_torn_down(client: &Client, ns: &str, request: &str, archive: &mut Archive) -> anyhow::Result<DrillStatus> {
    let policies = Api::<BackupPolicy>::namespaced(client.clone(), ns);
    let operator = &mut archive.operator;
    poll(&format!("drill {request} to be torn down"), DRILL_TIMEOUT, || {
        let running = operator.check_running();
        let policies = policies.clone();
        async move {
            running?;
            let status = policies.get(POLICY).await?.status.unwrap_or_default();
            let handled = status.last_drill_now_request.as_deref() == Some(request);
            Ok(match status.last_drill {
                Some(drill) if handled && drill.torn_down => Ok(drill),
                other => Err(format!("lastDrillNowRequest {:?}, lastDrill {other:?}", status.last_drill_now_request)),
            })
        }
    })
    .await
}

/// Everything the drill's request restored is gone: the request, the copy and its pods, the
/// restored PVCs and Secrets.
async fn nothing_left_of(client: &Client, ns: &str, drill: &DrillStatus) -> anyhow::Result<()> {
    let request = drill.restore_request.clone();
    let labelled = ListParams::default().labels(&format!("{RESTORE_LABEL}={request}"));
    poll(&format!("everything drill {request} restored to be gone"), Duration::from_secs(90), || {
        let (client, labelled, request) = (client.clone(), labelled.clone(), request.clone());
        async move {
            let requests = Api::<archivist::api::RestoreRequest>::namespaced(client.clone(), ns);
            let left = [
                requests.get_opt(&request).await?.map(|_| format!("RestoreRequest {request}")).into_iter().collect::<Vec<_>>(),
                names(Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns).list(&labelled).await?.items, "PVC"),
                names(Api::<Secret>::namespaced(client.clone(), ns).list(&labelled).await?.items, "Secret"),
                names(Api::<Pod>::namespaced(client.clone(), ns).list(&labelled).await?.items, "Pod"),
                names(Api::<StatefulSet>::namespaced(client.clone(), ns).list(&ListParams::default()).await?.items.into_iter().filter(|s| s.metadata.name.as_deref() != Some(ARCHIVE)).collect(), "StatefulSet"),
            ]
            .concat();
            Ok(if left.is_empty() { Ok(()) } else { Err(format!("still there: {left:?}")) })
        }
    })
    .await
}

fn names<K: kube::ResourceExt>(objects: Vec<K>, kind: &str) -> Vec<String> {
    objects.iter().map(|o| format!("{kind} {}", o.name_any())).collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn drills_probe_a_side_by_side_copy_record_the_evidence_and_tear_everything_down() {
    with_namespace("drills", |client, ns| async move {
        let mut archive = archive_with_backup(&client, &ns, ArchiveOptions { sql: false, stores: 1, ..ArchiveOptions::default() }).await?;
        let backups = Api::<archivist::api::ArchiveBackup>::namespaced(client.clone(), &ns);
        let original_pod = Api::<Pod>::namespaced(client.clone(), &ns).get(&format!("{ARCHIVE}-0")).await?;
        archive.change_after_backup()?;

        // A failing probe: the drill fails, the backup is not verified, and the drill is
        // still torn down.
        drill_with(&client, &ns, "1", "echo looking for the moved mail; test -f /content-s1/folder/sub/missing.eml").await?;
        let failed = drill_torn_down(&client, &ns, "1", &mut archive).await?;
        ensure!(failed.state == DrillState::Failed, "{failed:?}");
        ensure!(failed.backup == BACKUP, "drilled {} instead of {BACKUP}", failed.backup);
        let message = failed.message.clone().unwrap_or_default();
        ensure!(message.contains("probe command failed") && message.contains("looking for the moved mail"), "message: {message}");
        nothing_left_of(&client, &ns, &failed).await?;
        let b1 = backups.get(BACKUP).await?.status.unwrap_or_default();
        ensure!(b1.drill.as_ref().map(|d| (d.state, d.restore_request.as_str())) == Some((DrillState::Failed, failed.restore_request.as_str())), "b1 drill {:?}", b1.drill);
        ensure!(b1.verification.as_ref().map(|v| v.state) != Some(VerificationState::Passed), "a failed drill verified b1: {:?}", b1.verification);
        let reasons = event_reasons_through(&client, &ns, "BackupPolicy", POLICY, "DrillFailed").await?;
        ensure!(reasons.iter().any(|r| r == "DrillStarted") && reasons.iter().any(|r| r == "DrillFailed"), "events {reasons:?}");

        // A passing probe reads the restored copy: the backed-up data, not what was written
        // after the backup. Its output is kept, the backup is verified by the drill.
        drill_with(&client, &ns, "2", "cat /master/README /content-s1/README; test -f /content-s1/folder/sub/msg-1.eml && test ! -e /content-s1/after-backup.eml").await?;
        let passed = drill_torn_down(&client, &ns, "2", &mut archive).await?;
        ensure!(passed.state == DrillState::Passed, "{passed:?}");
        ensure!(passed.output.as_deref() == Some("volume master\nvolume content-s1\n"), "output {:?}", passed.output);
        ensure!(passed.restore_request != failed.restore_request && passed.started_at > failed.started_at, "the second drill reused {}", failed.restore_request);
        nothing_left_of(&client, &ns, &passed).await?;
        let b1 = backups.get(BACKUP).await?.status.unwrap_or_default();
        let verification = b1.verification.context("b1 has no verification")?;
        ensure!(verification.state == VerificationState::Passed && verification.reason == Some(VerificationReason::Drill), "{verification:?}");
        ensure!(b1.drill.as_ref().map(|d| d.state) == Some(DrillState::Passed), "b1 drill {:?}", b1.drill);
        let policies = Api::<BackupPolicy>::namespaced(client.clone(), &ns);
        poll("the policy to count b1 as its last verified backup", Duration::from_secs(30), || {
            let policies = policies.clone();
            async move {
                let status = policies.get(POLICY).await?.status.unwrap_or_default();
                Ok(if status.last_verified_backup.as_deref() == Some(BACKUP) { Ok(status) } else { Err(format!("lastVerifiedBackup {:?}", status.last_verified_backup)) })
            }
        })
        .await
        .and_then(|status| {
            let history: Vec<(DrillState, &str)> = status.recent_drills.iter().map(|d| (d.state, d.restore_request.as_str())).collect();
            let want = vec![(DrillState::Passed, passed.restore_request.as_str()), (DrillState::Failed, failed.restore_request.as_str())];
            ensure!(history == want, "recentDrills {history:?}");
            Ok(())
        })?;
        let reasons = event_reasons_through(&client, &ns, "BackupPolicy", POLICY, "DrillPassed").await?;
        ensure!(reasons.iter().any(|r| r == "DrillPassed"), "events {reasons:?}");
        // `archivist drill report` prints both, newest first.
        let report = tokio::process::Command::new(archivist_e2e::testing::operator::archivist_bin())
            .args(["drill", "report", POLICY, "-n", &ns, "--kubeconfig"])
            .arg(archivist_e2e::testing::kubeconfig_path())
            .output()
            .await?;
        let text = String::from_utf8_lossy(&report.stdout).into_owned();
        ensure!(report.status.success(), "drill report exited {:?}: {}", report.status.code(), String::from_utf8_lossy(&report.stderr));
        let rows: Vec<&str> = text.lines().skip(1).take(2).collect();
        ensure!(
            rows.len() == 2 && rows[0].contains(&passed.restore_request) && rows[0].contains("Passed") && rows[1].contains(&failed.restore_request) && rows[1].contains("Failed"),
            "drill report:\n{text}"
        );

        // The original archive was never touched: the same pod, on its own (changed) data.
        let pod = Api::<Pod>::namespaced(client.clone(), &ns).get(&format!("{ARCHIVE}-0")).await?;
        ensure!(pod.metadata.uid == original_pod.metadata.uid, "the original pod was replaced");
        ensure!(pod_read(&client, &ns, &format!("{ARCHIVE}-0"), "server", "/content-s1/README").await?.contains("changed after the backup"), "the original's data changed");
        for claim in &archive.claims {
            ensure!(Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns).get_opt(claim).await?.is_some(), "original claim {claim} is gone");
        }
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_drill_due_beside_a_running_backup_is_skipped_with_an_event() {
    with_namespace("drill-skip", |client, ns| async move {
        let mut archive = archive_with_backup(&client, &ns, ArchiveOptions { sql: false, stores: 1, ..ArchiveOptions::default() }).await?;
        // A run that cannot finish: a Freeze policy whose freeze hook waits a minute.
        merge_patch::<BackupPolicy>(&client, &ns, POLICY, serde_json::json!({
            "spec": {"quiesce": {"mode": "Freeze", "freeze": {"exec": {"container": "server", "command": ["sleep", "60"]}}, "thaw": {"exec": {"container": "server", "command": ["true"]}}, "timeoutSeconds": 120}},
        }))
        .await?;
        backup_support::start_backup(&client, &ns, "b2", POLICY).await?;
        backup_support::until("b2 to start", Duration::from_secs(60), || {
            let backups = Api::<archivist::api::ArchiveBackup>::namespaced(client.clone(), &ns);
            async move { Ok(backups.get("b2").await?.status.and_then(|s| s.phase).is_some()) }
        })
        .await?;
        drill_with(&client, &ns, "1", "true").await?;
        let reasons = event_reasons_through(&client, &ns, "BackupPolicy", POLICY, "DrillSkipped").await?;
        ensure!(reasons.iter().any(|r| r == "DrillSkipped"), "events {reasons:?}");
        let status = Api::<BackupPolicy>::namespaced(client.clone(), &ns).get(POLICY).await?.status.unwrap_or_default();
        ensure!(status.last_drill.is_none(), "a drill ran beside the backup: {:?}", status.last_drill);
        ensure!(status.last_drill_now_request.as_deref() == Some("1"), "the skipped request is not used up: {:?}", status.last_drill_now_request);
        let requests = Api::<archivist::api::RestoreRequest>::namespaced(client.clone(), &ns).list(&ListParams::default()).await?;
        ensure!(requests.items.is_empty(), "a drill request was made: {:?}", requests.items.iter().map(|r| r.metadata.name.clone()).collect::<Vec<_>>());
        archive.operator.check_running()?;
        Ok(())
    })
    .await;
}

/// A drill requested while the newest backup has completed but not settled (its export is
/// under way: the repository server is paused) waits for it and then drills it. Seen failing
/// before the wait existed: the request was used up at once (`lastDrillNowRequest: "1"`, no
/// drill, "no settled Completed backup to drill"), as in CI when `drill-now` came right after
/// a backup completed.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_drill_requested_while_the_backup_still_exports_waits_for_it_and_drills_it() {
    let server = std::sync::Arc::new(archivist_e2e::testing::restic::ResticServer::start().expect("restic server"));
    let repository = server.clone();
    with_namespace("drill-settling", |client, ns| async move {
        let server = repository;
        backup_support::repository_secret(&client, &ns, "archive-repo", &server.url(&format!("repo-{ns}")), "drill-repo-pw-7Qz2").await?;
        server.pause()?;
        let options = ArchiveOptions { export: Some("archive-repo".into()), sql: false, stores: 1, ..ArchiveOptions::default() };
        let mut archive = archive_with_backup(&client, &ns, options).await?;
        let backups = Api::<archivist::api::ArchiveBackup>::namespaced(client.clone(), &ns);
        let run = backups.get(BACKUP).await?;
        ensure!(!archivist::plan::backup::is_settled(&run), "{BACKUP} settled before the drill request: {:?}", run.status.and_then(|s| s.export));
        drill_with(&client, &ns, "1", "true").await?;
        // Long enough for the operator to decide (it is woken by the annotation at once).
        tokio::time::sleep(Duration::from_secs(5)).await;
        let status = Api::<BackupPolicy>::namespaced(client.clone(), &ns).get(POLICY).await?.status.unwrap_or_default();
        ensure!(
            status.last_drill_now_request.is_none() && status.last_drill.is_none(),
            "the drill did not wait for {BACKUP} to settle: lastDrillNowRequest {:?}, lastDrill {:?}",
            status.last_drill_now_request,
            status.last_drill
        );
        server.resume()?;
        let drill = drill_torn_down(&client, &ns, "1", &mut archive).await?;
        ensure!(drill.state == DrillState::Passed && drill.backup == BACKUP, "{drill:?}");
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn deleting_the_policy_mid_drill_deletes_what_the_drill_restored() {
    with_namespace("drill-delete", |client, ns| async move {
        let mut archive = archive_with_backup(&client, &ns, ArchiveOptions { sql: false, stores: 1, ..ArchiveOptions::default() }).await?;
        // A slow probe keeps the drill going while the policy is deleted.
        drill_with(&client, &ns, "1", "sleep 15").await?;
        let policies = Api::<BackupPolicy>::namespaced(client.clone(), &ns);
        let drill = poll("the drill's copy to run", DRILL_TIMEOUT, || {
            let (client, policies, ns) = (client.clone(), policies.clone(), ns.clone());
            async move {
                let drill = policies.get(POLICY).await?.status.and_then(|s| s.last_drill);
                let Some(drill) = drill else { return Ok(Err("no drill yet".to_string())) };
                let labelled = ListParams::default().labels(&format!("{RESTORE_LABEL}={}", drill.restore_request));
                let pods = Api::<Pod>::namespaced(client, &ns).list(&labelled).await?.items;
                Ok(if pods.is_empty() { Err(format!("no pod of the copy yet; drill {drill:?}")) } else { Ok(drill) })
            }
        })
        .await?;
        ensure!(drill.state == DrillState::Running, "{drill:?}");
        policies.delete(POLICY, &Default::default()).await?;
        poll("the policy to be gone", DRILL_TIMEOUT, || {
            let policies = policies.clone();
            async move { Ok(if policies.get_opt(POLICY).await?.is_none() { Ok(()) } else { Err("still there".to_string()) }) }
        })
        .await?;
        nothing_left_of(&client, &ns, &drill).await?;
        // The backup itself stays (deletionPolicy Retain), and so does the original archive.
        ensure!(Api::<archivist::api::ArchiveBackup>::namespaced(client.clone(), &ns).get_opt(BACKUP).await?.is_some(), "{BACKUP} is gone");
        for claim in &archive.claims {
            ensure!(Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns).get_opt(claim).await?.is_some(), "original claim {claim} is gone");
        }
        archive.operator.check_running()?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_drill_of_an_sql_store_restores_into_a_database_of_its_own_and_drops_it() {
    with_namespace("drill-sql", |client, ns| async move {
        let mut archive = archive_with_backup(&client, &ns, ArchiveOptions { sql: true, stores: 2, ..ArchiveOptions::default() }).await?;
        let source_rows = archive.postgres.as_ref().map(|pg| pg.psql(SQL_DATABASE, "SELECT count(*) FROM messages")).transpose()?;
        drill_with(&client, &ns, "1", "test -f /content-s2/folder/sub/msg-1.eml").await?;
        // Watched while the drill runs: its database appears, then goes.
        let policies = Api::<BackupPolicy>::namespaced(client.clone(), &ns);
        let mut seen = std::collections::BTreeSet::new();
        let deadline = std::time::Instant::now() + DRILL_TIMEOUT;
        let drill = loop {
            archive.operator.check_running()?;
            if let Some(pg) = archive.postgres.as_ref() {
                seen.extend(databases(pg, &format!("{SQL_DATABASE}_d"))?);
            }
            let status = policies.get(POLICY).await?.status.unwrap_or_default();
            if let Some(drill) = status.last_drill.clone().filter(|d| d.torn_down) {
                break drill;
            }
            ensure!(std::time::Instant::now() < deadline, "the drill was not torn down in time: {:?}", status.last_drill);
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        ensure!(drill.state == DrillState::Passed, "{drill:?}");
        let own = format!("{SQL_DATABASE}_d{}", drill.started_at.format("%Y%m%d%H%M%S"));
        ensure!(seen.contains(&own), "the drill's database {own} was never seen; seen {seen:?}");
        let pg = archive.postgres.as_ref().context("postgres")?;
        let left = databases(pg, SQL_DATABASE)?;
        ensure!(left == vec![SQL_DATABASE.to_string()], "databases left after the drill: {left:?}");
        ensure!(Some(pg.psql(SQL_DATABASE, "SELECT count(*) FROM messages")?) == source_rows, "the source database changed");
        nothing_left_of(&client, &ns, &drill).await?;
        Ok(())
    })
    .await;
}

/// A drill whose copy becomes Ready only after a while is woken by the copy's pods, not by a
/// timer: the archive's pods pass their readiness probe 4 s after they start. Nothing else
/// wakes the policy then, so a drill that missed the pods' change would sleep until its only
/// timer, the deadline (150 s after its start; seen without the pod watch: it probed at 149 s).
/// Not a performance check: the woken drill finishes within seconds of the copy's readiness,
/// far below half the deadline, which only a sleeping drill reaches.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_drill_waiting_for_its_copy_is_woken_when_the_copy_becomes_ready() {
    with_namespace("drill-ready", |client, ns| async move {
        let mut archive = archive_with_backup(&client, &ns, ArchiveOptions { sql: false, stores: 1, ..ArchiveOptions::default() }).await?;
        let probe = serde_json::json!({"exec": {"command": ["true"]}, "initialDelaySeconds": 4, "periodSeconds": 1});
        let statefulset: StatefulSet = Api::<StatefulSet>::namespaced(client.clone(), &ns).get(ARCHIVE).await?;
        let mut containers = serde_json::to_value(statefulset.spec.context("spec")?.template.spec.context("pod spec")?.containers)?;
        for container in containers.as_array_mut().context("containers")? {
            container["readinessProbe"] = probe.clone();
        }
        merge_patch::<StatefulSet>(&client, &ns, ARCHIVE, serde_json::json!({"spec": {"template": {"spec": {"containers": containers}}}})).await?;
        drill_with(&client, &ns, "1", "true").await?;
        let drill = drill_torn_down(&client, &ns, "1", &mut archive).await?;
        eprintln!("drill {}: started {}, finished {:?}: {:?}", drill.restore_request, drill.started_at, drill.finished_at, drill.message);
        ensure!(drill.state == DrillState::Passed, "{drill:?}");
        let finished = drill.finished_at.context("no finishedAt")?;
        ensure!(finished - drill.started_at < chrono::Duration::seconds(75), "the drill probed {} s after its start: it slept until its deadline instead of being woken by its copy's pods", (finished - drill.started_at).num_seconds());
        nothing_left_of(&client, &ns, &drill).await?;
        archive.operator.check_running()?;
        Ok(())
    })
    .await;
}
