//! One container's life: start its process in the sandbox, relay its output to the log
//! file, run its probes, record exits and restart it with backoff as the policy says, and
//! stop it (SIGTERM, SIGKILL after the grace period) when the pod is deleted.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::{watch, Notify};

use super::env::expand;
use super::images::{image_argv, ImageConfig};
use super::probes::{self, ProbeTarget};
use super::sandbox;
use super::status::{ContainerRecord, PodRuntime, State, Termination};
use super::{logs, ContainerHandle, Instance};

/// First restart delay; doubles up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_secs(1);
/// Longest restart delay.
const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// An instance that ran this long resets the backoff.
const BACKOFF_RESET: Duration = Duration::from_secs(60);

/// Which list of the pod spec the container is in, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// `initContainers[i]`.
    Init(usize),
    /// `containers[i]`.
    App(usize),
}

/// Whether an instance that exited with `exit_code` is started again.
pub fn should_restart(slot: Slot, restart_policy: &str, exit_code: i32) -> bool {
    match (slot, restart_policy) {
        (_, "Never") => false,
        (Slot::Init(_), _) | (Slot::App(_), "OnFailure") => exit_code != 0,
        _ => true,
    }
}

/// The process a container runs, with `$(VAR)` expanded. From an image: the image's entrypoint
/// and cmd as `command` and `args` override them. For host programs: `command` + `args`;
/// `args` alone when there is no command; an idle process when there is neither.
pub fn argv(spec: &Container, env: &[(String, String)], image: Option<&ImageConfig>) -> Vec<String> {
    let defined: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let expand_all = |items: Option<&Vec<String>>| items.map(|v| v.iter().map(|a| expand(a, &defined)).collect::<Vec<_>>());
    if let Some(config) = image {
        let command = expand_all(spec.command.as_ref());
        let args = expand_all(spec.args.as_ref());
        return image_argv(config, command.as_deref(), args.as_deref());
    }
    let argv: Vec<String> = spec
        .command
        .iter()
        .flatten()
        .chain(spec.args.iter().flatten())
        .map(|a| expand(a, &defined))
        .collect();
    if argv.is_empty() {
        vec!["sleep".into(), "infinity".into()]
    } else {
        argv
    }
}

/// Everything one container's supervisor needs.
pub struct ContainerRun {
    /// The container's spec.
    pub spec: Container,
    /// Its place in the pod spec.
    pub slot: Slot,
    /// The pod's UID (for container ids).
    pub pod_uid: String,
    /// The pod's IP (probes).
    pub pod_ip: String,
    /// The pod's restart policy.
    pub restart_policy: String,
    /// The sandbox and log files (shared with exec and logs).
    pub handle: Arc<ContainerHandle>,
    /// The pod's runtime record, and the signal that it changed.
    pub runtime: Arc<Mutex<PodRuntime>>,
    /// Woken after every change of `runtime`.
    pub changed: Arc<Notify>,
    /// Becomes `Some(grace)` when the pod is being deleted.
    pub stop: watch::Receiver<Option<Duration>>,
}

impl ContainerRun {
    fn update(&self, f: impl FnOnce(&mut ContainerRecord)) {
        {
            let mut rt = self.runtime.lock().unwrap_or_else(|e| e.into_inner());
            let record = match self.slot {
                Slot::Init(i) => rt.init.get_mut(i),
                Slot::App(i) => rt.containers.get_mut(i),
            };
            if let Some(record) = record {
                f(record);
            }
        }
        self.changed.notify_one();
    }

    fn stopping(&self) -> Option<Duration> {
        *self.stop.borrow()
    }

