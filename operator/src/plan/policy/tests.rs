//! Table-driven tests of the BackupPolicy decision.

use super::*;
use crate::api::{ArchiveBackupSpec, ArchiveBackupStatus, RetentionRules, VerificationStatus};
use chrono::TimeZone;

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, h, m, 0).single().expect("time")
}

fn backup(name: &str, phase: BackupPhase, at: DateTime<Utc>, verified: bool) -> ArchiveBackup {
    let mut b = ArchiveBackup::new(name, ArchiveBackupSpec { policy_name: "p".into(), reason: BackupReason::Scheduled, hold: false });
    b.status = Some(ArchiveBackupStatus {
        phase: Some(phase),
        start_time: Some(at),
        verification: verified.then_some(VerificationStatus { state: VerificationState::Passed, finished_at: None, message: None, reason: None }),
        ..Default::default()
    });
    b
}

/// A RestoreRequest of `backup` in `phase` (resolved once it has started).
fn restore(backup: &str, phase: Option<crate::api::RestorePhase>) -> RestoreRequest {
    let spec: crate::api::RestoreRequestSpec =
        serde_json::from_value(serde_json::json!({"source": {"backupName": backup}})).expect("restore spec");
    let mut r = RestoreRequest::new(&format!("restore-{backup}"), spec);
    let started = phase.is_some_and(|p| p != crate::api::RestorePhase::Pending);
    r.status = Some(crate::api::RestoreRequestStatus {
        phase,
        resolved_backup: started.then(|| backup.to_string()),
        ..Default::default()
    });
    r
}

fn pre_restore(mut b: ArchiveBackup) -> ArchiveBackup {
    b.spec.reason = BackupReason::PreRestore;
    b
}

fn spec(schedule: Option<&str>, keep_last: Option<u32>) -> BackupPolicySpec {
    let mut s: BackupPolicySpec =
        serde_json::from_value(serde_json::json!({"target": {"kind": "StatefulSet", "name": "mailstore"}})).expect("spec");
    s.schedule = schedule.map(String::from);
    s.retention = RetentionRules { keep_last, ..Default::default() };
    s
}

