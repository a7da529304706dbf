//! Verification: scratch PVCs restored from a run's snapshots and the verify Job that checks
//! them, mounted under `/verify/<component>/<store>/<n>` (`master` for the master's store).

use super::labels::{item_labels, owned_by};
use crate::api::{ArchiveBackup, VerificationSpec};
use crate::plan::backup::{verify_claim_name, verify_job_name};
use crate::plan::capture::PlannedItem;
use crate::plan::names::component_word;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource,
    TypedLocalObjectReference, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use std::collections::BTreeMap;

/// Where plan item `index` is mounted in the verify Job.
pub fn mount_path(plan: &[PlannedItem], index: usize) -> String {
    let item = &plan[index];
    let n = plan[..index].iter().filter(|i| i.component == item.component && i.store == item.store).count();
    let store = if item.store.is_empty() { "master" } else { item.store.as_str() };
    format!("/verify/{}/{store}/{n}", component_word(item.component))
}

/// The verify Job's scratch PVC of plan item `index`, restored from its snapshot and owned by
/// the backup.
pub fn scratch_claim(backup: &ArchiveBackup, plan: &[PlannedItem], index: usize, size: Option<String>) -> PersistentVolumeClaim {
    scratch_claim_named(backup, plan, index, size, verify_claim_name(&backup.name_any(), index))
}

/// A scratch PVC `name` of plan item `index`, restored from its snapshot, labelled as the
/// item and owned by the backup (verification's, and the export's).
pub fn scratch_claim_named(backup: &ArchiveBackup, plan: &[PlannedItem], index: usize, size: Option<String>, name: String) -> PersistentVolumeClaim {
    let item = &plan[index];
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: backup.namespace(),
            labels: Some(item_labels(&backup.spec.policy_name, &backup.name_any(), item.component, &item.store)),
            owner_references: Some(owned_by(backup)),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), Quantity(size.unwrap_or_else(|| "1Gi".into())))])),
                ..Default::default()
            }),
            data_source: Some(TypedLocalObjectReference {
                api_group: Some("snapshot.storage.k8s.io".into()),
                kind: "VolumeSnapshot".into(),
                name: item.snapshot.clone(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The verify Job: the policy's verification command with every scratch PVC mounted read-only,
/// stopped by Kubernetes after `verification.timeoutSeconds` (`activeDeadlineSeconds`).
pub fn verify_job(backup: &ArchiveBackup, plan: &[PlannedItem], spec: &VerificationSpec) -> Job {
    let name = backup.name_any();
    let volumes = (0..plan.len())
        .map(|i| Volume {
            name: format!("item-{i}"),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: verify_claim_name(&name, i), read_only: Some(true) }),
            ..Default::default()
        })
        .collect();
    let mounts = (0..plan.len())
        .map(|i| VolumeMount { name: format!("item-{i}"), mount_path: mount_path(plan, i), read_only: Some(true), ..Default::default() })
        .collect();
    let container = Container { name: "verify".into(), image: spec.image.clone(), command: Some(spec.command.clone()), volume_mounts: Some(mounts), ..Default::default() };
    super::jobs::run_once_job(backup, verify_job_name(&name), Some(i64::from(spec.timeout_seconds)), container, volumes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Component;
    use crate::plan::capture::{CaptureStage, ItemSource};

    #[test]
    fn mount_paths_number_items_per_component_and_store() {
        let item = |component, store: &str, claim: &str| PlannedItem {
            stage: CaptureStage::Metadata,
            component,
            store: store.into(),
            source: ItemSource::Claim(claim.into()),
            snapshot: format!("s-{claim}"),
        };
        let plan = vec![
            item(Component::Master, "", "m0"),
            item(Component::Master, "", "m1"),
            item(Component::Metadata, "s1", "meta"),
            item(Component::Content, "s1", "c"),
        ];
        let paths: Vec<String> = (0..plan.len()).map(|i| mount_path(&plan, i)).collect();
        assert_eq!(paths, ["/verify/master/master/0", "/verify/master/master/1", "/verify/metadata/s1/0", "/verify/content/s1/0"]);
    }

    #[test]
    fn the_verify_job_stops_at_verification_timeout_seconds() {
        let backup = ArchiveBackup::new(
            "b",
            crate::api::ArchiveBackupSpec { policy_name: "p".into(), reason: Default::default(), hold: false },
        );
        let cases = [(VerificationSpec::default(), 1800), (VerificationSpec { timeout_seconds: 5, ..Default::default() }, 5)];
        for (spec, want) in cases {
            let job = verify_job(&backup, &[], &spec);
            let deadline = job.spec.and_then(|s| s.active_deadline_seconds);
            assert_eq!(deadline, Some(want), "{spec:?}");
        }
    }
}
