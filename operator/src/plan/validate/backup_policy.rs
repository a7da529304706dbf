//! The rules of a BackupPolicy.

use super::names::{self, LABEL_VALUE_MAX};
use crate::plan::policy::drill::DATABASE_SUFFIX_LEN;
use super::{check_metadata, schedule_problem, time_zone_problem, FieldError, NameRules, Problems};
use crate::api::{
    DrillProbe, HttpScheme,
    ExportAfter, ExportSpec,
    BackupPolicy, BackupPolicySpec, DataSource, Hook, QuiesceMode, QuiesceSpec, RetentionRules,
    SqlSource, VerificationSpec,
};

/// The longest BackupPolicy name: its scheduled backups are named `<policy>-<yyyymmddhhmmss>`
/// and that name is the value of the `archivist.dev/backup` label (at most 63 characters).
pub const POLICY_NAME_MAX: usize = LABEL_VALUE_MAX - "-yyyymmddhhmmss".len();

/// The HTTP methods a freeze or thaw hook may use.
const HTTP_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Checks a whole BackupPolicy: `metadata` (a DNS-1123 name of at most [`POLICY_NAME_MAX`]
/// characters) and [`validate_backup_policy`].
pub fn validate_backup_policy_object(policy: &BackupPolicy) -> Vec<FieldError> {
    let mut problems = Problems::default();
    check_metadata(
        &mut problems,
        &policy.metadata,
        &NameRules {
            max_len: POLICY_NAME_MAX,
            why: "its scheduled backups are named <policy>-<yyyymmddhhmmss>, a label value of at most 63 characters",
        },
    );
    let mut all = problems.into_vec();
    all.extend(validate_backup_policy(&policy.spec));
    all
}

/// Checks a BackupPolicy spec; returns every problem found, each naming its field.
///
/// Decisions where the API is silent:
/// - hooks set with `quiesce.mode` `Stop` or `None` are reported (they would be ignored);
/// - a PVC may be captured only once per policy (master, metadata, content and index together);
/// - a store is either split (`metadata` and `content`, optionally `index`) or one-volume
///   (`volumeClaims`), never both: the message says which parts to drop;
/// - with verification on (`afterBackup` or `drillSchedule`; see [`verifies_backups`]) and any retention rule set,
///   `keepVerified` must be at least 1: the retention rules alone could otherwise prune the last
///   verified restore point before a newer one is verified, which Archivist promises never to do;
/// - retention that would prune every restore point (only `keepFailed`, or only `keepVerified`
///   with nothing ever verified) is reported;
/// - every rule 0 with verification on is reported: nothing would ever be pruned;
/// - with drills as the only verification, `keepVerified` alone is reported: a new backup
///   would be pruned before a drill could verify it;
/// - with drills (`drillSchedule`, `drillProbe`), an SQL database name leaves room for the
///   drill's suffix (`_d<yyyymmddhhmmss>`) within 63 characters.
pub fn validate_backup_policy(spec: &BackupPolicySpec) -> Vec<FieldError> {
    let mut problems = Problems::default();
    problems.check("spec.target.name", names::dns1123_subdomain(&spec.target.name));
    problems.check("spec.timeZone", time_zone_problem(&spec.time_zone));
    if let Some(schedule) = &spec.schedule {
        problems.check("spec.schedule", schedule_problem(schedule, &spec.time_zone));
    }
    check_quiesce(&mut problems, &spec.quiesce);
    check_sources(&mut problems, spec);
    if let Some(class) = &spec.volume_snapshot_class_name {
        problems.check("spec.volumeSnapshotClassName", names::dns1123_subdomain(class));
    }
    if let Some(verification) = &spec.verification {
        check_verification(&mut problems, verification, spec);
    }
    check_retention(&mut problems, &spec.retention, spec.verification.as_ref());
    if let Some(export) = &spec.export {
        check_export(&mut problems, export, spec);
    }
    problems.into_vec()
}

fn check_export(problems: &mut Problems, export: &ExportSpec, spec: &BackupPolicySpec) {
    problems.check("spec.export.repositorySecret", names::dns1123_subdomain(&export.repository_secret));
    if export.image.as_deref().is_some_and(|i| i.trim().is_empty()) {
        problems.push("spec.export.image", "must not be empty: leave it out for the default image");
    }
    if export.after == Some(ExportAfter::Verified) && !verifies_backups(spec.verification.as_ref()) {
        problems.push("spec.export.after", "is Verified, but verification.afterBackup is off: no backup would ever be exported");
    }
    if let Some(schedule) = &export.prune_schedule {
        problems.check("spec.export.pruneSchedule", schedule_problem(schedule, &spec.time_zone));
    }
    if export.check_read_data_percent > 100 {
        problems.push("spec.export.checkReadDataPercent", "must be between 0 and 100");
    }
    if let Some(class) = &export.storage_class_name {
        problems.check("spec.export.storageClassName", names::dns1123_subdomain(class));
    }
    problems.check("spec.export.accessModes", names::access_modes(&export.access_modes));
}

fn check_quiesce(problems: &mut Problems, quiesce: &QuiesceSpec) {
    let hooks = [("spec.quiesce.freeze", &quiesce.freeze), ("spec.quiesce.thaw", &quiesce.thaw)];
    for (field, hook) in hooks {
        match (quiesce.mode, hook) {
            (QuiesceMode::Freeze, Some(hook)) => check_hook(problems, field, hook),
            (QuiesceMode::Freeze, None) => problems.push(field, "is required when mode is Freeze"),
            (mode, Some(_)) => problems.push(
                field,
                format!("is ignored when mode is {mode:?}: remove it, or set mode: Freeze"),
            ),
            (_, None) => {}
        }
    }
    if quiesce.timeout_seconds == 0 && quiesce.mode != QuiesceMode::None {
        problems.push(
            "spec.quiesce.timeoutSeconds",
            "must be at least 1 (the longest the archive may stay frozen or stopped)",
        );
    }
}

fn check_hook(problems: &mut Problems, field: &str, hook: &Hook) {
    match (&hook.exec, &hook.http) {
        (None, None) => problems.push(field, "needs exactly one of exec or http, has neither"),
        (Some(_), Some(_)) => problems.push(field, "needs exactly one of exec or http, has both"),
        (Some(exec), None) => {
            problems.command(&format!("{field}.exec.command"), &exec.command);
            if let Some(container) = &exec.container {
                problems.check(format!("{field}.exec.container"), names::dns1123_label(container));
            }
        }
        (None, Some(http)) => {
            if http.port == 0 {
                problems.push(format!("{field}.http.port"), "must be between 1 and 65535");
            }
            problems.check(format!("{field}.http.path"), request_path_problem(&http.path));
            if !HTTP_METHODS.contains(&http.method.as_str()) {
                problems.push(
                    format!("{field}.http.method"),
                    format!("{:?} is not one of {}", http.method, HTTP_METHODS.join(", ")),
                );
            }
            let https = http.scheme == HttpScheme::HTTPS;
            if let Some(secret) = &http.ca_secret {
                problems.check(format!("{field}.http.caSecret"), if https { names::dns1123_subdomain(secret) } else { Some("is only used with scheme HTTPS".into()) });
            }
            if let Some(name) = &http.server_name {
                let problem = if !https {
                    Some("is only used with scheme HTTPS".into())
                } else if name.parse::<std::net::IpAddr>().is_ok() {
                    None
                } else {
                    names::dns1123_subdomain(name)
                };
                problems.check(format!("{field}.http.serverName"), problem);
            }
        }
    }
}

/// An HTTP request path is sent as it is in the request line: it must start with `/` and
/// hold no spaces or control characters, which could end the line and add headers.
fn request_path_problem(path: &str) -> Option<String> {
    (!path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()))
        .then(|| format!("{path:?} must start with '/' and contain no spaces or control characters"))
}

