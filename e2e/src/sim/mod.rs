//! The simulator: each part runs as its own task against the real API server.
//!
//! - [`node`], [`scheduler`], [`kubelet`]: the Node `local-node`, pod binding, pods run as
//!   bubblewrap processes, and the kubelet HTTPS endpoint for exec and logs.
//! - [`storage`]: StorageClass `archivist-local`, PVC -> hostPath PV provisioning.
//! - [`snapshots`]: VolumeSnapshot -> VolumeSnapshotContent, copies of volume directories.
//!
//! Contract between the parts: a PV provisioned by [`storage`] has `spec.hostPath.path` =
//! `<state-dir>/volumes/<pv-name>`; the kubelet mounts whatever path a bound PV names.

pub mod kubelet;
pub mod node;
pub mod scheduler;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

/// Command-line arguments of `archivist-sim`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "archivist-sim", about = "Simulated node, kubelet, CSI and snapshots for the local cluster")]
pub struct SimArgs {
    /// Admin kubeconfig of the local cluster.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// The cluster's state directory (volumes, snapshots, pod sandboxes and logs live below it).
    #[arg(long)]
    pub state_dir: PathBuf,
    /// Port of the simulated kubelet's HTTPS endpoint (exec, logs).
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// Name of the simulated node.
    #[arg(long, default_value = "local-node")]
    pub node_name: String,
}

/// Runs every part of the simulator until one fails or the process is signalled.
pub async fn main(args: SimArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "archivist-sim failed");
            ExitCode::FAILURE
        }
    }
}

/// Spawns every part and waits for the first to fail, or for SIGINT/SIGTERM. Pod processes
/// die with this process (see [`kubelet::sandbox`]).
async fn run(args: SimArgs) -> anyhow::Result<()> {
    let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("failed to read kubeconfig {}", args.kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
        .await
        .context("invalid kubeconfig")?;
    let client = kube::Client::try_from(config).context("failed to create the Kubernetes client")?;
    let mut parts = tokio::task::JoinSet::new();
    parts.spawn(named("node", node::run(client.clone(), args.node_name.clone(), args.kubelet_port)));
    parts.spawn(named("scheduler", scheduler::run(client.clone(), args.node_name.clone())));
    parts.spawn(named(
        "kubelet",
        kubelet::run(client.clone(), args.node_name.clone(), args.state_dir.clone(), args.kubelet_port),
    ));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("failed to install the SIGTERM handler")?;
    tokio::select! {
        Some(ended) = parts.join_next() => match ended {
            Ok(result) => result,
            Err(err) => Err(anyhow::anyhow!("a simulator task panicked: {err}")),
        },
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = terminate.recv() => Ok(()),
    }
}

/// Adds the part's name to its error.
async fn named(name: &'static str, part: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    part.await.with_context(|| format!("simulator part {name} failed"))
}
