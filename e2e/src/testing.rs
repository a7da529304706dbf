//! Helpers for end-to-end tests against the local cluster (`e2e/local-cluster up`).
//!
//! - [`client`]: a kube client from `$KUBECONFIG`, else `<repo>/target/local-cluster/kubeconfig`.
//! - [`with_namespace`]: runs a test body in a fresh namespace and deletes it afterwards, also
//!   when the body fails or panics.
//! - [`wait_for`] / [`eventually`]: wait for a condition on an object / any async check, with a
//!   timeout whose error says what was waited for and what was last seen.
//! - [`volumes`]: PVCs, PVs and VolumeSnapshots of the simulated storage.
//! - [`operator`]: Archivist's CRDs and an operator process per test; [`databases`]: throwaway
//!   PostgreSQL and MariaDB servers; [`proxy`]: an API proxy that delays watches and counts
//!   one operator's requests.

use std::fmt::Debug;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

pub mod databases;
pub mod helm;
pub mod images;
pub mod operator;
pub mod pods;
pub mod proxy;
pub mod restic;
pub mod volumes;

/// Label put on every namespace made by [`with_namespace`].
pub const TEST_NAMESPACE_LABEL: &str = "e2e.archivist.dev/test";

/// The kubeconfig the tests use: `$KUBECONFIG`, else the local cluster's.
pub fn kubeconfig_path() -> PathBuf {
    match std::env::var_os("KUBECONFIG") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/local-cluster/kubeconfig"),
    }
}

/// Archivist's cache outside the repository: `${XDG_CACHE_HOME:-$HOME/.cache}/archivist` (helm,
/// buildah's storage, the release build).
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .context("neither HOME nor XDG_CACHE_HOME is set")?;
    Ok(cache.join("archivist"))
}

/// A client for the local cluster.
pub async fn client() -> anyhow::Result<Client> {
    let path = kubeconfig_path();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).with_context(|| {
        format!(
            "failed to read {} (is the local cluster up? run: e2e/local-cluster up)",
            path.display()
        )
    })?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .with_context(|| format!("invalid kubeconfig {}", path.display()))?;
    Client::try_from(config).context("failed to build the client")
}

/// A namespace name unique to this process: `e2e-<prefix>-<pid>-<n>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 10_000)
        .unwrap_or_default();
    format!("e2e-{prefix}-{}-{nanos}{n}", std::process::id())
}

/// Runs `body(client, namespace)` in a new namespace, deletes the namespace, then reports the
/// body's failure (an error or a panic) as a panic, so it fails the test.
pub async fn with_namespace<F, Fut>(prefix: &str, body: F)
where
    F: FnOnce(Client, String) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let client = match client().await {
        Ok(client) => client,
        Err(err) => panic!("{err:#}"),
    };
    let name = unique_name(prefix);
    let namespaces = Api::<Namespace>::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some([(TEST_NAMESPACE_LABEL.to_owned(), "true".to_owned())].into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    if let Err(err) = namespaces.create(&PostParams::default(), &namespace).await {
        panic!("failed to create namespace {name}: {err}");
    }
    let outcome = tokio::spawn(body(client.clone(), name.clone())).await;
    drop_archivist_finalizers(&client, &name).await;
    if let Err(err) = namespaces.delete(&name, &DeleteParams::background()).await {
        eprintln!("warning: failed to delete namespace {name}: {err}");
    }
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(err)) => panic!("test in namespace {name} failed: {err:#}"),
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(join) => panic!("test in namespace {name} was cancelled: {join}"),
    }
}

/// Drops the finalizers of the Archivist objects left in a test's namespace: the test's
/// operator is gone and would never remove them, and the namespace would stay Terminating
/// forever (dozens of them over an e2e run, each retried by the namespace controller, loading
/// the API server under the tests that follow). Best effort: a failure only leaves the
/// namespace behind.
async fn drop_archivist_finalizers(client: &Client, namespace: &str) {
    for (kind, plural) in [("BackupPolicy", "backuppolicies"), ("ArchiveBackup", "archivebackups"), ("RestoreRequest", "restorerequests")] {
        let resource = ApiResource {
            group: "archivist.dev".into(),
            version: "v1alpha1".into(),
            api_version: "archivist.dev/v1alpha1".into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource);
        let Ok(list) = api.list(&ListParams::default()).await else { continue };
        for object in list.items.iter().filter(|o| o.metadata.finalizers.as_ref().is_some_and(|f| !f.is_empty())) {
            let name = object.metadata.name.clone().unwrap_or_default();
            let patch = serde_json::json!({"metadata": {"finalizers": null}});
            if let Err(err) = api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                eprintln!("warning: failed to drop the finalizers of {kind} {namespace}/{name}: {err}");
            }
        }
    }
}

/// Waits until the object `name` satisfies `condition` (which also sees `None` while the object
/// does not exist), for at most `timeout`; returns the object as last seen.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    what: &str,
    condition: impl Fn(Option<&K>) -> bool,
) -> anyhow::Result<Option<K>>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    eventually(what, timeout, || async {
        let object = api
            .get_opt(name)
            .await
            .with_context(|| format!("failed to get {name}"))?;
        if condition(object.as_ref()) {
            Ok(Ok(object))
        } else {
            Ok(Err(format!("last seen: {object:#?}")))
        }
    })
    .await
}

/// Polls `check` every 100 ms until it returns `Ok(Ok(value))`, for at most `timeout`.
/// `Ok(Err(state))` means "not yet" (the last state is reported on timeout); `Err` aborts.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Result<T, String>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match check().await? {
            Ok(value) => return Ok(value),
            Err(state) => state,
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(anyhow!(
                "timed out after {timeout:?} waiting for {what}; {last}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
