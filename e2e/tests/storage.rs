//! Simulated storage against the local cluster: provisioning, binding, reclaim policies.
//! Run with `cargo test -p archivist-e2e -- --ignored` after `e2e/local-cluster up`.

use std::time::Duration;

use archivist_e2e::testing::volumes::{create_bound, host_dir, pvc, with_class};
use archivist_e2e::testing::{eventually, wait_for, with_namespace};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::Api;

const RECLAIM_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn pvc_gets_bound_to_a_host_path_volume() {
    with_namespace("pvc-bound", |client, ns| async move {
        let (claim, pv) = create_bound(&client, &ns, &pvc("data", "64Mi")).await?;
        let spec = claim.spec.as_ref().expect("spec");
        assert_eq!(
            spec.storage_class_name.as_deref(),
            Some("archivist-local"),
            "default class"
        );
        let pv_spec = pv.spec.as_ref().expect("pv spec");
        assert_eq!(
            pv_spec
                .capacity
                .as_ref()
                .and_then(|c| c.get("storage"))
                .map(|q| q.0.as_str()),
            Some("64Mi")
        );
        assert_eq!(
            pv_spec.claim_ref.as_ref().and_then(|r| r.name.as_deref()),
            Some("data")
        );
        assert_eq!(
            pv.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Bound")
        );
        let dir = host_dir(&pv)?;
        assert!(dir.is_dir(), "{} is a directory", dir.display());
        assert!(dir.ends_with(format!(
            "volumes/{}",
            pv.metadata.name.as_deref().unwrap_or_default()
        )));
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn reclaim_delete_removes_volume_and_directory() {
    with_namespace("reclaim-delete", |client, ns| async move {
        let (_, pv) = create_bound(&client, &ns, &pvc("data", "16Mi")).await?;
        let pv_name = pv.metadata.name.clone().expect("pv name");
        let dir = host_dir(&pv)?;
        std::fs::write(dir.join("file"), "x")?;
        Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
            .delete("data", &DeleteParams::default())
            .await?;
        let pvs = Api::<PersistentVolume>::all(client.clone());
        wait_for(
            &pvs,
            &pv_name,
            RECLAIM_TIMEOUT,
            "the PV to be deleted",
            |pv| pv.is_none(),
        )
        .await?;
        assert!(!dir.exists(), "{} was removed", dir.display());
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn reclaim_retain_keeps_volume_and_directory() {
    with_namespace("reclaim-retain", |client, ns| async move {
        let class_name = format!("{ns}-retain");
        let classes = Api::<StorageClass>::all(client.clone());
        let class = StorageClass {
            metadata: ObjectMeta {
                name: Some(class_name.clone()),
                ..ObjectMeta::default()
            },
            provisioner: "archivist.dev/local".to_owned(),
            reclaim_policy: Some("Retain".to_owned()),
            volume_binding_mode: Some("Immediate".to_owned()),
            ..StorageClass::default()
        };
        classes.create(&PostParams::default(), &class).await?;
        let result = async {
            let (_, pv) =
                create_bound(&client, &ns, &with_class(pvc("data", "16Mi"), &class_name)).await?;
            let pv_name = pv.metadata.name.clone().expect("pv name");
            assert_eq!(
                pv.spec
                    .as_ref()
                    .and_then(|s| s.persistent_volume_reclaim_policy.as_deref()),
                Some("Retain")
            );
            let dir = host_dir(&pv)?;
            std::fs::write(dir.join("file"), "kept")?;
            Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
                .delete("data", &DeleteParams::default())
                .await?;
            let pvs = Api::<PersistentVolume>::all(client.clone());
            wait_for(
                &pvs,
                &pv_name,
                RECLAIM_TIMEOUT,
                "the PV to be Released",
                |pv| {
                    pv.and_then(|p| p.status.as_ref())
                        .and_then(|s| s.phase.as_deref())
                        == Some("Released")
                },
            )
            .await?;
            // Give the reclaimer a chance to do the wrong thing.
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert!(
                pvs.get_opt(&pv_name).await?.is_some(),
                "the Retain PV is kept"
            );
            assert_eq!(std::fs::read_to_string(dir.join("file"))?, "kept");
            // Clean up what Retain keeps.
            pvs.delete(&pv_name, &DeleteParams::default()).await?;
            eventually("the retained PV to be deleted", RECLAIM_TIMEOUT, || async {
                Ok(if pvs.get_opt(&pv_name).await?.is_none() {
                    Ok(())
                } else {
                    Err("still there".into())
                })
            })
            .await?;
            std::fs::remove_dir_all(&dir)?;
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
