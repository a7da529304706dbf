//! `archivist validate`: the real binary on good, bad and malformed manifests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The fixtures of these tests; the binary runs there so that file names in output are short.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/validate")
}

/// The workspace's `examples/` folder.
fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn validate(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_archivist"))
        .arg("validate")
        .args(args)
        .current_dir(fixtures())
        .output()
        .expect("run archivist");
    let output = Output {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    };
    assert!(!output.stderr.contains("panicked"), "{}", output.stderr);
    assert!(!output.stderr.contains("RUST_BACKTRACE"), "{}", output.stderr);
    output
}

#[test]
fn valid_file_exits_0() {
    let out = validate(&["valid.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "archivist validate: 4 archivist.dev objects in 1 file: no problems\n");
}

#[test]
fn every_problem_is_one_line_and_exit_1() {
    let out = validate(&["problems.yaml"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let want = [
        r#"problems.yaml: BackupPolicy mail/mailstore: spec.timeZone: unknown time zone "Europe/Atlantis" (expected an IANA name such as "Europe/Istanbul" or "UTC")"#,
        r#"problems.yaml: BackupPolicy mail/mailstore: spec.schedule: bad cron expression "0 25 * * *": hour 25 is out of range 0-23"#,
        "problems.yaml: BackupPolicy mail/mailstore: spec.quiesce.thaw: is required when mode is Freeze",
        r#"problems.yaml: BackupPolicy mail/mailstore: spec.stores[0].content.volumeClaims[0]: PVC "meta-2024" is already captured as spec.stores[0].metadata.volumeClaims[0]; a PVC can belong to only one part of the archive"#,
        r#"problems.yaml: BackupPolicy mail/mailstore: spec.stores[1].name: "store-2024" is already the name of spec.stores[0]"#,
        "problems.yaml: BackupPolicy mail/mailstore: spec.stores[1].content: sets both volumeClaims and sql: choose one",
        "problems.yaml: BackupPolicy mail/mailstore: spec.dump: is required because spec.stores[1].metadata uses sql (the dump Job writes into a new PVC)",
        "problems.yaml: RestoreRequest mail/restore-1: spec.source: needs exactly one of backupName or policyName, has both",
        r#"problems.yaml: RestoreRequest mail/restore-1: spec.target.nameSuffix: "_Restored" may only hold lowercase letters, digits and '-', and must end with a letter or digit (it is appended to PVC and workload names)"#,
        "problems.yaml: RestoreRequest mail/restore-1: spec.ttlSecondsAfterFinished: 3600 applies only to target.mode SideBySide (restored volumes are never removed)",
        "problems.yaml: BackupSchedule mail/nightly: kind: BackupSchedule is not an archivist.dev kind (expected one of BackupPolicy, RestoreRequest, ArchiveBackup, ClusterRetentionPolicy)",
        "problems.yaml: ArchiveBackup mail/manual-1: apiVersion: is archivist.dev/v1, expected archivist.dev/v1alpha1",
    ];
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), want);
    assert_eq!(out.stderr, "archivist validate: 4 archivist.dev objects in 1 file: 12 problems\n");
}

#[test]
fn list_items_are_validated_and_unnamed_objects_located() {
    let out = validate(&["list.yaml"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "list.yaml: RestoreRequest mail/<unnamed items[1]>: metadata.name: is required\n\
         list.yaml: RestoreRequest mail/<unnamed items[1]>: spec.stores[1]: \"store-2024\" is already listed as spec.stores[0]\n"
    );
}

#[test]
fn other_api_groups_are_skipped() {
    let out = validate(&["mixed.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "archivist validate: 1 archivist.dev object in 1 file: no problems, 2 other documents skipped\n"
    );
}

#[test]
fn bad_input_is_one_line_naming_file_and_field_and_exit_2() {
    let cases = [
        ("malformed.yaml", "archivist: malformed.yaml: document 1 is not valid YAML: "),
        ("wrong-type.yaml", "archivist: wrong-type.yaml: spec.retention.keepDaily: invalid type: string \"lots\", expected u32\n"),
        ("missing-kind.yaml", "archivist: missing-kind.yaml: kind: is missing\n"),
        ("no-such-file.yaml", "archivist: no-such-file.yaml: cannot read: "),
    ];
    for (file, want) in cases {
        let out = validate(&[file]);
        assert_eq!(out.code, 2, "{file}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{file}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{file}: one error line and the summary: {}", out.stderr);
        assert!(out.stderr.starts_with(want), "{file}: {:?} should start with {want:?}", out.stderr);
        assert!(lines[1].ends_with("1 input error (listed above)"), "{file}: {}", lines[1]);
    }
}

#[test]
fn bad_input_does_not_hide_problems_in_other_files() {
    let out = validate(&["wrong-type.yaml", "list.yaml", "valid.yaml"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
    assert!(out.stderr.starts_with("archivist: wrong-type.yaml: spec.retention.keepDaily: "), "{}", out.stderr);
    assert!(
        out.stderr.ends_with("archivist validate: 6 archivist.dev objects in 3 files: 2 problems, 1 input error (listed above)\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn no_file_is_a_usage_error() {
    let out = validate(&[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("FILE"), "{}", out.stderr);
}

#[test]
fn every_example_is_valid() {
    fn manifests(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                manifests(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    manifests(&examples(), &mut files);
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    for file in &files {
        let out = validate(&[file.to_str().expect("utf-8 path")]);
        assert_eq!(out.code, 0, "{}: {}{}", file.display(), out.stdout, out.stderr);
        assert_eq!(out.stdout, "", "{}", file.display());
        let has_archivist_objects = std::fs::read_to_string(file).expect("readable").contains("apiVersion: archivist.dev/");
        if has_archivist_objects {
            assert!(!out.stderr.contains(" 0 archivist.dev objects"), "{}: {}", file.display(), out.stderr);
        }
    }
    // A directory means every manifest under it.
    let out = validate(&[examples().to_str().expect("utf-8 path")]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let want = format!("in {} files: no problems", files.len());
    assert!(out.stderr.contains(&want), "{}", out.stderr);
}

#[test]
fn restore_requests_are_checked_against_their_policy() {
    let out = validate(&["cross.yaml"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "cross.yaml: RestoreRequest mail/restore-2023: spec.stores[1]: BackupPolicy mailstore has no store \"store-2023\" (its stores: store-2024)\n\
         cross.yaml: RestoreRequest mail/restore-2023: spec.source.select: LatestVerified never finds a backup: BackupPolicy mailstore verifies none (no verification.afterBackup or drillSchedule)\n"
    );
}