    /// Runs the container until it ends for good (`Some(exit code)`) or the pod is being
    /// deleted (`None` when it never ran to an exit of its own).
    pub async fn run(mut self) -> Option<i32> {
        let sandbox = &self.handle.sandbox;
        let argv = argv(&self.spec, &sandbox.env, sandbox.image.as_deref().map(|i| &i.config));
        let mut restarts = 0;
        let mut backoff = BASE_BACKOFF;
        loop {
            if self.stopping().is_some() {
                return None;
            }
            let started = Instant::now();
            let started_at = Timestamp::now();
            let container_id = format!("sim://{}/{}/{restarts}", self.pod_uid, self.spec.name);
            let (exit_code, stopped) = self
                .run_instance(&argv, restarts, started_at, &container_id)
                .await;
            let termination = Termination {
                exit_code,
                reason: Termination::reason_for(exit_code).to_string(),
                started_at,
                finished_at: Timestamp::now(),
                container_id,
            };
            tracing::info!(container = %self.spec.name, pod_uid = %self.pod_uid, exit_code, "container exited");
            if stopped || !should_restart(self.slot, &self.restart_policy, exit_code) {
                self.update(|r| {
                    r.state = State::Terminated(termination);
                    r.ready = false;
                });
                return (!stopped).then_some(exit_code);
            }
            if started.elapsed() > BACKOFF_RESET {
                backoff = BASE_BACKOFF;
            }
            self.update(|r| {
                r.last = Some(termination);
                r.ready = false;
                r.state = State::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: Some(format!(
                        "back-off {}s restarting failed container",
                        backoff.as_secs()
                    )),
                };
            });
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.wait_for(|s| s.is_some()) => return None,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            restarts += 1;
            self.update(|r| r.restart_count = restarts);
        }
    }

    /// Runs one instance; returns its exit code and whether it was stopped by deletion.
    async fn run_instance(
        &mut self,
        argv: &[String],
        restart: i32,
        started_at: Timestamp,
        id: &str,
    ) -> (i32, bool) {
        let log = match logs::open(&self.handle.logs.instance(restart)).await {
            Ok(log) => log,
            Err(err) => return (self.start_error(&format!("{err:#}")), false),
        };
        // stdout and stderr share one pipe, so the log keeps the order the process wrote in.
        let output = match output_pipe() {
            Ok(output) => output,
            Err(err) => {
                return (
                    self.start_error(&format!("failed to create the output pipe: {err}")),
                    false,
                )
            }
        };
        let (reader, out, err) = output;
        let mut command = self.handle.sandbox.command(argv);
        command.stdout(out).stderr(err);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) => {
                return (
                    self.start_error(&format!("failed to start bwrap: {err}")),
                    false,
                )
            }
        };
        // Drop our copies of the write end (inside `command`), so EOF comes when the process ends.
        drop(command);
        let pgid = child.id().unwrap_or(0);
        let relays = vec![tokio::spawn(logs::relay(reader, "stdout", log.clone()))];
        let _ = self
            .handle
            .running
            .send_replace(Some(Instance { restart, pgid }));
        let has_readiness = self.spec.readiness_probe.is_some();
        self.update(|r| {
            r.state = State::Running {
                started_at,
                container_id: id.to_string(),
            };
            r.ready = !has_readiness;
        });
        let probe_tasks = self.spawn_probes(pgid);

        let mut stop = self.stop.clone();
        let (status, stopped) = tokio::select! {
            status = child.wait() => (status, false),
            grace = async { stop.wait_for(|s| s.is_some()).await.ok().and_then(|g| *g).unwrap_or_default() } => {
                sandbox::signal_container(pgid, libc::SIGTERM);
                let status = match tokio::time::timeout(grace, child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        sandbox::kill_group(pgid);
                        child.wait().await
                    }
                };
                (status, true)
            }
        };
        // Whatever the main process left behind dies with its PID namespace; make sure.
        sandbox::kill_group(pgid);
        for task in probe_tasks {
            task.abort();
        }
        for relay in relays {
            let _ = tokio::time::timeout(Duration::from_secs(2), relay).await;
        }
        let _ = self.handle.running.send_replace(None);
        let code = match status {
            Ok(status) => {
                use std::os::unix::process::ExitStatusExt as _;
                status
                    .code()
                    .or_else(|| status.signal().map(|s| 128 + s))
                    .unwrap_or(255)
            }
            Err(_) => 255,
        };
        (code, stopped)
    }

    /// Records a failure to start (the instance counts as exited with 128).
    fn start_error(&self, message: &str) -> i32 {
        tracing::warn!(container = %self.spec.name, %message, "container failed to start");
        128
    }

    /// Starts the readiness and liveness probe loops of the current instance.
    fn spawn_probes(&self, pgid: u32) -> Vec<tokio::task::JoinHandle<()>> {
        let target = ProbeTarget {
            pod_ip: self.pod_ip.clone(),
            ports: self.spec.ports.clone().unwrap_or_default(),
            sandbox: self.handle.sandbox.clone(),
            pgid,
        };
        let mut tasks = Vec::new();
        if let Some(probe) = self.spec.readiness_probe.clone() {
            let (runtime, changed, slot, target) = (
                self.runtime.clone(),
                self.changed.clone(),
                self.slot,
                target.clone(),
            );
            tasks.push(tokio::spawn(async move {
                probes::watch(&probe, &target, false, |ready| {
                    let mut rt = runtime.lock().unwrap_or_else(|e| e.into_inner());
                    if let Slot::App(i) = slot {
                        if let Some(record) = rt.containers.get_mut(i) {
                            record.ready = ready;
                        }
                    }
                    drop(rt);
                    changed.notify_one();
                })
                .await;
            }));
        }
        if let Some(probe) = self.spec.liveness_probe.clone() {
            let name = self.spec.name.clone();
            tasks.push(tokio::spawn(async move {
                probes::watch(&probe, &target, true, |alive| {
                    if !alive {
                        tracing::info!(container = %name, "liveness probe failed; killing the container");
                        sandbox::kill_group(pgid);
                    }
                })
                .await;
            }));
        }
        tasks
    }
}

/// A pipe for a process's output: the read end, and the write end twice (stdout, stderr).
fn output_pipe() -> std::io::Result<(tokio::net::unix::pipe::Receiver, Stdio, Stdio)> {
    let (sender, receiver) = tokio::net::unix::pipe::pipe()?;
    let write = sender.into_blocking_fd()?;
    let write_again = write.try_clone()?;
    Ok((receiver, Stdio::from(write), Stdio::from(write_again)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_rules() {
        assert!(should_restart(Slot::App(0), "Always", 0));
        assert!(should_restart(Slot::App(0), "Always", 1));
        assert!(!should_restart(Slot::App(0), "OnFailure", 0));
        assert!(should_restart(Slot::App(0), "OnFailure", 1));
        assert!(!should_restart(Slot::App(0), "Never", 1));
        assert!(!should_restart(Slot::Init(0), "Always", 0));
        assert!(should_restart(Slot::Init(0), "Always", 2));
        assert!(!should_restart(Slot::Init(0), "Never", 2));
    }

    #[test]
    fn argv_defaults_and_expansion() {
        let env = vec![("NAME".to_string(), "web".to_string())];
        assert_eq!(argv(&Container::default(), &env, None), vec!["sleep", "infinity"]);
        let spec = Container {
            command: Some(vec!["echo".into()]),
            args: Some(vec!["$(NAME)".into(), "$(OTHER)".into()]),
            ..Default::default()
        };
        assert_eq!(argv(&spec, &env, None), vec!["echo", "web", "$(OTHER)"]);
        let args_only = Container {
            args: Some(vec!["true".into()]),
            ..Default::default()
        };
        assert_eq!(argv(&args_only, &env, None), vec!["true"]);
    }
}
