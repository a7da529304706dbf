//! The simulated CSI provisioner: StorageClass `archivist-local` and hostPath PVs for PVCs.

use super::SimContext;

/// Provisions and reclaims volumes until the watch fails.
pub async fn run(ctx: SimContext) -> anyhow::Result<()> {
    let _ = ctx;
    std::future::pending().await
}
