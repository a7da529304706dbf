//! `archivist retention preview`, run as the real binary on the fixtures in
//! `tests/fixtures/retention/`.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/retention")
        .join(name)
        .display()
        .to_string()
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn archivist(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_archivist")).args(args).output().expect("run archivist");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

fn preview(policy: &str, backups: &str, extra: &[&str]) -> Run {
    let (policy, backups) = (fixture(policy), fixture(backups));
    let mut args = vec!["retention", "preview", "--policy", &policy, "--backups", &backups];
    args.extend_from_slice(extra);
    archivist(&args)
}

const NOW: &[&str] = &["--now", "2027-01-02T00:00:00Z"];

fn json_of(run: &Run) -> Value {
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    serde_json::from_str(&run.stdout).expect("JSON on stdout")
}

fn with_json<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = NOW.to_vec();
    args.extend_from_slice(&["-o", "json"]);
    args.extend_from_slice(extra);
    args
}

/// The decisions for `policy.yaml` (Europe/Istanbul) over `backups-list.yaml`.
fn istanbul_decisions() -> Value {
    json!([
        {"name": "manual-1", "action": "keep", "reasons": ["in-progress"]},
        {"name": "mailstore-20270101050000", "action": "keep", "reasons": ["in-progress"]},
        {"name": "mailstore-20261231223000", "action": "keep", "reasons": ["last", "daily", "weekly"]},
        {"name": "mailstore-20261231200000", "action": "keep", "reasons": ["daily", "verified"]},
        {"name": "mailstore-20261230020000", "action": "prune", "reasons": ["expired"]},
        {"name": "mailstore-20261224020000", "action": "keep", "reasons": ["weekly"]},
        {"name": "mailstore-20261223020000", "action": "keep", "reasons": ["hold"]},
        {"name": "mailstore-20261201020000", "action": "keep", "reasons": ["failed"]},
        {"name": "mailstore-20261130020000", "action": "prune", "reasons": ["expired"]},
        {"name": "mailstore-20261101020000", "action": "prune", "reasons": ["expired"]}
    ])
}

#[test]
fn json_from_a_kubectl_list_matches_api_md() {
    let run = preview("policy.yaml", "backups-list.yaml", &with_json(&[]));
    assert_eq!(json_of(&run), istanbul_decisions());
    assert_eq!(
        run.stderr,
        "archivist: note: ignoring 2 backup(s) not of policy mailstore: webmail-20261231200000, mailstore-elsewhere\n"
    );
}

#[test]
fn json_from_multi_document_yaml_is_the_same() {
    assert_eq!(json_of(&preview("policy.yaml", "backups-multi.yaml", &with_json(&[]))), istanbul_decisions());
}

#[test]
fn now_does_not_change_the_policy_rules() {
    let run = preview("policy.yaml", "backups-list.yaml", &["-o", "json"]);
    assert_eq!(json_of(&run), istanbul_decisions());
}

#[test]
fn days_are_the_policy_time_zone_days() {
    // In UTC 22:30Z and 20:00Z on 2026-12-31 are one day, so the second daily bucket is 12-30.
    let got = json_of(&preview("policy-utc.yaml", "backups-list.yaml", &with_json(&[])));
    assert_eq!(got[3], json!({"name": "mailstore-20261231200000", "action": "keep", "reasons": ["verified"]}));
    assert_eq!(got[4], json!({"name": "mailstore-20261230020000", "action": "keep", "reasons": ["daily"]}));
}

#[test]
fn all_rules_zero_keeps_everything() {
    let got = json_of(&preview("policy-all-zero.yaml", "backups-list.yaml", &with_json(&[])));
    let items = got.as_array().expect("array");
    assert_eq!(items.len(), 10);
    assert!(items.iter().all(|d| d["action"] == "keep"), "{got}");
    assert_eq!(items[2]["reasons"], json!([]));
    assert_eq!(items[6]["reasons"], json!(["hold"]));
}

