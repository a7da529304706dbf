//! Offline checks of `e2e/crds/`: each CRD parses, is served as v1 only, names what the Rust
//! types in `archivist_e2e::snapshot_api` expect, and uses nothing a 1.20 API server rejects.

use archivist_e2e::snapshot_api::{VolumeSnapshot, VolumeSnapshotClass, VolumeSnapshotContent};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Resource;

fn load(file: &str) -> (String, CustomResourceDefinition) {
    let path = format!("{}/crds/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("CRD file readable");
    let crd = serde_yaml::from_str(&text).expect("CRD parses");
    (text, crd)
}

fn check<K: Resource<DynamicType = ()>>(file: &str, scope: &str, status_subresource: bool) {
    let (text, crd) = load(file);
    let cel = text
        .lines()
        .any(|l| !l.trim_start().starts_with('#') && l.contains("x-kubernetes-validations"));
    assert!(!cel, "{file}: CEL rules are rejected by 1.20");
    let spec = &crd.spec;
    assert_eq!(spec.group, K::group(&()));
    assert_eq!(spec.names.kind, K::kind(&()));
    assert_eq!(spec.names.plural, K::plural(&()));
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some(format!("{}.{}", K::plural(&()), K::group(&())).as_str())
    );
    assert_eq!(spec.scope, scope);
    assert_eq!(spec.versions.len(), 1, "{file}: v1 only");
    let version = &spec.versions[0];
    assert_eq!(version.name, K::version(&()));
    assert!(version.served && version.storage);
    assert!(
        version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .is_some(),
        "{file}: has a schema"
    );
    let has_status = version
        .subresources
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .is_some();
    assert_eq!(has_status, status_subresource, "{file}: status subresource");
}

#[test]
fn volume_snapshots_crd_matches_the_types() {
    check::<VolumeSnapshot>("volumesnapshots.yaml", "Namespaced", true);
}

#[test]
fn volume_snapshot_contents_crd_matches_the_types() {
    check::<VolumeSnapshotContent>("volumesnapshotcontents.yaml", "Cluster", true);
}

#[test]
fn volume_snapshot_classes_crd_matches_the_types() {
    check::<VolumeSnapshotClass>("volumesnapshotclasses.yaml", "Cluster", false);
}
