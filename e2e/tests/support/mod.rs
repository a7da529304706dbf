//! Helpers for the end-to-end tests of the simulated node and kubelet: a client for the local
//! cluster, a namespace per test (deleted when dropped), waiting, exec.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, AttachParams, DeleteParams, PostParams};
use kube::runtime::wait::{await_condition, Condition};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::io::AsyncReadExt as _;

/// How long a test waits for one thing to happen.
pub const WAIT: Duration = Duration::from_secs(60);

/// A client for `$KUBECONFIG`, else `target/local-cluster/kubeconfig` of the repository.
pub async fn client() -> Client {
    let path = std::env::var_os("KUBECONFIG").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/local-cluster/kubeconfig")
    });
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("no kubeconfig at {} ({e}); run e2e/local-cluster up", path.display()));
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("kubeconfig");
    Client::try_from(config).expect("client")
}

/// A namespace of its own for one test; deleted (without waiting) when dropped.
pub struct TestNamespace {
    /// The client the test uses.
    pub client: Client,
    /// The namespace's name.
    pub name: String,
}

impl TestNamespace {
    /// Creates `<prefix>-<random>`.
    pub async fn create(prefix: &str) -> Self {
        let client = client().await;
        let suffix = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() & 0xffffff);
        let name = format!("{prefix}-{suffix}");
        let ns: Namespace = serde_json::from_value(serde_json::json!({ "metadata": { "name": name } })).unwrap();
        Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("create namespace");
        TestNamespace { client, name }
    }

    /// A namespaced API in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Creates an object from YAML in this namespace.
    pub async fn apply<K>(&self, yaml: &str) -> K
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let object: K = serde_yaml::from_str(yaml).expect("valid YAML");
        self.api::<K>().create(&PostParams::default(), &object).await.expect("create object")
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let (client, name) = (self.client.clone(), self.name.clone());
        // The test's runtime may be shutting down: delete from a runtime of our own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let _ = Api::<Namespace>::all(client).delete(&name, &DeleteParams::default()).await;
            });
        })
        .join();
    }
}

/// Waits (at most [`WAIT`]) until `condition` holds for object `name`.
pub async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, condition: impl Condition<K>)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    match tokio::time::timeout(WAIT, await_condition(api.clone(), name, condition)).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => panic!("watching {name} for {what} failed: {err}"),
        Err(_) => panic!("timed out after {WAIT:?} waiting for {name}: {what}"),
    }
}

/// The pod is Ready.
pub fn pod_ready(pod: Option<&Pod>) -> bool {
    pod.and_then(|p| p.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pod's phase is `phase`.
pub fn pod_phase(phase: &'static str) -> impl Condition<Pod> {
    move |pod: Option<&Pod>| pod.and_then(|p| p.status.as_ref()).and_then(|s| s.phase.as_deref()) == Some(phase)
}

/// Output of a command run in `container` of `pod` through the API server (kube-rs exec):
/// `(stdout, stderr, status)` where status is `Success` or `Failure`.
pub async fn exec(pods: &Api<Pod>, pod: &str, container: &str, command: &[&str]) -> (String, String, String) {
    let params = AttachParams::default().container(container).stdin(false).stdout(true).stderr(true);
    let mut attached = pods.exec(pod, command.iter().copied(), &params).await.expect("exec");
    let mut stdout = attached.stdout().expect("stdout");
    let mut stderr = attached.stderr().expect("stderr");
    let status = attached.take_status().expect("status");
    let (mut out, mut err) = (String::new(), String::new());
    let (read_out, read_err) = tokio::join!(stdout.read_to_string(&mut out), stderr.read_to_string(&mut err));
    read_out.expect("read stdout");
    read_err.expect("read stderr");
    let status = status.await.and_then(|s| s.status).unwrap_or_default();
    attached.join().await.expect("exec session");
    (out, err, status)
}
