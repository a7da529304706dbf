//! How the cluster commands (`backup`, `restore`, `status`) reach the API server: kubectl's
//! flags and defaults.

use super::error::CliError;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::path::PathBuf;

/// The connection flags every cluster command takes, as kubectl spells them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    /// The kubeconfig file. Default: `$KUBECONFIG`, else `~/.kube/config`, else the in-cluster
    /// configuration.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use. Default: its current context.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace. Default: the context's namespace, else `default`.
    #[arg(short = 'n', long, value_name = "NAME")]
    pub namespace: Option<String>,
}

/// A connected client and the namespace the command works in.
pub struct Cluster {
    /// The client.
    pub client: Client,
    /// `--namespace`, else the context's namespace, else `default`.
    pub namespace: String,
}

/// Reads the configuration the flags name and makes a client. A kubeconfig that cannot be read
/// or a context that is not in it is bad input (exit 2, naming the flag); a client that cannot
/// be built is a runtime error.
pub async fn connect(args: &ClusterArgs) -> Result<Cluster, CliError> {
    if let Some(namespace) = &args.namespace {
        if let Some(problem) = crate::plan::validate::names::dns1123_label(namespace) {
            return Err(CliError::Argument { flag: "--namespace".into(), message: problem });
        }
    }
    let options = KubeConfigOptions { context: args.context.clone(), cluster: None, user: None };
    let config = match (&args.kubeconfig, &args.context) {
        (Some(path), _) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| CliError::Argument { flag: "--kubeconfig".into(), message: format!("{}: {e}", path.display()) })?;
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| CliError::Argument { flag: "--kubeconfig".into(), message: format!("{}: {e}", path.display()) })?
        }
        (None, Some(_)) => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| CliError::Argument { flag: "--context".into(), message: e.to_string() })?,
        (None, None) => Config::infer()
            .await
            .map_err(|e| CliError::Runtime(format!("no Kubernetes configuration (kubeconfig or in-cluster): {e}")))?,
    };
    let namespace = args.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).map_err(|e| CliError::Runtime(format!("cannot make a Kubernetes client: {e}")))?;
    Ok(Cluster { client, namespace })
}

/// Runs one cluster command on a single-threaded runtime of its own.
pub fn block_on<F: std::future::Future<Output = Result<std::process::ExitCode, CliError>>>(
    future: F,
) -> Result<std::process::ExitCode, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(future)
}

/// Turns an API error about one object into the command's error: NotFound is bad input
/// (exit 2) naming the object, anything else a runtime error naming it too.
pub fn api_error(kind: &str, namespace: &str, name: &str, err: kube::Error) -> CliError {
    match &err {
        kube::Error::Api(status) if status.code == 404 => CliError::NotFound { kind: kind.into(), object: format!("{namespace}/{name}") },
        _ => CliError::Runtime(format!("{kind} {namespace}/{name}: {err}")),
    }
}
