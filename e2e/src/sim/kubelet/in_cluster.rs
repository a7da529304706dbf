//! In-cluster configuration for containers from images: what a kubelet and the ServiceAccount
//! admission plugin give every pod, so that an unmodified in-cluster client
//! (`kube::Client::try_default()`, client-go's `rest.InClusterConfig`) works inside.
//!
//! - `/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}`: a token of the
//!   pod's ServiceAccount from the TokenRequest API, bound to the pod (it stops working when
//!   the pod goes; a pod that names no account gets an unbound token of `default`, since the
//!   ServiceAccount admission plugin that would name it is off), the cluster's CA and the
//!   pod's namespace. The token is valid for 24 hours and
//!   is not refreshed: a pod of the local cluster that lives longer needs a restart.
//! - `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`: the API server (pods share the
//!   host's network, so its loopback address works).
//!
//! Pods with `automountServiceAccountToken: false` (on the pod or its ServiceAccount) get the
//! variables but no files.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::ResourceExt as _;

/// Where the files are mounted in the container.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Lifetime of a projected token.
const TOKEN_SECONDS: i64 = 24 * 3600;

/// How containers reach the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InCluster {
    /// The API server's address as containers reach it (host or IP).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The cluster CA's PEM file on the host.
    pub ca_file: PathBuf,
}

impl InCluster {
    /// From the API server's URL (`https://127.0.0.1:6443`) and the CA file.
    pub fn from_url(url: &str, ca_file: PathBuf) -> anyhow::Result<Self> {
        let uri: http::Uri = url.parse().with_context(|| format!("invalid API server URL {url:?}"))?;
        let host = uri.host().with_context(|| format!("no host in {url:?}"))?.trim_matches(['[', ']']).to_string();
        let port = uri.port_u16().unwrap_or(443);
        Ok(InCluster { host, port, ca_file })
    }

    /// From the current cluster of the kubeconfig at `path` (the simulator's own).
    pub fn from_kubeconfig(path: &Path, ca_file: PathBuf) -> anyhow::Result<Self> {
        let kubeconfig = kube::config::Kubeconfig::read_from(path).with_context(|| format!("failed to read {}", path.display()))?;
        let server = kubeconfig
            .clusters
            .first()
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone())
            .with_context(|| format!("no cluster server in {}", path.display()))?;
        Self::from_url(&server, ca_file)
    }

    /// `KUBERNETES_SERVICE_HOST`, `KUBERNETES_SERVICE_PORT` (and the `_HTTPS` port) for the
    /// container's environment.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("KUBERNETES_SERVICE_HOST".into(), self.host.clone()),
            ("KUBERNETES_SERVICE_PORT".into(), self.port.to_string()),
            ("KUBERNETES_SERVICE_PORT_HTTPS".into(), self.port.to_string()),
        ]
    }

    /// Writes the service-account files of `pod` into `dir` (created) and returns it, or `None`
    /// when the pod (or its ServiceAccount) opts out of the token. A pod whose start is retried
    /// keeps the files of its first attempt (one TokenRequest per pod).
    pub async fn project(&self, client: &kube::Client, pod: &Pod, dir: &Path) -> anyhow::Result<Option<PathBuf>> {
        let namespace = pod.namespace().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        // The ServiceAccount admission plugin (off in the local cluster) would set `default`;
        // the API server binds a token only to a pod that names its account.
        let named = spec.service_account_name.clone().filter(|n| !n.is_empty());
        let account = named.clone().unwrap_or_else(|| "default".to_string());
        if spec.automount_service_account_token == Some(false) {
            return Ok(None);
        }
        if dir.join("namespace").is_file() {
            // Projected by an earlier attempt to start this pod (`namespace` is written last, so
            // it marks all three); the token is bound to this pod already.
            return Ok(Some(dir.to_path_buf()));
        }
        let accounts = Api::<ServiceAccount>::namespaced(client.clone(), &namespace);
        let found = accounts
            .get_opt(&account)
            .await
            .with_context(|| format!("failed to read ServiceAccount {namespace}/{account}"))?
            .with_context(|| format!("ServiceAccount {namespace}/{account} does not exist"))?;
        if spec.automount_service_account_token.is_none() && found.automount_service_account_token == Some(false) {
            return Ok(None);
        }
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: Vec::new(),
                expiration_seconds: Some(TOKEN_SECONDS),
                bound_object_ref: named.is_some().then(|| BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            ..TokenRequest::default()
        };
        let issued = accounts
            .create_token_request(&account, &PostParams::default(), &request)
            .await
            .with_context(|| format!("TokenRequest for ServiceAccount {namespace}/{account} failed"))?;
        let token = issued.status.map(|s| s.token).unwrap_or_default();
        anyhow::ensure!(!token.is_empty(), "TokenRequest for ServiceAccount {namespace}/{account} returned no token");
        let ca = tokio::fs::read(&self.ca_file)
            .await
            .with_context(|| format!("failed to read the cluster CA {}", self.ca_file.display()))?;
        tokio::fs::create_dir_all(dir).await.with_context(|| format!("failed to create {}", dir.display()))?;
        for (name, content) in [("token", token.into_bytes()), ("ca.crt", ca), ("namespace", namespace.into_bytes())] {
            tokio::fs::write(dir.join(name), content)
                .await
                .with_context(|| format!("failed to write {}", dir.join(name).display()))?;
        }
        Ok(Some(dir.to_path_buf()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_server_url_gives_the_service_variables() {
        let in_cluster = InCluster::from_url("https://127.0.0.1:6443", PathBuf::from("/ca.crt")).unwrap();
        assert_eq!(
            in_cluster.env(),
            vec![
                ("KUBERNETES_SERVICE_HOST".to_string(), "127.0.0.1".to_string()),
                ("KUBERNETES_SERVICE_PORT".to_string(), "6443".to_string()),
                ("KUBERNETES_SERVICE_PORT_HTTPS".to_string(), "6443".to_string()),
            ]
        );
        assert_eq!(InCluster::from_url("https://[::1]", PathBuf::new()).unwrap().host, "::1");
        assert!(InCluster::from_url("not a url at all", PathBuf::new()).is_err());
    }
}
