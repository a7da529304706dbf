//! What every reconcile shares: the client, the Event recorder, and what this process drives.

use crate::metrics::Metrics;
use kube::runtime::events::{Recorder, Reporter};
use kube::Client;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Shared state of the controllers.
pub struct Context {
    /// The API client: every request and watch (HTTP/2 where offered, `kube::client`).
    pub client: Client,
    /// The client for `pods/exec` (freeze and thaw hooks), HTTP/1.1 for the WebSocket.
    pub exec_client: Client,
    /// Publishes Events as `archivist`.
    pub recorder: Recorder,
    /// The exported metrics.
    pub metrics: Arc<Metrics>,
    /// The one namespace watched (`archivist run --namespace`); `None`: every namespace.
    pub namespace: Option<String>,
    /// Exponential backoff of failed reconciles, per object.
    pub backoff: super::backoff::Backoff,
    /// The shared caches (`controllers::caches`).
    pub caches: super::caches::Caches,
    /// Set on SIGTERM: no run starts, and runs that hold an archive quiesced release it.
    shutting_down: AtomicBool,
    /// UIDs of the backup runs this process has driven. A run in an active phase that is not
    /// here was left by an earlier operator process: the archive is released first.
    driven: Mutex<HashSet<String>>,
}

impl Context {
    /// A context for `clients`, recording into `metrics`, reading `caches`.
    pub fn new(clients: crate::kube::client::ApiClients, metrics: Arc<Metrics>, namespace: Option<String>, caches: super::caches::Caches) -> Self {
        let instance = std::env::var("POD_NAME").ok().or_else(|| std::env::var("HOSTNAME").ok());
        let reporter = Reporter { controller: "archivist".into(), instance };
        let crate::kube::client::ApiClients { api: client, exec: exec_client } = clients;
        Self { recorder: Recorder::new(client.clone(), reporter), client, exec_client, metrics, namespace, backoff: Default::default(), caches, shutting_down: AtomicBool::new(false), driven: Mutex::new(HashSet::new()) }
    }

    /// An API for kind `K` in the watched scope: one namespace, or all.
    pub fn watched<K>(&self) -> kube::Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match &self.namespace {
            Some(ns) => kube::Api::namespaced(self.client.clone(), ns),
            None => kube::Api::all(self.client.clone()),
        }
    }

    /// Records that the operator is shutting down.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Whether the operator is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Whether this process has driven the run `uid`.
    pub fn drives(&self, uid: &str) -> bool {
        self.driven.lock().map(|set| set.contains(uid)).unwrap_or(false)
    }

    /// Records that this process drives the run `uid` (or no longer does).
    pub fn set_driven(&self, uid: &str, driven: bool) {
        if let Ok(mut set) = self.driven.lock() {
            if driven {
                set.insert(uid.to_string());
            } else {
                set.remove(uid);
            }
        }
    }
}
