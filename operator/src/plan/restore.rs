//! The restore as a state machine: resolve the restore point, plan what is restored where,
//! and decide the one next step. Pure: every input is an argument.
//!
//! Never destructive:
//! - `Volumes` and `SideBySide` only create: PVCs named original + suffix from the snapshots,
//!   Secrets named original + suffix, and SQL dumps restored into a NEW database (original +
//!   `databaseSuffix`; the restore Job refuses when that database exists).
//! - `InPlace` first takes a `PreRestore` backup (it must complete), stops the target, sets
//!   each replaced claim's PersistentVolume to `Retain` (recorded in status before the claim
//!   is deleted), recreates each claim under its name from the snapshot, runs the hooks, and
//!   starts the target with its original replicas.
//! - Every object is named deterministically, so re-running a step never makes a second one.
//! - A restore deletes only what it made, and refuses names already taken before it creates
//!   anything ([`ownership`]); `InPlace` recreates each claim with its recorded shape
//!   ([`shape`]).

pub mod completion;
pub mod ownership;
pub mod repository;
pub mod shape;
pub mod source;

use super::backup::JobObs;
use super::claim::ClaimObs as WorkloadClaim;
use super::names::{fit, MAX_LABEL_NAME, MAX_NAME};
use super::validate::{self, FieldError};
use crate::api::{
    ArchiveBackup, BackupPhase, Component, ReplacedClaim, RestoreMode, RestorePhase, RestoreRequest, RestoreRequestSpec,
    RestoreRequestStatus, RestoreSelect, SourceFrom, SqlEngine, TargetRef, VerificationState, WorkloadCopy,
};
pub use completion::completion_message;
use ownership::ObjectObs;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The label on everything a restore creates: the RestoreRequest's name
/// (`kube::restore::RESTORE` is this label).
pub const RESTORE_LABEL: &str = "archivist.dev/restore";

/// The default name suffix: `-r-` and the first 5 letters or digits of the request's uid.
pub fn default_suffix(uid: &str) -> String {
    let short: String = uid.chars().filter(char::is_ascii_alphanumeric).take(5).collect::<String>().to_lowercase();
    format!("-r-{short}")
}

/// The suffix a request uses.
pub fn suffix(spec: &RestoreRequestSpec, uid: &str) -> String {
    spec.target.name_suffix.clone().unwrap_or_else(|| default_suffix(uid))
}

fn phase_of(backup: &ArchiveBackup) -> BackupPhase {
    backup.status.as_ref().and_then(|s| s.phase).unwrap_or(BackupPhase::Pending)
}

fn time_of(backup: &ArchiveBackup) -> Option<DateTime<Utc>> {
    super::retention::RetentionCandidate::try_from(backup).ok().map(|c| c.time)
}

/// Chooses the backup a request restores, or says why it is refused.
pub fn resolve<'a>(spec: &RestoreRequestSpec, namespace: &str, backups: &'a [ArchiveBackup]) -> Result<&'a ArchiveBackup, String> {
    if let Some(target_ns) = spec.target.namespace.as_deref().filter(|ns| *ns != namespace) {
        return Err(format!(
            "spec.target.namespace: a request may only restore into its own namespace ({namespace}), not {target_ns}"
        ));
    }
    if let Some(name) = &spec.source.backup_name {
        let backup = backups
            .iter()
            .find(|b| b.metadata.name.as_deref() == Some(name))
            .ok_or_else(|| format!("spec.source.backupName: ArchiveBackup {name} does not exist in namespace {namespace}"))?;
        return match phase_of(backup) {
            BackupPhase::Completed => Ok(backup),
            phase => Err(format!(
                "spec.source.backupName: ArchiveBackup {name} is {phase:?}, not Completed; only a Completed backup can be restored"
            )),
        };
    }
    let Some(policy) = &spec.source.policy_name else {
        return Err("spec.source: name a backupName, or a policyName with select".into());
    };
    let select = spec.source.select.unwrap_or_default();
    let verified = |b: &&ArchiveBackup| {
        b.status.as_ref().and_then(|s| s.verification.as_ref()).is_some_and(|v| v.state == VerificationState::Passed)
    };
    backups
        .iter()
        .filter(|b| b.spec.policy_name == *policy && phase_of(b) == BackupPhase::Completed)
        .filter(|b| select == RestoreSelect::Latest || verified(b))
        .max_by_key(|b| (time_of(b), b.metadata.name.clone()))
        .ok_or_else(|| match select {
            RestoreSelect::Latest => format!("spec.source.policyName: BackupPolicy {policy} has no Completed backup in namespace {namespace}"),
            RestoreSelect::LatestVerified => format!("spec.source.policyName: BackupPolicy {policy} has no Completed backup whose verification passed"),
        })
}

