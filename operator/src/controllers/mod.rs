//! Controllers: one module per kind, wiring `plan` (decide) and `kube` (act), writing status
//! and Events.

pub mod archive_backup;
pub mod backoff;
pub mod backup_policy;
pub mod caches;
pub mod cluster_retention;
pub mod context;
pub mod drill;
pub mod error;
pub mod events;
pub mod fresh;
pub mod restore_request;
pub mod sweeper;

pub use context::Context;
pub use error::Error;

use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

/// How many objects of one kind are reconciled at once. A burst (200 policies triggered
/// together) queues behind this instead of sending hundreds of reconciles' requests to the API
/// server at the same moment; each reconcile is one short step, so the queue drains fast.
pub const RECONCILE_CONCURRENCY: u16 = 8;

/// The configuration every controller runs with ([`RECONCILE_CONCURRENCY`]).
pub fn controller_config() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(RECONCILE_CONCURRENCY)
}

/// Runs every controller until the process is signalled, watching `namespace` only when
/// given, else every namespace.
///
/// On SIGTERM (or Ctrl-C) the operator shuts down gracefully: no run starts any more, every
/// run that has an archive quiesced releases it (thaw, or scale back) and fails with
/// `OperatorShutdown`, and the process returns once no run in scope holds an archive, or
/// after `shutdown_timeout` (keep it below the pod's `terminationGracePeriodSeconds`).
pub async fn run(clients: crate::kube::client::ApiClients, metrics: Arc<Metrics>, namespace: Option<String>, shutdown_timeout: Duration) {
    let client = clients.api.clone();
    let (caches, subscriptions, watches) = caches::start(&client, namespace.as_deref());
    metrics.backup_gauges.observe(caches.backups.clone());
    let watches = tokio::spawn(watches);
    let trims = tokio::spawn({
        let caches = caches.clone();
        async move {
            // The first lists leave most of the free pages (`crate::memory`).
            caches.ready().await;
            loop {
                crate::memory::return_free_pages();
                tokio::time::sleep(crate::memory::RETURN_FREE_EVERY).await;
            }
        }
    });
    let ctx = Arc::new(Context::new(clients, metrics, namespace, caches));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signalled = {
        let ctx = ctx.clone();
        async move {
            shutdown_signal().await;
            tracing::info!("shutting down: releasing every quiesced archive first");
            ctx.begin_shutdown();
            let _ = stop_tx.send(true);
        }
    };
    futures::join!(
        signalled,
        archive_backup::run(ctx.clone(), subscriptions.backups, subscriptions.backups_by_child, stop_rx.clone(), shutdown_timeout),
        backup_policy::run(ctx.clone(), subscriptions.policy_changes, stopped(stop_rx.clone())),
        restore_request::run(ctx.clone(), subscriptions.restores, subscriptions.restores_by_backup, stopped(stop_rx.clone())),
        cluster_retention::run(ctx.clone(), subscriptions.cluster_specs, stopped(stop_rx.clone())),
        sweeper::run(ctx, stopped(stop_rx)),
    );
    watches.abort();
    trims.abort();
}

/// Resolves once the shutdown has begun.
pub async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// Resolves on SIGTERM or Ctrl-C (the signals the controllers shut down on).
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
