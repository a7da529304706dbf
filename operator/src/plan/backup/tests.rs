//! Table-driven tests of every phase transition of the backup run.

use super::*;
use crate::api::{Condition, QuiesceStatus, SqlEngine, SqlSource};
use crate::api::{Component, ExportState};
use crate::plan::claim::ClaimObs;
use chrono::TimeZone;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 2, 0, 0).single().expect("time") + chrono::Duration::seconds(secs)
}

fn policy(mode: QuiesceMode) -> BackupPolicySpec {
    let mut p: BackupPolicySpec =
        serde_json::from_value(serde_json::json!({"target": {"kind": "StatefulSet", "name": "mailstore"}}))
            .expect("policy");
    p.quiesce.mode = mode;
    p.quiesce.timeout_seconds = 60;
    p
}

/// master volume (metadata stage), SQL metadata (metadata stage), content volume (content stage).
fn plan() -> Vec<PlannedItem> {
    let item = |stage, component, store: &str, source, snapshot: &str| PlannedItem {
        stage,
        component,
        store: store.into(),
        source,
        snapshot: snapshot.into(),
    };
    vec![
        item(CaptureStage::Metadata, Component::Master, "", ItemSource::Claim("master-0".into()), "snap-master"),
        item(
            CaptureStage::Metadata,
            Component::Metadata,
            "s1",
            ItemSource::Sql {
                sql: SqlSource {
                    engine: SqlEngine::PostgreSQL,
                    host: "db".into(),
                    port: None,
                    database: "meta".into(),
                    credentials_secret: "db".into(),
                },
                dump_claim: "dump-meta".into(),
            },
            "snap-meta",
        ),
        item(CaptureStage::Content, Component::Content, "s1", ItemSource::Claim("content-0".into()), "snap-content"),
    ]
}

