//! The simulated kubelet runs images of the local cluster's registry as a kubelet does: the
//! image's own rootfs as `/` (no host directory), its entrypoint, cmd, env, user and working
//! directory under the pod's overrides, `readOnlyRootFilesystem`, and the in-cluster
//! configuration (ServiceAccount token files, `KUBERNETES_SERVICE_HOST`/`_PORT`). A tag that is
//! not in the registry gives `ErrImagePull`, then `ImagePullBackOff`. Images of any other
//! registry run host programs, reported as `imageID: host://<image>`.
//!
//! Needs `e2e/local-cluster up` (with its registry), buildah (`operator/build-image` installs
//! it) and busybox-static (`/bin/busybox`).
//!
//! ```sh
//! cargo test -p archivist-e2e --test kubelet_images -- --ignored
//! ```

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use archivist_e2e::testing::helm::local_registry;
use archivist_e2e::testing::images::build_and_push;
use archivist_e2e::testing::pods::{create_yaml, POD_TIMEOUT};
use archivist_e2e::testing::{wait_for, with_namespace};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::LogParams;
use kube::Api;

/// A shell-only image: busybox (static), an env variable, a non-root user and a work directory.
const CONTAINERFILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
ENV GREETING=from-image OVERRIDDEN=by-image
USER 4242:4343
WORKDIR /work
ENTRYPOINT ["/bin/busybox"]
CMD ["sleep", "3600"]
"#;

/// What the container prints about itself.
const REPORT: &str = r#"echo "uid=$(id -u) gid=$(id -g) pwd=$(pwd) greeting=$GREETING overridden=$OVERRIDDEN"
echo "api=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"
sa=/var/run/secrets/kubernetes.io/serviceaccount
echo "namespace=$(cat $sa/namespace) token=$(test -s $sa/token && echo yes) ca=$(grep -c 'BEGIN CERTIFICATE' $sa/ca.crt)"
if touch /written 2>/dev/null; then echo root=writable; else echo root=read-only; fi
if touch /tmp/written 2>/dev/null; then echo tmp=writable; else echo tmp=read-only; fi
if test -e /usr/bin/apt-get || test -e /etc/debian_version; then echo host=visible; else echo host=hidden; fi
"#;

fn status_of(pod: Option<&Pod>) -> Option<ContainerStatus> {
    pod?.status.as_ref()?.container_statuses.as_ref()?.first().cloned()
}

fn waiting_reason(pod: Option<&Pod>) -> Option<String> {
    status_of(pod)?.state?.waiting?.reason
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn images_of_the_local_registry_run_from_their_own_rootfs() {
    with_namespace("images", |client, ns| async move {
        let registry = local_registry()?;
        let busybox = Path::new("/bin/busybox");
        ensure!(busybox.is_file(), "no /bin/busybox: apt-get install busybox-static");
        let reference = format!("{registry}/e2e-busybox:1");
        let digest = {
            let reference = reference.clone();
            tokio::task::spawn_blocking(move || build_and_push(&reference, CONTAINERFILE, &[("busybox", Path::new("/bin/busybox"))])).await??
        };

        // The pod overrides the cmd (args) and one variable, and makes the root read-only;
        // /tmp is an emptyDir.
        let script = serde_json::to_string(REPORT)?;
        create_yaml::<Pod>(&client, &ns, &format!(r#"
metadata: {{name: from-image}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: {reference}
    args: ["sh", "-c", {script}]
    env: [{{name: OVERRIDDEN, value: by-pod}}]
    securityContext: {{readOnlyRootFilesystem: true}}
    volumeMounts: [{{name: tmp, mountPath: /tmp}}]
  volumes: [{{name: tmp, emptyDir: {{}}}}]
"#)).await?;
        let pods = Api::<Pod>::namespaced(client.clone(), &ns);
        let done = wait_for(&pods, "from-image", POD_TIMEOUT, "from-image to finish", |p| {
            matches!(p.and_then(|p| p.status.as_ref()?.phase.as_deref()), Some("Succeeded" | "Failed"))
        })
        .await?;
        let log = pods.logs("from-image", &LogParams::default()).await?;
        let phase = done.as_ref().and_then(|p| p.status.as_ref()?.phase.clone());
        ensure!(phase.as_deref() == Some("Succeeded"), "from-image ended {phase:?}:\n{log}");
        let api = url_host_port(&archivist_e2e::testing::kubeconfig_path())?;
        let want = format!(
            "uid=4242 gid=4343 pwd=/work greeting=from-image overridden=by-pod\napi={api}\nnamespace={ns} token=yes ca=1\n\
             root=read-only\ntmp=writable\nhost=hidden\n"
        );
        ensure!(log == want, "the container reported:\n{log}\nexpected:\n{want}");
        let image_id = status_of(done.as_ref()).map(|s| s.image_id).unwrap_or_default();
        let want_id = format!("docker-pullable://{registry}/e2e-busybox@{digest}");
        ensure!(image_id == want_id, "imageID {image_id:?}, expected {want_id:?}");

        // A tag the registry does not have.
        create_yaml::<Pod>(&client, &ns, &format!(r#"
metadata: {{name: missing-tag}}
spec:
  containers: [{{name: main, image: "{registry}/e2e-busybox:no-such-tag"}}]
"#)).await?;
        let pulled = wait_for(&pods, "missing-tag", POD_TIMEOUT, "missing-tag to fail its pull", |p| {
            waiting_reason(p).as_deref() == Some("ErrImagePull")
        })
        .await?;
        let message = status_of(pulled.as_ref()).and_then(|s| s.state?.waiting?.message).unwrap_or_default();
        ensure!(message.contains("no-such-tag"), "the pull error does not name the image: {message}");
        wait_for(&pods, "missing-tag", Duration::from_secs(30), "missing-tag to back off", |p| {
            waiting_reason(p).as_deref() == Some("ImagePullBackOff")
        })
        .await?;

        // Any other registry: host programs, as before.
        create_yaml::<Pod>(&client, &ns, r#"
metadata: {name: host-programs}
spec:
  restartPolicy: Never
  containers: [{name: main, image: "docker.io/library/debian:12", command: ["sh", "-c", "test -e /etc/debian_version && echo host"]}]
"#).await?;
        let done = wait_for(&pods, "host-programs", POD_TIMEOUT, "host-programs to finish", |p| {
            matches!(p.and_then(|p| p.status.as_ref()?.phase.as_deref()), Some("Succeeded" | "Failed"))
        })
        .await?;
        let log = pods.logs("host-programs", &LogParams::default()).await?;
        ensure!(log == "host\n", "host-programs printed {log:?}");
        let image_id = status_of(done.as_ref()).map(|s| s.image_id).unwrap_or_default();
        ensure!(image_id == "host://docker.io/library/debian:12", "imageID {image_id:?}");
        Ok(())
    })
    .await;
}

/// `host:port` of the API server in the kubeconfig at `path`.
fn url_host_port(path: &Path) -> anyhow::Result<String> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    let server = kubeconfig.clusters.first().and_then(|c| c.cluster.as_ref()).and_then(|c| c.server.clone()).context("no server")?;
    Ok(server.trim_start_matches("https://").trim_end_matches('/').to_string())
}
