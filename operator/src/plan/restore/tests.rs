//! Table-driven tests of restore resolution, the restore plan and every step.

use super::*;
use crate::api::{
    ArchiveBackupSpec, ArchiveBackupStatus, BackupPolicySpec, BackupReason, CapturedItem,
    PostRestoreJob, RestoreSource, RestoreTarget, RetainedVolume, TargetKind, VerificationStatus,
};
use chrono::TimeZone;

fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 2, 0, 0).single().expect("time") + chrono::Duration::seconds(s)
}

fn item(component: Component, store: &str, claim: &str, sql: bool) -> CapturedItem {
    CapturedItem {
        component,
        store: store.into(),
        source_claim: Some(claim.into()),
        source_sql: sql.then(|| "PostgreSQL://db:5432/meta".to_string()),
        volume_snapshot: Some(format!("snap-{claim}")),
        captured_at: Some(t(0)),
        ready_to_use: true,
        restore_size: Some("1Gi".into()),
    }
}

fn policy() -> BackupPolicySpec {
    serde_json::from_value(serde_json::json!({
        "target": {"kind": "StatefulSet", "name": "mailstore"},
        "master": {"volumeClaims": ["master"], "secrets": ["key"]},
        "stores": [
            {"name": "s1", "metadata": {"volumeClaims": ["meta-1"]}, "content": {"volumeClaims": ["content-1"]}},
            {"name": "s2", "metadata": {"sql": {"engine": "PostgreSQL", "host": "db", "database": "meta", "credentialsSecret": "db"}},
             "content": {"volumeClaims": ["content-2"]}}
        ]
    }))
    .expect("policy")
}

fn backup(name: &str, policy_name: &str, phase: BackupPhase, at: i64, verified: bool) -> ArchiveBackup {
    let mut b = ArchiveBackup::new(name, ArchiveBackupSpec { policy_name: policy_name.into(), reason: BackupReason::Scheduled, hold: false });
    let secrets = CapturedItem { volume_snapshot: None, source_claim: None, ..item(Component::Secrets, "", "", false) };
    b.status = Some(ArchiveBackupStatus {
        phase: Some(phase),
        start_time: Some(t(at)),
        secret_copy: Some(format!("{name}-secrets")),
        items: vec![
            secrets,
            item(Component::Master, "", "master-mailstore-0", false),
            item(Component::Metadata, "s1", "meta-1", false),
            item(Component::Metadata, "s2", "b-dump-metadata-s2", true),
            item(Component::Content, "s1", "content-1", false),
            item(Component::Content, "s2", "content-2", false),
        ],
        verification: verified.then_some(VerificationStatus { state: VerificationState::Passed, finished_at: None, message: None, reason: None }),
        policy_spec: Some(Box::new(policy())),
        ..Default::default()
    });
    b
}

fn spec(source: RestoreSource, mode: RestoreMode) -> RestoreRequestSpec {
    RestoreRequestSpec {
        source,
        target: RestoreTarget { mode, namespace: None, name_suffix: Some("-r".into()) },
        stores: vec![],
        include_master: true,
        sql_target: None,
        post_restore: vec![],
        ttl_seconds_after_finished: None,
    }
}

fn by_name(name: &str) -> RestoreSource {
    RestoreSource { backup_name: Some(name.into()), ..Default::default() }
}

fn backups() -> Vec<ArchiveBackup> {
    vec![
        backup("old", "p", BackupPhase::Completed, 0, true),
        backup("new", "p", BackupPhase::Completed, 10, false),
        backup("running", "p", BackupPhase::CapturingContent, 20, false),
        backup("other", "q", BackupPhase::Completed, 30, true),
    ]
}

#[test]
fn resolution() {
    let bs = backups();
    let policy = |select| RestoreSource { policy_name: Some("p".into()), select: Some(select), backup_name: None, ..Default::default() };
    let cases: Vec<(&str, RestoreRequestSpec, Result<&str, &str>)> = vec![
        ("named", spec(by_name("old"), RestoreMode::Volumes), Ok("old")),
        ("missing", spec(by_name("nope"), RestoreMode::Volumes), Err("does not exist")),
        ("not completed", spec(by_name("running"), RestoreMode::Volumes), Err("is CapturingContent, not Completed")),
        ("latest", spec(policy(RestoreSelect::Latest), RestoreMode::Volumes), Ok("new")),
        ("latest verified", spec(policy(RestoreSelect::LatestVerified), RestoreMode::Volumes), Ok("old")),
        (
            "no backup of policy",
            spec(RestoreSource { policy_name: Some("z".into()), ..Default::default() }, RestoreMode::Volumes),
            Err("has no Completed backup"),
        ),
        (
            "other namespace",
            RestoreRequestSpec { target: RestoreTarget { namespace: Some("elsewhere".into()), ..Default::default() }, ..spec(by_name("old"), RestoreMode::Volumes) },
            Err("spec.target.namespace"),
        ),
    ];
    for (name, s, want) in cases {
        let got = resolve(&s, "mail", &bs).map(|b| b.metadata.name.clone().unwrap_or_default());
        match (got, want) {
            (Ok(g), Ok(w)) => assert_eq!(g, w, "{name}"),
            (Err(g), Err(w)) => assert!(g.contains(w), "{name}: {g}"),
            (g, w) => panic!("{name}: got {g:?}, want {w:?}"),
        }
    }
}