/// The rules of `archivist validate` for a request, before anything is resolved: its name
/// (short enough for `<request>-mapping`), and every field of its spec
/// ([`validate::validate_restore_request_object`]).
pub fn spec_problems(name: &str, namespace: &str, spec: &RestoreRequestSpec) -> Vec<FieldError> {
    let request = RestoreRequest {
        metadata: ObjectMeta { name: Some(name.to_string()), namespace: Some(namespace.to_string()), ..Default::default() },
        spec: spec.clone(),
        status: None,
    };
    validate::validate_restore_request_object(&request)
}

/// The rules of `archivist validate` that need the policy, checked against the copy of it the
/// resolved backup keeps: the stores exist, and every database the restore creates has a safe
/// name. (`select: LatestVerified` needing a verifying policy is proven by the resolution: the
/// backup found passed its verification.)
pub fn backup_problems(spec: &RestoreRequestSpec, backup: &ArchiveBackup) -> Vec<FieldError> {
    let Some(policy) = backup.status.as_ref().and_then(|s| s.policy_spec.as_ref()) else { return Vec::new() };
    let mut problems = validate::restore_store_problems(spec, policy);
    problems.extend(validate::restored_database_problems(spec, policy));
    problems
}

/// Field errors as one message: `invalid spec: <field>: <why>; <field>: <why>`.
pub fn describe(problems: &[FieldError]) -> String {
    let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
    format!("invalid spec: {}", all.join("; "))
}

/// Where one item's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// The cluster: the item's VolumeSnapshot (volumes and SQL dumps), or the backup's Secret
    /// copy (secrets).
    Cluster(String),
    /// The item's restic snapshot in the repository: a volume's PVC is created empty and a
    /// fetch Job restores the files into it; secrets are read back through the reader pod.
    Repository(String),
}

/// How one item is restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    /// A PVC from a VolumeSnapshot, or from the repository.
    Volume {
        /// The VolumeSnapshot, or the repository snapshot.
        from: DataSource,
        /// The size the new PVC needs.
        size: Option<String>,
    },
    /// An SQL dump: a PVC from the dump's snapshot (`claim`), then a Job (`job`) restoring it
    /// into a new database.
    Sql {
        /// The dump's VolumeSnapshot, or its repository snapshot.
        from: DataSource,
        /// The size the dump PVC needs.
        size: Option<String>,
        /// The PVC the dump is restored into.
        claim: String,
        /// The restore Job.
        job: String,
        /// The engine.
        engine: SqlEngine,
        /// Server host.
        host: String,
        /// Server port.
        port: Option<u16>,
        /// Secret with `username` and `password`.
        credentials_secret: String,
    },
    /// A Secret re-created from the backup's copy (keys `<secret>.<key>`).
    Secret {
        /// The backup's Secret copy, or its repository snapshot.
        from: DataSource,
    },
}

/// One thing a request restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreItem {
    /// The component.
    pub component: Component,
    /// The store; empty for master and secrets.
    pub store: String,
    /// The original PVC, database or Secret.
    pub original: String,
    /// What it is restored as (for `InPlace` volumes: the original name).
    pub restored: String,
    /// How.
    pub kind: ItemKind,
}

impl RestoreItem {
    /// Whether the item is a database restored from an SQL dump (`original` and `restored`
    /// are database names, not PVCs).
    pub fn is_sql(&self) -> bool {
        matches!(self.kind, ItemKind::Sql { .. })
    }
}

