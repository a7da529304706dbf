//! Controllers: one module per kind, wiring `plan` (decide) and `kube` (act), writing status
//! and Events.

pub mod archive_backup;
pub mod backup_policy;
pub mod context;
pub mod error;
pub mod events;
pub mod restore_request;

pub use context::Context;
pub use error::Error;

use crate::metrics::Metrics;
use std::sync::Arc;

/// Runs every controller until the process is signalled, watching `namespace` only when
/// given, else every namespace.
pub async fn run(client: kube::Client, metrics: Arc<Metrics>, namespace: Option<String>) {
    let ctx = Arc::new(Context::new(client, metrics, namespace));
    futures::join!(archive_backup::run(ctx.clone()), backup_policy::run(ctx.clone()), restore_request::run(ctx));
}
