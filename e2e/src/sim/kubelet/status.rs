//! What the kubelet knows about a pod's containers, and the pod status derived from it: the
//! phase (the real kubelet's `getPhase` rules), conditions and container statuses.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// How a container instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// Exit code (128 + signal when killed by a signal).
    pub exit_code: i32,
    /// `Completed`, `Error` or `StartError`.
    pub reason: String,
    /// When the instance started.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Timestamp,
    /// The instance's id.
    pub container_id: String,
}

impl Termination {
    /// The Kubernetes reason for an exit code.
    pub fn reason_for(exit_code: i32) -> &'static str {
        if exit_code == 0 {
            "Completed"
        } else {
            "Error"
        }
    }
}

/// A container's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not running: being created, in restart backoff, or misconfigured.
    Waiting {
        /// `ContainerCreating`, `PodInitializing`, `CrashLoopBackOff`, `CreateContainerConfigError`...
        reason: String,
        /// Details for a person.
        message: Option<String>,
    },
    /// Its process runs.
    Running {
        /// When the current instance started.
        started_at: Timestamp,
        /// The instance's id.
        container_id: String,
    },
    /// Ended and will not be restarted (or not yet).
    Terminated(Termination),
}

/// The kubelet's record of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRecord {
    /// Container name.
    pub name: String,
    /// The spec's image (reported back).
    pub image: String,
    /// The pulled image's `imageID`; `None`: host programs (`host://<image>`).
    pub image_id: Option<String>,
    /// Current state.
    pub state: State,
    /// The previous instance's end, if it was restarted.
    pub last: Option<Termination>,
    /// Restarts so far.
    pub restart_count: i32,
    /// Readiness (running and its readiness probe passes).
    pub ready: bool,
}

impl ContainerRecord {
    /// A container that has not started yet.
    pub fn new(name: &str, image: &str, waiting_reason: &str) -> Self {
        ContainerRecord {
            name: name.to_string(),
            image: image.to_string(),
            image_id: None,
            state: State::Waiting {
                reason: waiting_reason.to_string(),
                message: None,
            },
            last: None,
            restart_count: 0,
            ready: false,
        }
    }
}

/// Everything the pod status is computed from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodRuntime {
    /// Init containers, in spec order.
    pub init: Vec<ContainerRecord>,
    /// App containers, in spec order.
    pub containers: Vec<ContainerRecord>,
    /// The pod's IP once allocated.
    pub pod_ip: Option<String>,
    /// When the kubelet accepted the pod.
    pub start_time: Option<Timestamp>,
    /// `Always`, `OnFailure` or `Never`.
    pub restart_policy: String,
}

