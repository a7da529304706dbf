//! `BackupPolicy`: what to back up, when, how to quiesce the archive, and how long to keep it.

use super::archive_backup::DrillStatus;
use super::common::{conditions_schema, Condition, SQL_DATABASE_PATTERN};
use chrono::{DateTime, Utc};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A declarative backup policy for one mail archive server workload.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "archivist.dev",
    version = "v1alpha1",
    kind = "BackupPolicy",
    doc = "A declarative backup policy for a mail archive server: what to capture (master, stores), when (schedule), how to quiesce, and how long to keep restore points.",
    namespaced,
    status = "BackupPolicyStatus",
    shortname = "bpol",
    category = "archivist",
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.target.name"}"#,
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Last Backup","type":"string","jsonPath":".status.lastBackup"}"#,
    printcolumn = r#"{"name":"Restore Points","type":"integer","jsonPath":".status.restorePoints"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BackupPolicySpec {
    /// The archive server workload this policy backs up (in the policy's namespace).
    pub target: TargetRef,
    /// When to back up: a 5-field cron expression (minute hour day-of-month month day-of-week)
    /// or one of `@hourly`, `@daily`, `@weekly`, `@monthly`, evaluated in `timeZone`.
    /// Absent: manual backups only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// IANA time zone name (for example `Europe/Istanbul`) for the schedule and for the
    /// retention buckets (hours, days, ISO weeks, months, years). Default `UTC`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// When true, no scheduled backups are started; manual backups still run.
    #[serde(default)]
    pub suspend: bool,
    /// How the archive is made consistent while its volumes are captured.
    #[serde(default)]
    pub quiesce: QuiesceSpec,
    /// The master database (configuration, users) and the Secrets holding its encryption key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<MasterSpec>,
    /// The archive stores; each store's metadata is captured before its content.
    #[serde(default)]
    pub stores: Vec<StoreSpec>,
    /// Whether full-text index volumes are captured. False leaves them out (they are
    /// rebuildable and unencrypted); restores then report `IndexRebuildRequired`. Default true.
    #[serde(default = "default_true")]
    pub include_indexes: bool,
    /// The VolumeSnapshotClass for every snapshot of this policy. Default: the cluster's
    /// default VolumeSnapshotClass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,
    /// Where SQL dumps are written before they are snapshotted (needed when a store uses `sql`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<DumpSpec>,
    /// How many restore points to keep. Every rule absent or 0: nothing is pruned.
    #[serde(default)]
    pub retention: RetentionRules,
    /// Verification of new backups and periodic restore drills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationSpec>,
    /// An encrypted copy of every restore point off the cluster, in a restic repository
    /// (`ArchiveBackup.status.export`). Absent: restore points stay in the cluster only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportSpec>,
    /// The longest a run waits, after the archive was released (phase `Finalizing`), for every
    /// VolumeSnapshot to become `readyToUse`; then the run fails (reason
    /// `SnapshotReadyTimeout`), so a snapshot that is never ready blocks neither later runs nor
    /// retention. Default 3600.
    #[serde(default = "default_snapshot_ready_timeout")]
    #[schemars(range(min = 1))]
    pub snapshot_ready_timeout_seconds: u32,
    /// What happens to this policy's ArchiveBackups when the policy is deleted:
    /// `Retain` (default) keeps them, `Delete` deletes them with their snapshots.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_time_zone() -> String {
    "UTC".to_string()
}

fn default_true() -> bool {
    true
}

fn default_snapshot_ready_timeout() -> u32 {
    3600
}

/// The kind of workload that runs the archive server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TargetKind {
    /// An `apps/v1` StatefulSet.
    StatefulSet,
    /// An `apps/v1` Deployment.
    Deployment,
}

/// A reference to the archive server workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// `StatefulSet` or `Deployment`.
    pub kind: TargetKind,
    /// The workload's name, in the policy's namespace.
    pub name: String,
}

/// How the archive is quiesced for a consistent capture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum QuiesceMode {
    /// Run the `freeze` hook on every ready pod, capture, then run the `thaw` hook.
    Freeze,
    /// Scale the workload to 0, capture, scale back to the remembered replicas (default).
    #[default]
    Stop,
    /// Capture while running (crash-consistent; restore with journal replay).
    None,
}

/// Quiescing settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuiesceSpec {
    /// `Freeze`, `Stop` (default) or `None`.
    #[serde(default)]
    pub mode: QuiesceMode,
    /// The hook that pauses the archive (required for `Freeze`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<Hook>,
    /// The hook that resumes the archive (required for `Freeze`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thaw: Option<Hook>,
    /// The longest the archive may stay frozen or stopped; then it is released and the run
    /// fails. Default 60.
    #[serde(default = "default_quiesce_timeout")]
    pub timeout_seconds: u32,
}

