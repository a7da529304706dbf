//! Table-driven tests of the drill decision.

use super::*;
use crate::api::{ArchiveBackupSpec, ArchiveBackupStatus, BackupReason, RestoreRequestSpec, RestoreRequestStatus};
use chrono::TimeZone;

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, h, m, 0).single().expect("time")
}

fn backup(name: &str, phase: BackupPhase, hour: u32) -> ArchiveBackup {
    let mut b = ArchiveBackup::new(name, ArchiveBackupSpec { policy_name: "p".into(), reason: BackupReason::Scheduled, hold: false });
    b.status = Some(ArchiveBackupStatus { phase: Some(phase), start_time: Some(t(hour, 0)), ..Default::default() });
    b
}

fn restore(name: &str, source: &str, phase: Option<RestorePhase>) -> RestoreRequest {
    let spec: RestoreRequestSpec = serde_json::from_value(serde_json::json!({"source": {"backupName": source}})).expect("spec");
    let mut r = RestoreRequest::new(name, spec);
    if name.contains("-drill-") {
        r.metadata.labels = Some([(DRILL_LABEL.to_string(), "p".to_string())].into());
    }
    r.status = Some(RestoreRequestStatus { phase, message: Some("PVC x exists".into()), ..Default::default() });
    r
}

fn spec(drill_schedule: Option<&str>) -> BackupPolicySpec {
    serde_json::from_value(serde_json::json!({
        "target": {"kind": "StatefulSet", "name": "mailstore"},
        "verification": {"drillSchedule": drill_schedule, "timeoutSeconds": 600},
    }))
    .expect("spec")
}

fn running(backup: &str, started: DateTime<Utc>) -> DrillStatus {
    DrillStatus {
        state: DrillState::Running,
        backup: backup.into(),
        restore_request: request_name("p", started),
        started_at: started,
        finished_at: None,
        message: None,
        output: None,
        torn_down: false,
    }
}

struct Case {
    name: &'static str,
    now: DateTime<Utc>,
    spec: BackupPolicySpec,
    drill_now: Option<&'static str>,
    may_start: bool,
    status: BackupPolicyStatus,
    backups: Vec<ArchiveBackup>,
    restores: Vec<RestoreRequest>,
    pods: Option<Vec<CopyPod>>,
    want: DrillAction,
    /// The recorded drill's state afterwards.
    want_state: Option<DrillState>,
}

fn case(name: &'static str) -> Case {
    Case {
        name,
        now: t(4, 0),
        spec: spec(Some("0 4 * * *")),
        drill_now: None,
        may_start: true,
        status: BackupPolicyStatus { last_drill_schedule_time: Some(t(4, 0) - chrono::Duration::days(1)), ..Default::default() },
        backups: vec![backup("p-old", BackupPhase::Completed, 1), backup("p-new", BackupPhase::Completed, 2), backup("p-failed", BackupPhase::Failed, 3)],
        restores: vec![],
        pods: None,
        want: DrillAction::Start { backup: "p-new".into() },
        want_state: Some(DrillState::Running),
    }
}

/// A run that completed at `completed` but has not settled: its release finalizer is still on.
fn settling(name: &str, hour: u32, completed: DateTime<Utc>) -> ArchiveBackup {
    let mut b = backup(name, BackupPhase::Completed, hour);
    b.metadata.finalizers = Some(vec![crate::plan::backup::RELEASE_FINALIZER.to_string()]);
    if let Some(s) = b.status.as_mut() {
        s.completion_time = Some(completed);
    }
    b
}

fn with_drill(mut c: Case, drill: DrillStatus) -> Case {
    c.status.last_drill = Some(drill);
    c
}

fn pod(name: &str, ready: bool) -> CopyPod {
    CopyPod { name: name.into(), ip: Some("10.0.0.9".into()), ready }
}