/// The pod phase, following the kubelet's rules.
pub fn phase(rt: &PodRuntime) -> &'static str {
    let (mut pending_init, mut failed_init) = (0, 0);
    for c in &rt.init {
        match &c.state {
            State::Terminated(t) if t.exit_code == 0 => {}
            State::Terminated(_) => failed_init += 1,
            State::Waiting { .. } if c.last.as_ref().is_some_and(|t| t.exit_code != 0) => {
                failed_init += 1
            }
            _ => pending_init += 1,
        }
    }
    if failed_init > 0 && rt.restart_policy == "Never" {
        return "Failed";
    }
    if pending_init > 0 || failed_init > 0 {
        return "Pending";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in &rt.containers {
        match &c.state {
            State::Running { .. } => running += 1,
            State::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            State::Waiting { .. } if c.last.is_some() => stopped += 1,
            State::Waiting { .. } => waiting += 1,
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        if rt.restart_policy == "Always" {
            "Running"
        } else if stopped == succeeded {
            "Succeeded"
        } else if rt.restart_policy == "Never" {
            "Failed"
        } else {
            "Running"
        }
    } else {
        "Pending"
    }
}

/// Condition types with their status, reason (when false) in Kubernetes' order.
pub fn conditions(rt: &PodRuntime) -> Vec<(&'static str, bool, Option<&'static str>)> {
    let initialized = rt
        .init
        .iter()
        .all(|c| matches!(&c.state, State::Terminated(t) if t.exit_code == 0));
    let terminal = matches!(phase(rt), "Succeeded" | "Failed");
    let ready = !terminal && !rt.containers.is_empty() && rt.containers.iter().all(|c| c.ready);
    let not_ready = if terminal {
        Some("PodCompleted")
    } else {
        Some("ContainersNotReady")
    };
    vec![
        (
            "Initialized",
            initialized,
            (!initialized).then_some("ContainersNotInitialized"),
        ),
        ("Ready", ready, if ready { None } else { not_ready }),
        (
            "ContainersReady",
            ready,
            if ready { None } else { not_ready },
        ),
        ("PodScheduled", true, None),
    ]
}

/// Remembers when each condition last changed, so `lastTransitionTime` is stable.
#[derive(Debug, Default)]
pub struct Transitions(BTreeMap<&'static str, (bool, Timestamp)>);

/// The full pod status at `now`.
pub fn pod_status(rt: &PodRuntime, transitions: &mut Transitions, now: Timestamp) -> PodStatus {
    let conditions = conditions(rt)
        .into_iter()
        .map(|(type_, status, reason)| {
            let since = match transitions.0.get(type_) {
                Some((old, since)) if *old == status => *since,
                _ => {
                    transitions.0.insert(type_, (status, now));
                    now
                }
            };
            PodCondition {
                type_: type_.to_string(),
                status: if status { "True" } else { "False" }.to_string(),
                reason: reason.map(str::to_string),
                last_transition_time: Some(Time(since)),
                ..Default::default()
            }
        })
        .collect();
    PodStatus {
        phase: Some(phase(rt).to_string()),
        conditions: Some(conditions),
        host_ip: Some(crate::sim::node::NODE_IP.to_string()),
        host_ips: Some(vec![HostIP {
            ip: crate::sim::node::NODE_IP.to_string(),
        }]),
        pod_ip: rt.pod_ip.clone(),
        pod_ips: rt.pod_ip.as_ref().map(|ip| vec![PodIP { ip: ip.clone() }]),
        start_time: rt.start_time.map(Time),
        init_container_statuses: Some(rt.init.iter().map(container_status).collect()),
        container_statuses: Some(rt.containers.iter().map(container_status).collect()),
        ..Default::default()
    }
}

fn terminated(t: &Termination) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: t.exit_code,
            reason: Some(t.reason.clone()),
            started_at: Some(Time(t.started_at)),
            finished_at: Some(Time(t.finished_at)),
            container_id: Some(t.container_id.clone()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_status(c: &ContainerRecord) -> ContainerStatus {
    let (state, container_id, started) = match &c.state {
        State::Waiting { reason, message } => (
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.clone()),
                    message: message.clone(),
                }),
                ..Default::default()
            },
            c.last.as_ref().map(|t| t.container_id.clone()),
            false,
        ),
        State::Running {
            started_at,
            container_id,
        } => (
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(Time(*started_at)),
                }),
                ..Default::default()
            },
            Some(container_id.clone()),
            true,
        ),
        State::Terminated(t) => (terminated(t), Some(t.container_id.clone()), false),
    };
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: c.image_id.clone().unwrap_or_else(|| format!("host://{}", c.image)),
        container_id,
        ready: c.ready,
        restart_count: c.restart_count,
        started: Some(started),
        state: Some(state),
        last_state: c.last.as_ref().map(terminated),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(code: i32) -> Termination {
        let now = Timestamp::now();
        Termination {
            exit_code: code,
            reason: Termination::reason_for(code).into(),
            started_at: now,
            finished_at: now,
            container_id: "sim://x".into(),
        }
    }

    fn record(state: State) -> ContainerRecord {
        ContainerRecord {
            state,
            ..ContainerRecord::new("c", "img", "ContainerCreating")
        }
    }

    fn running() -> State {
        State::Running {
            started_at: Timestamp::now(),
            container_id: "sim://x".into(),
        }
    }

    fn rt(
        policy: &str,
        init: Vec<ContainerRecord>,
        containers: Vec<ContainerRecord>,
    ) -> PodRuntime {
        PodRuntime {
            init,
            containers,
            restart_policy: policy.into(),
            ..Default::default()
        }
    }

    #[test]
    fn phases_follow_the_kubelet_rules() {
        let waiting = || {
            record(State::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            })
        };
        let done = |code| record(State::Terminated(ended(code)));
        let backoff = || ContainerRecord {
            last: Some(ended(1)),
            ..waiting()
        };
        let cases = [
            (rt("Always", vec![], vec![waiting()]), "Pending"),
            (rt("Always", vec![], vec![record(running())]), "Running"),
            (
                rt("Always", vec![], vec![record(running()), done(0)]),
                "Running",
            ),
            (rt("Never", vec![], vec![done(0)]), "Succeeded"),
            (rt("OnFailure", vec![], vec![done(0)]), "Succeeded"),
            (rt("Never", vec![], vec![done(1)]), "Failed"),
            (rt("Never", vec![], vec![done(0), done(2)]), "Failed"),
            (rt("OnFailure", vec![], vec![backoff()]), "Running"),
            (rt("Always", vec![], vec![done(0)]), "Running"),
            (
                rt("Never", vec![record(running())], vec![waiting()]),
                "Pending",
            ),
            (rt("Never", vec![done(1)], vec![waiting()]), "Failed"),
            (rt("OnFailure", vec![backoff()], vec![waiting()]), "Pending"),
            (
                rt("Never", vec![done(0)], vec![record(running())]),
                "Running",
            ),
        ];
        for (i, (runtime, expected)) in cases.iter().enumerate() {
            assert_eq!(phase(runtime), *expected, "case {i}");
        }
    }

    #[test]
    fn ready_only_when_all_containers_are_ready() {
        let mut ready = record(running());
        ready.ready = true;
        let runtime = rt("Always", vec![], vec![ready.clone(), record(running())]);
        let conds = conditions(&runtime);
        assert!(conds.iter().any(|(t, s, _)| *t == "Ready" && !*s));
        let runtime = rt("Always", vec![], vec![ready.clone(), ready]);
        assert!(conditions(&runtime).iter().all(|(_, s, _)| *s));
    }

    #[test]
    fn transition_times_stay_until_the_status_changes() {
        let mut transitions = Transitions::default();
        let runtime = rt("Always", vec![], vec![record(running())]);
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = Timestamp::from_second(2_000).unwrap();
        let first = pod_status(&runtime, &mut transitions, t0);
        let second = pod_status(&runtime, &mut transitions, t1);
        assert_eq!(first.conditions, second.conditions);
        let mut ready_rt = runtime.clone();
        ready_rt.containers[0].ready = true;
        let third = pod_status(&ready_rt, &mut transitions, t1);
        let ready = third
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.last_transition_time, Some(Time(t1)));
        assert_eq!(third.container_statuses.unwrap()[0].started, Some(true));
    }
}