/// What a request restores from `backup`: the items of the selected stores (and the master
/// and secrets unless `includeMaster: false`), in the backup's capture order, each from the
/// cluster, or with `from: Repository` from its repository snapshot (`status.export`), into a
/// PVC of the recorded `restoreSize`.
pub fn restore_items(spec: &RestoreRequestSpec, backup: &ArchiveBackup, suffix: &str, request: &str, from: SourceFrom) -> Result<Vec<RestoreItem>, String> {
    let name = backup.metadata.name.clone().unwrap_or_default();
    let status = backup.status.clone().unwrap_or_default();
    let policy = status.policy_spec.clone();
    let backed_up: BTreeSet<&str> = status.items.iter().map(|i| i.store.as_str()).filter(|s| !s.is_empty()).collect();
    for (i, store) in spec.stores.iter().enumerate() {
        if !backed_up.contains(store.as_str()) {
            return Err(format!("spec.stores[{i}]: ArchiveBackup {name} has no snapshot of store {store}"));
        }
    }
    let wanted = |store: &str| spec.stores.is_empty() || spec.stores.iter().any(|s| s == store);
    let in_place = spec.target.mode == RestoreMode::InPlace;
    let renamed = |original: &str| fit(&format!("{original}{suffix}"), MAX_NAME);
    let exported = |component: Component, store: &str, claim: &str| {
        repository::item_snapshot(backup, component, store, claim)
            .map(|id| DataSource::Repository(id.to_string()))
            .ok_or_else(|| format!("ArchiveBackup {name} has no repository snapshot of {} {store} {claim}", super::names::component_word(component)))
    };
    let mut items = Vec::new();
    for item in &status.items {
        let selected = match item.component {
            Component::Master | Component::Secrets => spec.include_master,
            _ => wanted(&item.store),
        };
        if !selected {
            continue;
        }
        if item.component == Component::Secrets {
            let copy = status.secret_copy.clone().ok_or_else(|| format!("ArchiveBackup {name} lists secrets but has no secretCopy"))?;
            let source = match from {
                SourceFrom::Repository => exported(Component::Secrets, "", &copy)?,
                _ => DataSource::Cluster(copy.clone()),
            };
            for secret in policy.iter().flat_map(|p| p.master.iter()).flat_map(|m| m.secrets.iter()) {
                items.push(RestoreItem {
                    component: Component::Secrets,
                    store: String::new(),
                    original: secret.clone(),
                    restored: renamed(secret),
                    kind: ItemKind::Secret { from: source.clone() },
                });
            }
            continue;
        }
        let claim = item.source_claim.clone().unwrap_or_default();
        let data = match from {
            SourceFrom::Repository => {
                if item.restore_size.is_none() {
                    return Err(format!("ArchiveBackup {name} records no restoreSize of claim {claim}: the new PVC cannot be sized"));
                }
                exported(item.component, &item.store, &claim)?
            }
            _ => DataSource::Cluster(
                item.volume_snapshot.clone().ok_or_else(|| format!("ArchiveBackup {name} has an item of {} without a VolumeSnapshot", item.store))?,
            ),
        };
        if item.source_sql.is_some() {
            let store = policy.iter().flat_map(|p| p.stores.iter()).find(|s| s.name == item.store);
            let source = store.and_then(|s| match item.component {
                Component::Metadata => s.metadata.sql.clone(),
                Component::Content => s.content.sql.clone(),
                Component::Index => s.index.as_ref().and_then(|i| i.sql.clone()),
                _ => None,
            });
            let Some(sql) = source else {
                return Err(format!("ArchiveBackup {name}: the SQL source of store {} is not in the backup's policy copy", item.store));
            };
            let target = spec.sql_target.clone();
            let restored = validate::restored_database_name(spec, &sql.database);
            // Never an SQL restore into a name that could break out of an identifier, also for
            // a request accepted before names were checked.
            for (what, database) in [("the backed-up database", &sql.database), ("the new database", &restored)] {
                if let Some(reason) = validate::names::sql_database(database) {
                    return Err(format!("spec.sqlTarget.databaseSuffix: {what} of store {} cannot be restored: {reason}", item.store));
                }
            }
            items.push(RestoreItem {
                component: item.component,
                store: item.store.clone(),
                original: sql.database.clone(),
                restored,
                kind: ItemKind::Sql {
                    from: data,
                    size: item.restore_size.clone(),
                    claim: renamed(&claim),
                    job: fit(&format!("{request}-sql-{}-{}", super::names::component_word(item.component), item.store), MAX_LABEL_NAME),
                    engine: sql.engine,
                    host: target.as_ref().and_then(|t| t.host.clone()).unwrap_or(sql.host),
                    port: target.as_ref().and_then(|t| t.port).or(sql.port),
                    credentials_secret: target.and_then(|t| t.credentials_secret).unwrap_or(sql.credentials_secret),
                },
            });
        } else {
            items.push(RestoreItem {
                component: item.component,
                store: item.store.clone(),
                original: claim.clone(),
                restored: if in_place { claim } else { renamed(&claim) },
                kind: ItemKind::Volume { from: data, size: item.restore_size.clone() },
            });
        }
    }
    if items.is_empty() {
        return Err(format!("ArchiveBackup {name} holds nothing this request selects"));
    }
    Ok(items)
}


