//! The rules of a RestoreRequest.

use super::archive_backup::{backup_name_problem, policy_name_problem};
use super::names::{self, DNS1123_SUBDOMAIN_MAX};
use super::{check_metadata, FieldError, NameRules, Problems};
use crate::api::{BackupPolicySpec, RestoreMode, RestoreRequest, RestoreRequestSpec, RestoreSelect, SourceFrom, SqlTarget};

/// The longest RestoreRequest name: its mapping ConfigMap `<request>-mapping` must stay a
/// DNS-1123 subdomain (at most 253 characters).
pub const RESTORE_REQUEST_NAME_MAX: usize = DNS1123_SUBDOMAIN_MAX - "-mapping".len();

/// Checks a whole RestoreRequest: `metadata`, [`validate_restore_request`], and, when the
/// manifest names its namespace, that an `InPlace` restore does not target another namespace
/// (it replaces the volumes of the workload the backup was taken from, which lives in the
/// request's own namespace). Without `metadata.namespace` that comparison is left to the
/// operator.
pub fn validate_restore_request_object(request: &RestoreRequest) -> Vec<FieldError> {
    let mut problems = Problems::default();
    check_metadata(
        &mut problems,
        &request.metadata,
        &NameRules {
            max_len: RESTORE_REQUEST_NAME_MAX,
            why: "its mapping ConfigMap <request>-mapping must be a DNS-1123 subdomain",
        },
    );
    let target = &request.spec.target;
    if let (RestoreMode::InPlace, Some(own), Some(other)) =
        (target.mode, &request.metadata.namespace, &target.namespace)
    {
        if own != other {
            problems.push(
                "spec.target.namespace",
                format!("{other:?} differs from the request's namespace {own:?}: an InPlace restore replaces the volumes of its own namespace"),
            );
        }
    }
    let mut all = problems.into_vec();
    all.extend(validate_restore_request(&request.spec));
    all
}

/// Checks a RestoreRequest spec; returns every problem found, each naming its field.
///
/// Decisions where the API is silent: `nameSuffix` may hold only lowercase letters, digits
/// and `-` and must end with a letter or digit (restored PVC and workload names are the
/// original plus the suffix); an empty suffix is refused except for `InPlace` (restored objects
/// would collide with the originals); `ttlSecondsAfterFinished` above 0 is refused outside
/// `SideBySide` (it would do nothing); `sqlTarget.databaseSuffix` may hold only letters,
/// digits and `_` so the new database name needs no quoting in PostgreSQL or MySQL.
pub fn validate_restore_request(spec: &RestoreRequestSpec) -> Vec<FieldError> {
    let mut problems = Problems::default();
    let source = &spec.source;
    match (&source.backup_name, &source.policy_name) {
        (None, None) => problems.push("spec.source", "needs backupName or policyName, has neither"),
        (Some(_), Some(_)) => problems.push("spec.source", "needs exactly one of backupName or policyName, has both"),
        (Some(backup), None) => {
            problems.check("spec.source.backupName", backup_name_problem(backup));
            if source.select.is_some() {
                problems.push("spec.source.select", "applies only with policyName");
            }
        }
        (None, Some(policy)) => problems.check("spec.source.policyName", policy_name_problem(policy)),
    }
    check_repository_source(&mut problems, spec);
    if let Some(namespace) = &spec.target.namespace {
        problems.check("spec.target.namespace", names::dns1123_label(namespace));
    }
    if let Some(suffix) = &spec.target.name_suffix {
        problems.check("spec.target.nameSuffix", name_suffix_problem(suffix, spec.target.mode));
    }
    for (i, store) in spec.stores.iter().enumerate() {
        match spec.stores[..i].iter().position(|s| s == store) {
            Some(first) => problems.push(format!("spec.stores[{i}]"), format!("{store:?} is already listed as spec.stores[{first}]")),
            None => problems.check(format!("spec.stores[{i}]"), names::dns1123_label(store)),
        }
    }
    if let Some(sql) = &spec.sql_target {
        check_sql_target(&mut problems, sql);
    }
    for (i, job) in spec.post_restore.iter().enumerate() {
        let field = format!("spec.postRestore[{i}]");
        match spec.post_restore[..i].iter().position(|j| j.name == job.name) {
            Some(first) => problems.push(
                format!("{field}.name"),
                format!("{:?} is already the name of spec.postRestore[{first}]", job.name),
            ),
            None => problems.check(format!("{field}.name"), names::dns1123_label(&job.name)),
        }
        if job.image.trim().is_empty() {
            problems.push(format!("{field}.image"), "is empty");
        }
        problems.command(&format!("{field}.command"), &job.command);
    }
    if let Some(ttl) = spec.ttl_seconds_after_finished.filter(|ttl| *ttl > 0) {
        if spec.target.mode != RestoreMode::SideBySide {
            problems.push(
                "spec.ttlSecondsAfterFinished",
                format!("{ttl} applies only to target.mode SideBySide (restored volumes are never removed)"),
            );
        }
    }
    problems.into_vec()
}

/// `source.from` and `source.repository`: the repository's Secret and namespace are names,
/// its image is not blank, a repository is of no use with `from: Snapshots`, and an in-place
/// restore from a repository is refused (not supported: it replaces the target's claims,
/// which needs the snapshots).
fn check_repository_source(problems: &mut Problems, spec: &RestoreRequestSpec) {
    let from = spec.source.from.unwrap_or_default();
    if let Some(repository) = &spec.source.repository {
        problems.check("spec.source.repository.secretName", names::dns1123_subdomain(&repository.secret_name));
        if let Some(namespace) = &repository.namespace {
            problems.check("spec.source.repository.namespace", names::dns1123_label(namespace));
        }
        if repository.image.as_deref().is_some_and(|i| i.trim().is_empty()) {
            problems.push("spec.source.repository.image", "must not be empty: leave it out for the default image");
        }
        if from == SourceFrom::Snapshots {
            problems.push("spec.source.repository", "applies only with from: Repository or Auto (from: Snapshots never reads a repository)");
        }
    }
}

