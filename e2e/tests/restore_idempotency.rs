//! Idempotency: the same request applied twice (as a GitOps tool re-syncs), and the operator
//! killed right after the restore started and replaced by a new process, still end with
//! exactly one set of restored PVCs, Secrets, Jobs and databases.

mod backup_support;
mod restore_support;

use std::time::Duration;

use anyhow::ensure;
use archivist::api::RestorePhase;
use archivist_e2e::testing::operator::Operator;
use archivist_e2e::testing::with_namespace;
use kube::Api;
use restore_support::*;

const SPEC: &str = "  source: {backupName: b1}\n  target: {mode: Volumes}\n";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn applying_twice_and_killing_the_operator_mid_restore_makes_one_set() {
    with_namespace("rs-idem", |client, ns| async move {
        let mut archive = archive_with_backup(&client, &ns, ArchiveOptions::default()).await?;
        let api = Api::<archivist::api::RestoreRequest>::namespaced(client.clone(), &ns);

        apply_request(&client, &ns, "r1", SPEC).await?;
        // Kill the operator as soon as the restore has started (status Restoring).
        until("r1 to start restoring", Duration::from_secs(60), || {
            let api = api.clone();
            async move { Ok(api.get("r1").await.map(|r| restore_phase(&r) != RestorePhase::Pending)?) }
        })
        .await?;
        archive.operator.kill().await?;
        let at_kill = made_by(&client, &ns, "r1").await?;
        eprintln!("at the kill: PVCs {:?}, Jobs {:?}, Secrets {:?}", at_kill.0, at_kill.1, at_kill.2);
        // Re-applied while no operator runs, and again once a new one runs.
        apply_request(&client, &ns, "r1", SPEC).await?;
        let mut operator = Operator::start(&ns).await?;
        apply_request(&client, &ns, "r1", SPEC).await?;
        // Kill the second operator once it has created restored PVCs (mid-restore), if the
        // restore is not done by then, and start a third.
        until("r1 to create PVCs", Duration::from_secs(60), || {
            let (client, ns) = (client.clone(), ns.clone());
            async move { Ok(!made_by(&client, &ns, "r1").await?.0.is_empty()) }
        })
        .await?;
        operator.kill().await?;
        let phase_at_second_kill = restore_phase(&api.get("r1").await?);
        let at_kill = made_by(&client, &ns, "r1").await?;
        eprintln!("at the second kill ({phase_at_second_kill:?}): PVCs {:?}, Jobs {:?}, Secrets {:?}", at_kill.0, at_kill.1, at_kill.2);
        apply_request(&client, &ns, "r1", SPEC).await?;
        let mut operator = Operator::start(&ns).await?;
        let r = wait_restore_completed(&client, &ns, "r1", &mut operator).await?;
        apply_request(&client, &ns, "r1", SPEC).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;

        let r_now = api.get("r1").await?;
        ensure!(restore_phase(&r_now) == RestorePhase::Completed, "{:?}", r_now.status);
        ensure!(r_now.status.as_ref().map(|s| &s.mapping) == r.status.as_ref().map(|s| &s.mapping), "the mapping changed after a re-apply");
        let suffix = r.status.as_ref().and_then(|s| s.name_suffix.clone()).unwrap_or_default();
        let (mut pvcs, jobs, secrets) = made_by(&client, &ns, "r1").await?;
        pvcs.sort();
        let mut expected: Vec<String> = archive.claims.iter().map(|c| format!("{c}{suffix}")).collect();
        // The SQL dump's PVC, restored to feed the SQL restore Job.
        let dump_claim = r.status.iter().flat_map(|s| &s.mapping).count();
        expected.sort();
        let volume_pvcs: Vec<&String> = pvcs.iter().filter(|p| expected.contains(p)).collect();
        ensure!(volume_pvcs.len() == expected.len(), "restored PVCs {pvcs:?}, expected {expected:?}");
        ensure!(pvcs.len() == expected.len() + 1, "expected the volumes and one dump PVC, got {pvcs:?} (mapping has {dump_claim} items)");
        ensure!(jobs.len() == 1, "SQL restore Jobs: {jobs:?}");
        ensure!(secrets == [format!("master-key{suffix}")], "Secrets {secrets:?}");
        let pg = archive.postgres.as_ref().expect("sql");
        let dbs = databases(pg, SQL_DATABASE)?;
        ensure!(dbs == [SQL_DATABASE.to_string(), format!("{SQL_DATABASE}_restored")], "databases {dbs:?}");
        let rows = pg.psql(&format!("{SQL_DATABASE}_restored"), "SELECT id, subject FROM messages ORDER BY id")?;
        ensure!(rows == archive.sql_rows, "restored rows differ from the dump");
        let reasons = archivist_e2e::testing::operator::event_reasons_through(&client, &ns, "RestoreRequest", "r1", "RestoreCompleted").await?;
        eprintln!("events: {reasons:?}");
        ensure!(reasons.iter().filter(|r| *r == "RestoreCompleted").count() == 1, "events {reasons:?}");
        Ok(())
    })
    .await;
}
