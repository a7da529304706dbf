//! `archivist run`: the operator.

use super::error::CliError;
use std::process::ExitCode;

/// Arguments of `archivist run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: std::net::SocketAddr,
    /// Watch only this namespace (a namespace-scoped install); default: every namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// On SIGTERM, how long to wait for every quiesced archive to be released before exiting
    /// (seconds); keep it below the pod's `terminationGracePeriodSeconds`.
    #[arg(long, default_value_t = 25)]
    pub shutdown_timeout_seconds: u64,
}

/// Connects with the usual kubeconfig or in-cluster configuration and runs every controller
/// until SIGTERM or Ctrl-C; then releases every quiesced archive before it returns (see
/// `controllers::run`).
pub fn run(args: &RunArgs) -> Result<ExitCode, CliError> {
    crate::telemetry::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| CliError::Runtime(format!("cannot connect to the Kubernetes API (kubeconfig or in-cluster): {e}")))?;
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::default());
        let server = crate::metrics::serve(metrics.clone(), args.metrics_addr);
        let addr = args.metrics_addr;
        tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(%addr, error = %e, "the metrics endpoint stopped");
            }
        });
        tokio::spawn(mark_ready(client.clone(), metrics.clone(), args.namespace.clone()));
        tracing::info!(metrics = %args.metrics_addr, "archivist operator starting");
        crate::controllers::run(client, metrics, args.namespace.clone(), std::time::Duration::from_secs(args.shutdown_timeout_seconds)).await;
        tracing::info!("archivist operator stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Marks the operator ready once the API server answers a list of ArchiveBackups (so the
/// CRDs are installed and RBAC allows reading them); retries every 2 s until then.
async fn mark_ready(client: kube::Client, metrics: std::sync::Arc<crate::metrics::Metrics>, namespace: Option<String>) {
    let api = match namespace {
        Some(ns) => kube::Api::<crate::api::ArchiveBackup>::namespaced(client, &ns),
        None => kube::Api::<crate::api::ArchiveBackup>::all(client),
    };
    loop {
        match api.list(&kube::api::ListParams::default().limit(1)).await {
            Ok(_) => {
                metrics.set_ready();
                return;
            }
            Err(e) => tracing::warn!(error = %e, "not ready: cannot list ArchiveBackups"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}
