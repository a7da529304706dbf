//! The simulator: each part runs as its own task against the real API server.
//!
//! - [`node`], [`scheduler`], [`kubelet`]: the Node `local-node`, pod binding, pods run as
//!   bubblewrap processes, and the kubelet HTTPS endpoint for exec and logs.
//! - [`storage`]: StorageClass `archivist-local`, PVC -> hostPath PV provisioning.
//! - [`snapshots`]: VolumeSnapshot -> VolumeSnapshotContent, copies of volume directories.
//!
//! Contract between the parts: a PV provisioned by [`storage`] has `spec.hostPath.path` =
//! `<state-dir>/volumes/<pv-name>`; the kubelet mounts whatever path a bound PV names.

use std::path::PathBuf;
use std::process::ExitCode;

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
    let _ = args;
    ExitCode::SUCCESS
}
