//! End-to-end tests of the simulated node, scheduler and kubelet, through the real API server
//! of the local cluster (`e2e/local-cluster up`). Each test uses its own namespace.

use std::time::Duration;

use archivist_e2e::testing::pods::{create_yaml, exec, host_process_with_arg, is_ready, phase, POD_TIMEOUT};
use archivist_e2e::testing::{wait_for, with_namespace};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret};
use kube::api::{DeleteParams, ListParams, LogParams};
use kube::Api;

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn statefulset_with_claim_template_becomes_ready_with_a_bound_claim() {
    with_namespace("sts", |client, ns| async move {
        let yaml = r#"
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
"#;
        create_yaml::<StatefulSet>(&client, &ns, yaml).await?;
        let pods = Api::<Pod>::namespaced(client.clone(), &ns);
        let pod = wait_for(&pods, "archive-0", POD_TIMEOUT, "archive-0 Ready", is_ready).await?;
        assert_eq!(phase(pod.as_ref()), Some("Running"));
        let claim = Api::<PersistentVolumeClaim>::namespaced(client, &ns).get("data-archive-0").await?;
        assert_eq!(claim.status.and_then(|s| s.phase).as_deref(), Some("Bound"));
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn exec_writes_a_file_that_a_second_exec_reads_back() {
    with_namespace("exec", |client, ns| async move {
        let yaml = r#"
metadata: {name: shell}
spec:
  containers:
  - name: main
    image: ignored
    workingDir: /scratch
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  volumes: [{name: scratch, emptyDir: {}}]
"#;
        create_yaml::<Pod>(&client, &ns, yaml).await?;
        let pods = Api::<Pod>::namespaced(client, &ns);
        wait_for(&pods, "shell", POD_TIMEOUT, "shell Ready", is_ready).await?;
        let wrote = exec(&pods, "shell", "main", &["sh", "-c", "echo kept > note.txt && pwd"]).await?;
        assert_eq!((wrote.stdout.as_str(), wrote.status.as_str()), ("/scratch\n", "Success"));
        let read = exec(&pods, "shell", "main", &["cat", "/scratch/note.txt"]).await?;
        assert_eq!(read.stdout, "kept\n");
        let failed = exec(&pods, "shell", "main", &["sh", "-c", "echo oops >&2; exit 3"]).await?;
        assert_eq!((failed.stderr.as_str(), failed.status.as_str()), ("oops\n", "Failure"));
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn env_secret_and_config_map_volumes_are_visible_in_the_container() {
    with_namespace("env", |client, ns| async move {
        create_yaml::<ConfigMap>(&client, &ns, "metadata: {name: settings}\ndata: {mode: fast, level: '3'}").await?;
        create_yaml::<Secret>(&client, &ns, "metadata: {name: creds}\nstringData: {password: s3cret}").await?;
        let yaml = r#"
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
"#;
        create_yaml::<Pod>(&client, &ns, yaml).await?;
        let pods = Api::<Pod>::namespaced(client, &ns);
        let pod = wait_for(&pods, "env", POD_TIMEOUT, "env Ready", is_ready).await?;
        let pod_ip = pod.and_then(|p| p.status).and_then(|s| s.pod_ip).unwrap_or_default();
        assert!(pod_ip.starts_with("127.0.1."), "pod IP {pod_ip}");
        let script = "echo $ECHOED/$POD_NAME/$POD_NS/$POD_IP/$PASSWORD/$MODE/$CFG_level; \
                      cat /config/nested/level.txt; echo; cat /secrets/password; echo; \
                      stat -c %a /secrets/password; cat /info/labels; echo; \
                      touch /secrets/x 2>/dev/null || echo read-only";
        let out = exec(&pods, "env", "main", &["sh", "-c", script]).await?;
        assert_eq!(out.status, "Success", "stderr: {}", out.stderr);
        let expected = format!("hello world/env/{ns}/{pod_ip}/s3cret/fast/3\n3\ns3cret\n400\ntier=\"test\"\nread-only\n");
        assert_eq!(out.stdout, expected);
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_job_that_exits_0_completes_and_one_that_exits_1_fails() {
    with_namespace("jobs", |client, ns| async move {
        let job = |name: &str, code: u8| {
            format!(
                "metadata: {{name: {name}}}\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      \
                 containers: [{{name: c, image: ignored, command: [sh, -c, 'echo working; exit {code}']}}]\n"
            )
        };
        create_yaml::<Job>(&client, &ns, &job("succeeds", 0)).await?;
        create_yaml::<Job>(&client, &ns, &job("fails", 1)).await?;
        let jobs = Api::<Job>::namespaced(client.clone(), &ns);
        let has_condition = |type_: &'static str| {
            move |job: Option<&Job>| {
                job.and_then(|j| j.status.as_ref())
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == type_ && c.status == "True"))
            }
        };
        wait_for(&jobs, "succeeds", POD_TIMEOUT, "Job condition Complete", has_condition("Complete")).await?;
        wait_for(&jobs, "fails", POD_TIMEOUT, "Job condition Failed", has_condition("Failed")).await?;
        let pods = Api::<Pod>::namespaced(client, &ns);
        let failed = pods.list(&ListParams::default().labels("job-name=fails")).await?;
        let statuses = failed.items.first().and_then(|p| p.status.clone()).and_then(|s| s.container_statuses);
        let terminated = statuses.and_then(|s| s.first().cloned()).and_then(|s| s.state).and_then(|s| s.terminated);
        let terminated = terminated.expect("a terminated container state");
        assert_eq!((terminated.exit_code, terminated.reason.as_deref()), (1, Some("Error")));
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn deleting_a_pod_ends_its_process() {
    with_namespace("delete", |client, ns| async move {
        // A sleep duration unique to this run identifies the pod's process on the host.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.subsec_nanos();
        let marker = format!("{}.{}", 3000 + std::process::id() % 1000, nanos % 1_000_000 + 1);
        let yaml = format!(
            "metadata: {{name: sleeper}}\nspec:\n  terminationGracePeriodSeconds: 5\n  \
             containers: [{{name: c, image: ignored, command: [sleep, '{marker}']}}]\n"
        );
        create_yaml::<Pod>(&client, &ns, &yaml).await?;
        let pods = Api::<Pod>::namespaced(client, &ns);
        wait_for(&pods, "sleeper", POD_TIMEOUT, "sleeper Ready", is_ready).await?;
        assert!(host_process_with_arg(&marker), "the container's process runs on the host");
        pods.delete("sleeper", &DeleteParams::default()).await?;
        wait_for(&pods, "sleeper", POD_TIMEOUT, "sleeper deleted", |pod| pod.is_none()).await?;
        assert!(!host_process_with_arg(&marker), "the process is gone once the pod is");
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn the_log_subresource_returns_the_container_output() {
    with_namespace("logs", |client, ns| async move {
        let yaml = "metadata: {name: talker}\nspec:\n  restartPolicy: Never\n  \
                    containers: [{name: c, image: ignored, command: [sh, -c, 'echo line one; echo line two >&2']}]\n";
        create_yaml::<Pod>(&client, &ns, yaml).await?;
        let pods = Api::<Pod>::namespaced(client, &ns);
        wait_for(&pods, "talker", POD_TIMEOUT, "talker Succeeded", |p| phase(p) == Some("Succeeded")).await?;
        assert_eq!(pods.logs("talker", &LogParams::default()).await?, "line one\nline two\n");
        let tail = pods.logs("talker", &LogParams { tail_lines: Some(1), ..LogParams::default() }).await?;
        assert_eq!(tail, "line two\n");
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_readiness_probe_gates_ready() {
    with_namespace("probe", |client, ns| async move {
        let yaml = r#"
metadata: {name: gated}
spec:
  containers:
  - name: web
    image: ignored
    command: [sleep, infinity]
    readinessProbe: {exec: {command: [test, -f, /tmp/ready]}, periodSeconds: 1}
"#;
        create_yaml::<Pod>(&client, &ns, yaml).await?;
        let pods = Api::<Pod>::namespaced(client, &ns);
        wait_for(&pods, "gated", POD_TIMEOUT, "gated Running", |p| phase(p) == Some("Running")).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!is_ready(pods.get_opt("gated").await?.as_ref()), "not Ready while the probe fails");
        assert_eq!(exec(&pods, "gated", "web", &["touch", "/tmp/ready"]).await?.status, "Success");
        wait_for(&pods, "gated", POD_TIMEOUT, "gated Ready once the probe passes", is_ready).await?;
        Ok(())
    })
    .await;
}
