//! One task per pod: allocate its IP, set its volumes and sandboxes up, run init containers
//! in order and then all containers, keep `status` current, and on deletion stop everything
//! and remove the pod object.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::ResourceExt as _;
use tokio::sync::{watch, Notify};

use super::container::{ContainerRun, Slot};
use super::logs::LogDir;
use super::sandbox::Sandbox;
use super::status::{self, ContainerRecord, PodRuntime, State, Transitions};
use super::{env, volumes, ContainerHandle, ContainerKey, Kubelet};

/// How long to wait before retrying a pod whose volumes or configuration are not ready.
const PREPARE_RETRY: Duration = Duration::from_secs(1);

/// A pod being run by the kubelet.
struct PodWorker {
    kubelet: Arc<Kubelet>,
    pod: Pod,
    namespace: String,
    name: String,
    uid: String,
    dir: PathBuf,
    runtime: Arc<Mutex<PodRuntime>>,
    changed: Arc<Notify>,
    stop: watch::Sender<Option<Duration>>,
    handles: Mutex<Vec<(ContainerKey, Arc<ContainerHandle>)>>,
}

/// Runs the pod whose latest version `updates` carries (`None`: it is gone from the API).
pub async fn run(kubelet: Arc<Kubelet>, mut updates: watch::Receiver<Option<Pod>>) {
    let Some(pod) = updates.borrow_and_update().clone() else { return };
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let uid = pod.uid().unwrap_or_default();
    let dir = kubelet.state_dir.join("pods").join(format!("{namespace}_{name}_{uid}"));
    let (stop, _) = watch::channel(None);
    let worker = Arc::new(PodWorker {
        kubelet,
        pod,
        namespace,
        name,
        uid,
        dir,
        runtime: Arc::default(),
        changed: Arc::default(),
        stop,
        handles: Mutex::default(),
    });
    let terminal = matches!(
        worker.pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    );
    let status_writer = tokio::spawn(worker.clone().write_status());
    let lifecycle = {
        let worker = worker.clone();
        async move {
            if !terminal {
                worker.lifecycle().await;
            }
        }
    };
    tokio::pin!(lifecycle);
    let mut lifecycle_done = false;
    let deletion = loop {
        tokio::select! {
            _ = &mut lifecycle, if !lifecycle_done => lifecycle_done = true,
            changed = updates.changed() => {
                let current = if changed.is_ok() { updates.borrow_and_update().clone() } else { None };
                match current {
                    None => break None,
                    Some(pod) if pod.metadata.deletion_timestamp.is_some() => {
                        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(30).max(0);
                        break Some(Duration::from_secs(u64::try_from(grace).unwrap_or(0)));
                    }
                    Some(_) => {}
                }
            }
        }
    };
    // Gone from the API (force-deleted): stop at once; else honour the grace period.
    let grace = deletion.unwrap_or_default();
    worker.stop.send_replace(Some(grace));
    if !lifecycle_done {
        let _ = tokio::time::timeout(grace + Duration::from_secs(5), &mut lifecycle).await;
    }
    status_writer.abort();
    if deletion.is_some() {
        worker.delete_object().await;
    }
    worker.cleanup();
}