fn cases() -> Vec<Case> {
    let started = t(4, 0);
    let request = request_name("p", started);
    let drilling = || running("p-new", started);
    vec![
        case("due: the newest Completed backup is drilled"),
        Case { now: t(3, 59), want: DrillAction::None, want_state: None, ..case("not due yet") },
        Case { spec: spec(None), want: DrillAction::None, want_state: None, ..case("no drill schedule") },
        Case { spec: spec(None), drill_now: Some("1"), ..case("drill-now without a schedule") },
        Case {
            drill_now: Some("1"),
            now: t(3, 0),
            status: BackupPolicyStatus { last_drill_now_request: Some("1".into()), last_drill_schedule_time: Some(t(4, 0) - chrono::Duration::days(1)), ..Default::default() },
            want: DrillAction::None,
            want_state: None,
            ..case("drill-now already handled")
        },
        Case { may_start: false, want: DrillAction::None, want_state: None, ..case("an invalid policy starts none") },
        Case {
            backups: vec![backup("p-new", BackupPhase::Completed, 2), backup("p-running", BackupPhase::CapturingContent, 3)],
            want: DrillAction::Skip { why: "backup p-running is running".into() },
            want_state: None,
            ..case("skipped beside a running backup")
        },
        Case {
            restores: vec![restore("r1", "p-old", Some(RestorePhase::Restoring))],
            want: DrillAction::Skip { why: "RestoreRequest r1 of this policy's backups is running".into() },
            want_state: None,
            ..case("skipped beside a restore of the policy's backups")
        },
        Case { restores: vec![restore("r1", "other-backup", Some(RestorePhase::Restoring))], ..case("a restore of another policy's backup does not matter") },
        Case {
            backups: vec![backup("p-failed", BackupPhase::Failed, 3)],
            want: DrillAction::Skip { why: "no settled Completed backup to drill".into() },
            want_state: None,
            ..case("nothing to drill")
        },
        Case {
            backups: vec![backup("p-old", BackupPhase::Completed, 1), settling("p-new", 2, t(3, 59))],
            want: DrillAction::None,
            want_state: None,
            ..case("waits for the newest Completed run to settle")
        },
        Case {
            backups: vec![settling("p-new", 2, t(3, 59))],
            drill_now: Some("1"),
            spec: spec(None),
            want: DrillAction::None,
            want_state: None,
            ..case("a drill requested right after the only backup waits for it to settle")
        },
        Case {
            backups: vec![backup("p-old", BackupPhase::Completed, 1), settling("p-new", 2, t(3, 49))],
            want: DrillAction::Start { backup: "p-old".into() },
            ..case("a run unsettled for longer than the drill timeout (600 s) no longer holds the drill")
        },
        Case {
            now: t(4, 1),
            want: DrillAction::CreateRequest { request: request.clone(), backup: "p-new".into() },
            ..with_drill(case("recorded, the request not seen yet: create it"), drilling())
        },
        Case {
            now: t(4, 2),
            restores: vec![restore(&request, "p-new", Some(RestorePhase::Restoring))],
            want: DrillAction::None,
            ..with_drill(case("waits for the restore"), drilling())
        },
        Case {
            now: t(4, 2),
            restores: vec![{
                let mut users = restore(&request, "p-new", Some(RestorePhase::Completed));
                users.metadata.labels = None;
                users
            }],
            want: DrillAction::Failed,
            want_state: Some(DrillState::Failed),
            ..with_drill(case("a request of the same name that the drill did not make is not followed"), drilling())
        },
        Case {
            now: t(4, 2),
            restores: vec![restore(&request, "p-new", Some(RestorePhase::Failed))],
            want: DrillAction::Failed,
            want_state: Some(DrillState::Failed),
            ..with_drill(case("a failed restore fails the drill"), drilling())
        },
        Case {
            now: t(4, 3),
            restores: vec![restore(&request, "p-new", Some(RestorePhase::Completed))],
            pods: Some(vec![pod("copy-0", false)]),
            want: DrillAction::None,
            ..with_drill(case("waits for a Ready pod of the copy"), drilling())
        },
        Case {
            now: t(4, 3),
            restores: vec![restore(&request, "p-new", Some(RestorePhase::Completed))],
            pods: Some(vec![pod("copy-1", true), pod("copy-0", false)]),
            want: DrillAction::Probe { request: request.clone(), pod: "copy-1".into(), ip: Some("10.0.0.9".into()) },
            ..with_drill(case("probes a Ready pod"), drilling())
        },
        Case {
            now: t(4, 11),
            restores: vec![restore(&request, "p-new", Some(RestorePhase::Completed))],
            pods: Some(vec![pod("copy-0", false)]),
            want: DrillAction::Failed,
            want_state: Some(DrillState::Failed),
            ..with_drill(case("the deadline fails a waiting drill"), drilling())
        },
        Case {
            now: t(4, 5),
            want: DrillAction::TearDown { request: request.clone() },
            want_state: Some(DrillState::Passed),
            ..with_drill(case("a finished drill is torn down"), finish(&drilling(), true, "ok".into(), None, t(4, 4)))
        },
        Case {
            now: t(4, 5),
            backups: vec![backup("p-new", BackupPhase::Completed, 2), backup("p-running", BackupPhase::CapturingContent, 3)],
            want: DrillAction::TearDown { request: request.clone() },
            want_state: Some(DrillState::Failed),
            ..with_drill(case("teardown does not wait for a backup"), finish(&drilling(), false, "no".into(), None, t(4, 4)))
        },
        Case {
            now: t(4, 5),
            ..with_drill(case("torn down: the next due drill starts"), DrillStatus { torn_down: true, ..finish(&running("p-old", t(3, 0)), true, "ok".into(), None, t(3, 1)) })
        },
        Case {
            now: t(4, 5),
            restores: vec![restore(&request_name("p", t(3, 0)), "p-old", Some(RestorePhase::Completed))],
            want: DrillAction::None,
            want_state: Some(DrillState::Passed),
            ..with_drill(case("torn down, its request still being deleted: the next drill waits"), DrillStatus { torn_down: true, ..finish(&running("p-old", t(3, 0)), true, "ok".into(), None, t(3, 1)) })
        },
        Case {
            may_start: false,
            now: t(4, 5),
            want: DrillAction::TearDown { request: request.clone() },
            want_state: Some(DrillState::Passed),
            ..with_drill(case("an invalid policy still tears its drill down"), finish(&drilling(), true, "ok".into(), None, t(4, 4)))
        },
    ]
}

