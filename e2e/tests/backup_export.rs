//! Export of restore points to a restic repository (`BackupPolicy.spec.export`), against a
//! real restic REST server on loopback (`rclone serve restic`) and Debian's `restic`, which the
//! simulated kubelet runs for the export Job:
//! - a Completed run is exported: `status.export` lists one repository snapshot per item, and
//!   `restic snapshots --json` shows them with their tags and host; the repository holds no
//!   plaintext of the archive; the Job and the scratch claims go;
//! - a wrong password, or a repository nobody listens at, fails the export (naming the
//!   repository without its credentials), not the restore point, which still restores; no
//!   credential appears in its status, Events or the operator's log;
//! - retention forgets a pruned restore point's repository snapshots; the maintenance Job's
//!   `restic prune` frees their data.

mod backup_support;

use std::time::Duration;

use archivist::api::{ArchiveBackup, BackupPhase, Component, ConditionStatus, ExportState, RestorePhase, RestoreRequest};
use archivist_e2e::testing::operator::Operator;
use archivist_e2e::testing::restic::ResticServer;
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::api::ListParams;
use kube::{Api, Client};

const PASSWORD: &str = "export-pw-7Hq2";
/// A line that is in the archive's content, and must not be in the repository's files.
const CANARY: &str = "Subject: canary 4a1d9c7e0f plaintext that must never leave unencrypted";
/// The archive's master key: exported (encrypted) with the restore point, never in plaintext.
const KEY: &str = "master-key-value-Qm93Rk2";

fn exporting(secret: &str, master: bool) -> String {
    let master = if master { "\n  master: {volumeClaims: [master], secrets: [master-key]}" } else { "" };
    format!(
        r#"
  target: {{kind: StatefulSet, name: archive}}
  quiesce: {{mode: None}}
  export: {{repositorySecret: {secret}}}{master}
  stores:
  - name: s1
    metadata: {{volumeClaims: [meta]}}
    content: {{volumeClaims: [content]}}
"#
    )
}

/// The archive every export test but the first backs up: the operator, a metadata and a
/// content PVC with one file each, and the StatefulSet `archive`; returns the operator and the
/// two host directories.
async fn exporting_archive(client: &Client, ns: &str) -> anyhow::Result<(Operator, std::path::PathBuf, std::path::PathBuf)> {
    let operator = start_operator(client, ns).await?;
    let meta = data_pvc(client, ns, "meta", &[]).await?;
    let content = data_pvc(client, ns, "content", &[]).await?;
    std::fs::write(meta.join("index.db"), "row 1\n")?;
    std::fs::write(content.join("msg-1.eml"), "Subject: one\n")?;
    archive_statefulset(client, ns, "archive", 1, &[]).await?;
    Ok((operator, meta, content))
}