/// The name of a post-restore hook's Job.
pub fn hook_job_name(request: &str, hook: &str) -> String {
    fit(&format!("{request}-hook-{hook}"), MAX_LABEL_NAME)
}

/// The name of an in-place restore's pre-restore backup.
pub fn pre_restore_backup_name(request: &str) -> String {
    fit(&format!("{request}-pre-restore"), MAX_LABEL_NAME)
}

/// The name of the mapping ConfigMap.
pub fn mapping_config_map_name(request: &str) -> String {
    fit(&format!("{request}-mapping"), MAX_NAME)
}

/// `restore.csv`: `component,store,original,restored` and one line per item.
pub fn mapping_csv(items: &[RestoreItem]) -> String {
    let mut csv = String::from("component,store,original,restored\n");
    for item in items {
        csv.push_str(&format!("{},{},{},{}\n", super::names::component_word(item.component), item.store, item.original, item.restored));
    }
    csv
}

/// A PVC as the restore sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimObs {
    /// `status.phase == Bound`.
    pub bound: bool,
    /// The bound PersistentVolume.
    pub volume: Option<String>,
    /// The RestoreRequest that created it (label `archivist.dev/restore`).
    pub restored_by: Option<String>,
    /// Being deleted.
    pub deleting: bool,
    /// Its shape, as an in-place restore records it before replacing it ([`shape::record_of`]).
    pub shape: ReplacedClaim,
}

/// Everything [`next`] decides from.
#[derive(Debug, Clone)]
pub struct RestoreObservation<'a> {
    /// The current time.
    pub now: DateTime<Utc>,
    /// The request's name, namespace and uid.
    pub name: &'a str,
    /// The namespace.
    pub namespace: &'a str,
    /// The uid.
    pub uid: &'a str,
    /// The spec the restore follows (the accepted copy once started).
    pub spec: &'a RestoreRequestSpec,
    /// The recorded status.
    pub status: &'a RestoreRequestStatus,
    /// The ArchiveBackups of the namespace.
    pub backups: &'a [ArchiveBackup],
    /// PVCs of the namespace by name.
    pub claims: &'a BTreeMap<String, ClaimObs>,
    /// Reclaim policy of PersistentVolumes by name.
    pub volumes: &'a BTreeMap<String, String>,
    /// The request's Jobs by name (SQL restores and hooks).
    pub jobs: &'a BTreeMap<String, JobObs>,
    /// Names of the Secrets in the namespace.
    pub secrets: &'a BTreeSet<String>,
    /// The target workload: (replicas, live pods), when it exists.
    pub target: Option<(i32, u32)>,
    /// The claim (`archivist.dev/quiesced-by`) on the target as this request sees it: an
    /// in-place restore stops the target only while it holds the claim.
    pub target_claim: &'a WorkloadClaim,
    /// The object named like the SideBySide workload copy (of the target's kind), when one
    /// exists.
    pub copy: Option<ObjectObs>,
    /// The ConfigMap named like the request's mapping ConfigMap, when one exists.
    pub mapping: Option<ObjectObs>,
    /// Names of the VolumeSnapshots in the namespace (`from: Auto` restores from them when
    /// they all exist).
    pub volume_snapshots: &'a BTreeSet<String>,
    /// The pod named like the request's repository reader, when one exists.
    pub reader: Option<source::ReaderObs>,
    /// The restore point the request read from the repository (`status.repository.manifest`).
    pub repository_backup: Option<&'a ArchiveBackup>,
    /// A Job holding the repository's exclusive lock (`restic prune` or `forget` of the same
    /// Secret in the namespace), in words; read only while the request reads the repository.
    pub repository_locked: Option<&'a str>,
}