/// Checks a RestoreRequest against the BackupPolicy its `source.policyName` names, when that
/// policy is known (for example both are in the manifests given to `archivist validate`):
/// [`restore_store_problems`], [`restored_database_problems`], and `select: LatestVerified`
/// needs a policy that verifies its backups (see [`super::backup_policy::verifies_backups`]).
pub fn validate_restore_against_policy(spec: &RestoreRequestSpec, policy: &BackupPolicySpec) -> Vec<FieldError> {
    let mut all = restore_store_problems(spec, policy);
    let policy_name = spec.source.policy_name.as_deref().unwrap_or_default();
    let verifies = super::backup_policy::verifies_backups(policy.verification.as_ref());
    if spec.source.select == Some(RestoreSelect::LatestVerified) && !verifies {
        all.push(FieldError::new(
            "spec.source.select",
            format!("LatestVerified never finds a backup: BackupPolicy {policy_name} verifies none (no verification.afterBackup or drillSchedule)"),
        ));
    }
    all.extend(restored_database_problems(spec, policy));
    all
}

/// Every store in `stores` must be a store of `policy` (the policy a request names, or the
/// copy of it kept in the backup it restores).
pub fn restore_store_problems(spec: &RestoreRequestSpec, policy: &BackupPolicySpec) -> Vec<FieldError> {
    let mut problems = Problems::default();
    let whose = spec.source.policy_name.as_ref().map_or_else(|| "the backup's policy".to_string(), |p| format!("BackupPolicy {p}"));
    let known: Vec<&str> = policy.stores.iter().map(|s| s.name.as_str()).collect();
    for (i, store) in spec.stores.iter().enumerate() {
        if !known.contains(&store.as_str()) {
            problems.push(
                format!("spec.stores[{i}]"),
                format!("{whose} has no store {store:?} (its stores: {})", known.join(", ")),
            );
        }
    }
    problems.into_vec()
}

/// The name of the database a restore creates from `database`: `database` plus
/// `sqlTarget.databaseSuffix` (default `_restored`).
pub fn restored_database_name(spec: &RestoreRequestSpec, database: &str) -> String {
    let suffix = spec.sql_target.as_ref().map_or(DEFAULT_DATABASE_SUFFIX, |t| t.database_suffix.as_str());
    format!("{database}{suffix}")
}

/// The suffix of restored databases when the request has no `sqlTarget`.
pub const DEFAULT_DATABASE_SUFFIX: &str = "_restored";

/// Every database the request would create from `policy`'s SQL stores (the stores it
/// restores) must be a safe name ([`names::sql_database`]): the suffix is checked on its own
/// by [`validate_restore_request`], here the whole name (its length, and a source database
/// recorded before names were checked).
pub fn restored_database_problems(spec: &RestoreRequestSpec, policy: &BackupPolicySpec) -> Vec<FieldError> {
    let mut problems = Problems::default();
    let selected = |store: &str| spec.stores.is_empty() || spec.stores.iter().any(|s| s == store);
    for (i, store) in policy.stores.iter().enumerate().filter(|(_, s)| selected(&s.name)) {
        let parts = [("metadata", Some(&store.metadata)), ("content", Some(&store.content)), ("index", store.index.as_ref())];
        for (part, source) in parts {
            let Some(sql) = source.and_then(|s| s.sql.as_ref()) else { continue };
            if let Some(reason) = names::sql_database(&sql.database) {
                problems.push(
                    "spec.source",
                    format!("the backed-up database of store {} ({part}, policy field spec.stores[{i}].{part}.sql.database) cannot be restored by name: {reason}", store.name),
                );
                continue;
            }
            let restored = restored_database_name(spec, &sql.database);
            if let Some(reason) = names::sql_database(&restored) {
                problems.push(
                    "spec.sqlTarget.databaseSuffix",
                    format!("the new database for {} of store {} ({part}) would be {restored:?}: {reason}", sql.database, store.name),
                );
            }
        }
    }
    problems.into_vec()
}

fn name_suffix_problem(suffix: &str, mode: RestoreMode) -> Option<String> {
    if suffix.is_empty() {
        return (mode != RestoreMode::InPlace)
            .then(|| "is empty, so restored objects would get the names of the originals".to_string());
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    (!suffix.chars().all(allowed) || !suffix.ends_with(|c: char| c.is_ascii_alphanumeric())).then(|| {
        format!("{suffix:?} may only hold lowercase letters, digits and '-', and must end with a letter or digit (it is appended to PVC and workload names)")
    })
}

fn check_sql_target(problems: &mut Problems, sql: &SqlTarget) {
    if let Some(host) = &sql.host {
        problems.check("spec.sqlTarget.host", names::host(host));
    }
    if sql.port == Some(0) {
        problems.push("spec.sqlTarget.port", "must be between 1 and 65535");
    }
    if let Some(secret) = &sql.credentials_secret {
        problems.check("spec.sqlTarget.credentialsSecret", names::dns1123_subdomain(secret));
    }
    if sql.database_suffix.is_empty() {
        problems.push("spec.sqlTarget.databaseSuffix", "is empty, so the restore would write into the original database");
    } else {
        problems.check("spec.sqlTarget.databaseSuffix", names::sql_identifier_part(&sql.database_suffix));
    }
}

#[cfg(test)]
mod tests;