async fn export_leftovers(client: &Client, ns: &str) -> anyhow::Result<usize> {
    let jobs = Api::<Job>::namespaced(client.clone(), ns).list(&ListParams::default()).await?.items;
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns).list(&ListParams::default()).await?.items;
    let is_export = |name: Option<&String>| name.is_some_and(|n| n.contains("-export"));
    Ok(jobs.iter().filter(|j| is_export(j.metadata.name.as_ref())).count() + claims.iter().filter(|c| is_export(c.metadata.name.as_ref())).count())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_completed_run_is_exported_encrypted_with_its_tags() {
    let server = std::sync::Arc::new(ResticServer::start().expect("restic server"));
    with_namespace("bk-export", move |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        let master = data_pvc(&client, &ns, "master", &[]).await?;
        let meta = data_pvc(&client, &ns, "meta", &[]).await?;
        let content = data_pvc(&client, &ns, "content", &[]).await?;
        std::fs::write(master.join("master.db"), "store s1\n")?;
        let key: Secret = serde_json::from_value(serde_json::json!({"metadata": {"name": "master-key"}, "stringData": {"key": KEY}}))?;
        Api::<Secret>::namespaced(client.clone(), &ns).create(&Default::default(), &key).await?;
        std::fs::write(meta.join("index.db"), "row 1: msg-1.eml\n")?;
        std::fs::write(content.join("msg-1.eml"), format!("{CANARY}\n"))?;
        archive_statefulset(&client, &ns, "archive", 1, &[]).await?;
        let repo = format!("repo-{ns}");
        repository_secret(&client, &ns, "archive-repo", &server.url(&repo), PASSWORD).await?;
        // Through shallow read-only scratch volumes (the snapshots' own data, no copy): the
        // other export tests use full copies of the default class.
        let shallow = "export: {repositorySecret: archive-repo, storageClassName: archivist-local-shallow, accessModes: [ReadOnlyMany]}";
        policy(&client, &ns, "mail", &exporting("archive-repo", true).replace("export: {repositorySecret: archive-repo}", shallow)).await?;
        start_backup(&client, &ns, "b1", "mail").await?;
        let completed = wait_completed(&client, &ns, "b1", &mut operator).await?;
        anyhow::ensure!(phase(&completed) == BackupPhase::Completed);

        let run = wait_export_ended(&client, &ns, "b1", &operator).await?;
        let status = run.status.clone().unwrap_or_default();
        let export = status.export.clone().ok_or_else(|| anyhow::anyhow!("no status.export"))?;
        anyhow::ensure!(export.state == ExportState::Exported, "export ended {:?}: {:?}\n{}", export.state, export.message, operator.log_tail(40));
        anyhow::ensure!(export.repository.as_deref() == Some(server.url(&repo).as_str()), "repository {:?}", export.repository);
        anyhow::ensure!(export.started_at.is_some() && export.finished_at.is_some() && export.bytes_added.is_some_and(|b| b > 0), "{export:?}");
        let exported: Vec<(Component, &str, &str)> = export.snapshots.iter().map(|s| (s.component, s.store.as_str(), s.claim.as_str())).collect();
        let copy = status.secret_copy.clone().unwrap_or_default();
        anyhow::ensure!(
            exported == [(Component::Master, "", "master"), (Component::Metadata, "s1", "meta"), (Component::Content, "s1", "content"), (Component::Secrets, "", copy.as_str())],
            "{exported:?}"
        );
        let exported_condition = status.conditions.iter().find(|c| c.type_ == "Exported");
        anyhow::ensure!(exported_condition.is_some_and(|c| c.status == ConditionStatus::True), "Exported condition {exported_condition:?}");
        until("the ExportStarted and Exported Events", Duration::from_secs(10), || async {
            let reasons = run_event_reasons(&client, &ns, "b1").await?;
            Ok(reasons.iter().any(|r| r == "ExportStarted") && reasons.iter().any(|r| r == "Exported"))
        })
        .await?;

        // The repository as a user reads it: one snapshot per item, tagged, host <ns>/<policy>.
        let snapshots = server.snapshots(&repo, PASSWORD)?;
        anyhow::ensure!(snapshots.len() == 5, "4 items and the manifest: {snapshots:?}");
        for recorded in &export.snapshots {
            let found = snapshots
                .iter()
                .find(|s| s["id"].as_str().is_some_and(|id| id.starts_with(&recorded.id)))
                .ok_or_else(|| anyhow::anyhow!("snapshot {} is not in the repository: {snapshots:?}", recorded.id))?;
            anyhow::ensure!(found["hostname"] == format!("{ns}/mail"), "host {}", found["hostname"]);
            let tags: Vec<&str> = found["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str()).collect();
            let component = archivist::plan::names::component_word(recorded.component);
            for want in [
                "archivist.dev/policy=mail".to_string(),
                "archivist.dev/backup=b1".to_string(),
                format!("archivist.dev/component={component}"),
                format!("archivist.dev/store={}", recorded.store),
                format!("archivist.dev/claim={}", recorded.claim),
            ] {
                anyhow::ensure!(tags.contains(&want.as_str()), "{} lacks tag {want}: {tags:?}", recorded.id);
            }
        }
        // The content is in the repository (restic restores it), but never as plaintext.
        let content_id = export.snapshots.iter().find(|s| s.component == Component::Content).map(|s| s.id.clone()).unwrap_or_default();
        let listing = server.restic(&repo, PASSWORD, &["ls", &content_id])?;
        let path = listing.lines().find(|l| l.ends_with("/msg-1.eml")).ok_or_else(|| anyhow::anyhow!("msg-1.eml is not in snapshot {content_id}: {listing}"))?;
        let restored = server.restic(&repo, PASSWORD, &["dump", &content_id, path])?;
        anyhow::ensure!(restored.contains(CANARY), "restic dump of the content gave {restored:?}");
        anyhow::ensure!(!server.any_file_contains(&repo, CANARY.as_bytes())?, "the canary is in the repository's files as plaintext");
        // The master key too: restorable from its snapshot, and encrypted in the files.
        let secrets_id = export.snapshots.iter().find(|s| s.component == Component::Secrets).map(|s| s.id.clone()).unwrap_or_default();
        let listing = server.restic(&repo, PASSWORD, &["ls", &secrets_id])?;
        let key_file = listing.lines().find(|l| l.ends_with("/master-key.key")).ok_or_else(|| anyhow::anyhow!("no master-key.key in {listing}"))?;
        anyhow::ensure!(server.restic(&repo, PASSWORD, &["dump", &secrets_id, key_file])? == KEY, "the exported key differs");
        anyhow::ensure!(!server.any_file_contains(&repo, KEY.as_bytes())?, "the master key is in the repository's files as plaintext");
        // The manifest: the ArchiveBackup as a new cluster needs it.
        let manifest_id = export.manifest.clone().ok_or_else(|| anyhow::anyhow!("no manifest snapshot recorded"))?;
        let manifest: serde_json::Value = serde_json::from_str(&server.restic(&repo, PASSWORD, &["dump", &manifest_id, "/manifest.json"])?)?;
        anyhow::ensure!(manifest["metadata"]["name"] == "b1" && manifest["spec"]["policyName"] == "mail", "{manifest}");
        anyhow::ensure!(manifest["status"]["items"].as_array().is_some_and(|i| i.len() == 4), "the manifest lists the items: {manifest}");
        let tagged = snapshots.iter().find(|s| s["id"].as_str().is_some_and(|id| id.starts_with(&manifest_id)));
        let tags: Vec<&str> = tagged.and_then(|s| s["tags"].as_array()).into_iter().flatten().filter_map(|t| t.as_str()).collect();
        anyhow::ensure!(tags.contains(&"archivist.dev/component=manifest") && tags.contains(&"archivist.dev/backup=b1"), "manifest tags {tags:?}");
        until("the export Job and scratch claims to be deleted", Duration::from_secs(30), || async { Ok(export_leftovers(&client, &ns).await? == 0) }).await
    })
    .await;
}

