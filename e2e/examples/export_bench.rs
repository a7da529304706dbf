//! Issue 9's export bench: the export of one store of `--megabytes` MiB (incompressible data)
//! against a bare `restic backup` of the same directory on the same machine, side by side in
//! one run, and a second export of the unchanged store (restic's deduplication).
//!
//! It starts a restic REST server (`rclone serve restic`), makes a namespace with a content
//! PVC of random files and a metadata PVC, a policy exporting to the server, then:
//! 1. a bare `restic backup` of the content PVC's directory on the host into repository
//!    `bare` (timed; both repositories are initialised before anything is timed);
//! 2. a backup run with its export into repository `export`: the export's time
//!    (`status.export.startedAt` to `finishedAt`: scratch PVCs restored from the snapshots, the
//!    Job started, `restic backup` of each item and the manifest);
//! 3. a second run of the unchanged store, and what its export added to the repository.
//!
//! Run it after `e2e/local-cluster up`:
//!
//! ```text
//! cargo build -p archivist && cargo run -p archivist-e2e --example export_bench -- --megabytes 1024 [--shallow]
//! ```
//!
//! `--shallow` exports through shallow read-only scratch volumes (`export.storageClassName:
//! archivist-local-shallow`, `accessModes: [ReadOnlyMany]`) instead of full copies.
//!
//! Figures are printed, not asserted (they go into `e2e/BENCHMARKS.md`).

#[path = "../tests/backup_support/mod.rs"]
mod backup_support;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use archivist::api::{ArchiveBackup, ExportState};
use archivist_e2e::testing::restic::ResticServer;
use archivist_e2e::testing::{client, unique_name, wait_for};
use backup_support::{archive_statefulset, data_pvc, policy, start_backup, start_operator, wait_completed};
use clap::Parser;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{DeleteParams, PostParams};
use kube::Api;

#[derive(Parser)]
struct Args {
    /// Size of the content store, in MiB (random data, in files of 64 MiB).
    #[arg(long, default_value_t = 1024)]
    megabytes: u64,
    /// Restore the export's scratch PVCs as shallow read-only volumes (StorageClass
    /// `archivist-local-shallow`, `ReadOnlyMany`: the snapshot's data, no copy) instead of full
    /// copies of the default class.
    #[arg(long)]
    shallow: bool,
}

const PASSWORD: &str = "bench-password";

fn write_random(dir: &Path, megabytes: u64) -> anyhow::Result<()> {
    let urandom = std::fs::File::open("/dev/urandom")?;
    let mut left = megabytes;
    let mut n = 0;
    while left > 0 {
        let size = left.min(64);
        let mut file = std::fs::File::create(dir.join(format!("part-{n:03}.bin")))?;
        std::io::copy(&mut (&urandom).take(size << 20), &mut file)?;
        file.flush()?;
        left -= size;
        n += 1;
    }
    Ok(())
}

async fn exported(client: &kube::Client, ns: &str, name: &str) -> anyhow::Result<ArchiveBackup> {
    let api = Api::<ArchiveBackup>::namespaced(client.clone(), ns);
    let ended = |b: Option<&ArchiveBackup>| {
        b.and_then(|b| b.status.as_ref()).and_then(|s| s.export.as_ref()).is_some_and(|e| matches!(e.state, ExportState::Exported | ExportState::Failed))
    };
    let run = wait_for(&api, name, Duration::from_secs(1800), &format!("the export of {name}"), ended).await?.context("the run vanished")?;
    let export = run.status.as_ref().and_then(|s| s.export.clone()).context("no export")?;
    anyhow::ensure!(export.state == ExportState::Exported, "the export of {name} failed: {:?}", export.message);
    Ok(run)
}