fn default_quiesce_timeout() -> u32 {
    60
}

impl Default for QuiesceSpec {
    fn default() -> Self {
        Self { mode: QuiesceMode::Stop, freeze: None, thaw: None, timeout_seconds: default_quiesce_timeout() }
    }
}

/// A freeze or thaw hook: exactly one of `exec` or `http`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    /// Run a command in a container of each pod (through the Kubernetes exec API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecHook>,
    /// Send an HTTP request to each pod's IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpHook>,
}

/// A command run in a container of each target pod; exit status 0 means success.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecHook {
    /// The container to run in. Default: the pod's first container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The command and its arguments (not run in a shell unless you call one).
    pub command: Vec<String>,
}

/// The URL scheme of an HTTP hook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HttpScheme {
    /// Plain HTTP (default).
    #[default]
    HTTP,
    /// HTTPS: the server's certificate must chain to `caSecret`'s certificates (or to the
    /// system's trusted roots) and carry `serverName` (default: the pod's IP). There is no
    /// unverified mode.
    HTTPS,
}

/// An HTTP request sent to each target pod's IP; a 2xx answer means success.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpHook {
    /// The pod's port (1-65535).
    pub port: u16,
    /// The request path. Default `/`.
    #[serde(default = "default_http_path")]
    pub path: String,
    /// The request method. Default `POST`.
    #[serde(default = "default_http_method")]
    pub method: String,
    /// `HTTP` (default) or `HTTPS`.
    #[serde(default)]
    pub scheme: HttpScheme,
    /// `HTTPS` only: a Secret in the policy's namespace whose key `ca.crt` holds the PEM
    /// certificate(s) the server's certificate must chain to. Absent: the system's trusted
    /// roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret: Option<String>,
    /// `HTTPS` only: the DNS name or IP address the server's certificate must carry (also
    /// sent as SNI), such as `mailstore-0.mailstore.mail.svc`. Default: the pod's IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

fn default_http_path() -> String {
    "/".to_string()
}

fn default_http_method() -> String {
    "POST".to_string()
}

/// The master database and its secrets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MasterSpec {
    /// PVC names of the master database. For a StatefulSet target, a volumeClaimTemplate name
    /// means the PVC `<template>-<statefulset>-<ordinal>` of every replica.
    #[serde(default)]
    pub volume_claims: Vec<String>,
    /// Secrets copied into the backup (encryption keys such as `MailStoreMaster.key`,
    /// certificates). Their data is never logged.
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// One archive store: metadata, content and an optional full-text index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreSpec {
    /// The store's name: a DNS label, unique in the policy.
    pub name: String,
    /// Folder information and message metadata. Captured before `content`. Required unless
    /// `volumeClaims` holds the whole store.
    #[serde(default, skip_serializing_if = "DataSource::is_empty")]
    pub metadata: DataSource,
    /// Message headers and bodies. Captured after `metadata`. Required unless `volumeClaims`
    /// holds the whole store.
    #[serde(default, skip_serializing_if = "DataSource::is_empty")]
    pub content: DataSource,
    /// The full-text index (rebuildable); captured after content when `includeIndexes` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<DataSource>,
    /// A one-volume store (a MailStore standard store keeps metadata, content and index in one
    /// folder): PVC names holding the whole store, captured with the content, after every
    /// metadata item of the policy. Mutually exclusive with `metadata`, `content` and `index`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_claims: Vec<String>,
}

/// Where a part of a store lives: exactly one of `volumeClaims` or `sql`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataSource {
    /// PVC names (volumeClaimTemplate names expand per replica, as for `master`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_claims: Vec<String>,
    /// An SQL database, dumped by a Job into a fresh PVC that is then snapshotted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlSource>,
}

impl DataSource {
    /// Whether it names nothing (no claim, no database).
    pub fn is_empty(&self) -> bool {
        self.volume_claims.is_empty() && self.sql.is_none()
    }
}

/// The SQL engine of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SqlEngine {
    /// PostgreSQL, dumped with `pg_dump`.
    PostgreSQL,
    /// MySQL or MariaDB, dumped with `mysqldump` / `mariadb-dump`.
    MySQL,
}

/// An SQL database holding a part of a store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SqlSource {
    /// `PostgreSQL` or `MySQL` (also MariaDB).
    pub engine: SqlEngine,
    /// The database server's host name or IP address.
    pub host: String,
    /// The server's port. Default: 5432 for PostgreSQL, 3306 for MySQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The database to dump: an ASCII letter or `_`, then letters, digits and `_`, at most 63
    /// characters (`^[A-Za-z_][A-Za-z0-9_]{0,62}$`), so that no SQL statement can be built
    /// from it.
    #[schemars(pattern(SQL_DATABASE_PATTERN))]
    pub database: String,
    /// A Secret in the policy's namespace with keys `username` and `password`; passed to the
    /// dump Job through its environment, never on a command line.
    pub credentials_secret: String,
}