/// The master, the stores and the dump: names, one source per part, each PVC captured once.
fn check_sources(problems: &mut Problems, spec: &BackupPolicySpec) {
    let mut claims = Claims::default();
    if let Some(master) = &spec.master {
        claims.add_all(problems, "spec.master.volumeClaims", &master.volume_claims);
        problems.unique_subdomains("spec.master.secrets", &master.secrets);
    }
    let master_empty = spec.master.as_ref().is_none_or(|m| m.volume_claims.is_empty() && m.secrets.is_empty());
    if spec.stores.is_empty() && master_empty {
        problems.push("spec.stores", "nothing to back up: list at least one store, or set master");
    }
    let mut first_sql: Option<String> = None;
    for (i, store) in spec.stores.iter().enumerate() {
        let field = format!("spec.stores[{i}]");
        match spec.stores[..i].iter().position(|s| s.name == store.name) {
            Some(first) => problems.push(
                format!("{field}.name"),
                format!("{:?} is already the name of spec.stores[{first}]", store.name),
            ),
            None => problems.check(format!("{field}.name"), names::dns1123_label(&store.name)),
        }
        if !store.volume_claims.is_empty() {
            // A one-volume store: its volumes hold metadata, content and index together.
            let split = [("metadata", !store.metadata.is_empty()), ("content", !store.content.is_empty()), ("index", store.index.is_some())];
            for (part, set) in split {
                if set {
                    problems.push(
                        format!("{field}.{part}"),
                        "must not be set with volumeClaims: volumeClaims holds the whole store (metadata, content and index in one volume); list the parts separately instead when they live apart",
                    );
                }
            }
            claims.add_all(problems, &format!("{field}.volumeClaims"), &store.volume_claims);
            continue;
        }
        let parts = [("metadata", Some(&store.metadata)), ("content", Some(&store.content)), ("index", store.index.as_ref())];
        for (part, source) in parts {
            let Some(source) = source else { continue };
            let field = format!("{field}.{part}");
            check_data_source(problems, &field, source, &mut claims);
            if source.sql.is_some() && first_sql.is_none() {
                first_sql = Some(field);
            }
        }
    }
    check_dump(problems, spec, first_sql.as_deref());
}

