//! Times a snapshot cut and a restore of a 100 MB volume on the local cluster and prints the
//! figures (not an assertion). Run after `e2e/local-cluster up`:
//!
//! ```text
//! cargo run -p archivist-e2e --example snapshot_bench [-- <MiB>]
//! ```

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use archivist_e2e::snapshot_api::VolumeSnapshot;
use archivist_e2e::testing::volumes::{
    create_bound, from_snapshot, host_dir, pvc, snapshot, wait_snapshot_ready,
};
use archivist_e2e::testing::{client, unique_name, wait_for};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::Api;

const TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mib: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()
        .context("size in MiB")?
        .unwrap_or(100);
    let client = client().await?;
    let ns = unique_name("bench");
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(ns.clone()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await?;
    let result = bench(&client, &ns, mib).await;
    namespaces.delete(&ns, &DeleteParams::background()).await?;
    result
}

async fn bench(client: &kube::Client, ns: &str, mib: usize) -> anyhow::Result<()> {
    let size = format!("{}Mi", mib * 2);
    let (_, pv) = create_bound(client, ns, &pvc("data", &size)).await?;
    let dir = host_dir(&pv)?;
    // 1 MiB files of pseudo-random bytes (incompressible, no reflink shortcuts from zeroes).
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    for i in 0..mib {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let mut file = std::fs::File::create(dir.join(format!("block-{i:04}")))?;
        file.write_all(&block)?;
    }
    println!("volume: {mib} MiB in {mib} files");

    let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), ns);
    let start = Instant::now();
    snapshots
        .create(&PostParams::default(), &snapshot("snap", "data", None))
        .await?;
    wait_for(&snapshots, "snap", TIMEOUT, "creationTime", |s| {
        s.and_then(|s| s.status.as_ref())
            .is_some_and(|s| s.creation_time.is_some())
    })
    .await?;
    let cut = start.elapsed();
    wait_snapshot_ready(&snapshots, "snap", TIMEOUT).await?;
    let ready = start.elapsed();
    println!(
        "snapshot: creationTime after {:.2} s, readyToUse after {:.2} s",
        cut.as_secs_f64(),
        ready.as_secs_f64()
    );

    let start = Instant::now();
    let (_, restored) =
        create_bound(client, ns, &from_snapshot(pvc("restored", &size), "snap")).await?;
    let bound = start.elapsed();
    let restored_dir = host_dir(&restored)?;
    let files = std::fs::read_dir(&restored_dir)?.count();
    anyhow::ensure!(files == mib, "restored {files} files, expected {mib}");
    println!(
        "restore: PVC Bound with the data after {:.2} s",
        bound.as_secs_f64()
    );
    Ok(())
}