/// A port on loopback that nothing listens on.
fn closed_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_failed_export_names_the_repository_keeps_the_restore_point_and_stays_secret() {
    let server = std::sync::Arc::new(ResticServer::start().expect("restic server"));
    // (case, the Secret's repository, its password, the repository as shown, the cause)
    let port = closed_port().expect("a free port");
    let cases = [
        ("wrong password", server.url("repo-bad-pw"), "wrong-pw-Zt81x", server.url("repo-bad-pw"), "wrong password"),
        (
            "unreachable, credentials in the URL",
            format!("rest:http://archivist:url-pw-Qv37@127.0.0.1:{port}/repo"),
            "unreach-pw-Lk52",
            format!("rest:http://127.0.0.1:{port}/repo"),
            "connection refused",
        ),
    ];
    // The first repository exists, with another password.
    server.restic("repo-bad-pw", PASSWORD, &["init"]).expect("restic init");
    for (case, repository, password, shown, cause) in cases {
        with_namespace("bk-export-bad", move |client, ns| async move {
            let (mut operator, _, _) = exporting_archive(&client, &ns).await?;
            repository_secret(&client, &ns, "archive-repo", &repository, password).await?;
            policy(&client, &ns, "mail", &exporting("archive-repo", false)).await?;
            start_backup(&client, &ns, "b1", "mail").await?;
            wait_completed(&client, &ns, "b1", &mut operator).await?;
            let run = wait_export_ended(&client, &ns, "b1", &operator).await?;
            anyhow::ensure!(phase(&run) == BackupPhase::Completed, "{case}: the restore point stays Completed");
            let status = run.status.clone().unwrap_or_default();
            let export = status.export.clone().ok_or_else(|| anyhow::anyhow!("{case}: no status.export"))?;
            anyhow::ensure!(export.state == ExportState::Failed, "{case}: {export:?}");
            let message = export.message.clone().unwrap_or_default();
            anyhow::ensure!(message.starts_with(&format!("export to {shown} failed:")), "{case}: the message names the repository: {message}");
            anyhow::ensure!(message.contains(cause), "{case}: the message says why: {message}");
            let condition = status.conditions.iter().find(|c| c.type_ == "Exported");
            anyhow::ensure!(condition.is_some_and(|c| c.status == ConditionStatus::False && c.reason == "ExportFailed"), "{case}: {condition:?}");
            until("the ExportFailed Event", Duration::from_secs(10), || async {
                Ok(run_event_reasons(&client, &ns, "b1").await?.iter().any(|r| r == "ExportFailed"))
            })
            .await?;
            // No credential anywhere: status, Events, the operator's log.
            let events = archivist_e2e::testing::operator::events_of(&client, &ns, "ArchiveBackup", "b1").await?;
            let texts = [serde_json::to_string(&status)?, serde_json::to_string(&events)?, operator.log_tail(2000)];
            for text in texts {
                anyhow::ensure!(!text.contains(password) && !text.contains(PASSWORD) && !text.contains("url-pw-Qv37"), "{case}: a password leaked: {text}");
            }
            until("the export Job and scratch claims to be deleted", Duration::from_secs(30), || async { Ok(export_leftovers(&client, &ns).await? == 0) }).await?;
            // And it restores, from its snapshots.
            create::<RestoreRequest>(&client, &ns, "apiVersion: archivist.dev/v1alpha1\nkind: RestoreRequest\nmetadata: {name: r1}\nspec:\n  source: {backupName: b1}\n  target: {mode: Volumes, nameSuffix: -r}\n").await?;
            let requests = Api::<RestoreRequest>::namespaced(client.clone(), &ns);
            until("the restore from the snapshots to complete", Duration::from_secs(60), || async {
                let phase = requests.get("r1").await?.status.and_then(|s| s.phase);
                anyhow::ensure!(phase != Some(RestorePhase::Failed), "{case}: the restore failed");
                Ok(phase == Some(RestorePhase::Completed))
            })
            .await?;
            operator.check_running()
        })
        .await;
    }
}

