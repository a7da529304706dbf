//! No step runs twice from a stale read: behind a proxy that delays every watch event by
//! 1.5 s, the controllers' caches lag behind their own writes, and still each freeze and thaw
//! hook runs exactly once per pod per run. The hooks are HTTP hooks served by the archive's
//! pods (a small Python server that appends each call to a file in the data volume).

mod backup_support;

use std::time::Duration;

use archivist_e2e::testing::operator::{ensure_crds, Operator};
use archivist_e2e::testing::proxy::ApiProxy;
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use k8s_openapi::api::apps::v1::StatefulSet;

const HOOK_SERVER: &str = r#"
import http.server, os
ip, name = os.environ["POD_IP"], os.environ["POD_NAME"]
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        with open("/content/hooks.log", "a") as log:
            log.write(self.path.strip("/") + " " + name + "\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer((ip, 8080), Hook).serve_forever()
"#;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn hooks_run_once_per_pod_per_run_when_watches_lag() {
    with_namespace("bk-stale", |client, ns| async move {
        ensure_crds(&client).await?;
        let proxy = ApiProxy::start(client.clone(), Duration::from_millis(1500)).await?;
        let dir = archivist_e2e::testing::operator::repo_dir().join("target").join("e2e-logs");
        std::fs::create_dir_all(&dir)?;
        let kubeconfig = proxy.kubeconfig(&dir.join(format!("proxy-{ns}.kubeconfig")))?;
        let mut operator = Operator::start_with_kubeconfig(&ns, &kubeconfig).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        let live = data_pvc(&client, &ns, "content", &[]).await?;
        let sts = serde_json::json!({
            "metadata": {"name": "archive"},
            "spec": {
                "serviceName": "archive",
                "replicas": 2,
                "selector": {"matchLabels": {"app": "archive"}},
                "template": {
                    "metadata": {"labels": {"app": "archive"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{
                            "name": "server", "image": "ignored",
                            "command": ["python3", "-c", HOOK_SERVER],
                            "env": [
                                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                            ],
                            "volumeMounts": [{"name": "content", "mountPath": "/content"}]
                        }],
                        "volumes": [{"name": "content", "persistentVolumeClaim": {"claimName": "content"}}]
                    }
                }
            }
        });
        create::<StatefulSet>(&client, &ns, &serde_json::to_string(&sts)?).await?;
        wait_ready_replicas(&client, &ns, "archive", 2).await?;
        // Give the Python servers a moment to listen.
        tokio::time::sleep(Duration::from_secs(2)).await;
        policy(&client, &ns, "archive", r#"
  target: {kind: StatefulSet, name: archive}
  quiesce:
    mode: Freeze
    freeze: {http: {port: 8080, path: /freeze}}
    thaw: {http: {port: 8080, path: /thaw}}
    timeoutSeconds: 120
  stores:
  - name: s1
    metadata: {volumeClaims: [meta]}
    content: {volumeClaims: [content]}
"#).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        let b1 = wait_completed(&client, &ns, "b1", &mut operator).await?;
        eprintln!("behind a 1.5 s watch delay: {}", timeline(&b1));
        eprintln!("operator requests through the proxy: {:?}", proxy.snapshot());
        let log = std::fs::read_to_string(live.join("hooks.log")).unwrap_or_default();
        let mut calls: Vec<&str> = log.lines().collect();
        calls.sort();
        anyhow::ensure!(
            calls == vec!["freeze archive-0", "freeze archive-1", "thaw archive-0", "thaw archive-1"],
            "each hook must run exactly once per pod; the hook log says:\n{log}"
        );
        Ok(())
    })
    .await;
}
