//! The simulated kubelet: runs the pods bound to the node as bubblewrap processes and serves
//! exec and logs over HTTPS.
//!
//! - [`pod_worker`]: one task per pod: IP, volumes, init containers, containers, deletion.
//! - [`container`]: one container's process, restarts with backoff, probes.
//! - [`sandbox`], [`volumes`] ([`volume_sources`], [`volume_files`]), [`env`], [`downward`]:
//!   how a container's process is set up.
//! - [`probes`], [`status`], [`logs`]: readiness/liveness, pod status, log files.
//! - [`images`], [`in_cluster`]: containers from images of the local registry, with the
//!   service-account token and API server address an in-cluster client needs.
//! - [`server`]: the HTTPS endpoint (`/exec`, `/containerLogs`) the API server proxies to.

pub mod container;
pub mod downward;
pub mod env;
pub mod images;
pub mod in_cluster;
pub mod logs;
pub mod pod_worker;
pub mod probes;
pub mod sandbox;
pub mod server;
pub mod status;
pub mod volume_files;
pub mod volume_sources;
pub mod volumes;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{watcher, WatchStreamExt as _};
use kube::{Client, ResourceExt as _};
use tokio::sync::watch;

use self::logs::LogDir;
use self::sandbox::Sandbox;

/// The range pod IPs are taken from: `127.0.1.1` to `127.0.1.254`.
pub const POD_IP_PREFIX: &str = "127.0.1.";

/// Identifies a container for exec and logs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerKey {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The container's name.
    pub container: String,
}

/// A running instance of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    /// Restarts before this instance (numbers its log file).
    pub restart: i32,
    /// Its process group (bubblewrap's pid).
    pub pgid: u32,
}

impl ContainerHandle {
    /// A command that runs `argv` in the container's running instance (its mount and PID
    /// namespaces, environment, working directory), or in a fresh sandbox like it when the
    /// instance cannot be entered.
    pub fn exec_command(&self, argv: &[String]) -> tokio::process::Command {
        let init = self
            .running
            .borrow()
            .and_then(|i| sandbox::namespace_init(i.pgid));
        match init {
            Some(pid) => self.sandbox.enter_command(pid, argv),
            None => self.sandbox.command(argv),
        }
    }
}

/// What the HTTPS endpoint needs to know about a running (or finished) container.
#[derive(Debug)]
pub struct ContainerHandle {
    /// The container's sandbox (exec runs in it).
    pub sandbox: Sandbox,
    /// Its log files.
    pub logs: LogDir,
    /// The instance that runs now, if any.
    pub running: watch::Sender<Option<Instance>>,
}

/// State shared by the pod workers and the HTTPS endpoint.
pub struct Kubelet {
    /// Admin client of the local cluster.
    pub client: Client,
    /// The node's name.
    pub node_name: String,
    /// The cluster's state directory; pods live under `<state-dir>/pods`.
    pub state_dir: PathBuf,
    /// Images of the local registry, unpacked under `<state-dir>/images`.
    pub images: images::Images,
    /// How containers from images reach the API server.
    pub in_cluster: in_cluster::InCluster,
    ips: Mutex<IpPool>,
    containers: Mutex<BTreeMap<ContainerKey, Arc<ContainerHandle>>>,
}

impl Kubelet {
    /// A kubelet with no pods yet.
    pub fn new(client: Client, node_name: String, state_dir: PathBuf, registry: Option<String>, in_cluster: in_cluster::InCluster) -> Self {
        Kubelet {
            client,
            node_name,
            images: images::Images::new(registry, state_dir.join("images")),
            in_cluster,
            state_dir,
            ips: Mutex::default(),
            containers: Mutex::default(),
        }
    }

    /// Takes a free pod IP, `preferred` if it is free (a pod that already had one).
    pub fn allocate_ip(&self, preferred: Option<&str>) -> Option<String> {
        self.ips
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allocate(preferred)
    }

    /// Returns a pod IP to the pool.
    pub fn release_ip(&self, ip: &str) {
        self.ips
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .release(ip);
    }

    /// Makes a container reachable for exec and logs.
    pub fn register(&self, key: ContainerKey, handle: Arc<ContainerHandle>) {
        self.containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, handle);
    }

    /// Forgets a container, unless a newer pod of the same name registered it again.
    pub fn deregister(&self, key: &ContainerKey, handle: &Arc<ContainerHandle>) {
        let mut containers = self.containers.lock().unwrap_or_else(|e| e.into_inner());
        if containers.get(key).is_some_and(|h| Arc::ptr_eq(h, handle)) {
            containers.remove(key);
        }
    }

    /// The container, if the kubelet runs (or ran) it.
    pub fn container(&self, key: &ContainerKey) -> Option<Arc<ContainerHandle>> {
        self.containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }
}