/// The restic snapshots of repository `repo` tagged `archivist.dev/backup=<backup>`.
fn snapshots_of_backup(server: &ResticServer, repo: &str, backup: &str) -> anyhow::Result<usize> {
    let tag = format!("archivist.dev/backup={backup}");
    Ok(server.snapshots(repo, PASSWORD)?.iter().filter(|s| s["tags"].as_array().is_some_and(|t| t.iter().any(|t| t == tag.as_str()))).count())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn retention_forgets_the_repository_snapshots_and_a_deletion_by_hand_does_not() {
    let server = std::sync::Arc::new(ResticServer::start().expect("restic server"));
    with_namespace("bk-export-forget", move |client, ns| async move {
        let (mut operator, _, _) = exporting_archive(&client, &ns).await?;
        let repo = format!("repo-{ns}");
        repository_secret(&client, &ns, "archive-repo", &server.url(&repo), PASSWORD).await?;
        policy(&client, &ns, "mail", &format!("{}  retention: {{keepLast: 1}}\n", exporting("archive-repo", false))).await?;
        for name in ["b1", "b2"] {
            start_backup(&client, &ns, name, "mail").await?;
            wait_completed(&client, &ns, name, &mut operator).await?;
            let run = wait_export_ended(&client, &ns, name, &operator).await?;
            let state = run.status.and_then(|s| s.export).map(|e| e.state);
            anyhow::ensure!(state == Some(ExportState::Exported), "{name}: export {state:?}");
        }
        // keepLast 1: retention prunes b1 after b2 completed; b1 forgets its 3 repository
        // snapshots (2 items and the manifest), then goes.
        let backups = Api::<ArchiveBackup>::namespaced(client.clone(), &ns);
        until("b1 to be pruned", Duration::from_secs(90), || async { Ok(backups.get_opt("b1").await?.is_none()) }).await?;
        anyhow::ensure!(snapshots_of_backup(&server, &repo, "b1")? == 0, "b1's snapshots are still in the repository");
        anyhow::ensure!(snapshots_of_backup(&server, &repo, "b2")? == 3, "b2's snapshots must stay");
        // Deleted by hand (as with its namespace): the off-cluster copy stays.
        backups.delete("b2", &Default::default()).await?;
        until("b2 to be deleted", Duration::from_secs(60), || async { Ok(backups.get_opt("b2").await?.is_none()) }).await?;
        anyhow::ensure!(snapshots_of_backup(&server, &repo, "b2")? == 3, "a deletion by hand forgot b2's snapshots");
        operator.check_running()
    })
    .await;
}

/// Bytes under the repository's `data/` (its pack files).
fn pack_bytes(server: &ResticServer, repo: &str) -> anyhow::Result<u64> {
    let out = std::process::Command::new("du").arg("-sb").arg(server.dir.join(repo).join("data")).output()?;
    anyhow::ensure!(out.status.success(), "du: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?.split_whitespace().next().unwrap_or("0").parse()?)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn repository_maintenance_frees_what_retention_forgot() {
    let server = std::sync::Arc::new(ResticServer::start().expect("restic server"));
    with_namespace("bk-export-prune", move |client, ns| async move {
        let (mut operator, _, content) = exporting_archive(&client, &ns).await?;
        // 4 MiB only b1 holds: once b1 is forgotten, only a prune frees them.
        let status = std::process::Command::new("sh").arg("-c").arg(format!("head -c 4194304 /dev/urandom > '{}'", content.join("only-in-b1.dat").display())).status()?;
        anyhow::ensure!(status.success());
        let repo = format!("repo-{ns}");
        repository_secret(&client, &ns, "archive-repo", &server.url(&repo), PASSWORD).await?;
        // The maintenance at a set minute, two to three minutes ahead (UTC): well after b1 is
        // forgotten, so that its effect is seen.
        let at = chrono::Utc::now() + chrono::Duration::minutes(3);
        let schedule = at.format("%M %H * * *").to_string();
        let spec = exporting("archive-repo", false).replace("export: {repositorySecret: archive-repo}", &format!("export: {{repositorySecret: archive-repo, pruneSchedule: \"{schedule}\"}}"));
        policy(&client, &ns, "mail", &format!("{spec}  retention: {{keepLast: 1}}\n")).await?;
        start_backup(&client, &ns, "b1", "mail").await?;
        wait_completed(&client, &ns, "b1", &mut operator).await?;
        wait_export_ended(&client, &ns, "b1", &operator).await?;
        std::fs::remove_file(content.join("only-in-b1.dat"))?;
        start_backup(&client, &ns, "b2", "mail").await?;
        wait_completed(&client, &ns, "b2", &mut operator).await?;
        let b2 = wait_export_ended(&client, &ns, "b2", &operator).await?;
        anyhow::ensure!(b2.status.and_then(|s| s.export).map(|e| e.state) == Some(ExportState::Exported), "b2 not exported");
        let backups = Api::<ArchiveBackup>::namespaced(client.clone(), &ns);
        until("b1 to be pruned and forgotten", Duration::from_secs(90), || async { Ok(backups.get_opt("b1").await?.is_none()) }).await?;
        let forgotten = pack_bytes(&server, &repo)?;
        anyhow::ensure!(forgotten > 4 << 20, "b1's data is still in the packs after forget: {forgotten} bytes");
        let policies = Api::<archivist::api::BackupPolicy>::namespaced(client.clone(), &ns);
        let next = policies.get("mail").await?.status.and_then(|s| s.next_prune_time);
        anyhow::ensure!(next.is_some_and(|n| n > chrono::Utc::now()), "status.nextPruneTime {next:?}: the maintenance must not have run yet");

        // The maintenance: a Job runs restic prune at the scheduled minute.
        until("the repository maintenance to succeed", Duration::from_secs(300), || async {
            let prune = policies.get("mail").await?.status.and_then(|s| s.prune);
            if let Some(p) = &prune {
                anyhow::ensure!(p.state != archivist::api::PruneState::Failed, "the prune failed: {p:?}\n{}", operator.log_tail(40));
            }
            Ok(prune.is_some_and(|p| p.state == archivist::api::PruneState::Succeeded))
        })
        .await?;
        let pruned = pack_bytes(&server, &repo)?;
        anyhow::ensure!(pruned + (3 << 20) < forgotten, "restic prune freed too little: {forgotten} -> {pruned} bytes");
        let prune = policies.get("mail").await?.status.and_then(|s| s.prune).ok_or_else(|| anyhow::anyhow!("no status.prune"))?;
        anyhow::ensure!(prune.job.starts_with("archive-repo-prune-") && prune.finished_at.is_some(), "{prune:?}");
        // b2 is whole: it restores.
        anyhow::ensure!(snapshots_of_backup(&server, &repo, "b2")? == 3, "b2's snapshots must stay");
        server.restic(&repo, PASSWORD, &["check"])?;
        let reasons = archivist_e2e::testing::operator::event_reasons(&client, &ns, "BackupPolicy", "mail").await?;
        anyhow::ensure!(reasons.iter().any(|r| r == "RepositoryPruneStarted") && reasons.iter().any(|r| r == "RepositoryPruned"), "events: {reasons:?}");
        operator.check_running()
    })
    .await;
}