fn export_seconds(run: &ArchiveBackup) -> f64 {
    let export = run.status.as_ref().and_then(|s| s.export.as_ref());
    match export.and_then(|e| Some((e.started_at?, e.finished_at?))) {
        Some((start, end)) => (end - start).num_milliseconds() as f64 / 1000.0,
        None => f64::NAN,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = client().await?;
    let server = ResticServer::start()?;
    let ns = unique_name("export-bench");
    let namespaces = Api::<Namespace>::all(client.clone());
    let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))?;
    namespaces.create(&PostParams::default(), &namespace).await?;
    let outcome = bench(&client, &server, &ns, args.megabytes, args.shallow).await;
    let _ = namespaces.delete(&ns, &DeleteParams::background()).await;
    outcome
}

async fn bench(client: &kube::Client, server: &ResticServer, ns: &str, megabytes: u64, shallow: bool) -> anyhow::Result<()> {
    let mut operator = start_operator(client, ns).await?;
    let meta = data_pvc(client, ns, "meta", &[]).await?;
    let content = data_pvc(client, ns, "content", &[]).await?;
    std::fs::write(meta.join("index.db"), "rows\n")?;
    write_random(&content, megabytes)?;
    archive_statefulset(client, ns, "archive", 1, &[]).await?;

    // 1. The bare restic backup of the same directory, into a repository of its own.
    server.restic("bare", PASSWORD, &["init"])?;
    let started = Instant::now();
    server.restic("bare", PASSWORD, &["backup", "--quiet", &content.display().to_string()])?;
    let bare = started.elapsed().as_secs_f64();

    // 2. The export of a backup run.
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "repo"},
        "stringData": {"RESTIC_REPOSITORY": server.url("export"), "RESTIC_PASSWORD": PASSWORD},
    }))?;
    Api::<Secret>::namespaced(client.clone(), ns).create(&PostParams::default(), &secret).await?;
    // Initialised beforehand, as the bare one: `restic init` (about 2.5 s here) is a
    // repository's one-time cost, not an export's.
    server.restic("export", PASSWORD, &["init"])?;
    let scratch = if shallow { ", storageClassName: archivist-local-shallow, accessModes: [ReadOnlyMany]" } else { "" };
    let spec = format!("  target: {{kind: StatefulSet, name: archive}}\n  quiesce: {{mode: None}}\n  export: {{repositorySecret: repo{scratch}}}\n  stores:\n  - name: s1\n    metadata: {{volumeClaims: [meta]}}\n    content: {{volumeClaims: [content]}}\n");
    policy(client, ns, "mail", &spec).await?;
    start_backup(client, ns, "b1", "mail").await?;
    wait_completed(client, ns, "b1", &mut operator).await?;
    let first = exported(client, ns, "b1").await?;
    let first_seconds = export_seconds(&first);

    // 3. A second run of the unchanged store.
    start_backup(client, ns, "b2", "mail").await?;
    wait_completed(client, ns, "b2", &mut operator).await?;
    let second = exported(client, ns, "b2").await?;
    let added = second.status.as_ref().and_then(|s| s.export.as_ref()).and_then(|e| e.bytes_added).unwrap_or(0);
    let store_bytes = megabytes << 20;

    let mib = megabytes as f64;
    let scratch = if shallow { "shallow read-only volumes of the snapshots" } else { "full copies of the snapshots" };
    println!("export_bench: store={megabytes} MiB (random, 64 MiB files); scratch PVCs: {scratch}");
    println!("export_bench: bare restic backup: {bare:.1} s ({:.1} MiB/s)", mib / bare);
    println!(
        "export_bench: first export (scratch PVCs from snapshots, Job, restic): {first_seconds:.1} s ({:.1} MiB/s) = {:.0}% of bare restic's throughput",
        mib / first_seconds,
        100.0 * bare / first_seconds
    );
    println!(
        "export_bench: second export of the unchanged store: {:.1} s, {added} bytes added = {:.3}% of the store",
        export_seconds(&second),
        100.0 * added as f64 / store_bytes as f64
    );
    Ok(())
}