#[test]
fn restore_plan() {
    let b = backup("b", "p", BackupPhase::Completed, 0, false);
    let all = restore_items(&spec(by_name("b"), RestoreMode::Volumes), &b, "-r", "req", SourceFrom::Snapshots).expect("items");
    let got: Vec<(Component, &str, &str, &str)> =
        all.iter().map(|i| (i.component, i.store.as_str(), i.original.as_str(), i.restored.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (Component::Secrets, "", "key", "key-r"),
            (Component::Master, "", "master-mailstore-0", "master-mailstore-0-r"),
            (Component::Metadata, "s1", "meta-1", "meta-1-r"),
            (Component::Metadata, "s2", "meta", "meta_restored"),
            (Component::Content, "s1", "content-1", "content-1-r"),
            (Component::Content, "s2", "content-2", "content-2-r"),
        ]
    );
    let ItemKind::Sql { claim, job, host, .. } = &all[3].kind else { panic!("sql item") };
    assert_eq!((claim.as_str(), job.as_str(), host.as_str()), ("b-dump-metadata-s2-r", "req-sql-metadata-s2", "db"));

    let partial = RestoreRequestSpec { stores: vec!["s1".into()], include_master: false, ..spec(by_name("b"), RestoreMode::Volumes) };
    let names: Vec<String> = restore_items(&partial, &b, "-r", "req", SourceFrom::Snapshots).expect("partial").into_iter().map(|i| i.restored).collect();
    assert_eq!(names, vec!["meta-1-r", "content-1-r"]);

    let in_place = restore_items(&spec(by_name("b"), RestoreMode::InPlace), &b, "-r", "req", SourceFrom::Snapshots).expect("in place");
    assert_eq!(in_place[1].restored, "master-mailstore-0", "in place keeps claim names");
    assert_eq!(in_place[0].restored, "key-r", "secrets are never overwritten");

    let unknown = RestoreRequestSpec { stores: vec!["s9".into()], ..spec(by_name("b"), RestoreMode::Volumes) };
    let err = restore_items(&unknown, &b, "-r", "req", SourceFrom::Snapshots).expect_err("unknown store");
    assert!(err.starts_with("spec.stores[0]: ArchiveBackup b has no snapshot of store s9"), "{err}");
    let csv = mapping_csv(&all[..2]);
    assert_eq!(csv, "component,store,original,restored\nsecrets,,key,key-r\nmaster,,master-mailstore-0,master-mailstore-0-r\n");
    assert_eq!(default_suffix("3F2a-9bc1-..."), "-r-3f2a9");
}

struct World {
    spec: RestoreRequestSpec,
    status: RestoreRequestStatus,
    backups: Vec<ArchiveBackup>,
    claims: BTreeMap<String, ClaimObs>,
    volumes: BTreeMap<String, String>,
    jobs: BTreeMap<String, JobObs>,
    secrets: BTreeSet<String>,
    target: Option<(i32, u32)>,
    target_claim: WorkloadClaim,
    copy: Option<ObjectObs>,
    mapping: Option<ObjectObs>,
    now: i64,
    /// VolumeSnapshots and Secret copies of the backups that are gone from the cluster (every
    /// other one exists).
    gone: BTreeSet<String>,
    reader: Option<source::ReaderObs>,
    repository_backup: Option<ArchiveBackup>,
    repository_locked: Option<String>,
}

impl World {
    fn new(mode: RestoreMode) -> Self {
        World {
            spec: RestoreRequestSpec { stores: vec!["s1".into()], include_master: false, ..spec(by_name("b"), mode) },
            status: RestoreRequestStatus { phase: Some(RestorePhase::Restoring), resolved_backup: Some("b".into()), name_suffix: Some("-r".into()), ..Default::default() },
            backups: vec![backup("b", "p", BackupPhase::Completed, 0, false)],
            claims: BTreeMap::new(),
            volumes: BTreeMap::new(),
            jobs: BTreeMap::new(),
            secrets: BTreeSet::new(),
            target: Some((1, 1)),
            target_claim: WorkloadClaim::Free,
            copy: None,
            mapping: None,
            now: 100,
            gone: BTreeSet::new(),
            reader: None,
            repository_backup: None,
            repository_locked: None,
        }
    }

    fn claim(mut self, name: &str, bound: bool, ours: bool) -> Self {
        let shape = ReplacedClaim { name: name.into(), storage_class_name: Some("gold".into()), volume: Some(format!("pv-{name}")), ..Default::default() };
        let obs = ClaimObs { bound, volume: Some(format!("pv-{name}")), restored_by: ours.then(|| "req".to_string()), deleting: false, shape };
        self.claims.insert(name.into(), obs);
        self
    }

    fn next(&self) -> RestoreStep {
        let statuses = self.backups.iter().filter_map(|b| b.status.as_ref());
        let volume_snapshots: BTreeSet<String> =
            statuses.clone().flat_map(|s| s.items.iter()).filter_map(|i| i.volume_snapshot.clone()).filter(|n| !self.gone.contains(n)).collect();
        let secrets: BTreeSet<String> =
            self.secrets.iter().cloned().chain(statuses.filter_map(|s| s.secret_copy.clone()).filter(|n| !self.gone.contains(n))).collect();
        next(&RestoreObservation {
            now: t(self.now),
            name: "req",
            namespace: "mail",
            uid: "uid",
            spec: &self.spec,
            status: &self.status,
            backups: &self.backups,
            claims: &self.claims,
            volumes: &self.volumes,
            jobs: &self.jobs,
            secrets: &secrets,
            target: self.target,
            target_claim: &self.target_claim,
            copy: self.copy.clone(),
            mapping: self.mapping.clone(),
            volume_snapshots: &volume_snapshots,
            reader: self.reader.clone(),
            repository_backup: self.repository_backup.as_ref(),
            repository_locked: self.repository_locked.as_deref(),
        })
    }
}

fn hook(name: &str) -> PostRestoreJob {
    PostRestoreJob { name: name.into(), image: "busybox".into(), command: vec!["true".into()] }
}