/// Where SQL dumps are written before they are snapshotted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DumpSpec {
    /// The StorageClass of the dump PVC. Default: the cluster's default StorageClass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// The dump PVC's size, a Kubernetes quantity. Default `10Gi`.
    #[serde(default = "default_dump_size")]
    pub size: String,
    /// The container image of the dump Job (it must hold `pg_dump` or `mysqldump`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

fn default_dump_size() -> String {
    "10Gi".to_string()
}

/// Retention rules: how many restore points to keep. Absent and 0 mean the same: the rule
/// keeps nothing. If every rule is absent or 0, nothing is pruned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionRules {
    /// Keep the n newest Completed backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// Keep the newest Completed backup of each of the n newest calendar hours that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest Completed backup of each of the n newest calendar days that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u32>,
    /// Keep the newest Completed backup of each of the n newest ISO weeks (Monday start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest Completed backup of each of the n newest calendar months.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest Completed backup of each of the n newest calendar years.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_yearly: Option<u32>,
    /// Keep the n newest Completed backups whose verification `Passed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_verified: Option<u32>,
    /// Keep the n newest Failed backups (for diagnosis); older Failed ones are pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_failed: Option<u32>,
}

/// Verification of backups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSpec {
    /// Run the verify Job on every new backup. Default false.
    #[serde(default)]
    pub after_backup: bool,
    /// The verify command; it runs with the restored copies mounted under
    /// `/verify/<component>/<store>/<n>`; exit status 0 means the backup is good.
    #[serde(default)]
    pub command: Vec<String>,
    /// The verify Job's container image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Optional cron expression (as `schedule`, in the policy's `timeZone`) for a periodic
    /// restore drill: the newest settled Completed backup is restored side by side into a
    /// temporary copy of the archive server, `drillProbe` checks the copy, and everything the
    /// drill restored is removed again. A passed drill marks the backup's verification
    /// `Passed` (reason `Drill`), so `keepVerified` and `select: LatestVerified` count drills.
    /// The annotation `archivist.dev/drill-now` (any new value) starts a drill at once. A due
    /// drill first waits for a Completed run that is still settling (releasing, exporting),
    /// up to `timeoutSeconds` after that run completed, and drills it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill_schedule: Option<String>,
    /// How a drill checks the restored copy once its pods are Ready: exactly one of `exec`,
    /// `http` or `tcp`. Absent: the copy's pods becoming Ready (their own readiness probes)
    /// is the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill_probe: Option<DrillProbe>,
    /// The longest verification may take, from entering phase `Verifying` (restoring the
    /// scratch volumes included); the verify Job gets it as `activeDeadlineSeconds`. When it
    /// passes, verification fails: the run is still Completed (a restore point), with
    /// `verification.state: Failed`, condition `Verified=False` reason `Timeout` and a
    /// `VerificationFailed` Event. Default 1800.
    #[serde(default = "default_verification_timeout")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: u32,
}

fn default_verification_timeout() -> u32 {
    1800
}

impl Default for VerificationSpec {
    fn default() -> Self {
        Self { after_backup: false, command: Vec::new(), image: None, drill_schedule: None, drill_probe: None, timeout_seconds: default_verification_timeout() }
    }
}

/// The check a restore drill runs against the restored copy: exactly one of `exec`, `http`
/// or `tcp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrillProbe {
    /// Run a command in a container of the copy's first Ready pod (through the Kubernetes
    /// exec API); exit status 0 passes. The first 4 KiB of its stdout are the drill's
    /// `output`, with the values of the restored Secrets replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecHook>,
    /// Send `GET <path>` to the copy's pod IP; a 2xx answer passes. The first 4 KiB of the
    /// answer are the drill's `output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbe>,
    /// Open a TCP connection to the copy's pod IP; a connection passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpProbe>,
    /// The longest the probe may take; longer fails the drill. Default 60.
    #[serde(default = "default_probe_timeout")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: u32,
}

fn default_probe_timeout() -> u32 {
    60
}

/// An HTTP GET a drill sends to the restored copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpProbe {
    /// The pod's port (1-65535).
    pub port: u16,
    /// The request path: starts with `/`, no spaces or control characters. Default `/`.
    #[serde(default = "default_http_path")]
    pub path: String,
}

/// A TCP connection a drill opens to the restored copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TcpProbe {
    /// The pod's port (1-65535).
    pub port: u16,
}

/// The image of the export Job when `export.image` is not set.
pub const DEFAULT_EXPORT_IMAGE: &str = "restic/restic:0.17.3";

