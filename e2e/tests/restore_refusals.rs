//! Refusals: a backup that is not Completed, a backup or target in another namespace, an
//! existing target database, and a spec changed after the start: each refused with a clear
//! message, nothing created (or, for the database, nothing overwritten). And requests that
//! break a rule the CRD schema cannot state (an empty `nameSuffix` outside InPlace, a
//! `databaseSuffix` that makes the new database name too long for the backup's database) fail
//! with `InvalidSpec`, naming the field, before anything is created.

mod backup_support;
mod restore_support;

use std::time::Duration;

use anyhow::{ensure, Context as _};
use archivist::api::{ConditionStatus, RestorePhase, RestoreRequest};
use archivist_e2e::testing::{unique_name, with_namespace, TEST_NAMESPACE_LABEL};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::Api;
use restore_support::*;

async fn refused(client: &kube::Client, ns: &str, name: &str, archive: &mut Archive, expect: &[&str]) -> anyhow::Result<String> {
    failed_before_creating(client, ns, name, archive, expect, "Refused").await
}

/// The request failed with `Ready=False` reason `ready_reason`, a message saying each of
/// `expect`, one `RestoreFailed` Event, and created nothing.
async fn failed_before_creating(client: &kube::Client, ns: &str, name: &str, archive: &mut Archive, expect: &[&str], ready_reason: &str) -> anyhow::Result<String> {
    let message = wait_restore_failed(client, ns, name, &mut archive.operator).await?;
    for part in expect {
        ensure!(message.contains(part), "{name}: message {message:?} does not say {part:?}");
    }
    let r = Api::<RestoreRequest>::namespaced(client.clone(), ns).get(name).await?;
    let reason = r.status.iter().flat_map(|s| &s.conditions).find(|c| c.type_ == "Ready").map(|c| c.reason.clone());
    ensure!(reason.as_deref() == Some(ready_reason), "{name}: Ready reason {reason:?}, not {ready_reason}");
    ensure!(r.status.as_ref().and_then(|s| s.resolved_backup.clone()).is_none(), "{name}: a refused request resolved a backup");
    assert_nothing_created(client, ns, name).await?;
    let reasons = archivist_e2e::testing::operator::event_reasons_through(client, ns, "RestoreRequest", name, "RestoreFailed").await?;
    ensure!(reasons == ["RestoreFailed"], "{name}: events {reasons:?}");
    eprintln!("{name} refused: {message}");
    Ok(message)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn refusals_say_why_and_create_nothing() {
    with_namespace("rs-refuse", |client, ns| async move {
        let mut archive = archive_with_backup(&client, &ns, ArchiveOptions::default()).await?;

        // 1. A backup that is not Completed (its policy does not exist, so it never completes).
        crate::backup_support::start_backup(&client, &ns, "b-never", "no-such-policy").await?;
        request(&client, &ns, "r-not-completed", "  source: {backupName: b-never}\n").await?;
        refused(&client, &ns, "r-not-completed", &mut archive, &["b-never", "not Completed"]).await?;

        // 2a. A target in another namespace.
        request(&client, &ns, "r-target-ns", "  source: {backupName: b1}\n  target: {namespace: somewhere-else}\n").await?;
        refused(&client, &ns, "r-target-ns", &mut archive, &["somewhere-else", "own namespace"]).await?;

        // 2b. A backup that exists only in another namespace.
        let other = unique_name("rs-other");
        let namespaces = Api::<Namespace>::all(client.clone());
        let mut ns_obj: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": other, "labels": {TEST_NAMESPACE_LABEL: "true"}}}))?;
        ns_obj = namespaces.create(&PostParams::default(), &ns_obj).await?;
        let _ = ns_obj;
        let outcome = async {
            crate::backup_support::start_backup(&client, &other, "only-elsewhere", "archive").await?;
            request(&client, &ns, "r-other-ns", "  source: {backupName: only-elsewhere}\n").await?;
            refused(&client, &ns, "r-other-ns", &mut archive, &["only-elsewhere", "does not exist", &ns]).await
        }
        .await;
        namespaces.delete(&other, &DeleteParams::background()).await?;
        outcome?;

        // 3. The target database exists already: Failed, and it is not overwritten.
        let pg = archive.postgres.as_ref().context("sql")?;
        let target_db = format!("{SQL_DATABASE}_restored");
        pg.psql("postgres", &format!("CREATE DATABASE {target_db}"))?;
        pg.psql(&target_db, "CREATE TABLE keep_me (note text); INSERT INTO keep_me VALUES ('precious');")?;
        request(&client, &ns, "r-db-exists", "  source: {backupName: b1}\n  stores: [s2]\n  includeMaster: false\n").await?;
        let message = wait_restore_failed(&client, &ns, "r-db-exists", &mut archive.operator).await?;
        eprintln!("r-db-exists failed: {message}");
        ensure!(message.contains(&target_db) && message.contains("already exists"), "message {message:?} does not say that {target_db} already exists");
        let kept = pg.psql(&target_db, "SELECT note FROM keep_me")?;
        ensure!(kept.trim() == "precious", "the existing database was changed: {kept:?}");
        let tables = pg.psql(&target_db, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'messages'")?;
        ensure!(tables.trim() == "0", "the dump was loaded into the existing database");

        // 4. A spec changed after the start: refused (SpecAccepted=False); the restore goes on
        // with the accepted spec.
        request(&client, &ns, "r-changed", "  source: {backupName: b1}\n  stores: [s1]\n  includeMaster: false\n  target: {nameSuffix: -a}\n").await?;
        let api = Api::<RestoreRequest>::namespaced(client.clone(), &ns);
        until("r-changed to start", Duration::from_secs(60), || {
            let api = api.clone();
            async move { Ok(api.get("r-changed").await.map(|r| restore_phase(&r) != RestorePhase::Pending)?) }
        })
        .await?;
        let patched = api
            .patch("r-changed", &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"stores": ["s2"], "target": {"nameSuffix": "-b"}}})))
            .await?;
        let phase_at_patch = restore_phase(&patched);
        let r = wait_restore_completed(&client, &ns, "r-changed", &mut archive.operator).await?;
        let r = archivist_e2e::testing::wait_for(&api, "r-changed", Duration::from_secs(30), "SpecAccepted=False", |r| {
            r.is_some_and(|r| condition(r, "SpecAccepted").is_some_and(|c| c.0 == ConditionStatus::False))
        })
        .await?
        .unwrap_or(r);
        let (_, spec_message) = condition(&r, "SpecAccepted").context("no SpecAccepted")?;
        ensure!(spec_message.contains("immutable"), "SpecAccepted message: {spec_message}");
        eprintln!("r-changed patched while {phase_at_patch:?}; SpecAccepted=False: {spec_message}");
        let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
        for claim in ["meta-s1-a", "content-s1-a"] {
            ensure!(pvcs.get_opt(claim).await?.is_some(), "{claim} (accepted spec) missing");
        }
        let (made, _, _) = made_by(&client, &ns, "r-changed").await?;
        ensure!(made.iter().all(|p| p.ends_with("-a")), "the changed spec was followed: {made:?}");
        let status = r.status.clone().unwrap_or_default();
        ensure!(status.accepted_spec.as_ref().map(|s| s.stores.clone()) == Some(vec!["s1".to_string()]), "acceptedSpec {:?}", status.accepted_spec);
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn invalid_requests_fail_naming_the_field_and_create_nothing() {
    with_namespace("rs-invalid", |client, ns| async move {
        let mut archive = archive_with_backup(&client, &ns, ArchiveOptions::default()).await?;
        request(&client, &ns, "r-empty-suffix", "  source: {backupName: b1}\n  target: {mode: Volumes, nameSuffix: \"\"}\n").await?;
        failed_before_creating(&client, &ns, "r-empty-suffix", &mut archive, &["spec.target.nameSuffix", "is empty"], "InvalidSpec").await?;
        let suffix = "r".repeat(60);
        request(&client, &ns, "r-long-db", &format!("  source: {{backupName: b1}}\n  target: {{mode: Volumes, nameSuffix: -l}}\n  stores: [s2]\n  sqlTarget: {{databaseSuffix: {suffix}}}\n")).await?;
        failed_before_creating(&client, &ns, "r-long-db", &mut archive, &["spec.sqlTarget.databaseSuffix"], "InvalidSpec").await?;
        let pg = archive.postgres.as_ref().context("no PostgreSQL")?;
        ensure!(databases(pg, SQL_DATABASE)? == [SQL_DATABASE.to_string()], "a database was created: {:?}", databases(pg, SQL_DATABASE)?);
        Ok(())
    })
    .await;
}