/// The PVCs seen so far in capture order, with their fields, to find PVCs captured twice.
#[derive(Default)]
struct Claims<'a>(Vec<(String, &'a str)>);

impl<'a> Claims<'a> {
    /// Checks each PVC name of the list at `field` and remembers it.
    fn add_all(&mut self, problems: &mut Problems, field: &str, claims: &'a [String]) {
        for (i, claim) in claims.iter().enumerate() {
            let here = format!("{field}[{i}]");
            match self.0.iter().find(|(_, earlier)| earlier == claim) {
                Some((earlier, _)) => problems.push(
                    here.clone(),
                    format!("PVC {claim:?} is already captured as {earlier}; a PVC can belong to only one part of the archive"),
                ),
                None => problems.check(here.clone(), names::dns1123_subdomain(claim)),
            }
            self.0.push((here, claim));
        }
    }
}

fn check_data_source<'a>(problems: &mut Problems, field: &str, source: &'a DataSource, claims: &mut Claims<'a>) {
    match (&source.sql, source.volume_claims.is_empty()) {
        (Some(_), false) => problems.push(field, "sets both volumeClaims and sql: choose one"),
        (None, true) => problems.push(field, "needs volumeClaims or sql, has neither (a store whose metadata, content and index share one volume sets the store's own volumeClaims instead)"),
        _ => {}
    }
    claims.add_all(problems, &format!("{field}.volumeClaims"), &source.volume_claims);
    if let Some(sql) = &source.sql {
        check_sql(problems, &format!("{field}.sql"), sql);
    }
}

fn check_sql(problems: &mut Problems, field: &str, sql: &SqlSource) {
    problems.check(format!("{field}.host"), names::host(&sql.host));
    if sql.port == Some(0) {
        problems.push(format!("{field}.port"), "must be between 1 and 65535");
    }
    problems.check(format!("{field}.database"), names::sql_database(&sql.database));
    problems.check(format!("{field}.credentialsSecret"), names::dns1123_subdomain(&sql.credentials_secret));
}

fn check_dump(problems: &mut Problems, spec: &BackupPolicySpec, first_sql: Option<&str>) {
    match (&spec.dump, first_sql) {
        (None, Some(sql)) => problems.push(
            "spec.dump",
            format!("is required because {sql} uses sql (the dump Job writes into a new PVC)"),
        ),
        (None, None) => {}
        (Some(dump), _) => {
            problems.check("spec.dump.size", names::positive_quantity(&dump.size));
            if let Some(class) = &dump.storage_class_name {
                problems.check("spec.dump.storageClassName", names::dns1123_subdomain(class));
            }
            let no_image = dump.image.as_deref().is_none_or(|i| i.trim().is_empty());
            if let (true, Some(sql)) = (no_image, first_sql) {
                problems.push(
                    "spec.dump.image",
                    format!("is required because {sql} uses sql (an image with pg_dump or mysqldump)"),
                );
            }
        }
    }
}

fn check_verification(problems: &mut Problems, verification: &VerificationSpec, spec: &BackupPolicySpec) {
    if let Some(drill) = &verification.drill_schedule {
        problems.check("spec.verification.drillSchedule", schedule_problem(drill, &spec.time_zone));
    }
    if let Some(probe) = &verification.drill_probe {
        check_drill_probe(problems, probe);
    }
    if verification.drill_schedule.is_some() || verification.drill_probe.is_some() {
        // A drill restores each SQL source into `<database>_d<yyyymmddhhmmss>`.
        let room = crate::plan::validate::names::SQL_IDENTIFIER_MAX.saturating_sub(DATABASE_SUFFIX_LEN);
        for (field, sql) in sql_sources(spec) {
            if sql.database.len() > room {
                problems.push(
                    format!("{field}.sql.database"),
                    format!("is {} characters: a restore drill restores it as {}_d<yyyymmddhhmmss>, at most 63 characters, so it may have at most {room}", sql.database.len(), sql.database),
                );
            }
        }
    }
    if !verification.after_backup {
        return;
    }
    let why = "when afterBackup is true";
    if verification.command.is_empty() {
        problems.push("spec.verification.command", format!("is required {why}"));
    } else {
        problems.command("spec.verification.command", &verification.command);
    }
    if verification.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
        problems.push("spec.verification.image", format!("is required {why}"));
    }
}