#[test]
fn each_drill_situation_has_one_next_action() {
    for c in cases() {
        let mut status = c.status.clone();
        let decision = decide(
            &DrillObs {
                now: c.now,
                created: t(0, 0),
                policy: "p",
                spec: &c.spec,
                drill_now: c.drill_now,
                may_start: c.may_start,
                backups: &c.backups,
                restores: &c.restores,
                copy_pods: c.pods.as_deref(),
            },
            &mut status,
        );
        assert_eq!(decision.action, c.want, "{}", c.name);
        assert_eq!(status.last_drill.as_ref().map(|d| d.state), c.want_state, "{}", c.name);
    }
}

#[test]
fn a_start_is_recorded_before_anything_is_created_and_a_skip_uses_up_its_time() {
    let c = case("due");
    let mut status = c.status.clone();
    let obs = DrillObs { now: c.now, created: t(0, 0), policy: "p", spec: &c.spec, drill_now: None, may_start: true, backups: &c.backups, restores: &[], copy_pods: None };
    assert_eq!(decide(&obs, &mut status).action, DrillAction::Start { backup: "p-new".into() });
    assert_eq!(status.last_drill, Some(running("p-new", t(4, 0))));
    assert_eq!(status.last_drill_schedule_time, Some(t(4, 0)));
    // Decided again from that status (a repeat of the reconcile): the request, not a second start.
    assert!(matches!(decide(&obs, &mut status.clone()).action, DrillAction::CreateRequest { .. }));

    let busy = vec![backup("p-running", BackupPhase::Quiescing, 3)];
    let mut skipped = c.status.clone();
    let obs = DrillObs { backups: &busy, ..obs };
    assert!(matches!(decide(&obs, &mut skipped).action, DrillAction::Skip { .. }));
    assert_eq!(skipped.last_drill_schedule_time, Some(t(4, 0)));
    assert_eq!(decide(&obs, &mut skipped.clone()).action, DrillAction::None, "the skipped time is not tried again");
}

#[test]
fn drills_started_within_one_second_get_their_own_names() {
    let c = case("due");
    let now = t(4, 0) + chrono::Duration::milliseconds(300);
    let mut status = BackupPolicyStatus { last_drill: Some(DrillStatus { torn_down: true, ..running("p-new", t(4, 0)) }), ..Default::default() };
    let obs = DrillObs { now, created: t(0, 0), policy: "p", spec: &c.spec, drill_now: Some("2"), may_start: true, backups: &c.backups, restores: &[], copy_pods: None };
    assert_eq!(decide(&obs, &mut status).action, DrillAction::Start { backup: "p-new".into() });
    let started = status.last_drill.as_ref().expect("drill");
    assert_eq!(started.started_at, t(4, 0) + chrono::Duration::seconds(1));
    assert_eq!(started.restore_request, "p-drill-20261122040001");
}

