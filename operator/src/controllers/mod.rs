//! Controllers: one module per kind, wiring `plan` (decide) and `kube` (act), writing status
//! and Events.

pub mod archive_backup;
pub mod context;
pub mod error;

pub use context::Context;
pub use error::Error;

use crate::metrics::Metrics;
use std::sync::Arc;

/// Runs every controller until the process is signalled.
pub async fn run(client: kube::Client, metrics: Arc<Metrics>) {
    let ctx = Arc::new(Context::new(client, metrics));
    archive_backup::run(ctx).await;
}
