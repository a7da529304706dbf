//! A restore deletes only what it made and never takes over a name: when the SideBySide copy's
//! name, or a restored PVC's name, is already taken by an object the request did not make, the
//! request fails before it creates anything, its message names the object, and the object is
//! left exactly as it was.

mod backup_support;
mod restore_support;

use std::time::Duration;

use anyhow::{ensure, Context as _};
use archivist::api::RestoreRequest;
use archivist_e2e::testing::volumes::{create_bound, pvc};
use archivist_e2e::testing::with_namespace;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::{Api, Client};
use restore_support::*;

/// The request failed as a refusal (Ready reason `Refused`), its message naming `object`,
/// without resolving a backup or creating anything (no PVC, Job, Secret or mapping of its own).
async fn refused_naming(client: &Client, ns: &str, name: &str, archive: &mut Archive, object: &str) -> anyhow::Result<()> {
    let message = wait_restore_failed(client, ns, name, &mut archive.operator).await?;
    eprintln!("{name} failed: {message}");
    ensure!(message.contains(&format!("{object} already exists")), "{name}: the message does not name {object}: {message:?}");
    ensure!(message.contains("nothing was created"), "{name}: {message:?}");
    let r = Api::<RestoreRequest>::namespaced(client.clone(), ns).get(name).await?;
    let reason = r.status.iter().flat_map(|s| &s.conditions).find(|c| c.type_ == "Ready").map(|c| c.reason.clone());
    ensure!(reason.as_deref() == Some("Refused"), "{name}: Ready reason {reason:?}");
    ensure!(r.status.as_ref().and_then(|s| s.workload_copy.clone()).is_none(), "{name} recorded a workload copy");
    assert_nothing_created(client, ns, name).await
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_taken_copy_or_pvc_name_fails_the_request_before_anything_is_created() {
    with_namespace("rs-taken", |client, ns| async move {
        let options = ArchiveOptions { sql: false, stores: 1, ..ArchiveOptions::default() };
        let mut archive = archive_with_backup(&client, &ns, options).await?;
        let statefulsets = Api::<StatefulSet>::namespaced(client.clone(), &ns);
        let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);

        // (a) A StatefulSet of the user already has the copy's name (`archive-sbs`).
        let copy = format!("{ARCHIVE}-sbs");
        let theirs = user_statefulset(&client, &ns, &copy).await?;
        request(&client, &ns, "r-copy", "  source: {backupName: b1}\n  target: {mode: SideBySide, nameSuffix: -sbs}\n  ttlSecondsAfterFinished: 1\n").await?;
        refused_naming(&client, &ns, "r-copy", &mut archive, &format!("StatefulSet {ns}/{copy}")).await?;
        for claim in &archive.claims {
            ensure!(pvcs.get_opt(&format!("{claim}-sbs")).await?.is_none(), "r-copy created PVC {claim}-sbs");
        }

        // (b) A PVC of the user already has a restored claim's name (`meta-s1-x`).
        let (their_pvc, _) = create_bound(&client, &ns, &pvc("meta-s1-x", "1Gi")).await?;
        request(&client, &ns, "r-pvc", "  source: {backupName: b1}\n  target: {mode: Volumes, nameSuffix: -x}\n").await?;
        refused_naming(&client, &ns, "r-pvc", &mut archive, &format!("PersistentVolumeClaim {ns}/meta-s1-x")).await?;
        for claim in archive.claims.iter().filter(|c| *c != "meta-s1") {
            ensure!(pvcs.get_opt(&format!("{claim}-x")).await?.is_none(), "r-pvc created PVC {claim}-x");
        }

        // Longer than r-copy's TTL: the pre-existing objects are still there, the same objects
        // (uid), with nothing of Archivist added (label, owner), not being deleted.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = statefulsets.get_opt(&copy).await?.context("the user's StatefulSet was deleted")?;
        ensure!(now.metadata.uid == theirs.metadata.uid, "the user's StatefulSet was replaced");
        ensure!(now.metadata.deletion_timestamp.is_none(), "the user's StatefulSet is being deleted");
        ensure!(now.metadata.labels == theirs.metadata.labels, "labels changed: {:?}", now.metadata.labels);
        ensure!(now.metadata.owner_references.is_none(), "owners added: {:?}", now.metadata.owner_references);
        ensure!(now.spec == theirs.spec, "the user's StatefulSet's spec changed");
        let now = pvcs.get_opt("meta-s1-x").await?.context("the user's PVC was deleted")?;
        ensure!(now.metadata.uid == their_pvc.metadata.uid && now.metadata.deletion_timestamp.is_none(), "the user's PVC was replaced or is being deleted");
        ensure!(now.metadata.labels == their_pvc.metadata.labels, "labels changed: {:?}", now.metadata.labels);
        ensure!(now.spec.and_then(|s| s.data_source).is_none(), "the user's PVC got a data source");
        Ok(())
    })
    .await;
}
