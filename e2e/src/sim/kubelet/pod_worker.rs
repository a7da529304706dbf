//! One task per pod: allocate its IP, set its volumes and sandboxes up, run init containers
//! in order and then all containers, keep `status` current, and on deletion stop everything
//! and remove the pod object.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodSecurityContext, SecurityContext};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::ResourceExt as _;
use tokio::sync::{watch, Notify};

use super::container::{ContainerRun, Slot};
use super::logs::LogDir;
use super::images::{ImageConfig, ImageSource};
use super::in_cluster;
use super::sandbox::{Mount, Sandbox};
use super::status::{self, ContainerRecord, PodRuntime, State, Transitions};
use super::{env, volume_sources, volumes, ContainerHandle, ContainerKey, Kubelet};

/// How long to wait before retrying a pod whose volumes or configuration are not ready.
const PREPARE_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two pulls of an image that failed (doubling from
/// [`PREPARE_RETRY`]).
const MAX_PULL_BACKOFF: Duration = Duration::from_secs(20);

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
    /// Failed image pulls in a row (their backoff).
    pull_failures: std::sync::atomic::AtomicU32,
}

/// Runs the pod whose latest version `updates` carries (`None`: it is gone from the API).
pub async fn run(kubelet: Arc<Kubelet>, mut updates: watch::Receiver<Option<Pod>>) {
    let Some(pod) = updates.borrow_and_update().clone() else {
        return;
    };
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let uid = pod.uid().unwrap_or_default();
    let dir = kubelet
        .state_dir
        .join("pods")
        .join(format!("{namespace}_{name}_{uid}"));
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
        pull_failures: std::sync::atomic::AtomicU32::new(0),
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
        let first_wait = if init.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        self.update(|rt| {
            rt.restart_policy = self
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.restart_policy.clone())
                .unwrap_or_else(|| "Always".into());
            rt.pod_ip = Some(pod_ip.clone());
            rt.start_time = Some(Timestamp::now());
            rt.init = init
                .iter()
                .map(|c| {
                    ContainerRecord::new(
                        &c.name,
                        c.image.as_deref().unwrap_or(""),
                        "PodInitializing",
                    )
                })
                .collect();
            rt.containers = apps
                .iter()
                .map(|c| {
                    ContainerRecord::new(&c.name, c.image.as_deref().unwrap_or(""), first_wait)
                })
                .collect();
        });
        let sandboxes = loop {
            match self.prepare(&pod_ip).await {
                Ok(sandboxes) => break sandboxes,
                Err((reason, message)) => {
                    tracing::info!(pod = %self.name, %reason, %message, "pod not ready to start");
                    self.update(|rt| {
                        for record in rt.init.iter_mut().chain(rt.containers.iter_mut()) {
                            record.state = State::Waiting {
                                reason: reason.to_string(),
                                message: Some(message.clone()),
                            };
                        }
                    });
                    let mut stop = self.stop.subscribe();
                    // Doubling after failed pulls (a successful pull resets the count): 1 s
                    // for anything else.
                    let failures = self.pull_failures.load(std::sync::atomic::Ordering::Relaxed).min(5);
                    let retry = (PREPARE_RETRY * 2u32.pow(failures)).min(MAX_PULL_BACKOFF);
                    tokio::select! {
                        _ = tokio::time::sleep(retry) => {}
                        _ = stop.wait_for(|s| s.is_some()) => return self.kubelet.release_ip(&pod_ip),
                    }
                }
            }
        };
        let handle = |c: &Container| self.register(c, sandboxes.get(&c.name).cloned());
        for (i, spec) in init.iter().enumerate() {
            let exit = self
                .container_run(spec, Slot::Init(i), &pod_ip, handle(spec))
                .run()
                .await;
            if exit != Some(0) {
                return self.kubelet.release_ip(&pod_ip);
            }
        }
        let runs: Vec<_> = apps
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                tokio::spawn(
                    self.container_run(spec, Slot::App(i), &pod_ip, handle(spec))
                        .run(),
                )
            })
            .collect();
        for run in runs {
            let _ = run.await;
        }
        self.kubelet.release_ip(&pod_ip);
    }

    fn container_run(
        &self,
        spec: &Container,
        slot: Slot,
        pod_ip: &str,
        handle: Arc<ContainerHandle>,
    ) -> ContainerRun {
        ContainerRun {
            spec: spec.clone(),
            slot,
            pod_uid: self.uid.clone(),
            pod_ip: pod_ip.to_string(),
            restart_policy: self
                .runtime
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .restart_policy
                .clone(),
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
                ..Sandbox::default()
            }),
            logs: LogDir(self.dir.join("logs").join(&spec.name)),
            running,
        });
        let key = ContainerKey {
            namespace: self.namespace.clone(),
            pod: self.name.clone(),
            container: spec.name.clone(),
        };
        self.kubelet.register(key.clone(), handle.clone());
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, handle.clone()));
        handle
    }

    /// Volumes and one sandbox per container; `Err((waiting reason, message))` to retry.
    async fn prepare(
        &self,
        pod_ip: &str,
    ) -> Result<BTreeMap<String, Sandbox>, (&'static str, String)> {
        let creating = |e: &dyn std::fmt::Display| ("ContainerCreating", e.to_string());
        let sources = volume_sources::fetch_sources(&self.kubelet.client, &self.pod)
            .await
            .map_err(|e| creating(&format!("{e:#}")))?;
        let claims = volume_sources::claim_paths(&self.kubelet.client, &self.pod)
            .await
            .map_err(|e| creating(&e))?;
        let volume_dir = self.dir.join("volumes");
        let host_volumes = volumes::materialise(&self.pod, pod_ip, &volume_dir, &sources, &claims)
            .map_err(|e| match e {
                volumes::VolumeError::Config(e) => ("CreateContainerConfigError", e.to_string()),
                other => creating(&other),
            })?;
        let (init, apps) = self.spec_containers();
        let images = self.pull_images(init.iter().chain(apps.iter())).await?;
        // Containers from images get the in-cluster configuration (host programs never had it).
        let service_account = if images.values().any(|i| i.pulled().is_some()) {
            self.kubelet
                .in_cluster
                .project(&self.kubelet.client, &self.pod, &self.dir.join("serviceaccount"))
                .await
                .map_err(|e| creating(&format!("{e:#}")))?
        } else {
            None
        };
        let pod_security = self.pod.spec.as_ref().and_then(|s| s.security_context.clone()).unwrap_or_default();
        let mut sandboxes = BTreeMap::new();
        for spec in init.iter().chain(apps.iter()) {
            let config_error = |e: &dyn std::fmt::Display| {
                (
                    "CreateContainerConfigError",
                    format!("container {}: {e}", spec.name),
                )
            };
            let image = images.get(&spec.name).and_then(|i| i.pulled()).cloned();
            let mut base = Vec::new();
            if let Some(image) = &image {
                base.extend(image.config.env_pairs());
                base.extend(self.kubelet.in_cluster.env());
            }
            let env = env::container_env(spec, &self.pod, pod_ip, &sources, &base)
                .map_err(|e| config_error(&e))?;
            let mut mounts = volumes::container_mounts(spec, &host_volumes, &env)
                .map_err(|e| config_error(&e))?;
            let security = spec.security_context.clone().unwrap_or_default();
            let (user, read_only_root, image_dir) = match &image {
                None => (None, false, None),
                Some(image) => {
                    let user = container_user(&security, &pod_security, &image.config).map_err(|e| config_error(&e))?;
                    if let Some(dir) = &service_account {
                        if !mounts.iter().any(|m| m.target.trim_end_matches('/') == in_cluster::MOUNT_PATH) {
                            mounts.push(Mount { host: dir.clone(), target: in_cluster::MOUNT_PATH.into(), read_only: true });
                        }
                    }
                    (Some(user), security.read_only_root_filesystem == Some(true), image.config.working_dir.clone())
                }
            };
            let sandbox = Sandbox {
                rootfs: self.dir.join("rootfs").join(&spec.name),
                mounts,
                env,
                working_dir: spec
                    .working_dir
                    .clone()
                    .or(image_dir)
                    .filter(|w| !w.is_empty())
                    .unwrap_or_else(|| "/".into()),
                image,
                user,
                read_only_root,
            };
            sandbox
                .prepare_rootfs()
                .map_err(|e| creating(&format!("{e:#}")))?;
            sandboxes.insert(spec.name.clone(), sandbox);
        }
        Ok(sandboxes)
    }

    /// Resolves each container's image (pulling those of the local registry) and records its
    /// `imageID`. A failed pull is `ErrImagePull` the first time, `ImagePullBackOff` after.
    async fn pull_images<'a>(
        &self,
        specs: impl Iterator<Item = &'a Container>,
    ) -> Result<BTreeMap<String, ImageSource>, (&'static str, String)> {
        let mut resolved = BTreeMap::new();
        for spec in specs {
            let image = spec.image.clone().unwrap_or_default();
            match self.kubelet.images.resolve(&image).await {
                Ok(source) => {
                    let image_id = source.image_id(&image);
                    let name = spec.name.clone();
                    self.update(|rt| {
                        for record in rt.init.iter_mut().chain(rt.containers.iter_mut()).filter(|r| r.name == name) {
                            record.image_id = Some(image_id.clone());
                        }
                    });
                    resolved.insert(spec.name.clone(), source);
                }
                Err(err) => {
                    let failures = self.pull_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let reason = if failures == 0 { "ErrImagePull" } else { "ImagePullBackOff" };
                    return Err((reason, format!("failed to pull image {image:?}: {err:#}")));
                }
            }
        }
        self.pull_failures.store(0, std::sync::atomic::Ordering::Relaxed);
        Ok(resolved)
    }

    /// Writes the pod status whenever the runtime record changes (and it differs).
    async fn write_status(self: Arc<Self>) {
        let mut transitions = Transitions::default();
        let mut last_written = None;
        loop {
            self.changed.notified().await;
            let runtime = self
                .runtime
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if runtime.pod_ip.is_none() {
                continue;
            }
            let status = status::pod_status(&runtime, &mut transitions, Timestamp::now());
            let body = serde_json::json!({ "status": status });
            if last_written.as_ref() == Some(&body) {
                continue;
            }
            match self
                .pods()
                .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
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
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
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
        for (key, handle) in self
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            self.kubelet.deregister(&key, &handle);
        }
        if let Err(err) = std::fs::remove_dir_all(&self.dir) {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.dir.display(), error = %err, "removing the pod directory failed");
            }
        }
    }
}