#[derive(Clone)]
struct Case {
    name: &'static str,
    now: DateTime<Utc>,
    spec: BackupPolicySpec,
    last_schedule: Option<DateTime<Utc>>,
    backup_now: Option<&'static str>,
    handled_request: Option<&'static str>,
    problems: Vec<String>,
    target_exists: bool,
    backups: Vec<ArchiveBackup>,
    restores: Vec<RestoreRequest>,
    want_create: Option<(&'static str, BackupReason)>,
    want_skipped: u32,
    want_prune: Vec<&'static str>,
    want_ready: ConditionStatus,
}

fn case(name: &'static str) -> Case {
    Case {
        name,
        now: t(2, 30),
        spec: spec(Some("0 * * * *"), None),
        last_schedule: Some(t(2, 0)),
        backup_now: None,
        handled_request: None,
        problems: vec![],
        target_exists: true,
        backups: vec![],
        restores: vec![],
        want_create: None,
        want_skipped: 0,
        want_prune: vec![],
        want_ready: ConditionStatus::True,
    }
}

fn run(c: &Case) -> PolicyDecision {
    run_with_cluster(c, &[])
}

/// [`run`] under the cluster policies `cluster`.
fn run_with_cluster(c: &Case, cluster: &[crate::api::ClusterRetentionPolicySpec]) -> PolicyDecision {
    let status = BackupPolicyStatus {
        last_schedule_time: c.last_schedule,
        last_backup_now_request: c.handled_request.map(String::from),
        ..Default::default()
    };
    decide(&PolicyObservation {
        now: c.now,
        name: "p",
        generation: Some(3),
        created: t(0, 0),
        spec: &c.spec,
        status: &status,
        backup_now: c.backup_now,
        problems: &c.problems,
        target_exists: c.target_exists,
        backups: &c.backups,
        restores: &c.restores,
        cluster,
        prune_job: None,
        drill_now: None,
        copy_pods: None,
    })
}

fn cases() -> Vec<Case> {
    let done = |n, h| backup(n, BackupPhase::Completed, t(h, 0), false);
    vec![
        case("not due yet"),
        Case { now: t(3, 0), want_create: Some(("p-20261122030000", BackupReason::Scheduled)), ..case("due on the hour") },
        Case {
            now: t(6, 10),
            want_create: Some(("p-20261122060000", BackupReason::Scheduled)),
            want_skipped: 3,
            ..case("after downtime: one run, the rest skipped")
        },
        Case {
            now: t(3, 0),
            backups: vec![backup("running", BackupPhase::CapturingContent, t(2, 0), false)],
            ..case("never two runs at once")
        },
        Case {
            now: t(3, 0),
            backups: vec![backup("timed-out", BackupPhase::Failed, t(2, 0), false)],
            want_create: Some(("p-20261122030000", BackupReason::Scheduled)),
            ..case("a run failed at its deadline no longer blocks the next one")
        },
        Case { now: t(3, 0), spec: BackupPolicySpec { suspend: true, ..spec(Some("0 * * * *"), None) }, ..case("suspended: no scheduled run") },
        Case {
            spec: BackupPolicySpec { suspend: true, ..spec(Some("0 * * * *"), None) },
            backup_now: Some("1"),
            want_create: Some(("p-now-86019afc", BackupReason::Manual)),
            ..case("suspended: backup-now still runs")
        },
        Case { backup_now: Some("1"), handled_request: Some("1"), ..case("handled request does not run again") },
        Case { spec: spec(None, None), backup_now: Some("2"), handled_request: Some("1"), want_create: Some(("p-now-8601a015", BackupReason::Manual)), ..case("new request runs") },
        Case {
            now: t(3, 0),
            target_exists: false,
            want_ready: ConditionStatus::False,
            ..case("missing target starts nothing")
        },
        Case {
            now: t(3, 0),
            problems: vec!["spec.timeZone: unknown".into()],
            want_ready: ConditionStatus::False,
            backups: vec![done("a", 1), done("b", 2)],
            spec: spec(Some("0 * * * *"), Some(1)),
            ..case("invalid policy starts and prunes nothing")
        },
        Case {
            spec: spec(Some("0 * * * *"), Some(1)),
            backups: vec![done("a", 0), done("b", 1), done("c", 2)],
            want_prune: vec!["b", "a"],
            ..case("retention prunes after a completed run")
        },
        Case {
            spec: spec(Some("0 * * * *"), Some(1)),
            backups: vec![done("a", 0), done("b", 1), backup("c", BackupPhase::Failed, t(2, 0), false)],
            ..case("no pruning after a failed run")
        },
        Case {
            spec: spec(Some("0 * * * *"), Some(1)),
            backups: vec![done("a", 0), done("b", 1), backup("c", BackupPhase::Failed, t(2, 0), false), done("d", 2)],
            want_prune: vec!["c", "b", "a"],
            ..case("after a failed run, the next completed run prunes (the failed one too, keepFailed 0)")
        },
        Case {
            spec: spec(Some("0 * * * *"), Some(1)),
            backups: vec![done("a", 0), done("b", 1), done("c", 2)],
            restores: vec![restore("a", Some(crate::api::RestorePhase::RunningHooks)), restore("b", None)],
            ..case("an unfinished restore's source is never pruned, resolved or not")
        },
        Case {
            spec: spec(Some("0 * * * *"), Some(1)),
            backups: vec![done("a", 0), done("b", 1), done("c", 2)],
            restores: vec![restore("a", Some(crate::api::RestorePhase::Completed)), restore("b", Some(crate::api::RestorePhase::Failed))],
            want_prune: vec!["b", "a"],
            ..case("a finished restore protects nothing")
        },
        Case {
            spec: spec(Some("0 * * * *"), Some(1)),
            backups: vec![pre_restore(done("a", 0)), done("b", 1), done("c", 2)],
            want_prune: vec!["b"],
            ..case("a PreRestore backup is never pruned")
        },
        Case {
            spec: spec(Some("0 * * * *"), Some(1)),
            backups: vec![done("a", 0), done("b", 1), backup("c", BackupPhase::Finalizing, t(2, 0), false)],
            ..case("no pruning while a run is active")
        },
    ]
}

#[test]
fn decisions() {
    for c in &cases() {
        let d = run(c);
        match (&d.create, c.want_create) {
            (None, None) => {}
            (Some(got), Some((name, reason))) => {
                assert_eq!(got.name, name, "{}", c.name);
                assert_eq!(got.reason, reason, "{}", c.name);
            }
            (got, want) => panic!("{}: create {got:?}, want {want:?}", c.name),
        }
        assert_eq!(d.skipped_runs, c.want_skipped, "{}", c.name);
        assert_eq!(d.prune, c.want_prune, "{}", c.name);
        assert_eq!(conditions::status_of(&d.status.conditions, "Ready"), Some(c.want_ready), "{}", c.name);
    }
}

#[test]
fn status_summarises_the_backups() {
    let c = Case {
        backups: vec![
            backup("old-verified", BackupPhase::Completed, t(0, 0), true),
            backup("good", BackupPhase::Completed, t(1, 0), false),
            backup("bad", BackupPhase::Failed, t(2, 0), false),
        ],
        ..case("summary")
    };
    let d = run(&c);
    assert_eq!(d.status.last_backup.as_deref(), Some("bad"));
    assert_eq!(d.status.last_successful_backup.as_deref(), Some("good"));
    assert_eq!(d.status.last_verified_backup.as_deref(), Some("old-verified"));
    assert_eq!(d.status.restore_points, Some(2));
    assert_eq!(d.status.next_schedule_time, Some(t(3, 0)));
    assert_eq!(d.requeue, Some(Duration::from_secs(30 * 60)));
    assert_eq!(d.status.observed_generation, Some(3));
}

#[test]
fn the_scheduled_time_is_recorded_and_names_are_deterministic() {
    let c = Case { now: t(3, 0), ..case("due") };
    let first = run(&c);
    assert_eq!(first.status.last_schedule_time, Some(t(3, 0)));
    assert_eq!(first, run(&c), "same observation, same decision");
    let manual = Case { spec: spec(None, None), backup_now: Some("x"), ..case("manual") };
    // The literal name: a change of the hash or the format would make an upgraded operator
    // start a second backup for a request it already handled.
    assert_eq!(run(&manual).create, Some(NewBackup { name: "p-now-86021707".into(), reason: BackupReason::Manual }));
    assert_eq!(run(&manual).status.last_backup_now_request.as_deref(), Some("x"));
}

/// A run as the operator leaves it: items, conditions, the policy copy, a message and the
/// annotation `kubectl apply` writes, none of which the decision reads.
fn with_everything(mut b: ArchiveBackup) -> ArchiveBackup {
    let at = b.status.as_ref().and_then(|s| s.start_time);
    b.metadata.annotations = Some([("kubectl.kubernetes.io/last-applied-configuration".to_string(), "{}".to_string())].into());
    b.metadata.labels = Some([("archivist.dev/policy".to_string(), "p".to_string())].into());
    if let Some(s) = b.status.as_mut() {
        s.completion_time = at;
        s.phase_start_time = at;
        s.items = vec![crate::api::CapturedItem {
            component: crate::api::Component::Content,
            store: "s1".into(),
            source_claim: Some("content".into()),
            source_sql: None,
            volume_snapshot: Some("snap".into()),
            captured_at: at,
            ready_to_use: true,
            restore_size: Some("1Gi".into()),
        }];
        s.message = Some("restore point ready".into());
        s.policy_spec = Some(Box::new(spec(Some("0 * * * *"), Some(3))));
        conditions::set(&mut s.conditions, "Ready", ConditionStatus::True, "Completed", "ready", t(0, 0), Some(1));
    }
    b
}

/// The shared cache keeps of a settled run only what the decision reads
/// (`plan::backup::cached::cached_form`): every decision is the same from the cached form.
#[test]
fn decisions_are_the_same_from_the_cached_form() {
    let mut all = cases();
    all.push(Case {
        backups: vec![
            backup("old-verified", BackupPhase::Completed, t(0, 0), true),
            backup("good", BackupPhase::Completed, t(1, 0), false),
            backup("bad", BackupPhase::Failed, t(2, 0), false),
        ],
        ..case("summary")
    });
    for c in all {
        let full = Case { backups: c.backups.into_iter().map(with_everything).collect(), ..c };
        let mut cached = full.clone();
        for b in &mut cached.backups {
            crate::plan::backup::cached::cached_form(b);
        }
        let slimmed = cached.backups.iter().filter(|b| b.status.as_ref().is_some_and(|s| s.policy_spec.is_none() && s.items.iter().all(|i| i.volume_snapshot.is_none()))).count();
        let settled = full.backups.iter().filter(|b| phase_of(b).is_finished()).count();
        assert_eq!(slimmed, settled, "{}: every settled run is slimmed", full.name);
        assert_eq!(run(&cached), run(&full), "{}", full.name);
    }
}

/// A pruned run whose export is in a repository is marked to forget it first, not deleted; a
/// run already marked is on its way out: neither a retention candidate nor a restore point.
#[test]
fn exported_runs_forget_their_repository_snapshots_before_they_go() {
    let exported = |mut b: ArchiveBackup, state: crate::api::ExportState| {
        if let Some(status) = b.status.as_mut() {
            status.export = Some(crate::api::ExportStatus {
                state,
                repository: None,
                started_at: None,
                finished_at: None,
                bytes_added: None,
                message: None,
                snapshots: vec![],
                manifest: None,
                forget_failed_at: None,
            });
        }
        b
    };
    let marked = |mut b: ArchiveBackup| {
        b.metadata.annotations = Some([(crate::kube::labels::PRUNE.to_string(), "retention".to_string())].into());
        b
    };
    let done = |n, h| backup(n, BackupPhase::Completed, t(h, 0), false);
    let c = Case {
        spec: spec(Some("0 * * * *"), Some(1)),
        backups: vec![
            marked(exported(done("a", 0), crate::api::ExportState::Exported)),
            exported(done("b", 1), crate::api::ExportState::Exported),
            exported(done("c", 2), crate::api::ExportState::Failed),
            done("d", 3),
            exported(done("e", 4), crate::api::ExportState::Exported),
        ],
        ..case("exported runs forget first")
    };
    // While e exports, nothing is pruned: a forget would lock the repository under it.
    let mut while_exporting = c.clone();
    while_exporting.backups[4] = exported(done("e", 4), crate::api::ExportState::Running);
    assert!(run(&while_exporting).prune.is_empty());
    let decision = run(&c);
    assert_eq!(decision.prune, ["d", "c", "b"], "a is already on its way out");
    assert_eq!(decision.forget_first, ["b"], "only a run whose export is in a repository forgets first");
    assert_eq!(decision.status.restore_points, Some(1));
}

#[test]
fn repository_maintenance_waits_for_restores_reading_the_repository() {
    let mut c = case("maintenance");
    c.spec.export = Some(serde_json::from_value(serde_json::json!({"repositorySecret": "repo", "pruneSchedule": "0 2 * * *"})).expect("export"));
    let reading = |secret: &str, phase: Option<crate::api::RestorePhase>| {
        let mut r = restore("b1", phase);
        r.spec.source.repository = Some(crate::api::RepositorySource { secret_name: secret.into(), ..Default::default() });
        r
    };
    use crate::api::RestorePhase::{Completed, Pending, Restoring};
    let cases: Vec<(&str, Vec<RestoreRequest>, bool)> = vec![
        ("no restore", vec![], true),
        ("a restore reads the repository", vec![reading("repo", Some(Restoring))], false),
        ("a pending restore names it", vec![reading("repo", Some(Pending))], false),
        ("a restore of another repository", vec![reading("other", Some(Restoring))], true),
        ("a finished restore", vec![reading("repo", Some(Completed))], true),
        ("a restore from snapshots", vec![restore("b1", Some(Restoring))], true),
    ];
    for (name, restores, starts) in cases {
        let got = run(&Case { restores, ..c.clone() });
        assert_eq!(got.start_prune.is_some(), starts, "{name}");
        assert_eq!(got.status.prune.is_some(), starts, "{name}: status.prune records only a started prune");
    }
}

#[test]
fn what_a_cluster_ceiling_prunes_is_told_apart() {
    use crate::api::ClusterRetentionPolicySpec;
    use crate::plan::retention::Reason;
    let done = |n, h| backup(n, BackupPhase::Completed, t(h, 0), false);
    let backups = vec![done("a", 0), done("b", 1), done("c", 2)];
    let ceiling = ClusterRetentionPolicySpec { max_restore_points_per_policy: Some(2), ..Default::default() };
    // (case, keepLast, cluster policies, pruned, pruned by ceilings)
    let cases: Vec<(&str, Option<u32>, Vec<ClusterRetentionPolicySpec>, Vec<&str>, Vec<Vec<Reason>>)> = vec![
        ("the policy alone", Some(1), vec![], vec!["b", "a"], vec![]),
        ("the ceiling prunes what keepLast keeps", Some(5), vec![ceiling.clone()], vec!["a"], vec![vec![Reason::MaxRestorePoints]]),
        ("keepLast prunes more than the ceiling", Some(1), vec![ceiling], vec!["b", "a"], vec![]),
    ];
    for (name, keep_last, cluster, want_prune, want_ceilings) in cases {
        let c = Case { spec: spec(Some("0 * * * *"), keep_last), backups: backups.clone(), ..case(name) };
        let got = run_with_cluster(&c, &cluster);
        assert_eq!(got.prune, want_prune, "{name}");
        assert_eq!(got.pruned_by_ceilings, want_ceilings, "{name}");
    }
}
