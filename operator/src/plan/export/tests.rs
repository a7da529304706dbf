use super::*;
use crate::api::{Component, VerificationSpec};
use crate::plan::capture::{CaptureStage, ItemSource};

fn item(component: Component, store: &str, claim: &str) -> PlannedItem {
    PlannedItem { stage: CaptureStage::Metadata, component, store: store.into(), source: ItemSource::Claim(claim.into()), snapshot: format!("s-{claim}") }
}

fn policy(export_after: Option<ExportAfter>, after_backup: bool) -> BackupPolicySpec {
    let mut policy: BackupPolicySpec = serde_json::from_value(serde_json::json!({
        "target": {"kind": "StatefulSet", "name": "archive"},
        "stores": [{"name": "s1", "metadata": {"volumeClaims": ["meta"]}, "content": {"volumeClaims": ["content"]}}],
    }))
    .expect("policy");
    policy.export = Some(ExportSpec { repository_secret: "repo".into(), image: None, after: export_after, prune_schedule: None, check_read_data_percent: 0, ..Default::default() });
    policy.verification = Some(VerificationSpec { after_backup, command: vec!["true".into()], ..Default::default() });
    policy
}

fn verification(state: VerificationState) -> VerificationStatus {
    VerificationStatus { state, finished_at: None, message: None, reason: None }
}

#[test]
fn a_run_is_exported_after_what_the_policy_says() {
    let not_verified = |word: &str| OnCompletion::NotVerified(format!("export.after is Verified and the verification {word}; the restore point is not exported"));
    let passed = verification(VerificationState::Passed);
    let failed = verification(VerificationState::Failed);
    let cases = [
        // (export.after, verification.afterBackup, the run's verification, what happens)
        (None, false, None, OnCompletion::Due),
        (None, true, Some(&passed), OnCompletion::Due),
        (None, true, Some(&failed), not_verified("failed")),
        (Some(ExportAfter::Completed), true, Some(&failed), OnCompletion::Due),
        (Some(ExportAfter::Verified), true, None, not_verified("did not pass")),
        (Some(ExportAfter::Verified), true, Some(&passed), OnCompletion::Due),
    ];
    for (after, after_backup, run, want) in cases {
        assert_eq!(on_completion(&policy(after, after_backup), run), want, "{after:?} {after_backup} {run:?}");
    }
    let mut off = policy(None, false);
    off.export = None;
    assert_eq!(on_completion(&off, None), OnCompletion::Off);
}

#[test]
fn repositories_are_shown_without_credentials() {
    let cases = [
        ("rest:https://user:pa55@host:8000/repo", "rest:https://host:8000/repo"),
        ("rest:http://127.0.0.1:8000/", "rest:http://127.0.0.1:8000/"),
        ("s3:https://s3.amazonaws.com/bucket/path", "s3:https://s3.amazonaws.com/bucket/path"),
        ("rest:https://u:p@ss@host/r@x", "rest:https://host/r@x"),
        ("sftp:user@host:/srv/restic", "sftp:user@host:/srv/restic"),
        ("/srv/restic-repo", "/srv/restic-repo"),
        ("  rest:http://a:b@h/  ", "rest:http://h/"),
        ("rest:https://user:pa/ss@host/repo", "rest:https://host/repo"),
        ("rest:https://user:a/b@c@host:8000/repo", "rest:https://host:8000/repo"),
        ("rest:https://user@host/repo", "rest:https://host/repo"),
        ("rest:https://host/r@x", "rest:https://host/r@x"),
    ];
    for (repository, _) in &cases {
        for secret in ["pa55", "pa/ss", "a/b@c"] {
            assert!(!redact_repository(repository).contains(secret), "{repository} shows {secret}");
        }
    }
    for (repository, want) in cases {
        assert_eq!(redact_repository(repository), want, "{repository}");
    }
}