struct Case {
    name: &'static str,
    mode: QuiesceMode,
    phase: Option<BackupPhase>,
    quiesce: Option<QuiesceStatus>,
    conditions: Vec<Condition>,
    has_policy: bool,
    problems: Vec<String>,
    workload: Option<WorkloadObs>,
    other_run: Option<&'static str>,
    restarted: bool,
    deleting: bool,
    shutting_down: bool,
    finalizer: bool,
    claim: ClaimObs,
    spec_problems: Vec<String>,
    now: i64,
    snapshots: Vec<(&'static str, SnapshotObs)>,
    jobs: Vec<(&'static str, JobObs)>,
    want: Step,
}

fn base(name: &'static str, phase: Option<BackupPhase>, want: Step) -> Case {
    Case {
        name,
        mode: QuiesceMode::Stop,
        phase,
        quiesce: None,
        conditions: vec![],
        has_policy: true,
        problems: vec![],
        workload: Some(WorkloadObs { replicas: 2, live_pods: 2, ready_pods: vec!["m-0".into(), "m-1".into()] }),
        other_run: None,
        restarted: false,
        deleting: false,
        shutting_down: false,
        finalizer: false,
        claim: ClaimObs::Free,
        spec_problems: vec![],
        now: 10,
        snapshots: vec![],
        jobs: vec![],
        want,
    }
}

fn quiesced_at(secs: i64) -> Option<QuiesceStatus> {
    Some(QuiesceStatus { quiesced_at: Some(t(secs)), original_replicas: Some(2), ..Default::default() })
}

fn cut() -> SnapshotObs {
    SnapshotObs { cut_at: Some(t(5)), ready_to_use: false, error: None }
}

fn ready() -> SnapshotObs {
    SnapshotObs { cut_at: Some(t(5)), ready_to_use: true, error: None }
}

fn uncut() -> SnapshotObs {
    SnapshotObs::default()
}

fn failed(reason: FailureReason) -> impl Fn(&Step) -> bool {
    move |step| match step {
        Step::BeginRelease { failure: Some(f) } | Step::Fail(f) | Step::Release { failure: Some(f) } => f.reason == reason,
        _ => false,
    }
}

fn run(case: &Case) -> Step {
    observing(case, |obs| next(obs))
}

/// Calls `f` with the observation `case` describes.
fn observing<T>(case: &Case, f: impl FnOnce(&RunObservation<'_>) -> T) -> T {
    let p = policy(case.mode);
    let status = ArchiveBackupStatus {
        phase: case.phase,
        quiesce: case.quiesce.clone(),
        conditions: case.conditions.clone(),
        ..Default::default()
    };
    let plan = plan();
    let snapshots: BTreeMap<String, SnapshotObs> =
        case.snapshots.iter().map(|(n, s)| (n.to_string(), s.clone())).collect();
    let jobs: BTreeMap<String, JobObs> = case.jobs.iter().map(|(n, j)| (n.to_string(), j.clone())).collect();
    let verify_claims = BTreeMap::new();
    f(&RunObservation {
        now: t(case.now),
        backup_name: "b",
        verify_claims: &verify_claims,
        verify_job: None,
        export: Default::default(),
        status: &status,
        policy: case.has_policy.then_some(&p),
        resumed_after_restart: case.restarted,
        deleting: case.deleting,
        shutting_down: case.shutting_down,
        has_release_finalizer: case.finalizer,
        claim: &case.claim,
        spec_problems: &case.spec_problems,
        policy_problems: &case.problems,
        other_active_run: case.other_run,
        workload: case.workload.as_ref(),
        plan: &plan,
        snapshots: &snapshots,
        dump_jobs: &jobs,
    })
}

#[test]
fn every_transition() {
    use BackupPhase::*;
    let stopped = Some(WorkloadObs { replicas: 0, live_pods: 0, ready_pods: vec![] });
    let cases = vec![
        Case { finalizer: true, claim: ClaimObs::Mine, ..base("pending starts once it holds finalizer and claim, recording the quiesce start with it", None, Step::Begin { quiesce: Some(QuiesceStart { original_replicas: Some(2), pods: vec![] }) }) },
        base("pending gets the release finalizer before anything else", Some(Pending), Step::AddReleaseFinalizer),
        Case { finalizer: true, ..base("pending with the finalizer claims the workload", Some(Pending), Step::ClaimWorkload) },
        Case {
            finalizer: true,
            claim: ClaimObs::HeldBy("mail/other".into()),
            ..base("pending waits while another run holds the workload", Some(Pending), Step::WaitForWorkload { holder: "mail/other".into() })
        },
        Case {
            finalizer: true,
            claim: ClaimObs::HeldBy("RestoreRequest/mail/r1".into()),
            ..base("pending waits while an in-place restore holds the workload", Some(Pending), Step::WaitForWorkload { holder: "RestoreRequest/mail/r1".into() })
        },
        Case {
            mode: QuiesceMode::Freeze,
            finalizer: true,
            claim: ClaimObs::Mine,
            ..base("a freeze run begins recording the ready pods to freeze", None, Step::Begin { quiesce: Some(QuiesceStart { original_replicas: None, pods: vec!["m-0".into(), "m-1".into()] }) })
        },
        Case { mode: QuiesceMode::None, ..base("none mode quiesces nothing: no finalizer, no claim", Some(Pending), Step::Begin { quiesce: None }) },
        Case {
            spec_problems: vec!["metadata.name: too long".into()],
            ..base("an invalid ArchiveBackup fails before anything", Some(Pending), Step::Done)
        },
        Case {
            deleting: true,
            finalizer: true,
            quiesce: quiesced_at(0),
            ..base("deleted while capturing: release first", Some(CapturingContent), Step::Done)
        },
        Case {
            deleting: true,
            finalizer: true,
            quiesce: quiesced_at(0),
            ..base("deleted while quiescing (recorded): release first", Some(Quiescing), Step::Done)
        },
        Case {
            deleting: true,
            finalizer: true,
            claim: ClaimObs::Mine,
            quiesce: quiesced_at(0),
            ..base("deleted while releasing: keep releasing", Some(Releasing), Step::Release { failure: None })
        },
        Case { deleting: true, finalizer: true, claim: ClaimObs::Mine, ..base("deleted pending run drops its claim", Some(Pending), Step::DropClaim) },
        Case { deleting: true, finalizer: true, ..base("deleted pending run then drops its finalizer", Some(Pending), Step::RemoveReleaseFinalizer) },
        Case {
            deleting: true,
            finalizer: true,
            claim: ClaimObs::HeldBy("mail/other".into()),
            ..base("a deleted run never touches another holder's claim", Some(Pending), Step::RemoveReleaseFinalizer)
        },
        Case { deleting: true, finalizer: true, ..base("deleted before quiescing was recorded", Some(Quiescing), Step::RemoveReleaseFinalizer) },
        Case { deleting: true, ..base("deleted without finalizer: nothing left", Some(Completed), Step::Done) },
        Case {
            finalizer: true,
            snapshots: vec![("snap-master", ready()), ("snap-meta", cut()), ("snap-content", ready())],
            ..base("released run drops its finalizer first", Some(Finalizing), Step::RemoveReleaseFinalizer)
        },
        Case { claim: ClaimObs::Mine, finalizer: true, ..base("failed run drops a claim it still has", Some(Failed), Step::DropClaim) },
        Case { finalizer: true, ..base("completed run drops its finalizer", Some(Completed), Step::RemoveReleaseFinalizer) },
        Case {
            shutting_down: true,
            quiesce: quiesced_at(0),
            ..base("shutting down while quiesced: release first", Some(CapturingMetadata), Step::Done)
        },
        Case {
            shutting_down: true,
            finalizer: true,
            claim: ClaimObs::Mine,
            ..base("shutting down: no run starts", Some(Pending), Step::Wait { what: String::new(), requeue: None })
        },
        Case {
            shutting_down: true,
            quiesce: quiesced_at(0),
            ..base("shutting down: a release goes on", Some(Releasing), Step::Release { failure: None })
        },
        Case { has_policy: false, ..base("pending without policy fails", Some(Pending), Step::Done) },
        Case { workload: None, ..base("pending without target fails", Some(Pending), Step::Done) },
        Case { problems: vec!["spec.stores[0].name: duplicate".into()], ..base("invalid policy fails before quiescing", Some(Pending), Step::Done) },
        Case {
            other_run: Some("other"),
            ..base("never two runs at once", Some(Pending), Step::Wait { what: String::new(), requeue: Some(IDLE_REQUEUE) })
        },
        base("stop records replicas before scaling (a run begun by an older operator)", Some(Quiescing), Step::RecordQuiesceStart(QuiesceStart { original_replicas: Some(2), pods: vec![] })),
        Case { quiesce: quiesced_at(0), ..base("stop scales to zero", Some(Quiescing), Step::ScaleToZero) },
        Case {
            quiesce: quiesced_at(0),
            workload: Some(WorkloadObs { replicas: 0, live_pods: 1, ready_pods: vec![] }),
            ..base("stop waits for pods to go, woken by their removal, until the quiesce deadline", Some(Quiescing), Step::Wait { what: String::new(), requeue: Some(Duration::from_secs(30)) })
        },
        Case { quiesce: quiesced_at(0), workload: stopped.clone(), ..base("stopped: capture metadata", Some(Quiescing), Step::EnterPhase(CapturingMetadata)) },
        Case {
            mode: QuiesceMode::Freeze,
            ..base("freeze records the ready pods first (a run begun by an older operator)", Some(Quiescing), Step::RecordQuiesceStart(QuiesceStart { original_replicas: None, pods: vec!["m-0".into(), "m-1".into()] }))
        },
        Case {
            mode: QuiesceMode::Freeze,
            quiesce: Some(QuiesceStatus { quiesced_at: Some(t(0)), pods: vec!["m-0".into()], ..Default::default() }),
            ..base(
                "freeze runs the hook on the recorded pods, then at once the metadata stage's captures",
                Some(Quiescing),
                Step::Freeze { pods: vec!["m-0".into()], then: vec![CaptureAction::CreateSnapshot(0), CaptureAction::CreateDump(1)] }
            )
        },
        Case { mode: QuiesceMode::None, ..base("none goes straight to capture", Some(Quiescing), Step::EnterPhase(CapturingMetadata)) },
        Case {
            quiesce: quiesced_at(0),
            ..base("metadata stage starts master snapshot and dump, no content", Some(CapturingMetadata), Step::Capture(vec![CaptureAction::CreateSnapshot(0), CaptureAction::CreateDump(1)]))
        },
        Case {
            quiesce: quiesced_at(0),
            snapshots: vec![("snap-master", uncut())],
            jobs: vec![("dump-meta", JobObs::Running)],
            ..base("metadata stage waits for cut and dump", Some(CapturingMetadata), Step::Wait { what: String::new(), requeue: Some(Duration::from_secs(30)) })
        },
        Case {
            quiesce: quiesced_at(0),
            snapshots: vec![("snap-master", cut())],
            jobs: vec![("dump-meta", JobObs::Succeeded)],
            ..base("finished dump is snapshotted", Some(CapturingMetadata), Step::Capture(vec![CaptureAction::CreateSnapshot(1)]))
        },
        Case {
            quiesce: quiesced_at(0),
            snapshots: vec![("snap-master", cut()), ("snap-meta", cut())],
            jobs: vec![("dump-meta", JobObs::Succeeded)],
            ..base("metadata all cut: the content stage, its captures at once", Some(CapturingMetadata), Step::BeginContent { captures: vec![CaptureAction::CreateSnapshot(2)] })
        },
        Case {
            quiesce: quiesced_at(0),
            snapshots: vec![("snap-master", cut()), ("snap-meta", uncut())],
            jobs: vec![("dump-meta", JobObs::Succeeded)],
            ..base("content waits until every metadata item is cut", Some(CapturingMetadata), Step::Wait { what: String::new(), requeue: Some(Duration::from_secs(30)) })
        },
        Case {
            quiesce: quiesced_at(0),
            snapshots: vec![("snap-master", cut()), ("snap-meta", cut())],
            ..base("content stage snapshots content", Some(CapturingContent), Step::Capture(vec![CaptureAction::CreateSnapshot(2)]))
        },
        Case {
            quiesce: quiesced_at(0),
            snapshots: vec![("snap-master", cut()), ("snap-meta", cut()), ("snap-content", cut())],
            ..base("all cut: release without waiting for ready", Some(CapturingContent), Step::BeginRelease { failure: None })
        },
        Case {
            quiesce: quiesced_at(0),
            snapshots: vec![("snap-master", SnapshotObs { error: Some("disk full".into()), ..uncut() })],
            ..base("snapshot error releases then fails", Some(CapturingMetadata), Step::Done)
        },
        Case {
            quiesce: quiesced_at(0),
            snapshots: vec![("snap-master", cut())],
            jobs: vec![("dump-meta", JobObs::Failed { message: "BackoffLimitExceeded".into() })],
            ..base("dump failure releases then fails", Some(CapturingMetadata), Step::Done)
        },
        Case { quiesce: quiesced_at(0), now: 61, ..base("timeout releases then fails", Some(CapturingMetadata), Step::Done) },
        Case { quiesce: quiesced_at(0), workload: None, ..base("target vanished mid-capture releases then fails", Some(CapturingContent), Step::Done) },
        Case { quiesce: quiesced_at(0), restarted: true, ..base("restart while quiesced releases first", Some(CapturingContent), Step::Done) },
        Case {
            mode: QuiesceMode::None,
            restarted: true,
            snapshots: vec![("snap-master", cut()), ("snap-meta", cut())],
            ..base("restart in None mode continues", Some(CapturingContent), Step::Capture(vec![CaptureAction::CreateSnapshot(2)]))
        },
        Case { quiesce: quiesced_at(0), ..base("releasing releases", Some(Releasing), Step::Release { failure: None }) },
        Case {
            quiesce: quiesced_at(0),
            conditions: vec![Condition {
                type_: CAPTURED.into(),
                status: ConditionStatus::False,
                reason: "DumpFailed".into(),
                message: "dump failed".into(),
                last_transition_time: t(1),
                observed_generation: None,
            }],
            ..base("releasing after failure keeps the failure", Some(Releasing), Step::Done)
        },
        Case {
            snapshots: vec![("snap-master", ready()), ("snap-meta", cut()), ("snap-content", ready())],
            ..base("finalizing waits for ready", Some(Finalizing), Step::Wait { what: String::new(), requeue: Some(IDLE_REQUEUE) })
        },
        Case {
            snapshots: vec![("snap-master", ready()), ("snap-meta", ready()), ("snap-content", ready())],
            jobs: vec![("dump-meta", JobObs::Succeeded)],
            ..base("ready dump snapshot: dump deleted", Some(Finalizing), Step::Capture(vec![CaptureAction::DeleteDump(1)]))
        },
        Case {
            snapshots: vec![("snap-master", ready()), ("snap-meta", ready()), ("snap-content", ready())],
            ..base("all ready: completed", Some(Finalizing), Step::Complete)
        },
        Case {
            snapshots: vec![("snap-master", ready()), ("snap-meta", ready()), ("snap-content", SnapshotObs { error: Some("x".into()), ..cut() })],
            ..base("snapshot error after release fails", Some(Finalizing), Step::Done)
        },
        base("completed is done", Some(Completed), Step::Done),
        base("failed is done", Some(Failed), Step::Done),
    ];
    let failures: Vec<(&str, FailureReason)> = vec![
        ("pending without policy fails", FailureReason::PolicyNotFound),
        ("pending without target fails", FailureReason::TargetNotFound),
        ("invalid policy fails before quiescing", FailureReason::InvalidPolicy),
        ("an invalid ArchiveBackup fails before anything", FailureReason::InvalidSpec),
        ("deleted while capturing: release first", FailureReason::Deleted),
        ("deleted while quiescing (recorded): release first", FailureReason::Deleted),
        ("shutting down while quiesced: release first", FailureReason::OperatorShutdown),
        ("snapshot error releases then fails", FailureReason::SnapshotFailed),
        ("dump failure releases then fails", FailureReason::DumpFailed),
        ("timeout releases then fails", FailureReason::QuiesceTimeout),
        ("target vanished mid-capture releases then fails", FailureReason::TargetNotFound),
        ("restart while quiesced releases first", FailureReason::OperatorRestarted),
        ("releasing after failure keeps the failure", FailureReason::DumpFailed),
        ("snapshot error after release fails", FailureReason::SnapshotFailed),
    ];
    for case in &cases {
        let got = run(case);
        if let Some((_, reason)) = failures.iter().find(|(n, _)| *n == case.name) {
            assert!(failed(*reason)(&got), "{}: want failure {reason:?}, got {got:?}", case.name);
            let releases_first = matches!(got, Step::BeginRelease { .. } | Step::Release { .. });
            let quiesced = case.quiesce.is_some() && case.phase != Some(BackupPhase::Finalizing);
            assert_eq!(releases_first, quiesced, "{}: a quiesced archive is released before the run fails", case.name);
            continue;
        }
        match (&got, &case.want) {
            (Step::Wait { requeue: got_r, .. }, Step::Wait { requeue: want_r, .. }) => {
                assert_eq!(got_r, want_r, "{}: {got:?}", case.name)
            }
            _ => assert_eq!(got, case.want, "{}", case.name),
        }
    }
}

#[test]
fn waiting_while_quiesced_requeues_at_the_deadline() {
    let case = Case {
        quiesce: quiesced_at(0),
        now: 55,
        snapshots: vec![("snap-master", uncut())],
        jobs: vec![("dump-meta", JobObs::Running)],
        ..base("near deadline", Some(BackupPhase::CapturingMetadata), Step::Done)
    };
    assert_eq!(run(&case), Step::Wait { what: "2 metadata item(s) not cut yet".into(), requeue: Some(Duration::from_secs(5)) });
}

#[test]
fn waiting_for_stopped_pods_requeues_only_at_the_quiesce_deadline() {
    // The pods' removal wakes the run (the operator watches pods); the run's own requeue is the
    // quiesce deadline, never a poll.
    let case = Case {
        quiesce: quiesced_at(0),
        now: 1,
        workload: Some(WorkloadObs { replicas: 0, live_pods: 1, ready_pods: vec![] }),
        ..base("waiting for pods", Some(BackupPhase::Quiescing), Step::Done)
    };
    assert_eq!(
        run(&case),
        Step::Wait { what: "1 pod(s) of the target still running after scaling to 0".into(), requeue: Some(IDLE_REQUEUE) }
    );
    // 300 ms before the deadline the run looks again at the deadline.
    let quiesced = t(0) - chrono::Duration::milliseconds(700);
    let near_deadline = Case {
        now: 59,
        quiesce: Some(QuiesceStatus { quiesced_at: Some(quiesced), original_replicas: Some(2), ..Default::default() }),
        ..case
    };
    assert_eq!(
        run(&near_deadline),
        Step::Wait { what: "1 pod(s) of the target still running after scaling to 0".into(), requeue: Some(Duration::from_millis(300)) }
    );
}

#[test]
fn failure_reasons_round_trip() {
    for reason in FailureReason::ALL {
        assert_eq!(FailureReason::parse(reason.as_str()), Some(reason));
    }
}

#[test]
fn verification_restores_into_scratch_claims_then_runs_the_job() {
    let mut p = policy(QuiesceMode::Stop);
    p.verification = Some(crate::api::VerificationSpec { after_backup: true, command: vec!["true".into()], image: Some("busybox".into()), ..Default::default() });
    let plan = plan();
    let ready_all: BTreeMap<String, SnapshotObs> =
        ["snap-master", "snap-meta", "snap-content"].iter().map(|n| (n.to_string(), ready())).collect();
    let jobs = BTreeMap::new();
    let run = |phase, claims: &BTreeMap<String, bool>, job: Option<&JobObs>| {
        let status = ArchiveBackupStatus { phase: Some(phase), ..Default::default() };
        next(&RunObservation {
            now: t(0),
            backup_name: "b",
            status: &status,
            policy: Some(&p),
            resumed_after_restart: false,
            deleting: false,
            shutting_down: false,
            has_release_finalizer: false,
            claim: &ClaimObs::Free,
            spec_problems: &[],
            policy_problems: &[],
            other_active_run: None,
            workload: None,
            plan: &plan,
            snapshots: &ready_all,
            dump_jobs: &jobs,
            verify_claims: claims,
            verify_job: job,
            export: Default::default(),
        })
    };
    let none = BTreeMap::new();
    assert_eq!(run(BackupPhase::Finalizing, &none, None), Step::BeginVerification);
    assert_eq!(run(BackupPhase::Verifying, &none, None), Step::CreateVerifyClaims(vec![0, 1, 2]));
    let mut claims: BTreeMap<String, bool> = (0..3).map(|i| (verify_claim_name("b", i), true)).collect();
    claims.insert(verify_claim_name("b", 2), false);
    assert!(matches!(run(BackupPhase::Verifying, &claims, None), Step::Wait { .. }));
    claims.insert(verify_claim_name("b", 2), true);
    assert_eq!(run(BackupPhase::Verifying, &claims, None), Step::CreateVerifyJob);
    assert!(matches!(run(BackupPhase::Verifying, &claims, Some(&JobObs::Running)), Step::Wait { .. }));
    assert_eq!(
        run(BackupPhase::Verifying, &claims, Some(&JobObs::Succeeded)),
        Step::FinishVerification { result: VerificationResult::Passed, message: "the verify Job succeeded".into() }
    );
    assert!(matches!(
        run(BackupPhase::Verifying, &claims, Some(&JobObs::Failed { message: "exit 1".into() })),
        Step::FinishVerification { result: VerificationResult::Failed, .. }
    ));
}

#[test]
fn release_retries_back_off_exponentially_without_limit() {
    let cases = [(0, 1), (1, 1), (2, 2), (3, 4), (5, 16), (9, 256), (10, 300), (1_000, 300), (u32::MAX, 300)];
    for (attempts, secs) in cases {
        assert_eq!(release_retry_delay(attempts), Duration::from_secs(secs), "after {attempts} failed attempt(s)");
    }
}

#[test]
fn a_failed_release_waits_for_its_backoff_then_tries_again() {
    let failed_twice = Some(QuiesceStatus {
        quiesced_at: Some(t(0)),
        original_replicas: Some(2),
        release_attempts: Some(2),
        last_release_failure: Some(t(10)),
        ..Default::default()
    });
    let waiting = Case { quiesce: failed_twice.clone(), now: 11, ..base("backoff", Some(BackupPhase::Releasing), Step::Done) };
    match run(&waiting) {
        Step::Wait { requeue, .. } => assert_eq!(requeue, Some(Duration::from_secs(1)), "2 s after the failure at t=10, seen at t=11"),
        other => panic!("a release retried before its backoff: {other:?}"),
    }
    let due = Case { quiesce: failed_twice, now: 12, ..base("due", Some(BackupPhase::Releasing), Step::Done) };
    assert_eq!(run(&due), Step::Release { failure: None });
}

/// One observation of a run past `Releasing`, for the deadline tests: the snapshot ready
/// timeout is 100 s, the verification timeout 60 s.
struct Late {
    name: &'static str,
    phase: BackupPhase,
    phase_start: Option<i64>,
    released: Option<i64>,
    now: i64,
    snapshots: Vec<(&'static str, SnapshotObs)>,
    claims: Vec<(usize, bool)>,
    job: Option<JobObs>,
    want: Want,
}

#[derive(Debug)]
enum Want {
    /// Wait, looking again after this many seconds.
    Wait(u64),
    Fail(FailureReason, &'static [&'static str]),
    Verified(VerificationResult, &'static [&'static str]),
    Step(Step),
}

fn late(name: &'static str, phase: BackupPhase, now: i64, want: Want) -> Late {
    Late { name, phase, phase_start: Some(0), released: None, now, snapshots: vec![], claims: vec![], job: None, want }
}

fn all_ready() -> Vec<(&'static str, SnapshotObs)> {
    vec![("snap-master", ready()), ("snap-meta", ready()), ("snap-content", ready())]
}

fn meta_not_ready() -> Vec<(&'static str, SnapshotObs)> {
    vec![("snap-master", ready()), ("snap-meta", cut()), ("snap-content", ready())]
}

fn bound_claims() -> Vec<(usize, bool)> {
    vec![(0, true), (1, true), (2, true)]
}

#[test]
fn finalizing_and_verifying_end_at_their_deadlines() {
    use BackupPhase::{Finalizing, Verifying};
    let running = Some(JobObs::Running);
    let cases = vec![
        Late { snapshots: meta_not_ready(), ..late("finalizing: early, look again at the idle requeue", Finalizing, 50, Want::Wait(30)) },
        Late { snapshots: meta_not_ready(), ..late("finalizing: near the deadline, look again at it", Finalizing, 90, Want::Wait(10)) },
        Late {
            snapshots: meta_not_ready(),
            ..late(
                "finalizing: at the deadline the run fails, naming the setting and the snapshot",
                Finalizing,
                100,
                Want::Fail(FailureReason::SnapshotReadyTimeout, &["snapshotReadyTimeoutSeconds (100s)", "snap-meta", "1 snapshot(s)"]),
            )
        },
        Late {
            snapshots: vec![("snap-master", ready())],
            ..late(
                "finalizing: a snapshot never seen counts as not ready",
                Finalizing,
                500,
                Want::Fail(FailureReason::SnapshotReadyTimeout, &["2 snapshot(s)", "snap-meta, snap-content"]),
            )
        },
        Late { snapshots: all_ready(), ..late("finalizing: all ready after the deadline still goes on (to verification)", Finalizing, 500, Want::Step(Step::BeginVerification)) },
        Late {
            snapshots: vec![("snap-master", ready()), ("snap-meta", SnapshotObs { error: Some("disk full".into()), ..cut() }), ("snap-content", cut())],
            ..late("finalizing: a snapshot error is reported as such", Finalizing, 500, Want::Fail(FailureReason::SnapshotFailed, &["disk full"]))
        },
        Late {
            phase_start: None,
            released: Some(0),
            snapshots: meta_not_ready(),
            ..late("finalizing without phaseStartTime (older run): from the release", Finalizing, 100, Want::Fail(FailureReason::SnapshotReadyTimeout, &[]))
        },
        Late {
            phase_start: None,
            snapshots: meta_not_ready(),
            ..late("finalizing without phaseStartTime or release: from the start", Finalizing, 100, Want::Fail(FailureReason::SnapshotReadyTimeout, &[]))
        },
        Late { claims: bound_claims(), job: running.clone(), ..late("verifying: the Job runs, idle requeue", Verifying, 20, Want::Wait(30)) },
        Late { claims: bound_claims(), job: running.clone(), ..late("verifying: near the deadline, look again at it", Verifying, 50, Want::Wait(10)) },
        Late {
            claims: bound_claims(),
            job: running.clone(),
            ..late(
                "verifying: at the deadline, verification times out",
                Verifying,
                60,
                Want::Verified(VerificationResult::TimedOut, &["verification.timeoutSeconds (60s)", "still running"]),
            )
        },
        Late {
            claims: bound_claims(),
            job: Some(JobObs::Failed { message: "DeadlineExceeded: Job was active longer than specified deadline".into() }),
            ..late(
                "verifying: the Job stopped at activeDeadlineSeconds is a timeout",
                Verifying,
                59,
                Want::Verified(VerificationResult::TimedOut, &["verification.timeoutSeconds (60s)", "activeDeadlineSeconds"]),
            )
        },
        Late {
            claims: bound_claims(),
            job: Some(JobObs::Succeeded),
            ..late("verifying: a Job that succeeded passes, also after the deadline", Verifying, 90, Want::Verified(VerificationResult::Passed, &[]))
        },
        Late {
            claims: bound_claims(),
            job: Some(JobObs::Failed { message: "BackoffLimitExceeded".into() }),
            ..late("verifying: a Job that failed fails, also after the deadline", Verifying, 90, Want::Verified(VerificationResult::Failed, &["BackoffLimitExceeded"]))
        },
        late(
            "verifying: scratch PVCs never restored time out",
            Verifying,
            60,
            Want::Verified(VerificationResult::TimedOut, &["verification.timeoutSeconds (60s)", "3 of 3 scratch PVC(s)"]),
        ),
        Late {
            claims: vec![(0, true), (1, false), (2, true)],
            ..late("verifying: an unbound scratch PVC, the poll stops at the deadline", Verifying, 59, Want::Wait(1))
        },
        Late {
            claims: vec![(0, true), (1, false), (2, true)],
            ..late("verifying: an unbound scratch PVC, polled every 2 s", Verifying, 10, Want::Wait(2))
        },
        late("verifying: early, the scratch PVCs are created", Verifying, 10, Want::Step(Step::CreateVerifyClaims(vec![0, 1, 2]))),
        Late {
            claims: bound_claims(),
            job: running,
            ..late("verifying: at entry, the deadline is a full timeout away", Verifying, 0, Want::Wait(30))
        },
    ];
    let mut p = policy(QuiesceMode::Stop);
    p.snapshot_ready_timeout_seconds = 100;
    p.verification = Some(crate::api::VerificationSpec { after_backup: true, command: vec!["true".into()], timeout_seconds: 60, ..Default::default() });
    let plan = plan();
    for case in cases {
        let status = ArchiveBackupStatus {
            phase: Some(case.phase),
            start_time: Some(t(0)),
            phase_start_time: case.phase_start.map(t),
            quiesce: case.released.map(|r| QuiesceStatus { quiesced_at: Some(t(-5)), released_at: Some(t(r)), ..Default::default() }),
            ..Default::default()
        };
        let snapshots: BTreeMap<String, SnapshotObs> = case.snapshots.iter().map(|(n, s)| (n.to_string(), s.clone())).collect();
        let claims: BTreeMap<String, bool> = case.claims.iter().map(|(i, b)| (verify_claim_name("b", *i), *b)).collect();
        let jobs = BTreeMap::new();
        let got = next(&RunObservation {
            now: t(case.now),
            backup_name: "b",
            status: &status,
            policy: Some(&p),
            resumed_after_restart: false,
            deleting: false,
            shutting_down: false,
            has_release_finalizer: false,
            claim: &ClaimObs::Free,
            spec_problems: &[],
            policy_problems: &[],
            other_active_run: None,
            workload: None,
            plan: &plan,
            snapshots: &snapshots,
            dump_jobs: &jobs,
            verify_claims: &claims,
            verify_job: case.job.as_ref(),
            export: Default::default(),
        });
        let name = case.name;
        match (&case.want, &got) {
            (Want::Wait(secs), Step::Wait { requeue, .. }) => assert_eq!(*requeue, Some(Duration::from_secs(*secs)), "{name}: {got:?}"),
            (Want::Fail(reason, words), Step::Fail(f)) => {
                assert_eq!(f.reason, *reason, "{name}: {got:?}");
                for w in *words {
                    assert!(f.message.contains(w), "{name}: {:?} should say {w:?}", f.message);
                }
            }
            (Want::Verified(result, words), Step::FinishVerification { result: got_result, message }) => {
                assert_eq!(got_result, result, "{name}: {got:?}");
                for w in *words {
                    assert!(message.contains(w), "{name}: {message:?} should say {w:?}");
                }
            }
            (Want::Step(step), _) => assert_eq!(&got, step, "{name}"),
            (want, _) => panic!("{name}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn phase_deadlines_come_from_the_policy_copy_with_their_defaults() {
    let p: BackupPolicySpec =
        serde_json::from_value(serde_json::json!({"target": {"kind": "StatefulSet", "name": "m"}, "verification": {"afterBackup": true}}))
            .expect("policy");
    let at = |phase| ArchiveBackupStatus { phase: Some(phase), phase_start_time: Some(t(0)), ..Default::default() };
    let cases = [
        (BackupPhase::Finalizing, Some((t(3600), Deadline::SnapshotReady(3600)))),
        (BackupPhase::Verifying, Some((t(1800), Deadline::Verification(1800)))),
        (BackupPhase::CapturingContent, None),
        (BackupPhase::Completed, None),
        (BackupPhase::Failed, None),
    ];
    for (phase, want) in cases {
        assert_eq!(phase_deadline(&at(phase), &p), want, "{phase:?}");
    }
    assert_eq!(Deadline::Verification(5).describe(), "verification.timeoutSeconds (5s)");
    assert_eq!(Deadline::SnapshotReady(7).describe(), "snapshotReadyTimeoutSeconds (7s)");
}

#[test]
fn entering_a_phase_records_its_start_time() {
    use BackupPhase::*;
    // (recorded before the step, written by the step, recorded start, want start)
    let cases = [
        (Some(Releasing), Some(Finalizing), Some(-50), Some(0)),
        (Some(Finalizing), Some(Verifying), Some(-50), Some(0)),
        (Some(Verifying), Some(Verifying), Some(-50), Some(-50)),
        (Some(Finalizing), Some(Finalizing), None, None),
        (None, Some(Quiescing), None, Some(0)),
        (Some(Verifying), Some(Completed), Some(-50), Some(0)),
    ];
    for (previous, phase, start, want) in cases {
        let mut status = ArchiveBackupStatus { phase, phase_start_time: start.map(t), ..Default::default() };
        stamp_phase_start(&mut status, previous, t(0));
        assert_eq!(status.phase_start_time, want.map(t), "{previous:?} -> {phase:?}");
    }
}

#[test]
fn deadline_exceeded_jobs_are_recognised() {
    let cases = [
        ("DeadlineExceeded: Job was active longer than specified deadline", true),
        ("DeadlineExceeded", true),
        ("BackoffLimitExceeded: Job has reached the specified backoff limit", false),
        ("exit 1; its pod said: DeadlineExceeded", false),
    ];
    for (message, want) in cases {
        assert_eq!(deadline_exceeded(message), want, "{message}");
    }
}

/// A run is settled (a reconcile returns before observing anything) only when it is finished,
/// holds nothing and has no release finalizer; every other run is observed and decided.
#[test]
fn only_finished_runs_holding_nothing_are_settled() {
    use BackupPhase::*;
    let quiesce = |released: bool| Some(QuiesceStatus { quiesced_at: Some(t(0)), released_at: released.then(|| t(1)), ..Default::default() });
    // (case, phase, quiesce, release finalizer, settled)
    let cases = [
        ("completed, released, no finalizer", Some(Completed), quiesce(true), false, true),
        ("completed without quiescing (mode None)", Some(Completed), None, false, true),
        ("failed before quiescing", Some(Failed), None, false, true),
        ("failed and released", Some(Failed), quiesce(true), false, true),
        ("completed, finalizer still on (claim maybe still held)", Some(Completed), quiesce(true), true, false),
        ("failed while quiesced, release not recorded", Some(Failed), quiesce(false), false, false),
        ("verifying", Some(Verifying), quiesce(true), false, false),
        ("finalizing", Some(Finalizing), quiesce(true), false, false),
        ("capturing", Some(CapturingContent), quiesce(false), true, false),
        ("never started", None, None, false, false),
    ];
    for (case, phase, quiesce, finalizer, want) in cases {
        let status = ArchiveBackupStatus { phase, quiesce, ..Default::default() };
        assert_eq!(settled(&status, finalizer), want, "{case}");
    }
    // An export under way keeps a Completed run unsettled, so its Job and claims wake it.
    let exports = [(ExportState::Pending, false), (ExportState::Running, false), (ExportState::Exported, true), (ExportState::Failed, true)];
    for (state, want) in exports {
        let status = ArchiveBackupStatus { phase: Some(Completed), export: Some(export_status(state)), ..Default::default() };
        assert_eq!(settled(&status, false), want, "export {state:?}");
    }
}

/// A Completed run's observation at t(0), with nothing of its export observed yet.
fn observation_of<'a>(
    status: &'a ArchiveBackupStatus,
    policy: &'a BackupPolicySpec,
    plan: &'a [PlannedItem],
    snapshots: &'a BTreeMap<String, SnapshotObs>,
    jobs: &'a BTreeMap<String, JobObs>,
    claims: &'a BTreeMap<String, bool>,
) -> RunObservation<'a> {
    RunObservation {
        now: t(0),
        backup_name: "b",
        status,
        policy: Some(policy),
        resumed_after_restart: false,
        deleting: false,
        shutting_down: false,
        has_release_finalizer: false,
        claim: &ClaimObs::Free,
        spec_problems: &[],
        policy_problems: &[],
        other_active_run: None,
        workload: None,
        plan,
        snapshots,
        dump_jobs: jobs,
        verify_claims: claims,
        verify_job: None,
        export: Default::default(),
    }
}

fn export_status(state: ExportState) -> crate::api::ExportStatus {
    crate::api::ExportStatus { state, repository: Some("rest:http://h/".into()), started_at: Some(t(0)), finished_at: None, bytes_added: None, message: None, snapshots: Vec::new(), manifest: None, forget_failed_at: None }
}

#[test]
fn an_export_restores_into_scratch_claims_runs_the_job_and_records_what_it_reported() {
    use crate::plan::export::export_claim_name;
    let mut p = policy(QuiesceMode::Stop);
    p.export = Some(crate::api::ExportSpec { repository_secret: "r".into(), image: None, after: None, prune_schedule: None, check_read_data_percent: 0, ..Default::default() });
    let without_export = policy(QuiesceMode::Stop);
    let plan = plan();
    let snapshots = BTreeMap::new();
    let jobs = BTreeMap::new();
    let none = BTreeMap::new();
    let mut bound: BTreeMap<String, bool> = (0..3).map(|i| (export_claim_name("b", i), true)).collect();
    let repo = |r: Result<&str, &str>| r.map(String::from).map_err(String::from);
    let summary = |i: usize| format!("archivist-export {i} {{\"snapshot_id\":\"id{i}\",\"total_bytes_processed\":10,\"data_added\":{i}}}\n");
    let full_log: String = (0..3).map(summary).collect::<String>() + "archivist-export manifest {\"snapshot_id\":\"m\",\"data_added\":1}\n";
    let ok_repo = repo(Ok("rest:http://h/"));
    let missing = repo(Err("export.repositorySecret: Secret mail/r not found"));
    // (case, state, now, claims, job, log, repository, want)
    let cases: Vec<(&str, ExportState, i64, &BTreeMap<String, bool>, Option<JobObs>, Option<&str>, Option<&Result<String, String>>, Step)> = vec![
        ("pending with the repository begins", ExportState::Pending, 0, &none, None, None, Some(&ok_repo), Step::BeginExport { repository: "rest:http://h/".into() }),
        ("pending without a usable Secret fails the export", ExportState::Pending, 0, &none, None, None, Some(&missing), Step::FinishExport { outcome: Err("export.repositorySecret: Secret mail/r not found".into()) }),
        ("running restores every item", ExportState::Running, 1, &none, None, None, None, Step::CreateExportClaims(vec![0, 1, 2])),
        ("claims bound: the Job", ExportState::Running, 1, &bound, None, None, None, Step::CreateExportJob),
        (
            "the Job failed",
            ExportState::Running,
            1,
            &bound,
            Some(JobObs::Failed { message: "BackoffLimitExceeded; its pod said: Fatal: wrong password".into() }),
            None,
            None,
            Step::FinishExport { outcome: Err("the export Job failed: BackoffLimitExceeded; its pod said: Fatal: wrong password".into()) },
        ),
        ("the Job succeeded without a readable log", ExportState::Running, 1, &bound, Some(JobObs::Succeeded), None, None, Step::FinishExport { outcome: Err("the export Job succeeded, but its log could not be read".into()) }),
        ("past the export timeout", ExportState::Running, 12 * 3600, &bound, Some(JobObs::Running), None, None, Step::FinishExport { outcome: Err("the export did not finish within 12 hours".into()) }),
        ("exported is done", ExportState::Exported, 1, &bound, None, None, None, Step::Done),
        ("failed is done", ExportState::Failed, 1, &bound, None, None, None, Step::Done),
    ];
    let run = |state, now, claims: &BTreeMap<String, bool>, job: Option<&JobObs>, log, repository| {
        let status = ArchiveBackupStatus { phase: Some(BackupPhase::Completed), export: Some(export_status(state)), ..Default::default() };
        next(&RunObservation {
            now: t(now),
            backup_name: "b",
            status: &status,
            policy: Some(&p),
            resumed_after_restart: false,
            deleting: false,
            shutting_down: false,
            has_release_finalizer: false,
            claim: &ClaimObs::Free,
            spec_problems: &[],
            policy_problems: &[],
            other_active_run: None,
            workload: None,
            plan: &plan,
            snapshots: &snapshots,
            dump_jobs: &jobs,
            verify_claims: &none,
            verify_job: None,
            export: crate::plan::backup::exporting::ExportObs { claims, job, log, repository, other_export: None, ..Default::default() },
        })
    };
    for (case, state, now, claims, job, log, repository, want) in cases {
        assert_eq!(run(state, now, claims, job.as_ref(), log, repository), want, "{case}");
    }
    // A run whose recorded policy has no export cannot export: it fails the export, not loops.
    let status = ArchiveBackupStatus { phase: Some(BackupPhase::Completed), export: Some(export_status(ExportState::Running)), ..Default::default() };
    let no_spec = next(&RunObservation { policy: Some(&without_export), ..observation_of(&status, &p, &plan, &snapshots, &jobs, &none) });
    assert_eq!(no_spec, Step::FinishExport { outcome: Err("the run's copy of its policy has no export".into()) });
    // A pruned run: forget its repository snapshots, then delete itself; a failure waits.
    let exported = |failed_at: Option<i64>| {
        let mut export = export_status(ExportState::Exported);
        export.snapshots = vec![crate::api::ExportedSnapshot { component: Component::Content, store: "s1".into(), claim: "c".into(), id: "0123abcd".into(), bytes: 1 }];
        export.manifest = Some("89abcdef".into());
        export.forget_failed_at = failed_at.map(t);
        ArchiveBackupStatus { phase: Some(BackupPhase::Completed), export: Some(export), ..Default::default() }
    };
    let ids = vec!["0123abcd".to_string(), "89abcdef".to_string()];
    let failed_job = JobObs::Failed { message: "repository is already locked".into() };
    let mut bad_id = exported(None);
    if let Some(e) = bad_id.export.as_mut() {
        e.snapshots[0].id = "0123abcd; rm -rf /".into();
    }
    let never_exported = ArchiveBackupStatus { phase: Some(BackupPhase::Completed), ..Default::default() };
    // (case, status, forget Job, now, want)
    let pruned: Vec<(&str, ArchiveBackupStatus, Option<JobObs>, i64, Step)> = vec![
        ("exported: the forget Job", exported(None), None, 0, Step::CreateForgetJob(ids.clone())),
        ("forgotten: delete the run", exported(None), Some(JobObs::Succeeded), 0, Step::DeletePruned { forgotten: ids.clone() }),
        ("never exported: delete at once", never_exported, None, 0, Step::DeletePruned { forgotten: vec![] }),
        ("the forget failed", exported(None), Some(failed_job), 0, Step::ForgetFailed { message: "the forget Job failed: repository is already locked".into() }),
        ("failed 5 minutes ago: wait", exported(Some(0)), None, 300, Step::Wait { what: format!("forgetting the repository snapshots failed; retrying at {}", t(600).to_rfc3339()), requeue: Some(Duration::from_secs(300)) }),
        ("failed 10 minutes ago: try again", exported(Some(0)), None, 600, Step::CreateForgetJob(ids.clone())),
        ("an id that is not restic's is never passed on", bad_id, None, 0, Step::ForgetFailed { message: r#"status.export.snapshots[0].id: "0123abcd; rm -rf /" is not a restic snapshot id"#.into() }),
    ];
    for (case, status, job, now, want) in pruned {
        let got = next(&RunObservation {
            now: t(now),
            export: crate::plan::backup::exporting::ExportObs { prune_requested: true, forget_job: job.as_ref(), ..Default::default() },
            ..observation_of(&status, &p, &plan, &snapshots, &jobs, &none)
        });
        assert_eq!(got, want, "{case}");
    }
    // Another run exports to the same repository, or its maintenance runs: wait for it.
    let status = ArchiveBackupStatus { phase: Some(BackupPhase::Completed), export: Some(export_status(ExportState::Pending)), ..Default::default() };
    for holder in ["other/b9 is exporting to rest:http://h/r", "the maintenance Job repo-prune-202611290500 (restic prune) of rest:http://h/r runs"] {
        let waiting = next(&RunObservation {
            export: crate::plan::backup::exporting::ExportObs { repository: Some(&ok_repo), other_export: Some(holder), ..Default::default() },
            ..observation_of(&status, &p, &plan, &snapshots, &jobs, &none)
        });
        assert!(matches!(&waiting, Step::Wait { what, .. } if what == &format!("waiting: {holder}; one export or maintenance per repository at a time")), "{waiting:?}");
    }
    // Waiting: a scratch claim unbound, the Job running.
    bound.insert(export_claim_name("b", 1), false);
    assert!(matches!(run(ExportState::Running, 1, &bound, None, None, None), Step::Wait { .. }));
    assert!(matches!(run(ExportState::Running, 1, &bound, Some(&JobObs::Running), None, None), Step::Wait { .. }));
    // Succeeded: what the Job reported becomes the outcome.
    let Step::FinishExport { outcome: Ok(report) } = run(ExportState::Running, 1, &bound, Some(&JobObs::Succeeded), Some(&full_log), None) else {
        panic!("a succeeded Job with every result line finishes the export");
    };
    assert_eq!(report.snapshots.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["id0", "id1", "id2"]);
    assert_eq!((report.bytes_added, report.manifest.as_str()), (4, "m"));
    // The status write of a finished export failed after its scratch claims were deleted: the
    // Job is still there (it goes only after the write), so the retry records the same outcome
    // instead of exporting again.
    let retried = run(ExportState::Running, 2, &none, Some(&JobObs::Succeeded), Some(&full_log), None);
    assert!(matches!(&retried, Step::FinishExport { outcome: Ok(r) } if *r == report), "{retried:?}");
}

#[test]
fn a_release_completes_the_run_at_once_only_when_nothing_is_left() {
    use BackupPhase::*;
    let all_ready = vec![("snap-master", ready()), ("snap-meta", ready()), ("snap-content", ready())];
    // (case, completes at release)
    let cases = vec![
        (Case { snapshots: all_ready.clone(), ..base("every snapshot ready", Some(CapturingContent), Step::Done) }, true),
        (
            Case {
                snapshots: vec![("snap-master", ready()), ("snap-meta", ready()), ("snap-content", cut())],
                ..base("one snapshot cut but not ready", Some(CapturingContent), Step::Done)
            },
            false,
        ),
        (
            Case { snapshots: all_ready.clone(), jobs: vec![("dump-meta", JobObs::Succeeded)], ..base("a dump to delete", Some(CapturingContent), Step::Done) },
            false,
        ),
        (Case { snapshots: all_ready, has_policy: false, ..base("no policy", Some(CapturingContent), Step::Done) }, false),
    ];
    for (case, want) in cases {
        assert_eq!(observing(&case, completes_at_release), want, "{}", case.name);
    }
}

/// A run object is settled when its status is and it has no release finalizer.
#[test]
fn a_run_object_is_settled_by_its_status_and_finalizer() {
    use crate::api::{ArchiveBackup, ArchiveBackupSpec, BackupReason};
    let cases = [
        (None, false, false),
        (Some(BackupPhase::Finalizing), false, false),
        (Some(BackupPhase::Completed), false, true),
        (Some(BackupPhase::Failed), false, true),
        (Some(BackupPhase::Completed), true, false),
    ];
    for (phase, finalizer, want) in cases {
        let mut b = ArchiveBackup::new("b1", ArchiveBackupSpec { policy_name: "p".into(), reason: BackupReason::Manual, hold: false });
        b.status = phase.map(|p| ArchiveBackupStatus { phase: Some(p), ..Default::default() });
        b.metadata.finalizers = finalizer.then(|| vec![RELEASE_FINALIZER.to_string()]);
        assert_eq!(is_settled(&b), want, "{phase:?} finalizer {finalizer}");
    }
}