#[test]
fn cluster_policies_add_floors_and_ceilings() {
    let cluster = fixture("cluster.yaml");
    let got = json_of(&preview("policy.yaml", "backups-list.yaml", &with_json(&["--cluster-policy", &cluster])));
    let summary: Vec<String> = got
        .as_array()
        .expect("array")
        .iter()
        .map(|d| format!("{} {} {}", d["name"].as_str().unwrap_or(""), d["action"].as_str().unwrap_or(""), d["reasons"]))
        .collect();
    assert_eq!(
        summary,
        [
            r#"manual-1 keep ["in-progress"]"#,
            r#"mailstore-20270101050000 keep ["in-progress"]"#,
            r#"mailstore-20261231223000 keep ["last","daily","weekly"]"#,
            r#"mailstore-20261231200000 keep ["daily","verified"]"#,
            r#"mailstore-20261230020000 keep ["daily"]"#,
            r#"mailstore-20261224020000 prune ["max-restore-points"]"#,
            r#"mailstore-20261223020000 keep ["hold"]"#,
            r#"mailstore-20261201020000 prune ["max-retention"]"#,
            r#"mailstore-20261130020000 prune ["expired"]"#,
            r#"mailstore-20261101020000 prune ["expired"]"#,
        ]
    );
}

#[test]
fn a_cluster_legal_hold_keeps_every_backup() {
    let cluster = fixture("cluster-legal-hold.yaml");
    let got = json_of(&preview("policy.yaml", "backups-list.yaml", &with_json(&["--cluster-policy", &cluster])));
    let items = got.as_array().expect("array");
    assert_eq!(items.len(), 10);
    for item in items {
        assert_eq!(item["action"], "keep", "{item}");
        assert!(item["reasons"].as_array().is_some_and(|r| r.contains(&json!("cluster-hold"))), "{item}");
    }
}

#[test]
fn restores_keep_the_backups_unfinished_requests_read() {
    let restores = fixture("restores-list.yaml");
    let run = preview("policy.yaml", "backups-list.yaml", &with_json(&["--restores", &restores]));
    let mut want = istanbul_decisions();
    // Read by the running request (resolved) and by the one not started yet; the finished
    // request and the one of another namespace protect nothing.
    want[4] = json!({"name": "mailstore-20261230020000", "action": "keep", "reasons": ["restore-source"]});
    want[9] = json!({"name": "mailstore-20261101020000", "action": "keep", "reasons": ["restore-source"]});
    assert_eq!(json_of(&run), want);
    assert!(
        run.stderr.contains("archivist: note: ignoring 1 restore request(s) of another namespace: elsewhere\n"),
        "{}",
        run.stderr
    );
    // Without --restores, the same backups are pruned.
    let without = json_of(&preview("policy.yaml", "backups-list.yaml", &with_json(&[])));
    assert_eq!(without[4]["action"], "prune");
    assert_eq!(without[9]["action"], "prune");
}

#[test]
fn restores_in_the_table_and_with_cluster_ceilings() {
    let (restores, cluster) = (fixture("restores-list.yaml"), fixture("cluster.yaml"));
    let extra: Vec<&str> = NOW.iter().copied().chain(["--restores", restores.as_str()]).collect();
    let run = preview("policy.yaml", "backups-list.yaml", &extra);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let line = run.stdout.lines().find(|l| l.starts_with("mailstore-20261101020000")).expect("row");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[words.len() - 2..], ["keep", "restore-source"], "{line}");
    // Under the cluster ceilings (maxRetentionDays 30, maxRestorePointsPerPolicy 3) the
    // November backup a restore reads stays too; the other November one goes.
    let got = json_of(&preview("policy.yaml", "backups-list.yaml", &with_json(&["--restores", &restores, "--cluster-policy", &cluster])));
    assert_eq!(got[9], json!({"name": "mailstore-20261101020000", "action": "keep", "reasons": ["restore-source"]}));
    assert_eq!(got[8]["action"], "prune");
}

#[test]
fn pre_restore_backups_are_kept_from_the_backups_alone() {
    let got = json_of(&preview("policy.yaml", "backups-pre-restore.yaml", &with_json(&[])));
    assert_eq!(
        got,
        json!([
            {"name": "mailstore-20261231223000", "action": "keep", "reasons": ["last", "daily", "weekly"]},
            {"name": "mailstore-20261225020000", "action": "keep", "reasons": ["failed"]},
            {"name": "mailstore-20261224020000", "action": "keep", "reasons": ["daily", "weekly", "verified"]},
            {"name": "restore-1-pre-restore", "action": "keep", "reasons": ["pre-restore"]},
            {"name": "restore-0-pre-restore", "action": "keep", "reasons": ["pre-restore"]},
            {"name": "mailstore-20261101020000", "action": "prune", "reasons": ["expired"]}
        ])
    );
}