/// Exporting every restore point to a restic repository.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportSpec {
    /// The Secret, in the policy's namespace, whose keys are restic's own environment
    /// variables: `RESTIC_REPOSITORY` and `RESTIC_PASSWORD`, plus whatever the backend needs
    /// (`AWS_ACCESS_KEY_ID`, ...), as with VolSync and K8up. The export Job gets them through
    /// `envFrom` only: never in its arguments, a log line, an Event or a status.
    pub repository_secret: String,
    /// The mover image; it needs `restic` and `sh` on its PATH. Default
    /// `restic/restic:0.17.3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// When a run is exported: `Completed` (as soon as it is a restore point) or `Verified`
    /// (only once its verification passed; a run whose verification failed is not exported,
    /// `Exported=False` reason `NotVerified`). Default: `Verified` when
    /// `verification.afterBackup` is on, else `Completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<ExportAfter>,
    /// Cron expression (in `timeZone`) of the repository's maintenance, default weekly
    /// (`0 5 * * 0`): a Job runs `restic prune`, which frees the data of forgotten snapshots.
    /// It waits while a run of the policy exports or forgets; an export waits while it runs
    /// (`restic prune` holds the repository's exclusive lock). Policies sharing a repository
    /// Secret (and schedule) share the Job. `status.prune` reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_schedule: Option<String>,
    /// Above 0: after each export, `restic check --read-data-subset=N%` reads back that
    /// share of the repository's data, and a mismatch fails the export. Default 0.
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub check_read_data_percent: u8,
    /// The StorageClass of the scratch PVCs the export restores each snapshot into; default:
    /// the cluster's default class. Its driver must be the snapshots' driver. A class whose
    /// driver serves a snapshot as a read-only volume without copying it (ceph-csi CephFS with
    /// `backingSnapshot: "true"`; the local cluster's `archivist-local-shallow`), together with
    /// `accessModes: [ReadOnlyMany]`, spares each export a full copy of every store, as with
    /// VolSync's `storageClassName` and `accessModes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// The access modes of the scratch PVCs: `ReadWriteOnce` (default), `ReadOnlyMany`,
    /// `ReadWriteMany` or `ReadWriteOncePod`. The export Job mounts them read-only either way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_modes: Vec<String>,
}

/// When a run is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ExportAfter {
    /// Once the run is Completed (a restore point).
    Completed,
    /// Once the run's verification passed.
    Verified,
}

/// What happens to a policy's backups when the policy is deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the ArchiveBackups and their snapshots (default).
    #[default]
    Retain,
    /// Delete the ArchiveBackups, and with them their snapshots.
    Delete,
}

/// The observed state of a BackupPolicy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupPolicyStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (spec valid and target found) and `Suspended`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// When the last scheduled backup was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<DateTime<Utc>>,
    /// When the next scheduled backup is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<DateTime<Utc>>,
    /// The newest ArchiveBackup of this policy, whatever its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<String>,
    /// The newest Completed ArchiveBackup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_backup: Option<String>,
    /// The newest ArchiveBackup whose verification passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified_backup: Option<String>,
    /// How many Completed ArchiveBackups (restore points) the policy has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_points: Option<u32>,
    /// The value of the `archivist.dev/backup-now` annotation that was last acted upon; a
    /// different value requests another manual backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_now_request: Option<String>,
    /// The newest maintenance of the export's repository (`export.pruneSchedule`: `restic
    /// prune`), and how it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<PruneStatus>,
    /// When the next maintenance of the export's repository is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_prune_time: Option<DateTime<Utc>>,
    /// The newest restore drill: `Running` while it runs, then how it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drill: Option<DrillStatus>,
    /// The last 10 finished drills, newest first (`archivist drill report`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_drills: Vec<DrillStatus>,
    /// The scheduled time of the last drill started or skipped (`verification.drillSchedule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drill_schedule_time: Option<DateTime<Utc>>,
    /// When the next scheduled drill is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_drill_time: Option<DateTime<Utc>>,
    /// The value of the `archivist.dev/drill-now` annotation that was last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drill_now_request: Option<String>,
}

/// One maintenance of an export's repository: a Job running `restic prune`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PruneStatus {
    /// The Job (`<repositorySecret>-prune-<yyyymmddhhmm>`, one per repository Secret and
    /// scheduled time).
    pub job: String,
    /// The scheduled time it ran for.
    pub scheduled_at: DateTime<Utc>,
    /// `Running`, `Succeeded` or `Failed`.
    pub state: PruneState,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed (restic's last words, with the repository Secret's values replaced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How a repository maintenance is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PruneState {
    /// The Job runs.
    Running,
    /// `restic prune` succeeded.
    Succeeded,
    /// It failed; the next scheduled time tries again.
    Failed,
}
