//! `InPlace` keeps each claim's shape: before an original claim is deleted, its storage class,
//! access modes, requested size, volume mode, labels and annotations are recorded in
//! `status.replacedClaims`, and the claim is recreated from that record (with the snapshot as
//! its data source). Pure: the record is read from the claim object, nothing else.

use crate::api::ReplacedClaim;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;

/// Annotation prefixes that Kubernetes' volume binding and provisioning manage
/// (`pv.kubernetes.io/bind-completed`, `volume.kubernetes.io/storage-provisioner`, ...). They
/// describe the old claim's binding: copied onto a new, unbound claim they would make the
/// binder treat it as bound (and mark it Lost). They are neither recorded nor recreated.
pub const MANAGED_ANNOTATION_PREFIXES: [&str; 3] = ["pv.kubernetes.io/", "volume.beta.kubernetes.io/", "volume.kubernetes.io/"];

/// The size of a restored claim when neither a recorded size nor the snapshot's size is known.
pub const FALLBACK_SIZE: &str = "1Gi";

/// Whether an annotation is one Kubernetes manages for the binding ([`MANAGED_ANNOTATION_PREFIXES`]).
pub fn is_managed_annotation(key: &str) -> bool {
    MANAGED_ANNOTATION_PREFIXES.iter().any(|prefix| key.starts_with(prefix))
}

/// The record of a claim an in-place restore is about to replace: its name, storage class,
/// access modes, requested size, volume mode, labels, annotations (without the managed ones)
/// and bound volume.
pub fn record_of(claim: &PersistentVolumeClaim) -> ReplacedClaim {
    let spec = claim.spec.clone().unwrap_or_default();
    let size = spec.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("storage")).map(|q| q.0.clone());
    ReplacedClaim {
        name: claim.metadata.name.clone().unwrap_or_default(),
        storage_class_name: spec.storage_class_name,
        access_modes: spec.access_modes.unwrap_or_default(),
        size,
        volume_mode: spec.volume_mode,
        labels: claim.metadata.labels.clone().unwrap_or_default(),
        annotations: claim.metadata.annotations.iter().flatten().filter(|(k, _)| !is_managed_annotation(k)).map(|(k, v)| (k.clone(), v.clone())).collect(),
        volume: spec.volume_name.filter(|v| !v.is_empty()),
    }
}

/// The storage a restored claim requests: the recorded (or original) request, unless the
/// snapshot's `restoreSize` is larger (a CSI driver refuses a claim smaller than its snapshot);
/// either one when the other is unknown or unreadable; [`FALLBACK_SIZE`] when neither is known.
pub fn restored_size(requested: Option<&str>, restore_size: Option<&str>) -> String {
    match (requested, restore_size) {
        (Some(requested), Some(restore)) => match (bytes(requested), bytes(restore)) {
            (Some(r), Some(s)) if s > r => restore.to_string(),
            (None, Some(_)) => restore.to_string(),
            _ => requested.to_string(),
        },
        (Some(one), None) | (None, Some(one)) => one.to_string(),
        (None, None) => FALLBACK_SIZE.to_string(),
    }
}

/// The bytes of a Kubernetes quantity (`10Gi`, `500M`, `1e9`, `1.5Ti`), approximately (enough
/// to compare two sizes); `None` when it is not a quantity.
pub fn bytes(quantity: &str) -> Option<f64> {
    let q = quantity.trim();
    let split = q.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let value: f64 = number.parse().ok()?;
    let binary = |power: i32| Some(value * 1024f64.powi(power));
    let decimal = |power: i32| Some(value * 10f64.powi(power));
    match suffix {
        "" => Some(value),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        exponent => {
            let power: i32 = exponent.strip_prefix(['e', 'E'])?.parse().ok()?;
            decimal(power)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, VolumeResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_record_holds_the_claims_shape_without_the_binding() {
        let claim = PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("master".into()),
                labels: Some(map(&[("tier", "gold"), ("empty", "")])),
                annotations: Some(map(&[
                    ("note", "keep me"),
                    ("blank", ""),
                    ("pv.kubernetes.io/bind-completed", "yes"),
                    ("pv.kubernetes.io/bound-by-controller", "yes"),
                    ("volume.beta.kubernetes.io/storage-provisioner", "archivist.dev/local"),
                    ("volume.kubernetes.io/storage-provisioner", "archivist.dev/local"),
                ])),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                storage_class_name: Some("gold".into()),
                access_modes: Some(vec!["ReadWriteMany".into()]),
                volume_mode: Some("Filesystem".into()),
                volume_name: Some("pv-1".into()),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([("storage".to_string(), Quantity("2Gi".into()))])),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: None,
        };
        assert_eq!(
            record_of(&claim),
            ReplacedClaim {
                name: "master".into(),
                storage_class_name: Some("gold".into()),
                access_modes: vec!["ReadWriteMany".into()],
                size: Some("2Gi".into()),
                volume_mode: Some("Filesystem".into()),
                labels: map(&[("tier", "gold"), ("empty", "")]),
                annotations: map(&[("note", "keep me"), ("blank", "")]),
                volume: Some("pv-1".into()),
            }
        );
        let bare = PersistentVolumeClaim { metadata: ObjectMeta { name: Some("c".into()), ..Default::default() }, spec: None, status: None };
        assert_eq!(record_of(&bare), ReplacedClaim { name: "c".into(), ..Default::default() });
        let no_class = PersistentVolumeClaim {
            spec: Some(PersistentVolumeClaimSpec { storage_class_name: Some(String::new()), ..Default::default() }),
            ..bare
        };
        assert_eq!(record_of(&no_class).storage_class_name, Some(String::new()), "explicitly no class is kept apart from the default class");
    }

    #[test]
    fn restored_sizes() {
        let cases: [(Option<&str>, Option<&str>, &str); 9] = [
            (Some("2Gi"), Some("1Gi"), "2Gi"),
            (Some("1Gi"), Some("2Gi"), "2Gi"),
            (Some("1Gi"), Some("1Gi"), "1Gi"),
            (Some("1G"), Some("1Gi"), "1Gi"),
            (Some("1500Mi"), Some("1e9"), "1500Mi"),
            (Some("10Gi"), None, "10Gi"),
            (None, Some("3Gi"), "3Gi"),
            (Some("lots"), Some("3Gi"), "3Gi"),
            (None, None, FALLBACK_SIZE),
        ];
        for (requested, restore, want) in cases {
            assert_eq!(restored_size(requested, restore), want, "{requested:?} / {restore:?}");
        }
    }

    #[test]
    fn quantities() {
        let cases: [(&str, Option<f64>); 9] = [
            ("1Gi", Some(1073741824.0)),
            ("1G", Some(1e9)),
            ("1.5Ki", Some(1536.0)),
            ("500m", Some(0.5)),
            ("2e3", Some(2000.0)),
            ("1E", Some(1e18)),
            ("1024", Some(1024.0)),
            ("Gi", None),
            ("1Xi", None),
        ];
        for (q, want) in cases {
            assert_eq!(bytes(q), want, "{q}");
        }
    }

    #[test]
    fn managed_annotations() {
        let cases = [
            ("pv.kubernetes.io/bind-completed", true),
            ("volume.beta.kubernetes.io/storage-provisioner", true),
            ("volume.kubernetes.io/selected-node", true),
            ("kubectl.kubernetes.io/last-applied-configuration", false),
            ("example.com/owner", false),
        ];
        for (key, managed) in cases {
            assert_eq!(is_managed_annotation(key), managed, "{key}");
        }
    }
}
