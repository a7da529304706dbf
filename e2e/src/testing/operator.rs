//! Test helpers for running Archivist itself against the local cluster.
//!
//! - [`ensure_crds`]: applies `crds/*.yaml` once per test process (server-side apply, so any
//!   number of test processes may do it) and waits until the API serves them.
//! - [`Operator`]: an `archivist run --namespace NS --metrics-addr 127.0.0.1:0` process of
//!   the test's own, killed when dropped, its stderr kept in a file for diagnosis.
//! - [`events_of`]: the Events about an object, oldest first.
//! - [`apiserver_write_requests`]: the API server's count of write requests (`/metrics`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use tokio::sync::OnceCell;

use super::{eventually, kubeconfig_path};

/// The repository's root.
pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `archivist` binary under test: `$ARCHIVIST_BIN`, else
/// `${CARGO_TARGET_DIR:-<repo>/target}/debug/archivist`.
pub fn archivist_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("ARCHIVIST_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_dir().join("target"));
    target.join("debug").join("archivist")
}

static CRDS: OnceCell<()> = OnceCell::const_new();

/// Applies Archivist's CRDs (`crds/*.yaml`) with server-side apply, once per process, and
/// waits until each is Established.
pub async fn ensure_crds(client: &Client) -> anyhow::Result<()> {
    CRDS.get_or_try_init(|| apply_crds(client.clone())).await.map(|_| ())
}

async fn apply_crds(client: Client) -> anyhow::Result<()> {
    let api = Api::<CustomResourceDefinition>::all(client);
    let dir = repo_dir().join("crds");
    let mut names = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&text).with_context(|| format!("{} is not a CRD", path.display()))?;
        let name = crd.name_any();
        api.patch(&name, &PatchParams::apply("archivist-e2e").force(), &Patch::Apply(&crd))
            .await
            .with_context(|| format!("failed to apply CRD {name}"))?;
        names.push(name);
    }
    for name in names {
        eventually(&format!("CRD {name} to be Established"), Duration::from_secs(30), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                Ok(if established { Ok(()) } else { Err("not Established".to_owned()) })
            }
        })
        .await?;
    }
    Ok(())
}

/// A running `archivist run` scoped to one namespace; killed (SIGKILL) when dropped.
pub struct Operator {
    child: Option<tokio::process::Child>,
    /// Where its stderr (its log) goes.
    pub log: PathBuf,
}

impl Operator {
    /// Starts `archivist run --namespace NAMESPACE --metrics-addr 127.0.0.1:0`, with its log in
    /// `<repo>/target/e2e-logs/operator-<namespace>-<n>.log`.
    pub async fn start(namespace: &str) -> anyhow::Result<Self> {
        Self::start_with_kubeconfig(namespace, &kubeconfig_path()).await
    }

    /// [`Operator::start`] with another kubeconfig (for example an [`super::proxy::ApiProxy`]'s).
    pub async fn start_with_kubeconfig(namespace: &str, kubeconfig: &Path) -> anyhow::Result<Self> {
        Self::start_with(namespace, kubeconfig, &[]).await
    }

    /// Applies the CRDs and starts an operator scoped to `namespace` behind a new
    /// [`super::proxy::ApiProxy`] that delays each watch chunk by `watch_delay`; the proxy
    /// counts the operator's own requests.
    pub async fn start_behind_proxy(client: &Client, namespace: &str, watch_delay: Duration) -> anyhow::Result<(super::proxy::ApiProxy, Self)> {
        ensure_crds(client).await?;
        let proxy = super::proxy::ApiProxy::start(client.clone(), watch_delay).await?;
        let dir = repo_dir().join("target").join("e2e-logs");
        std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
        let kubeconfig = proxy.kubeconfig(&dir.join(format!("proxy-{namespace}.kubeconfig")))?;
        let operator = Self::start_with_kubeconfig(namespace, &kubeconfig).await?;
        Ok((proxy, operator))
    }

    /// [`Operator::start_with_kubeconfig`] with extra environment variables (for example a
    /// `POD_NAME`, the leader-election identity).
    pub async fn start_with(namespace: &str, kubeconfig: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::spawn(namespace, &["--namespace", namespace], kubeconfig, env).await
    }

    /// Starts `archivist run` over every namespace (what the ClusterRetentionPolicy evaluator
    /// needs), its leader-election Lease in `lease_namespace`, its log named after it. Only
    /// for a test binary whose tests tolerate an operator acting in every namespace.
    pub async fn start_cluster_wide(lease_namespace: &str) -> anyhow::Result<Self> {
        Self::spawn(lease_namespace, &["--leader-election-namespace", lease_namespace], &kubeconfig_path(), &[]).await
    }

