//! `archivist schedule preview`, run as the real binary on the manifests in
//! `tests/fixtures/schedule/`.

use std::process::Command;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/schedule/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn archivist(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_archivist"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run archivist");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

fn preview(policy: &str, extra: &[&str]) -> Run {
    let policy = fixture(policy);
    let mut args = vec!["schedule", "preview", "--policy", policy.as_str()];
    args.extend_from_slice(extra);
    archivist(&args)
}

fn json_lines(times: &[&str]) -> String {
    let quoted: Vec<String> = times.iter().map(|t| format!("  \"{t}\"")).collect();
    format!("[\n{}\n]\n", quoted.join(",\n"))
}

#[test]
fn json_output_is_an_array_of_utc_strings() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "istanbul.yaml",
            &["--now", "2026-11-21T12:00:00Z", "-o", "json"],
            &["2026-11-21T23:00:00Z", "2026-11-22T23:00:00Z", "2026-11-23T23:00:00Z", "2026-11-24T23:00:00Z", "2026-11-25T23:00:00Z"],
        ),
        (
            "istanbul.yaml",
            &["--now", "2026-11-22T02:00:00+03:00", "--count", "2", "--output", "json"],
            &["2026-11-22T23:00:00Z", "2026-11-23T23:00:00Z"],
        ),
        // 02:30 does not exist in New York on 8 March 2026: the run is at 03:00 EDT, once.
        (
            "new-york-dst.yaml",
            &["--now", "2026-03-07T12:00:00Z", "--count", "3", "-o", "json"],
            &["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"],
        ),
        // @hourly in UTC (no spec.timeZone).
        (
            "hourly-utc.yaml",
            &["--now", "2026-11-01T05:10:00Z", "--count", "2", "-o", "json"],
            &["2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"],
        ),
        // A suspended policy still shows its schedule.
        ("suspended.yaml", &["--now", "2026-11-22T02:00:00Z", "--count", "1", "-o", "json"], &["2026-11-23T02:00:00Z"]),
    ];
    for (policy, args, times) in cases {
        let run = preview(policy, args);
        assert_eq!(run.code, Some(0), "{policy} {args:?}: {}", run.stderr);
        assert_eq!(run.stdout, json_lines(times), "{policy} {args:?}");
        assert_eq!(run.stderr, "", "{policy} {args:?}");
    }
}

#[test]
fn manual_only_policy_has_no_runs() {
    let json = preview("manual.yaml", &["--now", "2026-11-22T02:00:00Z", "-o", "json"]);
    assert_eq!((json.code, json.stdout.as_str(), json.stderr.as_str()), (Some(0), "[]\n", ""));
    let table = preview("manual.yaml", &["--now", "2026-11-22T02:00:00Z"]);
    assert_eq!(table.code, Some(0));
    assert_eq!(table.stdout, "no schedule (spec.schedule is not set): manual backups only\n");
}

#[test]
fn table_shows_utc_and_local_time() {
    let run = preview("istanbul.yaml", &["--now", "2026-11-21T12:00:00Z", "--count", "3"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let want = "\
UTC                   LOCAL (Europe/Istanbul)
2026-11-21T23:00:00Z  2026-11-22 02:00:00 +03:00 Sun
2026-11-22T23:00:00Z  2026-11-23 02:00:00 +03:00 Mon
2026-11-23T23:00:00Z  2026-11-24 02:00:00 +03:00 Tue
";
    assert_eq!(run.stdout, want);

    let dst = preview("new-york-dst.yaml", &["--now", "2026-03-07T12:00:00Z", "--count", "1", "-o", "table"]);
    assert_eq!(dst.stdout.lines().nth(1), Some("2026-03-08T07:00:00Z  2026-03-08 03:00:00 -04:00 Sun"));

    let suspended = preview("suspended.yaml", &["--now", "2026-11-22T02:00:00Z", "--count", "2"]);
    let lines: Vec<&str> = suspended.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", suspended.stdout);
    assert_eq!(lines[3], "note: spec.suspend is true; these runs start only once it is false");
}

#[test]
fn now_defaults_to_the_current_time() {
    let before = chrono::Utc::now();
    let run = preview("hourly-utc.yaml", &["-o", "json"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let times: Vec<String> = serde_json::from_str(&run.stdout).expect("a JSON array");
    assert_eq!(times.len(), 5);
    let first = chrono::DateTime::parse_from_rfc3339(&times[0]).expect("RFC 3339");
    assert!(first > before && first <= before + chrono::TimeDelta::hours(1), "{first} vs {before}");
    assert!(times.iter().all(|t| t.ends_with(":00:00Z")), "{times:?}");
}

#[test]
fn bad_input_is_one_line_naming_file_and_field() {
    let missing = fixture("no-such-policy.yaml");
    let cases: &[(&str, &[&str], &str)] = &[
        ("bad-time-zone.yaml", &[], r#"spec.timeZone: unknown time zone "Europe/Atlantis""#),
        ("manual-bad-time-zone.yaml", &[], r#"spec.timeZone: unknown time zone "Europe/Atlantis""#),
        ("bad-cron.yaml", &[], r#"spec.schedule: bad cron expression "61 * * * *": minute 61 is out of range 0-59"#),
        ("four-fields.yaml", &[], r#"spec.schedule: bad cron expression "0 2 * *": has 4 fields, expected 5"#),
        ("schedule-not-string.yaml", &[], "spec.schedule: invalid type: integer `7`, expected a string"),
        ("bad-suspend.yaml", &[], "spec.suspend: invalid type"),
        ("malformed.yaml", &[], "is not valid YAML"),
        ("wrong-kind.yaml", &[], "kind: is ArchiveBackup, expected BackupPolicy"),
        ("no-such-policy.yaml", &[], "cannot read"),
    ];
    for (policy, args, want) in cases {
        let run = preview(policy, args);
        assert_eq!(run.code, Some(2), "{policy}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{policy}");
        assert_eq!(run.stderr.lines().count(), 1, "{policy}: {:?}", run.stderr);
        let path = if *policy == "no-such-policy.yaml" { missing.clone() } else { fixture(policy) };
        assert!(run.stderr.starts_with(&format!("archivist: {path}: ")), "{policy}: {:?}", run.stderr);
        assert!(run.stderr.contains(want), "{policy}: {:?} should contain {want:?}", run.stderr);
    }
}

#[test]
fn bad_arguments_exit_2_without_panic() {
    let now = preview("istanbul.yaml", &["--now", "tomorrow at two"]);
    assert_eq!(now.code, Some(2));
    assert_eq!(now.stdout, "");
    assert_eq!(now.stderr.lines().count(), 1, "{:?}", now.stderr);
    assert!(now.stderr.starts_with(r#"archivist: --now: "tomorrow at two" is not an RFC 3339 time"#), "{:?}", now.stderr);

    for args in [&["--count", "0"][..], &["--count", "many"], &["-o", "yaml"], &["--bogus"]] {
        let run = preview("istanbul.yaml", args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
    }
    let no_policy = archivist(&["schedule", "preview"]);
    assert_eq!(no_policy.code, Some(2));
    assert!(no_policy.stderr.contains("--policy"), "{}", no_policy.stderr);
}
