//! Simulated snapshots against the local cluster: cut, bind, ready, restore, the three knobs on
//! the source PVC, and deletionPolicy. Files are written straight into the PVs' host directories.
//! Run with `cargo test -p archivist-e2e -- --ignored` after `e2e/local-cluster up`.

use std::time::Duration;

use archivist_e2e::snapshot_api::{
    DeletionPolicy, VolumeSnapshot, VolumeSnapshotClass, VolumeSnapshotContent,
};
use archivist_e2e::testing::volumes::{
    create_bound, from_snapshot, host_dir, pvc, snapshot, snapshot_data_dir, state_dir,
    wait_snapshot_ready, with_annotations,
};
use archivist_e2e::testing::{eventually, wait_for, with_namespace};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt as _};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn bound_content(snapshot: &VolumeSnapshot) -> String {
    snapshot
        .status
        .as_ref()
        .and_then(|s| s.bound_volume_snapshot_content_name.clone())
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn snapshot_of_a_pvc_becomes_ready_with_restore_size() {
    with_namespace("snap-ready", |client, ns| async move {
        create_bound(&client, &ns, &pvc("data", "1Gi")).await?;
        let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns);
        snapshots
            .create(&PostParams::default(), &snapshot("snap", "data", None))
            .await?;
        let ready = wait_snapshot_ready(&snapshots, "snap", READY_TIMEOUT).await?;
        let status = ready.status.clone().unwrap_or_default();
        assert_eq!(status.restore_size.map(|q| q.0), Some("1Gi".to_owned()));
        assert!(status.creation_time.is_some(), "creationTime set");
        assert!(status.error.is_none());
        let content_name = bound_content(&ready);
        let content = Api::<VolumeSnapshotContent>::all(client.clone())
            .get(&content_name)
            .await?;
        assert_eq!(
            content.spec.volume_snapshot_ref.name.as_deref(),
            Some("snap"),
            "bound both ways"
        );
        assert_eq!(
            content.spec.volume_snapshot_ref.namespace.as_deref(),
            Some(ns.as_str())
        );
        assert_eq!(content.spec.volume_snapshot_ref.uid, ready.uid());
        assert_eq!(content.spec.driver, "archivist.dev/local");
        assert_eq!(
            content.spec.volume_snapshot_class_name.as_deref(),
            Some("archivist-local")
        );
        let content_status = content.status.unwrap_or_default();
        assert_eq!(content_status.ready_to_use, Some(true));
        assert_eq!(content_status.restore_size, Some(1 << 30));
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn restored_pvc_holds_the_snapshot_data_while_the_source_changed() {
    with_namespace("snap-restore", |client, ns| async move {
        let (_, source_pv) = create_bound(&client, &ns, &pvc("data", "1Gi")).await?;
        let source_dir = host_dir(&source_pv)?;
        std::fs::create_dir_all(source_dir.join("sub"))?;
        std::fs::write(source_dir.join("sub/file.txt"), "version 1")?;
        let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns);
        snapshots
            .create(&PostParams::default(), &snapshot("snap", "data", None))
            .await?;
        wait_snapshot_ready(&snapshots, "snap", READY_TIMEOUT).await?;

        std::fs::write(source_dir.join("sub/file.txt"), "version 2")?;
        std::fs::write(source_dir.join("new.txt"), "after the snapshot")?;

        let (_, restored_pv) =
            create_bound(&client, &ns, &from_snapshot(pvc("restored", "1Gi"), "snap")).await?;
        let restored_dir = host_dir(&restored_pv)?;
        assert_ne!(restored_dir, source_dir);
        assert_eq!(
            std::fs::read_to_string(restored_dir.join("sub/file.txt"))?,
            "version 1"
        );
        assert!(!restored_dir.join("new.txt").exists());
        assert_eq!(
            std::fs::read_to_string(source_dir.join("sub/file.txt"))?,
            "version 2"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn cut_delay_postpones_creation_time_and_the_copy() {
    with_namespace("snap-cut-delay", |client, ns| async move {
        let claim = with_annotations(
            pvc("data", "1Gi"),
            &[("sim.archivist.dev/snapshot-cut-delay", "2s")],
        );
        let (_, pv) = create_bound(&client, &ns, &claim).await?;
        let dir = host_dir(&pv)?;
        std::fs::write(dir.join("file.txt"), "before the snapshot request")?;
        let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns);
        let requested = Timestamp::now();
        snapshots
            .create(&PostParams::default(), &snapshot("snap", "data", None))
            .await?;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let early = snapshots.get("snap").await?;
        assert!(
            early
                .status
                .as_ref()
                .and_then(|s| s.creation_time.as_ref())
                .is_none(),
            "no creationTime before the cut: {:?}",
            early.status
        );
        // Written after the request but before the cut: the snapshot must contain it.
        std::fs::write(dir.join("file.txt"), "before the cut")?;
        let ready = wait_snapshot_ready(&snapshots, "snap", READY_TIMEOUT).await?;
        let cut = ready
            .status
            .as_ref()
            .and_then(|s| s.creation_time.clone())
            .expect("creationTime")
            .0;
        // creationTime has whole seconds (metav1.Time): compare at that precision.
        let earliest = Timestamp::from_second(requested.as_second() + 2)?;
        assert!(
            cut >= earliest,
            "cut at {cut}, requested at {requested}: expected a 2s delay"
        );
        let data = snapshot_data_dir(&state_dir(&pv)?, &bound_content(&ready));
        assert_eq!(
            std::fs::read_to_string(data.join("file.txt"))?,
            "before the cut"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn ready_delay_postpones_ready_to_use_after_the_cut() {
    with_namespace("snap-ready-delay", |client, ns| async move {
        let claim = with_annotations(
            pvc("data", "1Gi"),
            &[("sim.archivist.dev/snapshot-ready-delay", "3s")],
        );
        create_bound(&client, &ns, &claim).await?;
        let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns);
        snapshots
            .create(&PostParams::default(), &snapshot("snap", "data", None))
            .await?;
        let cut = wait_for(&snapshots, "snap", READY_TIMEOUT, "creationTime", |s| {
            s.and_then(|s| s.status.as_ref())
                .is_some_and(|s| s.creation_time.is_some())
        })
        .await?
        .expect("snapshot");
        let status = cut.status.clone().unwrap_or_default();
        assert_eq!(status.ready_to_use, Some(false), "cut but not ready yet");
        assert!(!bound_content(&cut).is_empty(), "bound at the cut");
        let cut_at = status.creation_time.expect("creationTime").0;
        wait_snapshot_ready(&snapshots, "snap", READY_TIMEOUT).await?;
        let ready_seen = Timestamp::now();
        let delay = cut_at.duration_until(ready_seen).as_secs_f64();
        assert!(
            delay >= 2.9,
            "ready {delay:.2}s after the cut, expected >= 3s"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn fail_snapshot_sets_an_error_and_never_becomes_ready() {
    with_namespace("snap-fail", |client, ns| async move {
        let claim = with_annotations(
            pvc("data", "1Gi"),
            &[("sim.archivist.dev/fail-snapshot", "true")],
        );
        create_bound(&client, &ns, &claim).await?;
        let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns);
        snapshots
            .create(&PostParams::default(), &snapshot("snap", "data", None))
            .await?;
        let failed = wait_for(&snapshots, "snap", READY_TIMEOUT, "status.error", |s| {
            s.and_then(|s| s.status.as_ref())
                .is_some_and(|s| s.error.is_some())
        })
        .await?
        .expect("snapshot");
        let error = failed
            .status
            .as_ref()
            .and_then(|s| s.error.clone())
            .expect("error");
        assert!(
            error
                .message
                .as_deref()
                .is_some_and(|m| m.contains("fail-snapshot")),
            "{error:?}"
        );
        assert!(error.time.is_some());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let later = snapshots.get("snap").await?;
        let status = later.status.unwrap_or_default();
        assert_ne!(status.ready_to_use, Some(true), "never ready");
        assert!(status.bound_volume_snapshot_content_name.is_none());
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn deletion_policy_delete_removes_content_and_data() {
    with_namespace("snap-del-delete", |client, ns| async move {
        let (_, pv) = create_bound(&client, &ns, &pvc("data", "1Gi")).await?;
        let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns);
        snapshots
            .create(&PostParams::default(), &snapshot("snap", "data", None))
            .await?;
        let ready = wait_snapshot_ready(&snapshots, "snap", READY_TIMEOUT).await?;
        let content_name = bound_content(&ready);
        let data = snapshot_data_dir(&state_dir(&pv)?, &content_name);
        assert!(data.is_dir());
        snapshots.delete("snap", &DeleteParams::default()).await?;
        let contents = Api::<VolumeSnapshotContent>::all(client.clone());
        wait_for(
            &contents,
            &content_name,
            READY_TIMEOUT,
            "the content to be deleted",
            |c| c.is_none(),
        )
        .await?;
        assert!(!data.exists(), "{} removed", data.display());
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn deletion_policy_retain_keeps_content_and_data() {
    with_namespace("snap-del-retain", |client, ns| async move {
        let class_name = format!("{ns}-retain");
        let classes = Api::<VolumeSnapshotClass>::all(client.clone());
        classes
            .create(
                &PostParams::default(),
                &VolumeSnapshotClass::new(
                    &class_name,
                    "archivist.dev/local",
                    DeletionPolicy::Retain,
                ),
            )
            .await?;
        let result = async {
            let (_, pv) = create_bound(&client, &ns, &pvc("data", "1Gi")).await?;
            std::fs::write(host_dir(&pv)?.join("file.txt"), "retained")?;
            let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns);
            snapshots
                .create(
                    &PostParams::default(),
                    &snapshot("snap", "data", Some(&class_name)),
                )
                .await?;
            let ready = wait_snapshot_ready(&snapshots, "snap", READY_TIMEOUT).await?;
            let content_name = bound_content(&ready);
            let contents = Api::<VolumeSnapshotContent>::all(client.clone());
            assert_eq!(
                contents.get(&content_name).await?.spec.deletion_policy,
                DeletionPolicy::Retain
            );
            let data = snapshot_data_dir(&state_dir(&pv)?, &content_name);
            snapshots.delete("snap", &DeleteParams::default()).await?;
            wait_for(
                &snapshots,
                "snap",
                READY_TIMEOUT,
                "the snapshot to be deleted",
                |s| s.is_none(),
            )
            .await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert!(
                contents.get_opt(&content_name).await?.is_some(),
                "the Retain content is kept"
            );
            assert_eq!(std::fs::read_to_string(data.join("file.txt"))?, "retained");
            // Deleting a Retain content keeps the data too; then clean up by hand.
            contents
                .delete(&content_name, &DeleteParams::default())
                .await?;
            eventually(
                "the retained content to be deleted",
                READY_TIMEOUT,
                || async {
                    Ok(if contents.get_opt(&content_name).await?.is_none() {
                        Ok(())
                    } else {
                        Err("still there".into())
                    })
                },
            )
            .await?;
            assert!(
                data.is_dir(),
                "Retain keeps the data after the content is deleted"
            );
            std::fs::remove_dir_all(&data)?;
            anyhow::Ok(())
        }
        .await;
        classes
            .delete(&class_name, &DeleteParams::default())
            .await?;
        result
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_shallow_volume_is_the_snapshot_itself_read_only_and_keeps_it() {
    use archivist_e2e::testing::pods::{create_yaml, exec, is_ready, POD_TIMEOUT};
    use archivist_e2e::testing::volumes::with_class;
    use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim, Pod};
    with_namespace("snap-shallow", |client, ns| async move {
        let (_, source_pv) = create_bound(&client, &ns, &pvc("data", "1Gi")).await?;
        let source_dir = host_dir(&source_pv)?;
        std::fs::write(source_dir.join("file.txt"), "version 1")?;
        let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns);
        snapshots.create(&PostParams::default(), &snapshot("snap", "data", None)).await?;
        let content = bound_content(&wait_snapshot_ready(&snapshots, "snap", READY_TIMEOUT).await?);
        let data = snapshot_data_dir(&state_dir(&source_pv)?, &content);

        // ReadOnlyMany of the shallow class: the snapshot's own directory, no copy.
        let shallow = |name: &str, mode: &str| {
            let mut claim = with_class(from_snapshot(pvc(name, "1Gi"), "snap"), "archivist-local-shallow");
            if let Some(spec) = claim.spec.as_mut() {
                spec.access_modes = Some(vec![mode.to_owned()]);
            }
            claim
        };
        let (_, pv) = create_bound(&client, &ns, &shallow("shallow", "ReadOnlyMany")).await?;
        assert_eq!(host_dir(&pv)?, data, "a shallow volume is the snapshot's data");
        assert_eq!(pv.annotations().get("sim.archivist.dev/backing-snapshot"), Some(&content));

        // A pod that does not ask for readOnly still cannot write.
        let yaml = r#"
metadata: {name: reader}
spec:
  containers:
  - {name: main, image: ignored, volumeMounts: [{name: data, mountPath: /data}]}
  volumes: [{name: data, persistentVolumeClaim: {claimName: shallow}}]
"#;
        create_yaml::<Pod>(&client, &ns, yaml).await?;
        let pods = Api::<Pod>::namespaced(client.clone(), &ns);
        wait_for(&pods, "reader", POD_TIMEOUT, "reader Ready", is_ready).await?;
        let read = exec(&pods, "reader", "main", &["cat", "/data/file.txt"]).await?;
        assert_eq!(read.stdout, "version 1");
        let write = exec(&pods, "reader", "main", &["sh", "-c", "echo x > /data/new.txt"]).await?;
        assert_eq!(write.status, "Failure", "wrote into a shallow volume: {write:?}");
        assert!(!data.join("new.txt").exists());

        // Any other access mode is refused, with an Event that says why.
        Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &shallow("writable", "ReadWriteOnce"))
            .await?;
        let events = Api::<Event>::namespaced(client.clone(), &ns);
        eventually("ProvisioningFailed on PVC writable", Duration::from_secs(20), || async {
            let list = events.list(&Default::default()).await?;
            let found = list.items.iter().any(|e| {
                e.reason.as_deref() == Some("ProvisioningFailed")
                    && e.involved_object.name.as_deref() == Some("writable")
                    && e.message.as_deref().is_some_and(|m| m.contains("ReadOnlyMany"))
            });
            Ok(if found { Ok(()) } else { Err(format!("{} Event(s), none of them", list.items.len())) })
        })
        .await?;

        // The snapshot's data stays while the shallow volume reads it, and goes after it.
        pods.delete("reader", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await?;
        snapshots.delete("snap", &DeleteParams::default()).await?;
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(data.join("file.txt").exists(), "the snapshot's data went while a shallow volume used it");
        Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns).delete("shallow", &DeleteParams::default()).await?;
        eventually("the snapshot's data to go after its shallow volume", Duration::from_secs(60), || async {
            Ok(if data.exists() { Err(format!("{} is still there", data.display())) } else { Ok(()) })
        })
        .await?;
        Ok(())
    })
    .await;
}
