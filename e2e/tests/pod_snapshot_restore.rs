//! The issue's whole flow through pods: a StatefulSet's pod writes a file with exec, the claim
//! is snapshotted, the file changes, and a second pod mounting a claim restored from the
//! snapshot sees the file as it was at the cut.

use std::time::Duration;

use archivist_e2e::snapshot_api::VolumeSnapshot;
use archivist_e2e::testing::pods::{create_yaml, exec, is_ready, POD_TIMEOUT};
use archivist_e2e::testing::volumes::{
    from_snapshot, pvc, snapshot, wait_bound, wait_snapshot_ready,
};
use archivist_e2e::testing::{wait_for, with_namespace};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::PostParams;
use kube::Api;

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_claim_restored_from_a_snapshot_holds_the_file_written_by_exec() {
    with_namespace("pod-restore", |client, ns| async move {
        let statefulset = r#"
metadata: {name: mail}
spec:
  serviceName: mail
  replicas: 1
  selector: {matchLabels: {app: mail}}
  template:
    metadata: {labels: {app: mail}}
    spec:
      containers:
      - {name: app, image: ignored, volumeMounts: [{name: data, mountPath: /var/mail}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"#;
        create_yaml::<StatefulSet>(&client, &ns, statefulset).await?;
        let pods = Api::<Pod>::namespaced(client.clone(), &ns);
        wait_for(&pods, "mail-0", POD_TIMEOUT, "mail-0 Ready", is_ready).await?;
        let wrote = exec(
            &pods,
            "mail-0",
            "app",
            &["sh", "-c", "echo before-cut > /var/mail/inbox"],
        )
        .await?;
        assert_eq!(wrote.status, "Success", "stderr: {}", wrote.stderr);

        let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns);
        snapshots
            .create(
                &PostParams::default(),
                &snapshot("cut", "data-mail-0", None),
            )
            .await?;
        wait_snapshot_ready(&snapshots, "cut", Duration::from_secs(30)).await?;
        exec(
            &pods,
            "mail-0",
            "app",
            &["sh", "-c", "echo after-cut > /var/mail/inbox"],
        )
        .await?;

        let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
        claims
            .create(
                &PostParams::default(),
                &from_snapshot(pvc("restored", "1Gi"), "cut"),
            )
            .await?;
        wait_bound(&client, &ns, "restored", Duration::from_secs(30)).await?;
        let reader = r#"
metadata: {name: reader}
spec:
  containers:
  - {name: app, image: ignored, volumeMounts: [{name: data, mountPath: /restore}]}
  volumes: [{name: data, persistentVolumeClaim: {claimName: restored}}]
"#;
        create_yaml::<Pod>(&client, &ns, reader).await?;
        wait_for(&pods, "reader", POD_TIMEOUT, "reader Ready", is_ready).await?;
        assert_eq!(
            exec(&pods, "reader", "app", &["cat", "/restore/inbox"])
                .await?
                .stdout,
            "before-cut\n"
        );
        assert_eq!(
            exec(&pods, "mail-0", "app", &["cat", "/var/mail/inbox"])
                .await?
                .stdout,
            "after-cut\n"
        );
        Ok(())
    })
    .await;
}
