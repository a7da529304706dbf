//! Test helpers for pods on the simulated node: create from YAML, readiness/phase checks,
//! exec through the API server (kube-rs), and a look at the host's processes.

use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{AttachParams, PostParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::AsyncReadExt as _;

/// How long a pod may take to become Ready, or a Job to finish.
pub const POD_TIMEOUT: Duration = Duration::from_secs(60);

/// Creates a namespaced object, given as YAML, in namespace `ns`.
pub async fn create_yaml<K>(client: &Client, ns: &str, yaml: &str) -> anyhow::Result<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
    K::DynamicType: Default,
{
    let object: K = serde_yaml::from_str(yaml).context("invalid YAML in the test")?;
    let api = Api::<K>::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &object).await.context("failed to create the test object")
}

/// The pod exists and its `Ready` condition is True.
pub fn is_ready(pod: Option<&Pod>) -> bool {
    pod.and_then(|p| p.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pod's phase, if it has one.
pub fn phase(pod: Option<&Pod>) -> Option<&str> {
    pod.and_then(|p| p.status.as_ref()).and_then(|s| s.phase.as_deref())
}

/// What a command run with [`exec`] printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// The exec Status: `Success` or `Failure`.
    pub status: String,
}

/// Runs `command` in `container` of `pod` through the API server (kube-rs `Api::exec`).
pub async fn exec(pods: &Api<Pod>, pod: &str, container: &str, command: &[&str]) -> anyhow::Result<ExecOutput> {
    let params = AttachParams::default().container(container).stdin(false).stdout(true).stderr(true);
    let mut attached = pods
        .exec(pod, command.iter().copied(), &params)
        .await
        .with_context(|| format!("exec {command:?} in {pod}/{container} failed"))?;
    let mut stdout = attached.stdout().context("no stdout")?;
    let mut stderr = attached.stderr().context("no stderr")?;
    let status = attached.take_status().context("no status")?;
    let (mut out, mut err) = (String::new(), String::new());
    let (read_out, read_err) = tokio::join!(stdout.read_to_string(&mut out), stderr.read_to_string(&mut err));
    read_out.context("reading stdout")?;
    read_err.context("reading stderr")?;
    let status = status.await.and_then(|s| s.status).unwrap_or_default();
    attached.join().await.context("exec session failed")?;
    Ok(ExecOutput { stdout: out, stderr: err, status })
}

/// Whether a process on this host has `arg` among its arguments (pods run as host processes).
pub fn host_process_with_arg(arg: &str) -> bool {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|cmdline| cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
}
