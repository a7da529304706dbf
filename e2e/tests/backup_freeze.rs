//! Freeze mode with exec hooks: the freeze hook writes a marker into the data volume and the
//! thaw hook deletes it, so the content snapshot holds the marker (it was cut while frozen) and
//! the live volume no longer does.

mod backup_support;

use anyhow::Context as _;
use archivist::api::Component;
use archivist_e2e::testing::with_namespace;
use backup_support::*;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn freeze_hook_marker_is_in_the_snapshot_and_gone_after_thaw() {
    with_namespace("bk-freeze", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        let live = data_pvc(&client, &ns, "content", &[("sim.archivist.dev/snapshot-cut-delay", "1s")]).await?;
        archive_statefulset(&client, &ns, "archive", 1, &["meta", "content"]).await?;
        std::fs::write(live.join("msg-1.eml"), "message 1\n")?;

        policy(&client, &ns, "archive", r#"
  target: {kind: StatefulSet, name: archive}
  quiesce:
    mode: Freeze
    freeze: {exec: {container: server, command: [sh, -c, "echo frozen > /content/FROZEN && sync"]}}
    thaw: {exec: {container: server, command: [sh, -c, "rm -f /content/FROZEN && echo thawed >> /content/thaw.log"]}}
    timeoutSeconds: 60
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#).await?;
        let started = std::time::Instant::now();
        start_backup(&client, &ns, "b1", "archive").await?;
        let backup = wait_completed(&client, &ns, "b1", &mut operator).await?;
        let waited = started.elapsed().as_secs_f64();
        eprintln!("freeze mode: {}", timeline(&backup));

        let restored = restore_to_dir(&client, &ns, &snapshot_of(&backup, Component::Content)?, "restored").await?;
        let in_snapshot = file_names(&restored)?;
        anyhow::ensure!(in_snapshot.contains_key("FROZEN"), "the snapshot lacks the freeze marker: {in_snapshot:?}");
        anyhow::ensure!(in_snapshot.contains_key("msg-1.eml"), "the snapshot lacks the message: {in_snapshot:?}");
        anyhow::ensure!(!in_snapshot.contains_key("thaw.log"), "the snapshot was cut after the thaw: {in_snapshot:?}");
        let in_live = file_names(&live)?;
        anyhow::ensure!(!in_live.contains_key("FROZEN"), "the live volume still has the marker: {in_live:?}");
        anyhow::ensure!(in_live.contains_key("thaw.log"), "the thaw hook did not run: {in_live:?}");
        // The window is what the archive was frozen: positive (the freeze hook ran, the cut took
        // 1 s), no longer than from quiescedAt to releasedAt, and within the test's own wait.
        let quiesce = backup.status.as_ref().and_then(|s| s.quiesce.clone()).unwrap_or_default();
        let window = quiesce.window_seconds.context("no quiesce.windowSeconds")?;
        let (quiesced_at, released_at) = quiesce.quiesced_at.zip(quiesce.released_at).context("no quiescedAt or releasedAt")?;
        let frozen = (released_at - quiesced_at).num_milliseconds() as f64 / 1000.0;
        anyhow::ensure!(window > 0.0, "windowSeconds {window} is not positive");
        anyhow::ensure!(frozen >= 1.0, "frozen {frozen} s, less than the 1 s snapshot cut delay made while frozen");
        anyhow::ensure!(window <= frozen + 0.001, "windowSeconds {window} is longer than releasedAt - quiescedAt = {frozen} s");
        anyhow::ensure!(window < waited, "windowSeconds {window} is longer than the test waited for the whole run ({waited} s)");
        Ok(())
    })
    .await;
}
