//! The simulated snapshot controller and CSI snapshotter for `snapshot.storage.k8s.io/v1`.

use super::SimContext;

/// Cuts and binds snapshots until the watch fails.
pub async fn run(ctx: SimContext) -> anyhow::Result<()> {
    let _ = ctx;
    std::future::pending().await
}