/// The user and group a container from an image runs as: the container's `securityContext`,
/// then the pod's, then the image's `USER` (group 0 when none says). `runAsNonRoot` refuses
/// user 0, as a kubelet does.
fn container_user(container: &SecurityContext, pod: &PodSecurityContext, image: &ImageConfig) -> Result<(u32, u32), String> {
    let number = |v: Option<i64>, what: &str| -> Result<Option<u32>, String> {
        v.map(|n| u32::try_from(n).map_err(|_| format!("{what} {n} is out of range"))).transpose()
    };
    let from_image = image.numeric_user()?;
    let uid = number(container.run_as_user, "runAsUser")?
        .or(number(pod.run_as_user, "runAsUser")?)
        .or(from_image.map(|(u, _)| u))
        .unwrap_or(0);
    let gid = number(container.run_as_group, "runAsGroup")?
        .or(number(pod.run_as_group, "runAsGroup")?)
        .or(from_image.and_then(|(_, g)| g))
        .unwrap_or(0);
    if uid == 0 && container.run_as_non_root.or(pod.run_as_non_root) == Some(true) {
        return Err("runAsNonRoot is set and the container would run as root (uid 0)".into());
    }
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_runs_as_the_spec_says_then_as_the_image_says() {
        let image = |user: &str| ImageConfig { user: Some(user.into()), ..ImageConfig::default() };
        let container = |uid: Option<i64>, non_root: Option<bool>| SecurityContext { run_as_user: uid, run_as_non_root: non_root, ..SecurityContext::default() };
        let pod = |uid: Option<i64>, gid: Option<i64>| PodSecurityContext { run_as_user: uid, run_as_group: gid, ..PodSecurityContext::default() };
        let cases = [
            (container(None, None), pod(None, None), image("65532:65532"), Ok((65532, 65532))),
            (container(Some(1000), None), pod(Some(2000), Some(3000)), image("65532:65532"), Ok((1000, 3000))),
            (container(None, None), pod(Some(2000), None), image("65532"), Ok((2000, 0))),
            (container(None, None), pod(None, None), ImageConfig::default(), Ok((0, 0))),
            (container(None, Some(true)), pod(None, None), ImageConfig::default(), Err(())),
            (container(None, Some(true)), pod(None, None), image("65532"), Ok((65532, 0))),
            (container(Some(-1), None), pod(None, None), image("1"), Err(())),
            (container(None, None), pod(None, None), image("nobody"), Err(())),
        ];
        for (c, p, i, want) in cases {
            let got = container_user(&c, &p, &i);
            assert_eq!(got.as_ref().map_err(|_| ()), want.as_ref().map_err(|_| ()), "{c:?} {p:?} {i:?}: {got:?}");
        }
    }
}