/// The one next step of a restore.
#[derive(Debug, Clone, PartialEq)]
pub enum RestoreStep {
    /// Nothing to do until something changes (or `requeue` passes).
    Wait {
        /// What is waited for.
        what: String,
        /// When to look again.
        requeue: Option<Duration>,
    },
    /// Refuse the request: phase Failed, nothing created.
    Refuse(String),
    /// The spec breaks a rule of `archivist validate` (the message names each field): phase
    /// Failed with `Ready=False` reason `InvalidSpec`, nothing created.
    Invalid(String),
    /// Record the resolved backup, where its data comes from, the accepted spec and the
    /// suffix; phase Restoring.
    Accept {
        /// The backup.
        backup: String,
        /// `Snapshots` or `Repository`.
        from: SourceFrom,
        /// From the repository: the Secret with its restic environment.
        repository_secret: Option<String>,
    },
    /// Create the pod that reads the repository (`<request>-repository`): restic with the
    /// repository Secret as its environment, running the operator's commands (exec).
    StartReader {
        /// The repository Secret.
        secret: String,
    },
    /// Read the repository's catalog and the chosen restore point's manifest through the
    /// reader pod, and record them (`status.repository`); refused when the repository holds
    /// no such restore point.
    ReadRepository,
    /// Delete the reader pod: the restore ended, or no longer needs it.
    DeleteReader,
    /// InPlace: create the PreRestore backup (name recorded first).
    CreatePreRestoreBackup(String),
    /// InPlace: record the target's replicas before stopping it.
    RecordReplicas(i32),
    /// InPlace: scale the target to 0.
    ScaleToZero,
    /// InPlace: record and set reclaim policy Retain on the claim's volume.
    RetainVolume {
        /// The claim.
        claim: String,
        /// Its PersistentVolume.
        volume: String,
    },
    /// InPlace: record the old claim's shape (`status.replacedClaims`) before it is deleted.
    RecordClaim(ReplacedClaim),
    /// InPlace: delete the old claim (its volume is retained, its shape recorded).
    DeleteClaim(String),
    /// Create these restore PVCs, Secrets and SQL restore Jobs (indices into the items).
    Create(Vec<usize>),
    /// SideBySide: create the copy of the target workload, then record its uid
    /// (`status.workloadCopy`).
    CreateWorkloadCopy,
    /// SideBySide: record the copy this request made (labelled with it and owned by it) whose
    /// uid is not recorded yet (the operator stopped between creating and recording it).
    RecordWorkloadCopy(WorkloadCopy),
    /// Phase RunningHooks.
    EnterHooks,
    /// Create the post-restore hook Job with this index.
    CreateHook(usize),
    /// InPlace: claim the target (`archivist.dev/quiesced-by: RestoreRequest/<ns>/<name>`),
    /// conditional on the resourceVersion read, before recording its replicas and stopping it.
    ClaimWorkload,
    /// InPlace: another run or restore holds the target; wait until it releases it.
    WaitForWorkload {
        /// The holder, as the annotation names it.
        holder: String,
    },
    /// InPlace: scale the target back to the recorded replicas and drop this request's claim.
    ScaleBack(i32),
    /// Write the mapping ConfigMap and phase Completed.
    Complete,
    /// Phase Failed.
    Fail(String),
    /// SideBySide TTL passed: delete the workload copy, with its recorded uid as the delete
    /// precondition.
    DeleteWorkloadCopy(WorkloadCopy),
    /// Nothing left to do.
    Done,
}

impl RestoreStep {
    /// Whether the step writes anything (an object or the status): such a step is decided
    /// again from a fresh read when the cached request was stale.
    pub fn has_side_effect(&self) -> bool {
        !matches!(self, RestoreStep::Wait { .. } | RestoreStep::WaitForWorkload { .. } | RestoreStep::Done)
    }
}

/// Decides the next step of a restore.
pub fn next(obs: &RestoreObservation<'_>) -> RestoreStep {
    let phase = obs.status.phase.unwrap_or(RestorePhase::Pending);
    match phase {
        RestorePhase::Failed | RestorePhase::Completed if obs.reader.as_ref().is_some_and(|r| r.mine) => RestoreStep::DeleteReader,
        RestorePhase::Failed => RestoreStep::Done,
        RestorePhase::Completed => after_completion(obs),
        RestorePhase::Pending => {
            let problems = spec_problems(obs.name, obs.namespace, obs.spec);
            if !problems.is_empty() {
                return RestoreStep::Invalid(describe(&problems));
            }
            let (backup, from, repository_secret) = match source::decide(obs) {
                source::Source::Resolved { backup, from, repository_secret } => (backup, from, repository_secret),
                source::Source::Step(step) => return step,
            };
            let problems = backup_problems(obs.spec, backup);
            if !problems.is_empty() {
                return RestoreStep::Invalid(describe(&problems));
            }
            let sfx = suffix(obs.spec, obs.uid);
            let items = match restore_items(obs.spec, backup, &sfx, obs.name, from) {
                Ok(items) => items,
                Err(why) => return RestoreStep::Refuse(why),
            };
            let copy = target_of(backup).map(|t| ownership::planned_copy(t, &sfx));
            let taken = ownership::taken_names(obs, &items, copy.as_ref());
            if !taken.is_empty() {
                return RestoreStep::Refuse(ownership::describe_taken(&taken));
            }
            if let (RestoreMode::SideBySide, Some(target), None) = (obs.spec.target.mode, target_of(backup), obs.target) {
                return RestoreStep::Refuse(format!(
                    "spec.target.mode: SideBySide copies the target {} {}, which does not exist in namespace {}; restore with mode Volumes",
                    ownership::kind_word(target.kind),
                    target.name,
                    obs.namespace
                ));
            }
            RestoreStep::Accept { backup: backup.metadata.name.clone().unwrap_or_default(), from, repository_secret }
        }
        RestorePhase::Restoring | RestorePhase::RunningHooks => {
            let Some(backup_name) = &obs.status.resolved_backup else { return RestoreStep::Fail("the resolved backup is not recorded".into()) };
            let from = obs.status.resolved_from.unwrap_or(SourceFrom::Snapshots);
            let found = obs.repository_backup.or_else(|| obs.backups.iter().find(|b| b.metadata.name.as_ref() == Some(backup_name)));
            let Some(backup) = found else {
                return RestoreStep::Fail(format!("ArchiveBackup {backup_name} was deleted during the restore"));
            };
            let sfx = obs.status.name_suffix.clone().unwrap_or_else(|| suffix(obs.spec, obs.uid));
            let items = match restore_items(obs.spec, backup, &sfx, obs.name, from) {
                Ok(items) => items,
                Err(why) => return RestoreStep::Fail(why),
            };
            if phase == RestorePhase::Restoring {
                restoring(obs, backup, &sfx, &items)
            } else {
                hooks(obs)
            }
        }
    }
}

