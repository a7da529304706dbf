//! `archivist run`: the operator.

use super::error::CliError;
use std::process::ExitCode;

/// Arguments of `archivist run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Connects with the usual kubeconfig or in-cluster configuration and runs every controller
/// until SIGTERM or Ctrl-C.
pub fn run(_args: &RunArgs) -> Result<ExitCode, CliError> {
    crate::telemetry::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| CliError::Runtime(format!("cannot connect to the Kubernetes API (kubeconfig or in-cluster): {e}")))?;
        tracing::info!("archivist operator starting");
        crate::controllers::run(client).await;
        tracing::info!("archivist operator stopped");
        Ok(ExitCode::SUCCESS)
    })
}