impl PodWorker {
    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.kubelet.client.clone(), &self.namespace)
    }

    fn update(&self, f: impl FnOnce(&mut PodRuntime)) {
        f(&mut self.runtime.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.notify_one();
    }

    fn spec_containers(&self) -> (Vec<Container>, Vec<Container>) {
        let spec = self.pod.spec.clone().unwrap_or_default();
        (spec.init_containers.unwrap_or_default(), spec.containers)
    }

    /// IP, volumes, init containers, then all containers until they end for good.
    async fn lifecycle(self: Arc<Self>) {
        let preferred = self.pod.status.as_ref().and_then(|s| s.pod_ip.clone());
        let Some(pod_ip) = self.kubelet.allocate_ip(preferred.as_deref()) else {
            tracing::error!(pod = %self.name, "no free pod IP in 127.0.1.0/24");
            return;
        };
        let (init, apps) = self.spec_containers();
        let first_wait = if init.is_empty() { "ContainerCreating" } else { "PodInitializing" };
        self.update(|rt| {
            rt.restart_policy = self.pod.spec.as_ref().and_then(|s| s.restart_policy.clone()).unwrap_or_else(|| "Always".into());
            rt.pod_ip = Some(pod_ip.clone());
            rt.start_time = Some(Timestamp::now());
            rt.init = init.iter().map(|c| ContainerRecord::new(&c.name, c.image.as_deref().unwrap_or(""), "PodInitializing")).collect();
            rt.containers = apps.iter().map(|c| ContainerRecord::new(&c.name, c.image.as_deref().unwrap_or(""), first_wait)).collect();
        });
        let sandboxes = loop {
            match self.prepare(&pod_ip).await {
                Ok(sandboxes) => break sandboxes,
                Err((reason, message)) => {
                    tracing::info!(pod = %self.name, %reason, %message, "pod not ready to start");
                    self.update(|rt| {
                        for record in rt.init.iter_mut().chain(rt.containers.iter_mut()) {
                            record.state = State::Waiting { reason: reason.to_string(), message: Some(message.clone()) };
                        }
                    });
                    let mut stop = self.stop.subscribe();
                    tokio::select! {
                        _ = tokio::time::sleep(PREPARE_RETRY) => {}
                        _ = stop.wait_for(|s| s.is_some()) => return self.kubelet.release_ip(&pod_ip),
                    }
                }
            }
        };
        let handle = |c: &Container| self.register(c, sandboxes.get(&c.name).cloned());
        for (i, spec) in init.iter().enumerate() {
            let exit = self.container_run(spec, Slot::Init(i), &pod_ip, handle(spec)).run().await;
            if exit != Some(0) {
                return self.kubelet.release_ip(&pod_ip);
            }
        }
        let runs: Vec<_> =
            apps.iter().enumerate().map(|(i, spec)| tokio::spawn(self.container_run(spec, Slot::App(i), &pod_ip, handle(spec)).run())).collect();
        for run in runs {
            let _ = run.await;
        }
        self.kubelet.release_ip(&pod_ip);
    }

    fn container_run(&self, spec: &Container, slot: Slot, pod_ip: &str, handle: Arc<ContainerHandle>) -> ContainerRun {
        ContainerRun {
            spec: spec.clone(),
            slot,
            pod_uid: self.uid.clone(),
            pod_ip: pod_ip.to_string(),
            restart_policy: self.runtime.lock().unwrap_or_else(|e| e.into_inner()).restart_policy.clone(),
            handle,
            runtime: self.runtime.clone(),
            changed: self.changed.clone(),
            stop: self.stop.subscribe(),
        }
    }

    /// Registers the container for exec and logs.
    fn register(&self, spec: &Container, sandbox: Option<Sandbox>) -> Arc<ContainerHandle> {
        let (running, _) = watch::channel(None);
        let handle = Arc::new(ContainerHandle {
            sandbox: sandbox.unwrap_or_else(|| Sandbox {
                rootfs: self.dir.join("rootfs").join(&spec.name),
                mounts: vec![],
                env: vec![],
                working_dir: "/".into(),
            }),
            logs: LogDir(self.dir.join("logs").join(&spec.name)),
            running,
        });
        let key = ContainerKey { namespace: self.namespace.clone(), pod: self.name.clone(), container: spec.name.clone() };
        self.kubelet.register(key.clone(), handle.clone());
        self.handles.lock().unwrap_or_else(|e| e.into_inner()).push((key, handle.clone()));
        handle
    }

    /// Volumes and one sandbox per container; `Err((waiting reason, message))` to retry.
    async fn prepare(&self, pod_ip: &str) -> Result<BTreeMap<String, Sandbox>, (&'static str, String)> {
        let creating = |e: &dyn std::fmt::Display| ("ContainerCreating", e.to_string());
        let sources = volumes::fetch_sources(&self.kubelet.client, &self.pod).await.map_err(|e| creating(&format!("{e:#}")))?;
        let claims = volumes::claim_paths(&self.kubelet.client, &self.pod).await.map_err(|e| creating(&e))?;
        let volume_dir = self.dir.join("volumes");
        let host_volumes = volumes::materialise(&self.pod, pod_ip, &volume_dir, &sources, &claims).map_err(|e| match e {
            volumes::VolumeError::Config(e) => ("CreateContainerConfigError", e.to_string()),
            other => creating(&other),
        })?;
        let (init, apps) = self.spec_containers();
        let mut sandboxes = BTreeMap::new();
        for spec in init.iter().chain(apps.iter()) {
            let config_error = |e: &dyn std::fmt::Display| ("CreateContainerConfigError", format!("container {}: {e}", spec.name));
            let env = env::container_env(spec, &self.pod, pod_ip, &sources).map_err(|e| config_error(&e))?;
            let mounts = volumes::container_mounts(spec, &host_volumes, &env).map_err(|e| config_error(&e))?;
            let sandbox = Sandbox {
                rootfs: self.dir.join("rootfs").join(&spec.name),
                mounts,
                env,
                working_dir: spec.working_dir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into()),
            };
            sandbox.prepare_rootfs().map_err(|e| creating(&format!("{e:#}")))?;
            sandboxes.insert(spec.name.clone(), sandbox);
        }
        Ok(sandboxes)
    }

    /// Writes the pod status whenever the runtime record changes (and it differs).
    async fn write_status(self: Arc<Self>) {
        let mut transitions = Transitions::default();
        let mut last_written = None;
        loop {
            self.changed.notified().await;
            let runtime = self.runtime.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if runtime.pod_ip.is_none() {
                continue;
            }
            let status = status::pod_status(&runtime, &mut transitions, Timestamp::now());
            let body = serde_json::json!({ "status": status });
            if last_written.as_ref() == Some(&body) {
                continue;
            }
            match self.pods().patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&body)).await {
                Ok(_) => last_written = Some(body),
                Err(kube::Error::Api(s)) if s.code == 404 => return,
                Err(err) => {
                    tracing::warn!(pod = %self.name, error = %err, "status update failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    self.changed.notify_one();
                }
            }
        }
    }

    /// Removes the pod object once its processes are gone (grace period 0, same UID only).
    async fn delete_object(&self) {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions { uid: Some(self.uid.clone()), resource_version: None }),
            ..Default::default()
        };
        match self.pods().delete(&self.name, &params).await {
            Ok(_) => tracing::info!(pod = %self.name, namespace = %self.namespace, "pod deleted"),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(err) => tracing::warn!(pod = %self.name, error = %err, "deleting the pod failed"),
        }
    }

    /// Forgets the pod's containers and removes its sandbox directory.
    fn cleanup(&self) {
        for (key, handle) in self.handles.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            self.kubelet.deregister(&key, &handle);
        }
        if let Err(err) = std::fs::remove_dir_all(&self.dir) {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.dir.display(), error = %err, "removing the pod directory failed");
            }
        }
    }
}