/// The target workload of the backup's policy.
fn target_of(backup: &ArchiveBackup) -> Option<&TargetRef> {
    backup.status.as_ref().and_then(|s| s.policy_spec.as_ref()).map(|p| &p.target)
}

fn after_completion(obs: &RestoreObservation<'_>) -> RestoreStep {
    let ttl = obs.spec.ttl_seconds_after_finished.unwrap_or(0);
    if obs.spec.target.mode != RestoreMode::SideBySide || ttl == 0 {
        return RestoreStep::Done;
    }
    // Only the copy whose uid was recorded at creation; an object that took its name since
    // (the copy was deleted and something else created) is never deleted.
    let Some(copy) = ownership::deletable_copy(obs.status.workload_copy.as_ref(), obs.copy.as_ref()) else { return RestoreStep::Done };
    let Some(done) = obs.status.completion_time else { return RestoreStep::Done };
    let expiry = done + chrono::Duration::seconds(i64::from(ttl));
    if obs.now >= expiry {
        RestoreStep::DeleteWorkloadCopy(copy.clone())
    } else {
        RestoreStep::Wait { what: "the side-by-side workload's TTL".into(), requeue: (expiry - obs.now).to_std().ok() }
    }
}

fn job_state<'a>(obs: &'a RestoreObservation<'_>, job: &str) -> Option<&'a JobObs> {
    obs.jobs.get(job)
}