#[test]
fn table_shows_times_in_the_policy_zone() {
    let run = preview("policy.yaml", "backups-list.yaml", NOW);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let words = |line: &str| line.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(words(lines[0]), ["NAME", "TIME", "PHASE", "VERIFIED", "ACTION", "REASONS"]);
    assert_eq!(
        words(lines[3]),
        ["mailstore-20261231223000", "2027-01-01", "01:30:00", "+03", "Completed", "Pending", "keep", "last,daily,weekly"]
    );
    assert_eq!(words(lines[1]), ["manual-1", "2027-01-01", "09:00:00", "+03", "-", "-", "keep", "in-progress"]);
    assert_eq!(lines.last().copied(), Some("10 backups: keep 7, prune 3 (times in Europe/Istanbul)"));
}

#[test]
fn bad_input_is_one_line_naming_file_and_field_with_exit_2() {
    let missing = fixture("missing.yaml");
    let cases: &[(&str, &str, &[&str], String)] = &[
        ("policy-bad-tz.yaml", "backups-list.yaml", &[], format!("{}: spec.timeZone: unknown time zone \"Mars/Olympus_Mons\"", fixture("policy-bad-tz.yaml"))),
        ("policy-bad-field.yaml", "backups-list.yaml", &[], format!("{}: spec.retention.keepDaily: invalid type", fixture("policy-bad-field.yaml"))),
        ("policy.yaml", "backups-no-time.yaml", &[], format!("{}: items[0].metadata.creationTimestamp: is missing", fixture("backups-no-time.yaml"))),
        ("policy.yaml", "backups-bad-field.yaml", &[], format!("{}: document 2: status.phase: unknown variant `Done`", fixture("backups-bad-field.yaml"))),
        ("policy.yaml", "backups-malformed.yaml", &[], format!("{}: document 1 is not valid YAML", fixture("backups-malformed.yaml"))),
        ("policy.yaml", "policy.yaml", &[], format!("{}: kind: is BackupPolicy, expected ArchiveBackup", fixture("policy.yaml"))),
        ("backups-list.yaml", "backups-list.yaml", &[], format!("{}: holds 12 documents, expected one BackupPolicy", fixture("backups-list.yaml"))),
        ("policy.yaml", "missing.yaml", &[], format!("{missing}: cannot read")),
        ("policy.yaml", "backups-list.yaml", &["--now", "yesterday"], "--now: \"yesterday\" is not an RFC 3339 time".to_string()),
        ("policy.yaml", "backups-list.yaml", &["--cluster-policy", "POLICY"], format!("{}: kind: is BackupPolicy, expected ClusterRetentionPolicy", fixture("policy.yaml"))),
        ("policy.yaml", "backups-list.yaml", &["--restores", "POLICY"], format!("{}: kind: is BackupPolicy, expected RestoreRequest", fixture("policy.yaml"))),
        ("policy.yaml", "backups-list.yaml", &["--restores", "BACKUPS"], format!("{}: items[0].kind: is ArchiveBackup, expected RestoreRequest", fixture("backups-list.yaml"))),
        ("policy.yaml", "backups-list.yaml", &["--restores", "MISSING"], format!("{missing}: cannot read")),
    ];
    for (policy, backups, extra, want) in cases {
        let policy_path = fixture("policy.yaml");
        let backups_path = fixture("backups-list.yaml");
        let extra: Vec<&str> = extra
            .iter()
            .map(|a| match *a {
                "POLICY" => policy_path.as_str(),
                "BACKUPS" => backups_path.as_str(),
                "MISSING" => missing.as_str(),
                other => other,
            })
            .collect();
        let run = preview(policy, backups, &extra);
        assert_eq!(run.code, Some(2), "{policy} {backups} {extra:?}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{policy} {backups}");
        assert_eq!(run.stderr.lines().count(), 1, "one line: {:?}", run.stderr);
        assert!(run.stderr.starts_with(&format!("archivist: {want}")), "{:?} should start with {want:?}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
}

#[test]
fn usage_errors_exit_2() {
    let run = preview("policy.yaml", "backups-list.yaml", &["-o", "xml"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("invalid value 'xml'"), "{}", run.stderr);
    let run = archivist(&["retention", "preview", "--policy", &fixture("policy.yaml")]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("--backups"), "{}", run.stderr);
}