/// The pod IPs in use (last octets of [`POD_IP_PREFIX`]).
#[derive(Debug, Default)]
pub struct IpPool(BTreeSet<u8>);

impl IpPool {
    /// Takes a free IP, `preferred` if it is free; `None` when all 254 are taken.
    pub fn allocate(&mut self, preferred: Option<&str>) -> Option<String> {
        let wanted = preferred
            .and_then(|ip| ip.strip_prefix(POD_IP_PREFIX))
            .and_then(|last| last.parse::<u8>().ok())
            .filter(|n| (1..=254).contains(n) && !self.0.contains(n));
        let octet = wanted.or_else(|| (1..=254).find(|n| !self.0.contains(n)))?;
        self.0.insert(octet);
        Some(format!("{POD_IP_PREFIX}{octet}"))
    }

    /// Returns an IP to the pool.
    pub fn release(&mut self, ip: &str) {
        if let Some(octet) = ip
            .strip_prefix(POD_IP_PREFIX)
            .and_then(|s| s.parse::<u8>().ok())
        {
            self.0.remove(&octet);
        }
    }
}

/// Serves the kubelet endpoint and runs every pod bound to `node_name` until the task ends.
pub async fn run(
    client: Client,
    node_name: String,
    state_dir: PathBuf,
    port: u16,
    registry: Option<String>,
    in_cluster: in_cluster::InCluster,
) -> anyhow::Result<()> {
    let kubelet = Arc::new(Kubelet::new(client.clone(), node_name.clone(), state_dir, registry, in_cluster));
    let server = tokio::spawn(server::serve(kubelet.clone(), port));
    let pods: Api<Pod> = Api::all(client);
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node_name}"));
    let mut events = watcher(pods, config).default_backoff().boxed();
    let mut workers: HashMap<String, watch::Sender<Option<Pod>>> = HashMap::new();
    let mut listed: BTreeSet<String> = BTreeSet::new();
    while let Some(event) = events.next().await {
        if server.is_finished() {
            break;
        }
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(error = %err, "pod watch error");
                continue;
            }
        };
        workers.retain(|_, tx| !tx.is_closed());
        match event {
            watcher::Event::Init => listed.clear(),
            watcher::Event::InitApply(pod) | watcher::Event::Apply(pod) => {
                let uid = pod.uid().unwrap_or_default();
                listed.insert(uid.clone());
                match workers.get(&uid) {
                    Some(tx) => {
                        let _ = tx.send(Some(pod));
                    }
                    None => {
                        let (tx, rx) = watch::channel(Some(pod));
                        tokio::spawn(pod_worker::run(kubelet.clone(), rx));
                        workers.insert(uid, tx);
                    }
                }
            }
            watcher::Event::Delete(pod) => {
                if let Some(tx) = workers.remove(&pod.uid().unwrap_or_default()) {
                    let _ = tx.send(None);
                }
            }
            watcher::Event::InitDone => {
                let gone: Vec<String> = workers
                    .keys()
                    .filter(|uid| !listed.contains(*uid))
                    .cloned()
                    .collect();
                for uid in gone {
                    if let Some(tx) = workers.remove(&uid) {
                        let _ = tx.send(None);
                    }
                }
            }
        }
    }
    match server.await {
        Ok(result) => result,
        Err(err) => Err(anyhow::anyhow!("kubelet server task failed: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_distinct_ips_and_reuses_released_ones() {
        let mut pool = IpPool::default();
        let a = pool.allocate(None).unwrap();
        let b = pool.allocate(Some("127.0.1.9")).unwrap();
        let c = pool.allocate(Some("127.0.1.9")).unwrap();
        assert_eq!(
            (a.as_str(), b.as_str(), c.as_str()),
            ("127.0.1.1", "127.0.1.9", "127.0.1.2")
        );
        pool.release(&a);
        assert_eq!(pool.allocate(None).unwrap(), "127.0.1.1");
        for _ in 0..251 {
            assert!(pool.allocate(None).is_some());
        }
        assert_eq!(pool.allocate(None), None);
    }
}