fn restoring(obs: &RestoreObservation<'_>, backup: &ArchiveBackup, sfx: &str, items: &[RestoreItem]) -> RestoreStep {
    let in_place = obs.spec.target.mode == RestoreMode::InPlace;
    if in_place {
        let Some(pre) = &obs.status.pre_restore_backup else {
            return RestoreStep::CreatePreRestoreBackup(pre_restore_backup_name(obs.name));
        };
        match obs.backups.iter().find(|b| b.metadata.name.as_ref() == Some(pre)) {
            None => return RestoreStep::CreatePreRestoreBackup(pre.clone()),
            Some(b) if b.metadata.labels.as_ref().and_then(|l| l.get(RESTORE_LABEL)).map(String::as_str) != Some(obs.name) => {
                return RestoreStep::Fail(format!(
                    "ArchiveBackup {}/{pre} exists and was not made by this request; it is not taken as the pre-restore backup; nothing was changed",
                    obs.namespace
                ));
            }
            Some(b) => match phase_of(b) {
                BackupPhase::Completed => {}
                BackupPhase::Failed => {
                    let why = b.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default();
                    return RestoreStep::Fail(format!("the pre-restore backup {pre} failed ({why}); nothing was changed"));
                }
                phase => return RestoreStep::Wait { what: format!("pre-restore backup {pre} is {phase:?}"), requeue: Some(Duration::from_secs(5)) },
            },
        }
        let Some((replicas, live_pods)) = obs.target else {
            return RestoreStep::Fail("the target workload does not exist; an in-place restore needs it".into());
        };
        let pending_claims = items.iter().any(|i| matches!(i.kind, ItemKind::Volume { .. }) && obs.claims.get(&i.restored).is_none_or(|c| c.restored_by.as_deref() != Some(obs.name)));
        // One quiesce per workload: the target is claimed before its replicas are read (a
        // backup holding it stopped would show 0) and before it is stopped.
        if pending_claims || obs.status.original_replicas.is_none() {
            match obs.target_claim {
                WorkloadClaim::HeldBy(holder) => return RestoreStep::WaitForWorkload { holder: holder.clone() },
                WorkloadClaim::Free => return RestoreStep::ClaimWorkload,
                WorkloadClaim::Mine => {}
            }
        }
        if obs.status.original_replicas.is_none() {
            return RestoreStep::RecordReplicas(replicas);
        }
        if pending_claims {
            if replicas != 0 {
                return RestoreStep::ScaleToZero;
            }
            if live_pods > 0 {
                return RestoreStep::Wait { what: format!("{live_pods} pod(s) of the target still running"), requeue: Some(Duration::from_millis(500)) };
            }
        }
        for item in items.iter().filter(|i| matches!(i.kind, ItemKind::Volume { .. })) {
            let Some(claim) = obs.claims.get(&item.original) else { continue };
            if claim.restored_by.as_deref() == Some(obs.name) {
                continue;
            }
            if claim.deleting {
                return RestoreStep::Wait { what: format!("old claim {} is being deleted", item.original), requeue: Some(Duration::from_millis(500)) };
            }
            if let Some(volume) = &claim.volume {
                let retained = obs.status.retained_volumes.iter().any(|r| r.volume == *volume);
                if !retained || obs.volumes.get(volume).is_some_and(|p| p != "Retain") {
                    return RestoreStep::RetainVolume { claim: item.original.clone(), volume: volume.clone() };
                }
            }
            if !obs.status.replaced_claims.iter().any(|r| r.name == item.original) {
                return RestoreStep::RecordClaim(ReplacedClaim { name: item.original.clone(), ..claim.shape.clone() });
            }
            return RestoreStep::DeleteClaim(item.original.clone());
        }
    }
    let mut create = Vec::new();
    let mut waiting = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match &item.kind {
            ItemKind::Volume { from: DataSource::Repository(_), .. } => match obs.claims.get(&item.restored) {
                None => create.push(index),
                Some(c) if c.restored_by.as_deref() != Some(obs.name) => {
                    return RestoreStep::Fail(format!("PVC {} exists and was not made by this request; nothing is overwritten", item.restored));
                }
                Some(_) => match fetch_state(obs, item, &item.restored) {
                    None => create.push(index),
                    Some(Err(step)) => return step,
                    Some(Ok(Some(what))) => waiting.push(what),
                    Some(Ok(None)) => {}
                },
            },
            ItemKind::Sql { from: DataSource::Repository(_), claim, job, .. } => match obs.claims.get(claim) {
                None => create.push(index),
                Some(c) if c.restored_by.as_deref() != Some(obs.name) => {
                    return RestoreStep::Fail(format!("PVC {claim} exists and was not made by this request; nothing is overwritten"));
                }
                Some(_) => match fetch_state(obs, item, claim) {
                    None => create.push(index),
                    Some(Err(step)) => return step,
                    Some(Ok(Some(what))) => waiting.push(what),
                    Some(Ok(None)) => match job_state(obs, job) {
                        None => create.push(index),
                        Some(JobObs::Running) => waiting.push(format!("SQL restore Job {job}")),
                        Some(JobObs::Failed { message }) => {
                            return RestoreStep::Fail(format!("SQL restore Job {job} into database {} failed: {message}", item.restored))
                        }
                        Some(JobObs::Succeeded) => {}
                    },
                },
            },
            ItemKind::Secret { from: DataSource::Repository(_) } => {
                if !obs.secrets.contains(&item.restored) {
                    match source::reader_ready(obs) {
                        Ok(true) => create.push(index),
                        Ok(false) => waiting.push("the repository reader pod to start".into()),
                        Err(step) => return step,
                    }
                }
            }
            ItemKind::Volume { .. } => match obs.claims.get(&item.restored) {
                None => create.push(index),
                Some(c) if c.restored_by.as_deref() != Some(obs.name) => {
                    return RestoreStep::Fail(format!("PVC {} exists and was not made by this request; nothing is overwritten", item.restored));
                }
                Some(c) if !c.bound => waiting.push(format!("PVC {} to bind", item.restored)),
                Some(_) => {}
            },
            ItemKind::Secret { .. } => {
                if !obs.secrets.contains(&item.restored) {
                    create.push(index);
                }
            }
            ItemKind::Sql { claim, job, .. } => match (obs.claims.get(claim), job_state(obs, job)) {
                (None, _) => create.push(index),
                (Some(c), None) if c.bound => create.push(index),
                (Some(_), None) => waiting.push(format!("PVC {claim} to bind")),
                (_, Some(JobObs::Running)) => waiting.push(format!("SQL restore Job {job}")),
                (_, Some(JobObs::Failed { message })) => {
                    return RestoreStep::Fail(format!("SQL restore Job {job} into database {} failed: {message}", item.restored))
                }
                (_, Some(JobObs::Succeeded)) => {}
            },
        }
    }
    if !create.is_empty() {
        // Fetching or reading while a prune or forget holds the exclusive lock would fail.
        let from_repository = create.iter().any(|&i| {
            matches!(&items[i].kind, ItemKind::Volume { from: DataSource::Repository(_), .. } | ItemKind::Sql { from: DataSource::Repository(_), .. } | ItemKind::Secret { from: DataSource::Repository(_) })
        });
        if let (true, Some(holder)) = (from_repository, obs.repository_locked) {
            return RestoreStep::Wait { what: format!("waiting: {holder}; the repository is locked"), requeue: Some(Duration::from_secs(10)) };
        }
        return RestoreStep::Create(create);
    }
    if !waiting.is_empty() {
        return RestoreStep::Wait { what: format!("waiting for {}", waiting.join(", ")), requeue: Some(Duration::from_secs(2)) };
    }
    if obs.spec.target.mode == RestoreMode::SideBySide {
        let Some(target) = target_of(backup) else { return RestoreStep::Fail(format!("ArchiveBackup {backup_name} keeps no copy of its policy's target", backup_name = backup.metadata.name.clone().unwrap_or_default())) };
        let planned = ownership::planned_copy(target, sfx);
        let Some(copy) = &obs.copy else { return RestoreStep::CreateWorkloadCopy };
        let recorded = obs.status.workload_copy.as_ref().is_some_and(|r| r.uid == copy.uid && r.name == planned.name);
        if !recorded {
            if copy.made_by(obs.name, obs.uid) {
                return RestoreStep::RecordWorkloadCopy(WorkloadCopy { uid: copy.uid.clone(), ..planned });
            }
            return RestoreStep::Fail(format!(
                "{} {}/{} exists and was not made by this request; it is left as it is",
                ownership::kind_word(planned.kind),
                obs.namespace,
                planned.name
            ));
        }
    }
    RestoreStep::EnterHooks
}