#[test]
fn a_torn_down_drill_goes_first_in_the_history_which_keeps_ten() {
    let mut status = BackupPolicyStatus::default();
    for i in 0..12 {
        status.last_drill = Some(finish(&running("b", t(i, 0)), i % 2 == 0, "m".into(), None, t(i, 1)));
        torn_down(&mut status);
        torn_down(&mut status);
    }
    assert_eq!(status.recent_drills.len(), RECENT_DRILLS);
    assert_eq!(status.recent_drills[0].started_at, t(11, 0));
    assert!(status.recent_drills.iter().all(|d| d.torn_down));
}

#[test]
fn the_output_is_cut_at_four_kibibytes_on_a_character_boundary() {
    let long = "é".repeat(3000);
    let done = finish(&running("b", t(1, 0)), true, "ok".into(), Some(long), t(1, 1));
    let output = done.output.expect("output");
    assert!(output.len() <= OUTPUT_LIMIT && output.len() >= OUTPUT_LIMIT - 1, "{}", output.len());
}

/// A pod or Job labelled with a restore request wakes only the policy of that namespace whose
/// recorded drill follows that request and is not torn down yet.
#[test]
fn a_drill_is_woken_by_the_objects_of_its_own_request_only() {
    let started = t(4, 0);
    let request = request_name("p", started);
    let policy = |namespace: &str, name: &str, drill: Option<DrillStatus>| {
        let mut p = BackupPolicy::new(name, spec(None));
        p.metadata.namespace = Some(namespace.into());
        p.status = Some(BackupPolicyStatus { last_drill: drill, ..Default::default() });
        p
    };
    let torn_down = DrillStatus { torn_down: true, ..finish(&running("p-new", started), true, "ok".into(), None, t(4, 2)) };
    let finished = finish(&running("p-new", started), true, "ok".into(), None, t(4, 2));
    let cases: Vec<(&str, Vec<BackupPolicy>, &str, &str, Option<&str>)> = vec![
        ("its running drill's request", vec![policy("mail", "q", None), policy("mail", "p", Some(running("p-new", started)))], "mail", &request, Some("p")),
        ("a finished drill still tearing down", vec![policy("mail", "p", Some(finished))], "mail", &request, Some("p")),
        ("a drill already torn down", vec![policy("mail", "p", Some(torn_down))], "mail", &request, None),
        ("another namespace's policy", vec![policy("other", "p", Some(running("p-new", started)))], "mail", &request, None),
        ("a user's restore", vec![policy("mail", "p", Some(running("p-new", started)))], "mail", "restore-by-hand", None),
        ("a policy without drills", vec![policy("mail", "p", None)], "mail", &request, None),
    ];
    for (case, policies, namespace, request, want) in cases {
        let got = waiting_on(&policies, namespace, request).and_then(|p| p.metadata.name.as_deref());
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn a_drill_waiting_for_a_run_to_settle_keeps_its_request_and_looks_again_by_the_timeout() {
    let backups = vec![settling("p-new", 2, t(3, 59))];
    let mut status = BackupPolicyStatus::default();
    let obs = DrillObs { now: t(4, 0), created: t(0, 0), policy: "p", spec: &spec(None), drill_now: Some("7"), may_start: true, backups: &backups, restores: &[], copy_pods: None };
    let decision = decide(&obs, &mut status);
    assert_eq!(decision.action, DrillAction::None);
    assert_eq!(decision.requeue, Some(Duration::from_secs(540)), "600 s after the run's completion at 3:59");
    assert_eq!(status.last_drill_now_request, None, "the request is not used up while it waits");
    // Once the run settled (the finalizer gone), the same request starts the drill.
    let settled = vec![backup("p-new", BackupPhase::Completed, 2)];
    let obs = DrillObs { backups: &settled, ..obs };
    assert_eq!(decide(&obs, &mut status).action, DrillAction::Start { backup: "p-new".into() });
    assert_eq!(status.last_drill_now_request.as_deref(), Some("7"));
}
