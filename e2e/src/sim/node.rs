//! The simulated Node: created once, then its status (Ready condition, addresses, kubelet
//! endpoint, capacity) is refreshed on a heartbeat so it stays Ready.

use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use std::collections::BTreeMap;

/// How often the Ready condition's heartbeat is renewed.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// The address every simulated endpoint listens on; also the node's `InternalIP`.
pub const NODE_IP: &str = "127.0.0.1";

/// Maximum number of pods the node advertises.
const MAX_PODS: u32 = 110;

/// Registers the node and keeps it Ready until the task is dropped.
pub async fn run(client: Client, node_name: String, kubelet_port: u16) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client);
    ensure_node(&nodes, &node_name).await?;
    let started = Timestamp::now();
    let mut ticker = tokio::time::interval(HEARTBEAT);
    loop {
        ticker.tick().await;
        let status = node_status(kubelet_port, started, Timestamp::now());
        let patch = serde_json::json!({ "status": status });
        if let Err(err) = nodes
            .patch_status(&node_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            // A missed heartbeat is not fatal: the node controller is disabled, and the next
            // tick retries. Recreate the node if someone deleted it.
            tracing::warn!(node = %node_name, error = %err, "node heartbeat failed");
            if let Err(err) = ensure_node(&nodes, &node_name).await {
                tracing::warn!(node = %node_name, error = %err, "re-registering the node failed");
            }
        }
    }
}

/// Creates the Node object if it does not exist yet.
async fn ensure_node(nodes: &Api<Node>, name: &str) -> anyhow::Result<()> {
    if nodes
        .get_opt(name)
        .await
        .with_context(|| format!("failed to read node {name}"))?
        .is_some()
    {
        return Ok(());
    }
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), name.to_string()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        (
            "kubernetes.io/arch".to_string(),
            std::env::consts::ARCH.replace("x86_64", "amd64"),
        ),
    ]);
    let node = Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    };
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(err) => Err(err).with_context(|| format!("failed to create node {name}")),
    }
}

/// The node's status at `now`: Ready, reachable at [`NODE_IP`]:`kubelet_port`.
pub fn node_status(kubelet_port: u16, started: Timestamp, now: Timestamp) -> NodeStatus {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let memory_kib = memory_kib().unwrap_or(1024 * 1024);
    let resources = BTreeMap::from([
        ("cpu".to_string(), Quantity(cpus.to_string())),
        ("memory".to_string(), Quantity(format!("{memory_kib}Ki"))),
        ("pods".to_string(), Quantity(MAX_PODS.to_string())),
        (
            "ephemeral-storage".to_string(),
            Quantity("100Gi".to_string()),
        ),
    ]);
    NodeStatus {
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: NODE_IP.into(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: "localhost".into(),
            },
        ]),
        allocatable: Some(resources.clone()),
        capacity: Some(resources),
        conditions: Some(vec![NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: Some("KubeletReady".into()),
            message: Some("archivist-sim kubelet is posting ready status".into()),
            last_heartbeat_time: Some(Time(now)),
            last_transition_time: Some(Time(started)),
        }]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(kubelet_port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: std::env::consts::ARCH.replace("x86_64", "amd64"),
            boot_id: String::new(),
            container_runtime_version: "bubblewrap://archivist-sim".into(),
            kernel_version: String::new(),
            kube_proxy_version: String::new(),
            kubelet_version: "v1.20.2-archivist-sim".into(),
            machine_id: String::new(),
            operating_system: "linux".into(),
            os_image: "archivist-sim".into(),
            system_uuid: String::new(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Total memory of the host in KiB, from `/proc/meminfo`.
fn memory_kib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_ready_and_names_the_kubelet_port() {
        let now = Timestamp::now();
        let status = node_status(10350, now, now);
        let ready = &status.conditions.unwrap()[0];
        assert_eq!(
            (ready.type_.as_str(), ready.status.as_str()),
            ("Ready", "True")
        );
        assert_eq!(
            status
                .daemon_endpoints
                .unwrap()
                .kubelet_endpoint
                .unwrap()
                .port,
            10350
        );
        let addresses = status.addresses.unwrap();
        assert!(addresses
            .iter()
            .any(|a| a.type_ == "InternalIP" && a.address == "127.0.0.1"));
        assert!(status.capacity.unwrap().contains_key("pods"));
    }

    #[test]
    fn reads_memory_from_proc() {
        assert!(memory_kib().is_some_and(|kib| kib > 0));
    }
}