/// The fetch Job of a repository item restored into `claim`: `None` when it is not created
/// yet, `Some(Ok(None))` when it succeeded, `Some(Ok(Some(what)))` while it runs, and the
/// failing step when it failed.
fn fetch_state(obs: &RestoreObservation<'_>, item: &RestoreItem, claim: &str) -> Option<Result<Option<String>, RestoreStep>> {
    let job = repository::fetch_job_name(obs.name, item.component, &item.store, claim);
    Some(match obs.jobs.get(&job)? {
        JobObs::Running => Ok(Some(format!("fetch Job {job} (restic restore into PVC {claim})"))),
        JobObs::Failed { message } => Err(RestoreStep::Fail(format!("fetch Job {job} restoring PVC {claim} from the repository failed: {message}"))),
        JobObs::Succeeded => Ok(None),
    })
}

fn hooks(obs: &RestoreObservation<'_>) -> RestoreStep {
    for (index, hook) in obs.spec.post_restore.iter().enumerate() {
        let job = hook_job_name(obs.name, &hook.name);
        match job_state(obs, &job) {
            None => return RestoreStep::CreateHook(index),
            Some(JobObs::Running) => return RestoreStep::Wait { what: format!("post-restore hook {}", hook.name), requeue: Some(Duration::from_secs(2)) },
            Some(JobObs::Failed { message }) => return RestoreStep::Fail(format!("post-restore hook {} failed: {message}", hook.name)),
            Some(JobObs::Succeeded) => {}
        }
    }
    if obs.spec.target.mode == RestoreMode::InPlace {
        if let (Some(original), Some((replicas, _))) = (obs.status.original_replicas, obs.target) {
            if replicas != original || *obs.target_claim == WorkloadClaim::Mine {
                return RestoreStep::ScaleBack(original);
            }
        }
    }
    RestoreStep::Complete
}

#[cfg(test)]
mod tests;
