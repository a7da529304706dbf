//! `crds/` must hold exactly what the Rust types generate (regenerate with
//! `cargo run -p archivist -- crds --output-dir crds`).

use std::path::Path;

fn crds_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../crds"))
}

#[test]
fn crds_dir_matches_the_types() {
    let generated = archivist::cli::crds::all();
    let mut stale = Vec::new();
    for (file_name, crd) in &generated {
        let want = archivist::cli::crds::to_yaml(crd).expect("serialize CRD");
        let have = std::fs::read_to_string(crds_dir().join(file_name)).unwrap_or_default();
        if have != want {
            stale.push(file_name.clone());
        }
    }
    assert!(
        stale.is_empty(),
        "crds/ is out of date for {stale:?}: run `cargo run -p archivist -- crds --output-dir crds`"
    );
    let mut on_disk: Vec<String> = std::fs::read_dir(crds_dir())
        .expect("crds/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    let mut want: Vec<String> = generated.into_iter().map(|(n, _)| n).collect();
    want.sort();
    assert_eq!(on_disk, want, "crds/ holds files no type generates");
}

#[test]
fn crds_command_prints_every_crd_once() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_archivist"))
        .arg("crds")
        .output()
        .expect("run archivist crds");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("valid YAML"))
        .collect();
    let mut names: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().expect("name"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "archivebackups.archivist.dev",
            "backuppolicies.archivist.dev",
            "clusterretentionpolicies.archivist.dev",
            "restorerequests.archivist.dev"
        ]
    );
    for d in &docs {
        let version = &d["spec"]["versions"][0];
        assert_eq!(version["subresources"]["status"], serde_yaml::Value::Mapping(Default::default()));
        assert!(version["schema"]["openAPIV3Schema"]["properties"]["status"].is_mapping());
    }
}
