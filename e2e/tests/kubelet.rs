//! End-to-end tests of the simulated node, scheduler and kubelet, through the real API server
//! of the local cluster (`e2e/local-cluster up`). Each test uses its own namespace.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret};
use kube::api::{DeleteParams, LogParams};
use support::{exec, pod_phase, pod_ready, wait_for, TestNamespace};

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn statefulset_with_claim_template_becomes_ready_with_a_bound_claim() {
    let ns = TestNamespace::create("sts").await;
    ns.apply::<StatefulSet>(
        r#"
metadata: {name: archive}
spec:
  serviceName: archive
  replicas: 1
  selector: {matchLabels: {app: archive}}
  template:
    metadata: {labels: {app: archive}}
    spec:
      containers:
      - name: app
        image: ignored
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"#,
    )
    .await;
    let pods = ns.api::<Pod>();
    wait_for(&pods, "archive-0", "Ready", pod_ready).await;
    let pod = pods.get("archive-0").await.unwrap();
    assert_eq!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Running"));
    let claim = ns.api::<PersistentVolumeClaim>().get("data-archive-0").await.unwrap();
    assert_eq!(claim.status.and_then(|s| s.phase).as_deref(), Some("Bound"));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn exec_writes_a_file_that_a_second_exec_reads_back() {
    let ns = TestNamespace::create("exec").await;
    ns.apply::<Pod>(
        r#"
metadata: {name: shell}
spec:
  containers:
  - name: main
    image: ignored
    workingDir: /scratch
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  volumes: [{name: scratch, emptyDir: {}}]
"#,
    )
    .await;
    let pods = ns.api::<Pod>();
    wait_for(&pods, "shell", "Ready", pod_ready).await;
    let (out, _, status) = exec(&pods, "shell", "main", &["sh", "-c", "echo kept > note.txt && pwd"]).await;
    assert_eq!((out.as_str(), status.as_str()), ("/scratch\n", "Success"));
    let (out, _, _) = exec(&pods, "shell", "main", &["cat", "/scratch/note.txt"]).await;
    assert_eq!(out, "kept\n");
    let (_, err, status) = exec(&pods, "shell", "main", &["sh", "-c", "echo oops >&2; exit 3"]).await;
    assert_eq!((err.as_str(), status.as_str()), ("oops\n", "Failure"));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn env_secret_and_config_map_volumes_are_visible_in_the_container() {
    let ns = TestNamespace::create("env").await;
    ns.apply::<ConfigMap>("metadata: {name: settings}\ndata: {mode: fast, level: '3'}").await;
    ns.apply::<Secret>("metadata: {name: creds}\nstringData: {password: s3cret}").await;
    ns.apply::<Pod>(
        r#"
metadata: {name: env, labels: {tier: test}}
spec:
  containers:
  - name: main
    image: ignored
    env:
    - {name: GREETING, value: hello}
    - {name: ECHOED, value: "$(GREETING) world"}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: MODE, valueFrom: {configMapKeyRef: {name: settings, key: mode}}}
    envFrom: [{prefix: CFG_, configMapRef: {name: settings}}]
    volumeMounts:
    - {name: cfg, mountPath: /config}
    - {name: sec, mountPath: /secrets}
    - {name: info, mountPath: /info}
  volumes:
  - {name: cfg, configMap: {name: settings, items: [{key: level, path: nested/level.txt}]}}
  - {name: sec, secret: {secretName: creds, defaultMode: 256}}
  - name: info
    downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
"#,
    )
    .await;
    let pods = ns.api::<Pod>();
    wait_for(&pods, "env", "Ready", pod_ready).await;
    let pod_ip = pods.get("env").await.unwrap().status.and_then(|s| s.pod_ip).unwrap_or_default();
    assert!(pod_ip.starts_with("127.0.1."), "pod IP {pod_ip}");
    let script = "echo $ECHOED/$POD_NAME/$POD_IP/$PASSWORD/$MODE/$CFG_level; cat /config/nested/level.txt; echo; \
                  cat /secrets/password; echo; stat -c %a /secrets/password; cat /info/labels; echo; \
                  touch /secrets/x 2>/dev/null || echo read-only";
    let (out, err, status) = exec(&pods, "env", "main", &["sh", "-c", script]).await;
    assert_eq!(status, "Success", "stderr: {err}");
    let expected = format!("hello world/env/{pod_ip}/s3cret/fast/3\n3\ns3cret\n400\ntier=\"test\"\nread-only\n");
    assert_eq!(out, expected);
    let (out, _, _) = exec(&pods, "env", "main", &["sh", "-c", "echo $POD_NS"]).await;
    assert_eq!(out, format!("{}\n", ns.name));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_job_that_exits_0_completes_and_one_that_exits_1_fails() {
    let ns = TestNamespace::create("jobs").await;
    let job = |name: &str, code: u8| {
        format!(
            "metadata: {{name: {name}}}\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      \
             containers: [{{name: c, image: ignored, command: [sh, -c, 'echo working; exit {code}']}}]\n"
        )
    };
    ns.apply::<Job>(&job("succeeds", 0)).await;
    ns.apply::<Job>(&job("fails", 1)).await;
    let jobs = ns.api::<Job>();
    let has_condition = |type_: &'static str| {
        move |job: Option<&Job>| {
            job.and_then(|j| j.status.as_ref())
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == type_ && c.status == "True"))
        }
    };
    wait_for(&jobs, "succeeds", "condition Complete", has_condition("Complete")).await;
    wait_for(&jobs, "fails", "condition Failed", has_condition("Failed")).await;
    let pods = ns.api::<Pod>();
    let failed = pods.list(&kube::api::ListParams::default().labels("job-name=fails")).await.unwrap();
    let state = failed.items[0].status.as_ref().and_then(|s| s.container_statuses.as_ref()).unwrap()[0].clone();
    let terminated = state.state.and_then(|s| s.terminated).expect("terminated state");
    assert_eq!((terminated.exit_code, terminated.reason.as_deref()), (1, Some("Error")));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn deleting_a_pod_ends_its_process() {
    let ns = TestNamespace::create("delete").await;
    // A unique sleep duration identifies this pod's process on the host.
    let marker = format!("{}.{}", 3000 + std::process::id() % 1000, Instant::now().elapsed().as_nanos() % 1_000_000 + 1);
    ns.apply::<Pod>(&format!(
        "metadata: {{name: sleeper}}\nspec:\n  terminationGracePeriodSeconds: 5\n  containers: [{{name: c, image: ignored, command: [sleep, '{marker}']}}]\n"
    ))
    .await;
    let pods = ns.api::<Pod>();
    wait_for(&pods, "sleeper", "Ready", pod_ready).await;
    assert!(process_with_arg(&marker), "the container's process should run on the host");
    pods.delete("sleeper", &DeleteParams::default()).await.unwrap();
    wait_for(&pods, "sleeper", "deleted", |pod: Option<&Pod>| pod.is_none()).await;
    assert!(!process_with_arg(&marker), "the process must be gone once the pod is");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn the_log_subresource_returns_the_container_output() {
    let ns = TestNamespace::create("logs").await;
    ns.apply::<Pod>(
        "metadata: {name: talker}\nspec:\n  restartPolicy: Never\n  containers: [{name: c, image: ignored, command: [sh, -c, 'echo line one; echo line two >&2']}]\n",
    )
    .await;
    let pods = ns.api::<Pod>();
    wait_for(&pods, "talker", "Succeeded", pod_phase("Succeeded")).await;
    let logs = pods.logs("talker", &LogParams::default()).await.unwrap();
    assert_eq!(logs, "line one\nline two\n");
    let tail = pods.logs("talker", &LogParams { tail_lines: Some(1), ..Default::default() }).await.unwrap();
    assert_eq!(tail, "line two\n");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_readiness_probe_gates_ready() {
    let ns = TestNamespace::create("probe").await;
    ns.apply::<Pod>(
        r#"
metadata: {name: gated}
spec:
  containers:
  - name: web
    image: ignored
    command: [sleep, infinity]
    readinessProbe: {exec: {command: [test, -f, /tmp/ready]}, periodSeconds: 1}
"#,
    )
    .await;
    let pods = ns.api::<Pod>();
    wait_for(&pods, "gated", "Running", pod_phase("Running")).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!pod_ready(pods.get("gated").await.ok().as_ref()), "not Ready while the probe fails");
    let (_, _, status) = exec(&pods, "gated", "web", &["touch", "/tmp/ready"]).await;
    assert_eq!(status, "Success");
    wait_for(&pods, "gated", "Ready once the probe passes", pod_ready).await;
}

/// Whether a process on this host has `arg` among its arguments.
fn process_with_arg(arg: &str) -> bool {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|cmdline| cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
}