#[test]
fn the_jobs_summaries_become_the_exported_snapshots() {
    let plan = export_items(&[item(Component::Metadata, "s1", "meta"), item(Component::Content, "s1", "content")], None);
    let summary = |id: &str, processed: u64, added: u64| {
        format!(r#"{{"message_type":"summary","data_added":{added},"total_bytes_processed":{processed},"snapshot_id":"{id}"}}"#)
    };
    let manifest = summary("cccc3333", 700, 10);
    let log = format!(
        "restic says hello\narchivist-export 1 {}\nwarning: something on stderr\narchivist-export 0 {}\narchivist-export manifest {manifest}\n",
        summary("bbbb2222", 2000, 1500),
        summary("aaaa1111", 100, 90)
    );
    let ExportReport { snapshots, bytes_added: added, manifest: manifest_id } = parse_results(&log, &plan).expect("parsed");
    assert_eq!(added, 1600);
    assert_eq!(manifest_id, "cccc3333");
    let got: Vec<(Component, &str, &str, &str, u64)> =
        snapshots.iter().map(|s| (s.component, s.store.as_str(), s.claim.as_str(), s.id.as_str(), s.bytes)).collect();
    assert_eq!(got, [(Component::Metadata, "s1", "meta", "aaaa1111", 100), (Component::Content, "s1", "content", "bbbb2222", 2000)]);

    let errors = [
        (format!("archivist-export 0 {}\narchivist-export manifest {manifest}", summary("a", 1, 1)), "no repository snapshot for item(s) 1"),
        (format!("archivist-export 0 {}\narchivist-export 1 {}", summary("a", 1, 1), summary("b", 1, 1)), "no repository snapshot of the manifest"),
        (format!("archivist-export 2 {}", summary("a", 1, 1)), "reported item 2, but the restore point has 2 item(s)"),
        ("archivist-export 0 not-json".to_string(), "summary of item 0 is not JSON"),
        ("archivist-export 0 {\"message_type\":\"summary\"}".to_string(), "summary of item 0 names no snapshot_id"),
        (String::new(), "no repository snapshot for item(s) 0, 1"),
    ];
    for (log, want) in errors {
        let err = parse_results(&log, &plan).expect_err(&log);
        assert!(err.contains(want), "{log}: {err}");
    }
}

#[test]
fn names_fit_and_differ_from_verifications() {
    let long = "b".repeat(250);
    assert!(export_claim_name(&long, 3).len() <= crate::plan::names::MAX_NAME);
    assert!(export_job_name(&long).len() <= crate::plan::names::MAX_LABEL_NAME);
    assert_ne!(export_claim_name("b", 0), crate::plan::backup::verify_claim_name("b", 0));
    assert_eq!(export_job_name("b"), "b-export");
}

#[test]
fn the_secret_copy_is_exported_after_the_volumes_and_the_manifest_leaves_export_out() {
    let plan = [item(Component::Master, "", "master-0"), item(Component::Metadata, "s1", "meta")];
    let items = export_items(&plan, Some("b1-secrets"));
    let got: Vec<(Component, &str, &str)> = items.iter().map(|i| (i.component, i.claim.as_str(), i.path.as_str())).collect();
    assert_eq!(got, [(Component::Master, "master-0", "/export/0"), (Component::Metadata, "meta", "/export/1"), (Component::Secrets, "b1-secrets", SECRETS_MOUNT)]);
    assert_eq!(export_items(&plan, None).len(), 2);

    let mut backup = ArchiveBackup::new("b1", crate::api::ArchiveBackupSpec { policy_name: "mail".into(), reason: Default::default(), hold: true });
    backup.metadata.namespace = Some("ns".into());
    backup.metadata.uid = Some("uid-1".into());
    backup.status = Some(ArchiveBackupStatus {
        phase: Some(crate::api::BackupPhase::Completed),
        export: Some(crate::api::ExportStatus { state: ExportState::Running, repository: None, started_at: None, finished_at: None, bytes_added: None, message: None, snapshots: vec![], manifest: None, forget_failed_at: None }),
        ..Default::default()
    });
    let m = manifest(&backup);
    assert_eq!(m["metadata"]["namespace"], "ns");
    assert_eq!(m["spec"]["policyName"], "mail");
    assert_eq!(m["spec"]["hold"], true);
    assert_eq!(m["status"]["phase"], "Completed");
    assert!(m["status"].get("export").is_none(), "{m}");
    assert!(m["metadata"].get("uid").is_none(), "{m}");
}
