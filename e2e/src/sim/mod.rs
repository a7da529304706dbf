//! The simulator: each part runs as its own task against the real API server.
//!
//! - [`node`], [`scheduler`], [`kubelet`]: the Node `local-node`, pod binding, pods run as
//!   bubblewrap processes, and the kubelet HTTPS endpoint for exec and logs.
//! - [`storage`]: StorageClasses `archivist-local` and `archivist-local-shallow`, PVC -> hostPath
//!   PV provisioning.
//! - [`snapshots`]: VolumeSnapshot -> VolumeSnapshotContent, copies of volume directories.
//!
//! Contract between the parts: a PV provisioned by [`storage`] has `spec.hostPath.path` =
//! `<state-dir>/volumes/<pv-name>`, except a shallow volume's, which is its snapshot's data
//! directory `<state-dir>/snapshots/<content>` (annotation [`storage::BACKING_SNAPSHOT`]); the
//! kubelet mounts whatever path a bound PV names, read-only when the PV is `ReadOnlyMany` only.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use tokio::task::JoinSet;

pub mod kubelet;
pub mod node;
mod quantity;
mod reconcile;
pub mod scheduler;
pub mod snapshot_contents;
pub mod snapshot_knobs;
pub mod snapshots;
pub mod storage;
mod volume_dirs;

/// Command-line arguments of `archivist-sim`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "archivist-sim",
    about = "Simulated node, kubelet, CSI and snapshots for the local cluster"
)]
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
    /// `host:port` of the local image registry: images named below it are pulled and run
    /// from their own rootfs; every other image runs host programs.
    #[arg(long)]
    pub registry: Option<String>,
}

/// Marker naming the crate directory this binary was built from. `e2e/local-cluster` looks for
/// it: worktrees sharing one CARGO_TARGET_DIR can otherwise get each other's build.
pub const BUILD_SOURCE: &str = concat!("<archivist-sim-source:", env!("CARGO_MANIFEST_DIR"), ">");

/// What every part of the simulator is given: a client for the local cluster and the arguments.
#[derive(Clone)]
pub struct SimContext {
    /// Client authenticated with the admin kubeconfig.
    pub client: kube::Client,
    /// The simulator's command-line arguments.
    pub args: SimArgs,
}

impl SimContext {
    /// Connects to the API server named in `args.kubeconfig`.
    pub async fn connect(args: SimArgs) -> anyhow::Result<Self> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)
            .with_context(|| format!("failed to read kubeconfig {}", args.kubeconfig.display()))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .context("invalid kubeconfig")?;
        let client = kube::Client::try_from(config).context("failed to build the API client")?;
        Ok(Self { client, args })
    }
}

/// Runs every part of the simulator until one fails or the process is signalled.
pub async fn main(args: SimArgs) -> ExitCode {
    init_tracing();
    tracing::info!(build = BUILD_SOURCE, "starting");
    let ctx = match SimContext::connect(args).await {
        Ok(ctx) => ctx,
        Err(err) => {
            tracing::error!("{err:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut parts = JoinSet::new();
    spawn_part(&mut parts, "storage", storage::run(ctx.clone()));
    spawn_part(&mut parts, "snapshots", snapshots::run(ctx.clone()));
    let (client, args) = (ctx.client.clone(), ctx.args.clone());
    spawn_part(&mut parts, "node", node::run(client.clone(), args.node_name.clone(), args.kubelet_port));
    spawn_part(&mut parts, "scheduler", scheduler::run(client.clone(), args.node_name.clone()));
    let in_cluster = match kubelet::in_cluster::InCluster::from_kubeconfig(&args.kubeconfig, args.state_dir.join("pki").join("ca.crt")) {
        Ok(in_cluster) => in_cluster,
        Err(err) => {
            tracing::error!("{err:#}");
            return ExitCode::FAILURE;
        }
    };
    spawn_part(&mut parts, "kubelet", kubelet::run(client, args.node_name, args.state_dir, args.kubelet_port, args.registry, in_cluster));

    let code = tokio::select! {
        finished = parts.join_next() => {
            match finished {
                Some(Ok((name, Ok(())))) => { tracing::error!(part = name, "part stopped"); ExitCode::FAILURE }
                Some(Ok((name, Err(err)))) => { tracing::error!(part = name, "part failed: {err:#}"); ExitCode::FAILURE }
                Some(Err(err)) => { tracing::error!("part panicked: {err}"); ExitCode::FAILURE }
                None => ExitCode::SUCCESS,
            }
        }
        () = shutdown_signal() => { tracing::info!("signalled, stopping"); ExitCode::SUCCESS }
    };
    parts.shutdown().await;
    code
}

/// Spawns one part of the simulator; its name is reported when it ends.
fn spawn_part(
    parts: &mut JoinSet<(&'static str, anyhow::Result<()>)>,
    name: &'static str,
    part: impl Future<Output = anyhow::Result<()>> + Send + 'static,
) {
    parts.spawn(async move { (name, part.await) });
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
