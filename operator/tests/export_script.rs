//! The export Job's script, run by `sh` with Debian's real `restic` against a local repository:
//! a new repository is initialised once, every item and the manifest are saved, and an item
//! that fails leaves no manifest (and no lock) behind, although the manifest's restic was
//! already waiting for its input.
//!
//! Needs `restic` on the PATH (`e2e/test-all` installs Debian's); without it the test fails.

use archivist::api::Component;
use archivist::kube::export_script::export_script;
use archivist::plan::export::{parse_results, ExportItem};
use std::path::Path;
use std::process::{Command, Output};

const MANIFEST: &str = r#"{"kind":"ArchiveBackup","metadata":{"name":"b1"}}"#;

/// Runs restic (or the script, with `sh -c`) with the repository of `dir` in its environment.
fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("RESTIC_REPOSITORY", dir.join("repo"))
        .env("RESTIC_PASSWORD", "not on any command line")
        .env("RESTIC_CACHE_DIR", dir.join("cache"))
        .env("TMPDIR", dir)
        .env("ARCHIVIST_MANIFEST", MANIFEST)
        .output()
        .unwrap_or_else(|e| panic!("failed to run {program} (install Debian's restic: e2e/test-all does): {e}"))
}

/// The repository's snapshots as (component tag, paths).
fn snapshots(dir: &Path) -> Vec<String> {
    let out = run(dir, "restic", &["snapshots", "--json"]);
    assert!(out.status.success(), "restic snapshots: {}", String::from_utf8_lossy(&out.stderr));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("snapshots JSON");
    let mut components: Vec<String> = list
        .iter()
        .filter_map(|s| s["tags"].as_array())
        .filter_map(|tags| tags.iter().filter_map(|t| t.as_str()).find_map(|t| t.strip_prefix("archivist.dev/component=")))
        .map(str::to_string)
        .collect();
    components.sort();
    components
}

fn item(dir: &Path, name: &str, component: Component) -> ExportItem {
    let path = dir.join(name);
    if name != "missing" {
        std::fs::create_dir_all(&path).expect("item dir");
        std::fs::write(path.join("data.txt"), format!("the data of {name}")).expect("item file");
    }
    ExportItem { component, store: "s1".into(), claim: name.into(), path: path.to_string_lossy().into_owned() }
}

#[test]
fn the_script_saves_every_item_then_the_manifest_and_no_manifest_after_a_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let items = vec![item(dir, "meta", Component::Metadata), item(dir, "content", Component::Content), item(dir, "index", Component::Index)];

    // A new repository: initialised once, then every item and the manifest.
    let script = export_script("ns", "mail", "b1", &items, 0, true);
    let out = run(dir, "sh", &["-c", &script]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "first export failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let report = parse_results(&stdout, &items).expect("the result lines");
    assert_eq!(report.snapshots.len(), 3);
    assert_eq!(snapshots(dir), ["content", "index", "manifest", "metadata"]);
    let dumped = run(dir, "restic", &["dump", &report.manifest, "/manifest.json"]);
    assert_eq!(String::from_utf8_lossy(&dumped.stdout), MANIFEST, "the manifest is $ARCHIVIST_MANIFEST: {}", String::from_utf8_lossy(&dumped.stderr));

    // The same repository again: no second init, one more snapshot of each.
    let out = run(dir, "sh", &["-c", &export_script("ns", "mail", "b2", &items, 0, false)]);
    assert!(out.status.success(), "second export failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(snapshots(dir).len(), 8);

    // An item that cannot be read: the Job fails, the other items may be saved, the manifest is
    // not (its restic was interrupted before its input ended), and it left no lock.
    let mut failing = items.clone();
    failing.insert(1, item(dir, "missing", Component::Content));
    let out = run(dir, "sh", &["-c", &export_script("ns", "mail", "b3", &failing, 0, false)]);
    assert!(!out.status.success(), "an export with a missing item succeeded");
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"), "stderr names the failure: {}", String::from_utf8_lossy(&out.stderr));
    let after = snapshots(dir);
    assert_eq!(after.iter().filter(|c| *c == "manifest").count(), 2, "no manifest for the failed export: {after:?}");
    let locks = run(dir, "restic", &["list", "locks", "--no-lock"]);
    assert_eq!(String::from_utf8_lossy(&locks.stdout).trim(), "", "the interrupted restic left a lock");
}
