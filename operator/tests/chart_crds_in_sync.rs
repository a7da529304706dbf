//! The Helm chart installs the CRDs from `charts/archivist/crds/`, which must be a byte-for-byte
//! copy of the generated `crds/` (refresh it with `cp crds/*.yaml charts/archivist/crds/`).
//! The chart's `appVersion` must be the crate's version (the default image tag).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file of `dir` by name, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            let bytes = std::fs::read(e.path()).unwrap_or_else(|err| panic!("cannot read {}: {err}", e.path().display()));
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

#[test]
fn chart_crds_are_a_copy_of_crds() {
    let generated = files(&repo().join("crds"));
    let chart = files(&repo().join("charts/archivist/crds"));
    assert!(!generated.is_empty(), "crds/ is empty");
    let missing: Vec<&String> = generated.keys().filter(|n| !chart.contains_key(*n)).collect();
    let extra: Vec<&String> = chart.keys().filter(|n| !generated.contains_key(*n)).collect();
    let differ: Vec<&String> = generated.iter().filter(|(n, b)| chart.get(*n).is_some_and(|c| c != *b)).map(|(n, _)| n).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "charts/archivist/crds/ is not a copy of crds/ (missing {missing:?}, extra {extra:?}, different {differ:?}); \
         refresh it: rm charts/archivist/crds/*.yaml && cp crds/*.yaml charts/archivist/crds/"
    );
}

#[test]
fn chart_app_version_is_the_crate_version() {
    let chart = std::fs::read_to_string(repo().join("charts/archivist/Chart.yaml")).expect("read Chart.yaml");
    let chart: serde_yaml::Value = serde_yaml::from_str(&chart).expect("Chart.yaml is YAML");
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "charts/archivist/Chart.yaml appVersion must be the crate version (the default image tag)"
    );
}