#[test]
fn volumes_and_side_by_side_steps() {
    let pending = World { status: RestoreRequestStatus::default(), ..World::new(RestoreMode::Volumes) };
    assert_eq!(pending.next(), RestoreStep::Accept { backup: "b".into(), from: SourceFrom::Snapshots, repository_secret: None });
    let refused = World { status: RestoreRequestStatus::default(), spec: spec(by_name("nope"), RestoreMode::Volumes), ..World::new(RestoreMode::Volumes) };
    assert!(matches!(refused.next(), RestoreStep::Refuse(m) if m.contains("does not exist")));

    let w = World::new(RestoreMode::Volumes);
    assert_eq!(w.next(), RestoreStep::Create(vec![0, 1]));
    let w = World::new(RestoreMode::Volumes).claim("meta-1-r", false, true).claim("content-1-r", true, true);
    assert!(matches!(w.next(), RestoreStep::Wait { .. }));
    let w = World::new(RestoreMode::Volumes).claim("meta-1-r", true, false);
    assert!(matches!(w.next(), RestoreStep::Fail(m) if m.contains("was not made by this request")), "never overwrite");
    let bound = World::new(RestoreMode::Volumes).claim("meta-1-r", true, true).claim("content-1-r", true, true);
    assert_eq!(bound.next(), RestoreStep::EnterHooks);
    let sbs = World { spec: RestoreRequestSpec { target: RestoreTarget { mode: RestoreMode::SideBySide, name_suffix: Some("-r".into()), namespace: None }, ..bound.spec.clone() }, ..World::new(RestoreMode::Volumes) }
        .claim("meta-1-r", true, true)
        .claim("content-1-r", true, true);
    assert_eq!(sbs.next(), RestoreStep::CreateWorkloadCopy);

    let mut sql = World::new(RestoreMode::Volumes);
    sql.spec.stores = vec!["s2".into()];
    assert_eq!(sql.next(), RestoreStep::Create(vec![0, 1]), "dump claim and content claim");
    let mut sql = sql.claim("b-dump-metadata-s2-r", true, true).claim("content-2-r", true, true);
    assert_eq!(sql.next(), RestoreStep::Create(vec![0]), "bound dump claim: restore Job");
    sql.jobs.insert("req-sql-metadata-s2".into(), JobObs::Running);
    assert!(matches!(sql.next(), RestoreStep::Wait { .. }));
    sql.jobs.insert("req-sql-metadata-s2".into(), JobObs::Failed { message: "database meta_restored exists".into() });
    assert!(matches!(sql.next(), RestoreStep::Fail(m) if m.contains("meta_restored exists")));
    sql.jobs.insert("req-sql-metadata-s2".into(), JobObs::Succeeded);
    assert_eq!(sql.next(), RestoreStep::EnterHooks);
}

#[test]
fn hooks_and_ttl() {
    let mut w = World::new(RestoreMode::Volumes);
    w.status.phase = Some(RestorePhase::RunningHooks);
    w.spec.post_restore = vec![hook("replay"), hook("reindex")];
    assert_eq!(w.next(), RestoreStep::CreateHook(0));
    w.jobs.insert(hook_job_name("req", "replay"), JobObs::Running);
    assert!(matches!(w.next(), RestoreStep::Wait { .. }));
    w.jobs.insert(hook_job_name("req", "replay"), JobObs::Succeeded);
    assert_eq!(w.next(), RestoreStep::CreateHook(1), "hooks run one after another");
    w.jobs.insert(hook_job_name("req", "reindex"), JobObs::Failed { message: "exit 1".into() });
    assert!(matches!(w.next(), RestoreStep::Fail(m) if m.contains("reindex")));
    w.jobs.insert(hook_job_name("req", "reindex"), JobObs::Succeeded);
    assert_eq!(w.next(), RestoreStep::Complete);

}

fn copy_record(uid: &str) -> WorkloadCopy {
    WorkloadCopy { kind: TargetKind::StatefulSet, name: "mailstore-r".into(), uid: uid.into() }
}

fn object(uid: &str, label: Option<&str>, owner: Option<&str>) -> ObjectObs {
    ObjectObs { uid: uid.into(), restored_by: label.map(String::from), owner_uids: owner.into_iter().map(String::from).collect() }
}