    async fn spawn(namespace: &str, scope: &[&str], kubeconfig: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let bin = archivist_bin();
        if !bin.is_file() {
            bail!(
                "the archivist binary is missing at {}: run `cargo build -p archivist` (or set ARCHIVIST_BIN)",
                bin.display()
            );
        }
        let dir = repo_dir().join("target").join("e2e-logs");
        std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
        let mut n = 0;
        let log = loop {
            let candidate = dir.join(format!("operator-{namespace}-{n}.log"));
            if !candidate.exists() {
                break candidate;
            }
            n += 1;
        };
        let file = std::fs::File::create(&log).with_context(|| format!("{}", log.display()))?;
        let child = tokio::process::Command::new(&bin)
            .args(["run", "--metrics-addr", "127.0.0.1:0"])
            .args(scope)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", std::env::var("ARCHIVIST_E2E_LOG").unwrap_or_else(|_| "info,archivist=debug".into()))
            // The leader-election identity: one per namespace, like one operator pod, so an
            // operator restarted in the same namespace takes its Lease back at once.
            .env("POD_NAME", format!("e2e-{namespace}"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("failed to start {}", bin.display()))?;
        eprintln!("operator for {namespace}: pid {:?}, log {}", child.id(), log.display());
        Ok(Self { child: Some(child), log })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// Kills the process with SIGKILL and waits for it to exit.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill().context("failed to kill the operator")?;
            child.wait().await.context("failed to wait for the operator")?;
        }
        Ok(())
    }

    /// Sends SIGTERM (what the kubelet sends at pod deletion) and waits at most `timeout` for
    /// the process to exit; returns how long it took and its exit status.
    pub async fn terminate(&mut self, timeout: Duration) -> anyhow::Result<(Duration, std::process::ExitStatus)> {
        let mut child = self.child.take().context("the operator is not running")?;
        let pid = child.id().context("the operator has no pid")?;
        let pid = i32::try_from(pid).context("pid out of range")?;
        let started = std::time::Instant::now();
        // SAFETY: kill(2) with a pid this test spawned and still owns (not yet reaped).
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            bail!("kill -TERM {pid} failed: {}", std::io::Error::last_os_error());
        }
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => Ok((started.elapsed(), status.context("failed to wait for the operator")?)),
            Err(_) => {
                let _ = child.start_kill();
                bail!("the operator did not exit within {timeout:?} of SIGTERM; see {}", self.log.display())
            }
        }
    }

    /// Fails when the process has exited (it should run for the whole test).
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                bail!("the operator exited ({status}); see {}", self.log.display());
            }
        }
        Ok(())
    }

    /// The last `lines` lines of the operator's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The Events (core/v1 view) whose involved object is `kind`/`name` in `namespace`, oldest
/// first (by event time, then first timestamp, then creation).
pub async fn events_of(client: &Client, namespace: &str, kind: &str, name: &str) -> anyhow::Result<Vec<Event>> {
    let api = Api::<Event>::namespaced(client.clone(), namespace);
    let selector = format!("involvedObject.kind={kind},involvedObject.name={name}");
    let mut events = api
        .list(&ListParams::default().fields(&selector))
        .await
        .with_context(|| format!("failed to list Events of {kind} {name}"))?
        .items;
    events.sort_by_key(|e| {
        (
            e.event_time.as_ref().map(|t| t.0),
            e.first_timestamp.as_ref().map(|t| t.0),
            e.metadata.creation_timestamp.as_ref().map(|t| t.0),
        )
    });
    Ok(events)
}

/// The reasons of [`events_of`], oldest first.
pub async fn event_reasons(client: &Client, namespace: &str, kind: &str, name: &str) -> anyhow::Result<Vec<String>> {
    Ok(events_of(client, namespace, kind, name)
        .await?
        .into_iter()
        .filter_map(|e| e.reason)
        .collect())
}

/// The reasons of [`events_of`] once one of them is `last`, polling for up to 20 s; after that,
/// the reasons as they are, so the caller's assertion names what was there.
///
/// The operator publishes an Event after it records the status it reports (status first, so a
/// failed write never announces what did not happen), so a test that has just seen a status must
/// wait for its Event.
pub async fn event_reasons_through(client: &Client, namespace: &str, kind: &str, name: &str, last: &str) -> anyhow::Result<Vec<String>> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let reasons = event_reasons(client, namespace, kind, name).await?;
        if reasons.iter().any(|r| r == last) || tokio::time::Instant::now() >= deadline {
            return Ok(reasons);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// How many times an Event of `reason` was reported about the object: each Event once, or as
/// many times as its series counts (kube's recorder aggregates repeats of one Event).
pub async fn event_count(client: &Client, namespace: &str, kind: &str, name: &str, reason: &str) -> anyhow::Result<i32> {
    Ok(events_of(client, namespace, kind, name)
        .await?
        .iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .map(|e| e.series.as_ref().map_or(1, |s| s.count.unwrap_or(1)))
        .sum())
}

/// The API server's total of write requests (verbs POST, PUT, PATCH, DELETE; also the
/// uppercase `APPLY`/`WATCH`-free forms it reports) from `apiserver_request_total`.
pub async fn apiserver_write_requests(client: &Client) -> anyhow::Result<f64> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await.context("failed to read the API server's /metrics")?;
    Ok(sum_write_requests(&text))
}

/// Sums `apiserver_request_total` samples whose `verb` is a write.
pub fn sum_write_requests(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| {
            ["POST", "PUT", "PATCH", "DELETE", "APPLY"]
                .iter()
                .any(|verb| l.contains(&format!("verb=\"{verb}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_only_write_verbs() {
        let text = "# HELP x\napiserver_request_total{code=\"200\",verb=\"GET\"} 5\n\
                    apiserver_request_total{code=\"201\",verb=\"POST\"} 3\n\
                    apiserver_request_total{code=\"200\",verb=\"PATCH\"} 2\n\
                    apiserver_request_total{code=\"200\",verb=\"DELETE\"} 1\n";
        assert_eq!(sum_write_requests(text), 6.0);
    }
}
