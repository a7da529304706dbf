//! The `archivist.dev/v1alpha1` API: the four custom resource kinds of `api.md` as Rust types.
//!
//! No I/O here: these types are shared by the pure `plan` module, the controllers and the CLI.
//! The CRDs in `crds/` are generated from them (`archivist crds`).

pub mod archive_backup;
pub mod backup_policy;
pub mod cluster_retention_policy;
pub mod common;
pub mod restore_request;

pub use archive_backup::{
    ArchiveBackup, ArchiveBackupSpec, ArchiveBackupStatus, BackupPhase, BackupReason,
    CapturedItem, Component, DrillState, DrillStatus, ExportState, ExportStatus, ExportedSnapshot, QuiesceStatus, VerificationReason, VerificationState, VerificationStatus,
};
pub use backup_policy::{
    BackupPolicy, BackupPolicySpec, BackupPolicyStatus, DataSource, DeletionPolicy, DrillProbe, DumpSpec, ExportAfter, ExportSpec, DEFAULT_EXPORT_IMAGE,
    ExecHook, Hook, HttpHook, HttpProbe, HttpScheme, MasterSpec, PruneState, PruneStatus, QuiesceMode, QuiesceSpec, RetentionRules, SqlEngine,
    SqlSource, StoreSpec, TargetKind, TcpProbe, TargetRef, VerificationSpec,
};
pub use cluster_retention_policy::{
    ClusterRetentionPolicy, ClusterRetentionPolicySpec, ClusterRetentionPolicyStatus,
};
pub use common::{
    Condition, ConditionStatus, LabelSelector, LabelSelectorRequirement, DATABASE_SUFFIX_PATTERN,
    DNS_LABEL_PATTERN, NAME_SUFFIX_PATTERN, SQL_DATABASE_PATTERN,
};
pub use restore_request::{
    PostRestoreJob, RestoreMapping, RestoreMode, RestorePhase, RestoreRequest, RestoreRequestSpec,
    ReplacedClaim, RestoreRequestStatus, RestoreSelect, RetainedVolume, RestoreSource, RestoreTarget, SqlTarget,
    RepositoryRestore, RepositorySource, SourceFrom, WorkloadCopy,
};

/// The API group of every Archivist kind.
pub const GROUP: &str = "archivist.dev";
/// The API version of every Archivist kind.
pub const VERSION: &str = "v1alpha1";
