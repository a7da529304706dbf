//! `archivist run`: the operator.

use super::error::CliError;
use crate::kube::lease::{LeaderElector, Leadership};
use crate::plan::leader;
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
    /// Leader election: only the process holding the Lease runs the controllers; the others
    /// stand by and take over within 15 s of the leader's last renewal. `false` runs the
    /// controllers at once (only ever run one such process per scope).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// The namespace of the leader-election Lease; default `$POD_NAMESPACE`, else the
    /// `--namespace` watched, else `default`.
    #[arg(long)]
    pub leader_election_namespace: Option<String>,
    /// The name of the leader-election Lease.
    #[arg(long, default_value = "archivist-leader")]
    pub leader_election_name: String,
}

impl RunArgs {
    /// The Lease's namespace (see `--leader-election-namespace`).
    fn lease_namespace(&self) -> String {
        self.leader_election_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok().filter(|n| !n.is_empty()))
            .or_else(|| self.namespace.clone())
            .unwrap_or_else(|| "default".into())
    }
}

/// This process's identity as a leader candidate: `$POD_NAME` (unique per pod; a restarted
/// container of the same pod takes its Lease back at once, as client-go's election does),
/// else `<hostname>-<pid>`, so two processes on one host differ.
fn identity() -> String {
    if let Some(pod) = std::env::var("POD_NAME").ok().filter(|s| !s.is_empty()) {
        return pod;
    }
    let host = std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "archivist".into());
    format!("{host}-{}", std::process::id())
}

/// Connects with the usual kubeconfig or in-cluster configuration and runs every controller
/// until SIGTERM or Ctrl-C; then releases every quiesced archive before it returns (see
/// `controllers::run`).
pub fn run(args: &RunArgs) -> Result<ExitCode, CliError> {
    crate::memory::use_one_arena();
    crate::telemetry::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let clients = crate::kube::client::connect()
            .await
            .map_err(|e| CliError::Runtime(format!("cannot connect to the Kubernetes API (kubeconfig or in-cluster): {e}")))?;
        let client = clients.api.clone();
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
        let shutdown_timeout = std::time::Duration::from_secs(args.shutdown_timeout_seconds);
        if !args.leader_election {
            crate::controllers::run(clients, metrics, args.namespace.clone(), shutdown_timeout).await;
            tracing::info!("archivist operator stopped");
            return Ok(ExitCode::SUCCESS);
        }
        let elector = LeaderElector::new(client.clone(), &args.lease_namespace(), &args.leader_election_name, &identity());
        let signalled = crate::controllers::shutdown_signal();
        tokio::pin!(signalled);
        tokio::select! {
            () = &mut signalled => {
                tracing::info!("stopped while standing by");
                return Ok(ExitCode::SUCCESS);
            }
            () = wait_to_lead(&elector) => {}
        }
        metrics.leader.set(1);
        tracing::info!(identity = elector.identity(), "leading: running the controllers");
        tokio::select! {
            () = crate::controllers::run(clients, metrics.clone(), args.namespace.clone(), shutdown_timeout) => {
                if let Err(e) = elector.release().await {
                    tracing::warn!(error = %e, "could not release the leader-election Lease; a standby takes over when it expires");
                }
                tracing::info!("archivist operator stopped");
                Ok(ExitCode::SUCCESS)
            }
            why = keep_leading(&elector) => {
                metrics.leader.set(0);
                Err(CliError::Runtime(format!("lost leadership ({why}); exiting so that two operators never act at once")))
            }
        }
    })
}

/// Stands by until this process holds the Lease.
async fn wait_to_lead(elector: &LeaderElector) {
    let mut last_holder = None;
    loop {
        match elector.try_acquire_or_renew().await {
            Ok(Leadership::Leading) => return,
            Ok(Leadership::Standby { holder }) => {
                if holder.is_some() && holder != last_holder {
                    tracing::info!(leader = holder.as_deref().unwrap_or_default(), "standing by");
                    last_holder = holder;
                }
            }
            Err(e) => tracing::warn!(error = %e, "leader election: cannot read or write the Lease"),
        }
        tokio::time::sleep(leader::RENEW_INTERVAL).await;
    }
}

/// Renews the Lease every `RENEW_INTERVAL`; returns why leadership was lost: another process
/// holds the Lease, or renewing failed for longer than `RENEW_DEADLINE`.
async fn keep_leading(elector: &LeaderElector) -> String {
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(leader::RENEW_INTERVAL).await;
        match elector.try_acquire_or_renew().await {
            Ok(Leadership::Leading) => renewed = tokio::time::Instant::now(),
            Ok(Leadership::Standby { holder }) => return format!("the Lease is held by {}", holder.unwrap_or_else(|| "another process".into())),
            Err(e) => {
                tracing::warn!(error = %e, "leader election: renewing the Lease failed");
                if renewed.elapsed() >= leader::RENEW_DEADLINE {
                    return format!("the Lease could not be renewed for {:?}: {e}", leader::RENEW_DEADLINE);
                }
            }
        }
    }
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