/// Every SQL source with its field `spec.stores[i].<part>`.
fn sql_sources(spec: &BackupPolicySpec) -> Vec<(String, &crate::api::SqlSource)> {
    spec.stores
        .iter()
        .enumerate()
        .flat_map(|(i, store)| {
            let parts = [("metadata", Some(&store.metadata)), ("content", Some(&store.content)), ("index", store.index.as_ref())];
            parts.into_iter().filter_map(move |(part, source)| source?.sql.as_ref().map(|sql| (format!("spec.stores[{i}].{part}"), sql)))
        })
        .collect()
}

/// Exactly one of `exec`, `http` or `tcp`; a command that is not empty; ports 1-65535; an
/// HTTP path that cannot end the request line (it is sent as it is).
fn check_drill_probe(problems: &mut Problems, probe: &DrillProbe) {
    let field = "spec.verification.drillProbe";
    let kinds = [probe.exec.is_some(), probe.http.is_some(), probe.tcp.is_some()].into_iter().filter(|k| *k).count();
    if kinds != 1 {
        problems.push(field, format!("set exactly one of exec, http or tcp (found {kinds})"));
    }
    if let Some(exec) = &probe.exec {
        problems.command(&format!("{field}.exec.command"), &exec.command);
        if let Some(container) = &exec.container {
            problems.check(format!("{field}.exec.container"), names::dns1123_label(container));
        }
    }
    if let Some(http) = &probe.http {
        if http.port == 0 {
            problems.push(format!("{field}.http.port"), "must be 1-65535");
        }
        problems.check(format!("{field}.http.path"), request_path_problem(&http.path));
    }
    if probe.tcp.as_ref().is_some_and(|t| t.port == 0) {
        problems.push(format!("{field}.tcp.port"), "must be 1-65535");
    }
}

/// Whether the policy's backups ever get `verification.state: Passed`, which `keepVerified`
/// and `select: LatestVerified` count on: with `afterBackup` (each run is verified before it
/// completes), or with a `drillSchedule` (a passed drill verifies the backup it restored).
pub fn verifies_backups(verification: Option<&VerificationSpec>) -> bool {
    verification.is_some_and(|v| v.after_backup || v.drill_schedule.is_some())
}

/// Whether every backup is verified when it completes (`afterBackup`); drills verify a backup
/// only later.
fn verifies_each_run(verification: Option<&VerificationSpec>) -> bool {
    verification.is_some_and(|v| v.after_backup)
}

fn check_retention(problems: &mut Problems, rules: &RetentionRules, verification: Option<&VerificationSpec>) {
    let n = |rule: Option<u32>| rule.unwrap_or(0);
    let keeps_completed = [rules.keep_last, rules.keep_hourly, rules.keep_daily, rules.keep_weekly, rules.keep_monthly, rules.keep_yearly]
        .into_iter()
        .any(|rule| n(rule) > 0);
    let prunes = keeps_completed || n(rules.keep_verified) > 0 || n(rules.keep_failed) > 0;
    let verifies = verifies_backups(verification);
    if !prunes {
        if verifies {
            problems.push(
                "spec.retention",
                "every rule is 0 or absent, so no restore point is ever pruned although every backup is verified; set keepVerified and keepLast or a calendar rule",
            );
        }
        return;
    }
    if !keeps_completed && n(rules.keep_verified) == 0 {
        problems.push(
            "spec.retention",
            "only keepFailed is set, so every Completed restore point would be pruned; set keepLast or a calendar rule",
        );
    }
    if verifies && n(rules.keep_verified) == 0 {
        problems.push(
            "spec.retention.keepVerified",
            "must be at least 1 when verification is on: with 0 the other rules may prune the last verified restore point before a newer one is verified",
        );
    }
    if !verifies && !keeps_completed && n(rules.keep_verified) > 0 {
        problems.push(
            "spec.retention.keepVerified",
            "keeps nothing because no backup is ever verified (no verification.afterBackup or drillSchedule), and no other rule keeps Completed backups: every restore point would be pruned",
        );
    }
    if verifies && !verifies_each_run(verification) && !keeps_completed && n(rules.keep_verified) > 0 {
        problems.push(
            "spec.retention",
            "only keepVerified is set and backups are verified by drills only: a new backup would be pruned before any drill could verify it; set keepLast or a calendar rule",
        );
    }
}

#[cfg(test)]
mod tests;