/// The TTL deletes the workload copy only when its uid is the one recorded at creation, and
/// names that uid as the delete precondition.
#[test]
fn the_ttl_deletes_only_the_recorded_copy() {
    type Case = (&'static str, Option<WorkloadCopy>, Option<ObjectObs>, i64, RestoreStep);
    let cases: Vec<Case> = vec![
        ("before the TTL", Some(copy_record("u1")), Some(object("u1", Some("req"), Some("uid"))), 100, RestoreStep::Wait { what: "the side-by-side workload's TTL".into(), requeue: Some(Duration::from_secs(10)) }),
        ("after the TTL", Some(copy_record("u1")), Some(object("u1", Some("req"), Some("uid"))), 110, RestoreStep::DeleteWorkloadCopy(copy_record("u1"))),
        ("the copy is gone", Some(copy_record("u1")), None, 110, RestoreStep::Done),
        ("replaced by a user's object", Some(copy_record("u1")), Some(object("u2", None, None)), 110, RestoreStep::Done),
        ("replaced by an object labelled and owned like ours", Some(copy_record("u1")), Some(object("u2", Some("req"), Some("uid"))), 110, RestoreStep::Done),
        ("no uid recorded", None, Some(object("u1", Some("req"), Some("uid"))), 110, RestoreStep::Done),
    ];
    for (name, recorded, copy, now, want) in cases {
        let mut done = World::new(RestoreMode::SideBySide);
        done.spec.target.mode = RestoreMode::SideBySide;
        done.spec.ttl_seconds_after_finished = Some(60);
        done.status.phase = Some(RestorePhase::Completed);
        done.status.completion_time = Some(t(50));
        done.status.workload_copy = recorded;
        done.copy = copy;
        done.now = now;
        assert_eq!(done.next(), want, "{name}");
    }
    let mut no_ttl = World::new(RestoreMode::SideBySide);
    no_ttl.spec.target.mode = RestoreMode::SideBySide;
    no_ttl.status.phase = Some(RestorePhase::Completed);
    no_ttl.status.completion_time = Some(t(0));
    no_ttl.status.workload_copy = Some(copy_record("u1"));
    no_ttl.copy = Some(object("u1", Some("req"), Some("uid")));
    assert_eq!(no_ttl.next(), RestoreStep::Done, "without a TTL the copy stays");
}

/// A side-by-side restore creates its copy, records its uid, and goes on only with the copy
/// it made; an object of that name it did not make fails the request, untouched.
#[test]
fn side_by_side_goes_on_only_with_its_own_copy() {
    type Case = (&'static str, Option<WorkloadCopy>, Option<ObjectObs>, Result<RestoreStep, &'static str>);
    let cases: Vec<Case> = vec![
        ("no copy yet", None, None, Ok(RestoreStep::CreateWorkloadCopy)),
        ("the recorded copy", Some(copy_record("u1")), Some(object("u1", Some("req"), Some("uid"))), Ok(RestoreStep::EnterHooks)),
        ("made but not recorded (a restart)", None, Some(object("u1", Some("req"), Some("uid"))), Ok(RestoreStep::RecordWorkloadCopy(copy_record("u1")))),
        ("recreated after it was deleted", Some(copy_record("u1")), Some(object("u2", Some("req"), Some("uid"))), Ok(RestoreStep::RecordWorkloadCopy(copy_record("u2")))),
        ("the recorded copy was deleted", Some(copy_record("u1")), None, Ok(RestoreStep::CreateWorkloadCopy)),
        ("a user's object", None, Some(object("u9", None, None)), Err("StatefulSet mail/mailstore-r exists and was not made by this request")),
        ("labelled, not owned", None, Some(object("u9", Some("req"), None)), Err("StatefulSet mail/mailstore-r exists")),
        ("owned by an earlier request of the same name", None, Some(object("u9", Some("req"), Some("old-uid"))), Err("StatefulSet mail/mailstore-r exists")),
        ("a user's object replaced the recorded copy", Some(copy_record("u1")), Some(object("u9", None, None)), Err("StatefulSet mail/mailstore-r exists")),
    ];
    for (name, recorded, copy, want) in cases {
        let mut w = World::new(RestoreMode::SideBySide).claim("meta-1-r", true, true).claim("content-1-r", true, true);
        w.spec.target.mode = RestoreMode::SideBySide;
        w.status.workload_copy = recorded;
        w.copy = copy;
        match (w.next(), want) {
            (got, Ok(step)) => assert_eq!(got, step, "{name}"),
            (RestoreStep::Fail(message), Err(words)) => assert!(message.contains(words) && message.contains("left as it is"), "{name}: {message}"),
            (got, Err(words)) => panic!("{name}: got {got:?}, want a failure saying {words:?}"),
        }
    }
}

/// A request that would create an object whose name is taken fails before it creates
/// anything, naming each object; the mapping ConfigMap of a request of the same name is
/// rewritten, and `InPlace` replaces its own claims by design.
#[test]
fn names_already_taken_refuse_the_request_before_anything_is_created() {
    type Mutation = fn(&mut World);
    let side_by_side: Mutation = |w| w.spec.target.mode = RestoreMode::SideBySide;
    type Case = (&'static str, Mutation, Result<(), &'static [&'static str]>);
    let cases: Vec<Case> = vec![
        ("nothing taken", |_| {}, Ok(())),
        ("nothing taken, side by side", side_by_side, Ok(())),
        (
            "the copy's name",
            |w| {
                w.spec.target.mode = RestoreMode::SideBySide;
                w.copy = Some(object("u9", None, None));
            },
            Err(&["StatefulSet mail/mailstore-r already exists"]),
        ),
        (
            "a copy labelled with this request's name (an earlier request)",
            |w| {
                w.spec.target.mode = RestoreMode::SideBySide;
                w.copy = Some(object("u9", Some("req"), Some("old-uid")));
            },
            Err(&["StatefulSet mail/mailstore-r already exists"]),
        ),
        ("the copy's name, not side by side", |w| w.copy = Some(object("u9", None, None)), Ok(())),
        (
            "a restored PVC's name",
            |w| {
                w.claims.insert("meta-1-r".into(), ClaimObs::default());
            },
            Err(&["PersistentVolumeClaim mail/meta-1-r already exists"]),
        ),
        (
            "a restored PVC of an earlier request of the same name",
            |w| {
                w.claims.insert("content-1-r".into(), ClaimObs { restored_by: Some("req".into()), ..Default::default() });
            },
            Err(&["PersistentVolumeClaim mail/content-1-r already exists"]),
        ),
        (
            "two PVCs and the copy",
            |w| {
                w.spec.target.mode = RestoreMode::SideBySide;
                w.claims.insert("meta-1-r".into(), ClaimObs::default());
                w.claims.insert("content-1-r".into(), ClaimObs::default());
                w.copy = Some(object("u9", None, None));
            },
            Err(&["PersistentVolumeClaim mail/meta-1-r already exists, PersistentVolumeClaim mail/content-1-r already exists, StatefulSet mail/mailstore-r already exists", "objects are left"]),
        ),
        (
            "an SQL dump claim's name",
            |w| {
                w.spec.stores = vec!["s2".into()];
                w.claims.insert("b-dump-metadata-s2-r".into(), ClaimObs::default());
            },
            Err(&["PersistentVolumeClaim mail/b-dump-metadata-s2-r already exists"]),
        ),
        (
            "a restored Secret's name",
            |w| {
                w.spec.include_master = true;
                w.secrets.insert("key-r".into());
            },
            Err(&["Secret mail/key-r already exists"]),
        ),
        ("the mapping ConfigMap of a user", |w| w.mapping = Some(object("u9", None, None)), Err(&["ConfigMap mail/req-mapping already exists"])),
        ("the mapping ConfigMap of an earlier request of the same name", |w| w.mapping = Some(object("u9", Some("req"), Some("old-uid"))), Ok(())),
        (
            "in place: the original claims are there by design",
            |w| {
                w.spec.target.mode = RestoreMode::InPlace;
                w.claims.insert("meta-1".into(), ClaimObs::default());
                w.claims.insert("content-1".into(), ClaimObs::default());
            },
            Ok(()),
        ),
        (
            "in place: the pre-restore backup's name",
            |w| {
                w.spec.target.mode = RestoreMode::InPlace;
                w.backups.push(backup("req-pre-restore", "p", BackupPhase::Completed, 5, false));
            },
            Err(&["ArchiveBackup mail/req-pre-restore already exists"]),
        ),
    ];
    for (name, mutate, want) in cases {
        let mut w = World { status: RestoreRequestStatus::default(), ..World::new(RestoreMode::Volumes) };
        mutate(&mut w);
        match (w.next(), want) {
            (RestoreStep::Accept { backup, .. }, Ok(())) => assert_eq!(backup, "b", "{name}"),
            (RestoreStep::Refuse(message), Err(words)) => {
                for word in words {
                    assert!(message.contains(word), "{name}: {message:?} does not say {word:?}");
                }
                assert!(message.contains("nothing was created"), "{name}: {message}");
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

/// The pre-restore backup request `req` made (labelled with it).
fn pre_restore(name: &str, phase: BackupPhase) -> ArchiveBackup {
    let mut b = backup(name, "p", phase, 50, false);
    b.metadata.labels = Some(BTreeMap::from([(RESTORE_LABEL.to_string(), "req".to_string())]));
    b
}

#[test]
fn in_place_steps_keep_everything() {
    let mut w = World::new(RestoreMode::InPlace);
    w = w.claim("meta-1", true, false).claim("content-1", true, false);
    w.volumes.insert("pv-meta-1".into(), "Delete".into());
    w.volumes.insert("pv-content-1".into(), "Delete".into());
    assert_eq!(w.next(), RestoreStep::CreatePreRestoreBackup("req-pre-restore".into()));
    w.status.pre_restore_backup = Some("req-pre-restore".into());
    w.backups.push(backup("req-pre-restore", "p", BackupPhase::Completed, 50, false));
    assert!(
        matches!(w.next(), RestoreStep::Fail(m) if m.contains("ArchiveBackup mail/req-pre-restore exists and was not made by this request")),
        "a backup of that name this request did not make is never taken as its pre-restore backup"
    );
    w.backups.pop();
    w.backups.push(pre_restore("req-pre-restore", BackupPhase::Finalizing));
    assert!(matches!(w.next(), RestoreStep::Wait { .. }), "the pre-restore backup must complete first");
    w.backups.pop();
    w.backups.push(pre_restore("req-pre-restore", BackupPhase::Failed));
    assert!(matches!(w.next(), RestoreStep::Fail(m) if m.contains("nothing was changed")));
    w.backups.pop();
    w.backups.push(pre_restore("req-pre-restore", BackupPhase::Completed));
    assert_eq!(w.next(), RestoreStep::ClaimWorkload, "the target is claimed before its replicas are read");
    w.target_claim = WorkloadClaim::Mine;
    assert_eq!(w.next(), RestoreStep::RecordReplicas(1));
    w.status.original_replicas = Some(1);
    assert_eq!(w.next(), RestoreStep::ScaleToZero);
    w.target = Some((0, 1));
    assert!(matches!(w.next(), RestoreStep::Wait { .. }));
    w.target = Some((0, 0));
    assert_eq!(w.next(), RestoreStep::RetainVolume { claim: "meta-1".into(), volume: "pv-meta-1".into() });
    w.status.retained_volumes.push(RetainedVolume { claim: "meta-1".into(), volume: "pv-meta-1".into() });
    w.volumes.insert("pv-meta-1".into(), "Retain".into());
    let shape = |name: &str| ReplacedClaim { name: name.into(), storage_class_name: Some("gold".into()), volume: Some(format!("pv-{name}")), ..Default::default() };
    assert_eq!(w.next(), RestoreStep::RecordClaim(shape("meta-1")), "its shape is recorded once its volume is retained");
    w.status.replaced_claims.push(shape("meta-1"));
    assert_eq!(w.next(), RestoreStep::DeleteClaim("meta-1".into()), "deleted only once its volume is retained and its shape recorded");
    w.claims.remove("meta-1");
    w.volumes.insert("pv-content-1".into(), "Retain".into());
    w.status.retained_volumes.push(RetainedVolume { claim: "content-1".into(), volume: "pv-content-1".into() });
    assert_eq!(w.next(), RestoreStep::RecordClaim(shape("content-1")));
    w.status.replaced_claims.push(shape("content-1"));
    assert_eq!(w.next(), RestoreStep::DeleteClaim("content-1".into()));
    w.claims.remove("content-1");
    assert_eq!(w.next(), RestoreStep::Create(vec![0, 1]));
    let mut w = w.claim("meta-1", true, true).claim("content-1", true, true);
    assert_eq!(w.next(), RestoreStep::EnterHooks);
    w.status.phase = Some(RestorePhase::RunningHooks);
    assert_eq!(w.next(), RestoreStep::ScaleBack(1));
    w.target = Some((1, 1));
    assert_eq!(w.next(), RestoreStep::ScaleBack(1), "scaled back but still claimed: the claim is dropped first");
    w.target_claim = WorkloadClaim::Free;
    assert_eq!(w.next(), RestoreStep::Complete);
}

/// One quiesce per workload, for in-place restores too: a target another run or restore holds
/// is waited for (never stopped, and its replicas, perhaps 0 under a backup's Stop, never
/// recorded); a free target is claimed first; a claimed one is stopped.
#[test]
fn in_place_restores_claim_the_target_first() {
    let held = || WorkloadClaim::HeldBy("mail/nightly-1".into());
    /// (case, the claim, recorded originalReplicas, (replicas, live pods), expected step)
    type Case = (&'static str, WorkloadClaim, Option<i32>, (i32, u32), RestoreStep);
    let cases: Vec<Case> = vec![
        ("held by a backup that stopped it", held(), None, (0, 0), RestoreStep::WaitForWorkload { holder: "mail/nightly-1".into() }),
        ("held by a backup, replicas recorded", held(), Some(1), (1, 1), RestoreStep::WaitForWorkload { holder: "mail/nightly-1".into() }),
        ("free", WorkloadClaim::Free, None, (1, 1), RestoreStep::ClaimWorkload),
        ("free again after a restart, replicas recorded", WorkloadClaim::Free, Some(1), (1, 1), RestoreStep::ClaimWorkload),
        ("mine, replicas not recorded", WorkloadClaim::Mine, None, (2, 2), RestoreStep::RecordReplicas(2)),
        ("mine, recorded", WorkloadClaim::Mine, Some(2), (2, 2), RestoreStep::ScaleToZero),
    ];
    for (case, claim, original, target, expected) in cases {
        let mut w = World::new(RestoreMode::InPlace).claim("meta-1", true, false).claim("content-1", true, false);
        w.status.pre_restore_backup = Some("req-pre-restore".into());
        w.backups.push(pre_restore("req-pre-restore", BackupPhase::Completed));
        w.target_claim = claim;
        w.status.original_replicas = original;
        w.target = Some(target);
        assert_eq!(w.next(), expected, "{case}");
    }
}

/// A Pending request is checked with the rules of `archivist validate` before anything is
/// created: a broken rule is `Invalid` (phase Failed, `Ready=False` reason `InvalidSpec`) with a
/// message naming the field; a good spec is accepted.
#[test]
fn pending_requests_are_validated_before_anything_is_created() {
    type Mutation = fn(&mut World);
    let cases: Vec<(&str, Mutation, Result<&str, &str>)> = vec![
        ("valid", |_| {}, Ok("b")),
        ("valid SQL target", |w| w.spec.sql_target = Some(crate::api::SqlTarget { host: None, port: None, credentials_secret: None, database_suffix: "_r2".into() }), Ok("b")),
        (
            "databaseSuffix with a quote",
            |w| w.spec.sql_target = Some(crate::api::SqlTarget { host: None, port: None, credentials_secret: None, database_suffix: "x'; DROP DATABASE y; --".into() }),
            Err("spec.sqlTarget.databaseSuffix: \"x'; DROP DATABASE y; --\" may only hold letters, digits and '_'"),
        ),
        (
            "databaseSuffix with a backtick",
            |w| w.spec.sql_target = Some(crate::api::SqlTarget { host: None, port: None, credentials_secret: None, database_suffix: "x`; DROP DATABASE y; --".into() }),
            Err("spec.sqlTarget.databaseSuffix: \"x`; DROP DATABASE y; --\" may only hold letters, digits and '_'"),
        ),
        (
            "the new database name is too long for the backup's database",
            |w| {
                w.spec.stores = vec!["s2".into()];
                w.spec.sql_target = Some(crate::api::SqlTarget { host: None, port: None, credentials_secret: None, database_suffix: "r".repeat(60) });
            },
            Err("spec.sqlTarget.databaseSuffix: the new database for meta of store s2 (metadata) would be"),
        ),
        ("nameSuffix with uppercase", |w| w.spec.target.name_suffix = Some("-R".into()), Err("spec.target.nameSuffix: \"-R\" may only hold lowercase letters")),
        ("empty nameSuffix outside InPlace", |w| w.spec.target.name_suffix = Some(String::new()), Err("spec.target.nameSuffix: is empty")),
        ("hook name not a DNS label", |w| w.spec.post_restore = vec![hook("Rebuild_Index")], Err("spec.postRestore[0].name: \"Rebuild_Index\" is not a DNS-1123 label")),
        ("two hooks of one name", |w| w.spec.post_restore = vec![hook("replay"), hook("replay")], Err("spec.postRestore[1].name")),
        ("hook without a command", |w| w.spec.post_restore = vec![PostRestoreJob { command: vec![], ..hook("replay") }], Err("spec.postRestore[0].command: is empty")),
        ("ttl outside SideBySide", |w| w.spec.ttl_seconds_after_finished = Some(60), Err("spec.ttlSecondsAfterFinished")),
        (
            "InPlace into another namespace",
            |w| {
                w.spec.target.mode = RestoreMode::InPlace;
                w.spec.target.namespace = Some("elsewhere".into());
            },
            Err("spec.target.namespace: \"elsewhere\" differs from the request's namespace \"mail\""),
        ),
        ("a store the backup's policy lacks", |w| w.spec.stores = vec!["s9".into()], Err("spec.stores[0]: the backup's policy has no store \"s9\"")),
        (
            "every problem is reported",
            |w| {
                w.spec.target.name_suffix = Some("-R".into());
                w.spec.post_restore = vec![hook("A")];
            },
            Err("invalid spec: spec.target.nameSuffix: \"-R\" may only hold lowercase letters, digits and '-', and must end with a letter or digit (it is appended to PVC and workload names); spec.postRestore[0].name"),
        ),
        ("a missing backup is refused, not invalid", |w| w.spec.source = by_name("nope"), Err("spec.source.backupName: ArchiveBackup nope does not exist")),
    ];
    for (name, mutate, want) in cases {
        let mut w = World { status: RestoreRequestStatus::default(), ..World::new(RestoreMode::Volumes) };
        mutate(&mut w);
        let got = w.next();
        match (&got, want) {
            (RestoreStep::Accept { backup, .. }, Ok(b)) => assert_eq!(backup, b, "{name}"),
            (RestoreStep::Invalid(message), Err(words)) => {
                assert!(message.starts_with("invalid spec: ") && message.contains(words), "{name}: {message}");
                assert_ne!(name, "a missing backup is refused, not invalid", "{message}");
            }
            (RestoreStep::Refuse(message), Err(words)) if name.starts_with("a missing backup") => assert!(message.contains(words), "{name}: {message}"),
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

/// A request accepted before names were checked (its status already Restoring) still never
/// creates an SQL restore with an unsafe name: the plan fails it.
#[test]
fn an_accepted_request_with_an_unsafe_database_name_fails() {
    let mut w = World::new(RestoreMode::Volumes);
    w.spec.stores = vec!["s2".into()];
    w.spec.sql_target = Some(crate::api::SqlTarget { host: None, port: None, credentials_secret: None, database_suffix: "x'; DROP DATABASE y; --".into() });
    match w.next() {
        RestoreStep::Fail(message) => assert!(message.starts_with("spec.sqlTarget.databaseSuffix: the new database of store s2 cannot be restored"), "{message}"),
        other => panic!("{other:?}"),
    }
}

/// Backup `b` as exported: every item's repository snapshot in `status.export`, and the
/// policy copy exporting to Secret `repo`.
fn exported_backup() -> ArchiveBackup {
    let mut b = backup("b", "p", BackupPhase::Completed, 0, false);
    let status = b.status.as_mut().expect("status");
    let snapshots = status
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| crate::api::ExportedSnapshot {
            component: item.component,
            store: item.store.clone(),
            claim: if item.component == Component::Secrets { "b-secrets".into() } else { item.source_claim.clone().unwrap_or_default() },
            id: format!("{i:02}aa0000bb"),
            bytes: 1,
        })
        .collect();
    status.export = Some(crate::api::ExportStatus {
        state: crate::api::ExportState::Exported,
        repository: Some("rest:http://127.0.0.1:1/r".into()),
        started_at: None,
        finished_at: None,
        bytes_added: None,
        message: None,
        snapshots,
        manifest: Some("ffaa0000bb".into()),
        forget_failed_at: None,
    });
    if let Some(policy) = status.policy_spec.as_mut() {
        policy.export = Some(serde_json::from_value(serde_json::json!({"repositorySecret": "repo"})).expect("export"));
    }
    b
}

fn repository_source(secret: &str) -> RestoreSource {
    RestoreSource {
        policy_name: Some("p".into()),
        repository: Some(crate::api::RepositorySource { secret_name: secret.into(), ..Default::default() }),
        ..Default::default()
    }
}

fn reader(running: bool, mine: bool, failed: Option<&str>) -> Option<source::ReaderObs> {
    Some(source::ReaderObs { mine, running, failed: failed.map(Into::into) })
}

#[test]
fn the_source_is_the_snapshots_while_they_exist_else_the_repository() {
    let pending = |from: Option<SourceFrom>, backups: Vec<ArchiveBackup>, gone: &[&str], secrets: &[&str]| World {
        status: RestoreRequestStatus::default(),
        spec: RestoreRequestSpec { source: RestoreSource { from, ..by_name("b") }, ..World::new(RestoreMode::Volumes).spec },
        backups,
        gone: gone.iter().map(ToString::to_string).collect(),
        secrets: secrets.iter().map(ToString::to_string).collect(),
        ..World::new(RestoreMode::Volumes)
    };
    let accepted = |from, secret: Option<&str>| RestoreStep::Accept { backup: "b".into(), from, repository_secret: secret.map(Into::into) };
    let plain = || vec![backup("b", "p", BackupPhase::Completed, 0, false)];
    let exported = || vec![exported_backup()];
    // (case, world, the step wanted, or the start of the refusal)
    let cases: Vec<(&str, World, Result<RestoreStep, &str>)> = vec![
        ("Auto: every snapshot exists", pending(None, exported(), &[], &["repo"]), Ok(accepted(SourceFrom::Snapshots, None))),
        ("Auto: an unselected store's snapshot is gone", pending(None, plain(), &["snap-content-2"], &[]), Ok(accepted(SourceFrom::Snapshots, None))),
        ("Auto: gone, not exported", pending(None, plain(), &["snap-meta-1"], &[]), Err("ArchiveBackup b cannot be restored: VolumeSnapshot snap-meta-1 gone")),
        ("Auto: gone, exported", pending(None, exported(), &["snap-meta-1"], &["repo"]), Ok(accepted(SourceFrom::Repository, Some("repo")))),
        ("Auto: gone, exported, its Secret missing", pending(None, exported(), &["snap-meta-1"], &[]), Err("the repository Secret mail/repo does not exist")),
        ("Repository while the snapshots exist", pending(Some(SourceFrom::Repository), exported(), &[], &["repo"]), Ok(accepted(SourceFrom::Repository, Some("repo")))),
        ("Repository, not exported", pending(Some(SourceFrom::Repository), plain(), &[], &[]), Err("spec.source.from: ArchiveBackup b was not exported")),
        ("Snapshots, gone: as asked", pending(Some(SourceFrom::Snapshots), exported(), &["snap-meta-1"], &["repo"]), Ok(accepted(SourceFrom::Snapshots, None))),
    ];
    for (case, world, want) in cases {
        match (want, world.next()) {
            (Ok(step), got) => assert_eq!(got, step, "{case}"),
            (Err(start), RestoreStep::Refuse(why)) => assert!(why.starts_with(start), "{case}: {why}"),
            (Err(start), got) => panic!("{case}: want a refusal starting {start:?}, got {got:?}"),
        }
    }
    let mut in_place = pending(None, exported(), &["snap-meta-1"], &["repo"]);
    in_place.spec.target = RestoreTarget { mode: RestoreMode::InPlace, namespace: None, name_suffix: None };
    assert_eq!(in_place.next(), accepted(SourceFrom::Repository, Some("repo")), "InPlace restores from the repository too");
}

#[test]
fn without_a_backup_object_the_request_reads_the_repository() {
    let empty = |secrets: &[&str], reader: Option<source::ReaderObs>| World {
        status: RestoreRequestStatus::default(),
        spec: RestoreRequestSpec { source: repository_source("repo"), ..World::new(RestoreMode::Volumes).spec },
        backups: vec![],
        secrets: secrets.iter().map(ToString::to_string).collect(),
        reader,
        ..World::new(RestoreMode::Volumes)
    };
    let cases: Vec<(&str, World, Result<RestoreStep, &str>)> = vec![
        ("its Secret is missing", empty(&[], None), Err("spec.source.repository.secretName: Secret mail/repo does not exist")),
        ("no reader yet", empty(&["repo"], None), Ok(RestoreStep::StartReader { secret: "repo".into() })),
        ("the reader starts", empty(&["repo"], reader(false, true, None)), Ok(RestoreStep::Wait { what: "waiting for the repository reader pod to start".into(), requeue: Some(Duration::from_secs(2)) })),
        ("the reader runs", empty(&["repo"], reader(true, true, None)), Ok(RestoreStep::ReadRepository)),
        (
            "the repository is locked",
            World { repository_locked: Some("the maintenance Job j (restic forget) runs".into()), ..empty(&["repo"], reader(true, true, None)) },
            Ok(RestoreStep::Wait { what: "waiting: the maintenance Job j (restic forget) runs; the repository is locked".into(), requeue: Some(Duration::from_secs(10)) }),
        ),
        ("the reader failed", empty(&["repo"], reader(false, true, Some("ErrImagePull: no such image"))), Err("the repository reader pod req-repository failed: ErrImagePull")),
        ("the name is another pod's", empty(&["repo"], reader(true, false, None)), Err("Pod mail/req-repository exists and was not made by this request")),
    ];
    for (case, world, want) in cases {
        match (want, world.next()) {
            (Ok(step), got) => assert_eq!(got, step, "{case}"),
            (Err(start), RestoreStep::Refuse(why)) => assert!(why.starts_with(start), "{case}: {why}"),
            (Err(start), got) => panic!("{case}: want a refusal starting {start:?}, got {got:?}"),
        }
    }
    // Once the manifest is recorded, the restore point read from it is accepted, from the
    // repository.
    let found = World { repository_backup: Some(exported_backup()), ..empty(&["repo"], reader(true, true, None)) };
    assert_eq!(found.next(), RestoreStep::Accept { backup: "b".into(), from: SourceFrom::Repository, repository_secret: Some("repo".into()) });
}

#[test]
fn repository_items_are_fetched_into_new_claims() {
    let b = exported_backup();
    let items = restore_items(&spec(by_name("b"), RestoreMode::Volumes), &b, "-r", "req", SourceFrom::Repository).expect("items");
    let sources: Vec<(&str, &DataSource)> = items
        .iter()
        .map(|i| match &i.kind {
            ItemKind::Volume { from, .. } | ItemKind::Sql { from, .. } | ItemKind::Secret { from } => (i.restored.as_str(), from),
        })
        .collect();
    assert_eq!(sources[0], ("key-r", &DataSource::Repository("00aa0000bb".into())), "the Secret copy's snapshot");
    assert_eq!(sources[1], ("master-mailstore-0-r", &DataSource::Repository("01aa0000bb".into())));
    assert_eq!(sources[3], ("meta_restored", &DataSource::Repository("03aa0000bb".into())), "the SQL dump's snapshot");
    let mut no_size = exported_backup();
    if let Some(item) = no_size.status.as_mut().and_then(|s| s.items.get_mut(2)) {
        item.restore_size = None;
    }
    let err = restore_items(&spec(by_name("b"), RestoreMode::Volumes), &no_size, "-r", "req", SourceFrom::Repository).expect_err("no_size");
    assert!(err.contains("no restoreSize of claim meta-1"), "{err}");
    let mut partial = exported_backup();
    if let Some(export) = partial.status.as_mut().and_then(|s| s.export.as_mut()) {
        export.snapshots.retain(|s| s.claim != "content-1");
    }
    let err = restore_items(&spec(by_name("b"), RestoreMode::Volumes), &partial, "-r", "req", SourceFrom::Repository).expect_err("partial");
    assert!(err.contains("no repository snapshot of content s1 content-1"), "{err}");

    // Restoring store s1 (meta-1, content-1) from the repository: each claim is created
    // empty, then filled by its fetch Job; only then is the restore done.
    let restoring = || World {
        status: RestoreRequestStatus { resolved_from: Some(SourceFrom::Repository), ..World::new(RestoreMode::Volumes).status },
        backups: vec![exported_backup()],
        ..World::new(RestoreMode::Volumes)
    };
    let fetch = |claim: &str| repository::fetch_job_name("req", if claim.starts_with("meta") { Component::Metadata } else { Component::Content }, "s1", claim);
    assert_eq!(restoring().next(), RestoreStep::Create(vec![0, 1]));
    let locked = World { repository_locked: Some("the maintenance Job repo-prune-1 (restic prune) runs".into()), ..restoring() };
    assert!(matches!(locked.next(), RestoreStep::Wait { what, .. } if what.contains("repo-prune-1")), "nothing is fetched while a prune holds the lock");
    let unbound = restoring().claim("meta-1-r", false, true).claim("content-1-r", false, true);
    assert_eq!(unbound.next(), RestoreStep::Create(vec![0, 1]), "an unbound claim gets its fetch Job (it binds for the Job's pod)");
    let mut running = restoring().claim("meta-1-r", false, true).claim("content-1-r", true, true);
    running.jobs.insert(fetch("meta-1-r"), JobObs::Succeeded);
    running.jobs.insert(fetch("content-1-r"), JobObs::Running);
    assert!(matches!(running.next(), RestoreStep::Wait { what, .. } if what.contains("fetch Job req-fetch-content-s1-content-1-r")));
    running.jobs.insert(fetch("content-1-r"), JobObs::Failed { message: "Fatal: wrong password".into() });
    assert!(matches!(running.next(), RestoreStep::Fail(why) if why.contains("from the repository failed: Fatal: wrong password")));
    running.jobs.insert(fetch("content-1-r"), JobObs::Succeeded);
    assert_eq!(running.next(), RestoreStep::EnterHooks);
    let taken = restoring().claim("meta-1-r", true, false);
    assert!(matches!(taken.next(), RestoreStep::Fail(why) if why.contains("was not made by this request")), "never overwrite");

    // The master Secret is read back through the reader pod.
    let mut with_master = restoring();
    with_master.spec.include_master = true;
    with_master.spec.stores = vec!["s1".into()];
    let create = |w: &World| match w.next() {
        RestoreStep::Create(indices) => indices,
        other => panic!("want Create, got {other:?}"),
    };
    assert_eq!(with_master.next(), RestoreStep::StartReader { secret: String::new() }, "the Secret waits for the reader");
    with_master.status.repository = Some(crate::api::RepositoryRestore { secret_name: "repo".into(), ..Default::default() });
    assert_eq!(with_master.next(), RestoreStep::StartReader { secret: "repo".into() });
    with_master.reader = reader(true, true, None);
    assert_eq!(create(&with_master), vec![0, 1, 2, 3], "the Secret, the master and store s1");
}

#[test]
fn an_ended_restore_deletes_its_reader() {
    for phase in [RestorePhase::Completed, RestorePhase::Failed] {
        let mut w = World::new(RestoreMode::Volumes);
        w.status.phase = Some(phase);
        w.reader = reader(true, true, None);
        assert_eq!(w.next(), RestoreStep::DeleteReader, "{phase:?}");
        w.reader = reader(true, false, None);
        assert_eq!(w.next(), RestoreStep::Done, "{phase:?}: another pod of that name is left alone");
    }
}

#[test]
fn side_by_side_needs_the_target() {
    let w = World {
        status: RestoreRequestStatus::default(),
        spec: RestoreRequestSpec { target: RestoreTarget { mode: RestoreMode::SideBySide, namespace: None, name_suffix: Some("-r".into()) }, ..World::new(RestoreMode::Volumes).spec },
        target: None,
        ..World::new(RestoreMode::Volumes)
    };
    assert!(matches!(w.next(), RestoreStep::Refuse(why) if why.starts_with("spec.target.mode: SideBySide copies the target StatefulSet mailstore")), "{:?}", w.next());
}
