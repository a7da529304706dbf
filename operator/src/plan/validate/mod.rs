//! Validation of Archivist objects: every rule a user can break that the CRD schema cannot
//! express (duplicate store names, Freeze without hooks, a store with both `sql` and
//! `volumeClaims`, an unknown time zone, a bad cron expression, ...).
//!
//! Each `validate_*` function is pure and returns every problem it finds (not only the first),
//! as [`FieldError`]s naming the field path, for example `spec.stores[1].name`. An empty list
//! means the object is valid. The `*_object` variants also check `metadata` (names that
//! Kubernetes, or the names Archivist derives from them, require to be DNS-1123).
//!
//! Used by `archivist validate` (offline, for GitOps pipelines) and by the controllers (the
//! `Ready` condition of a policy).

mod archive_backup;
mod backup_policy;
mod cluster_retention_policy;
pub mod names;
mod restore_request;

pub use archive_backup::{validate_archive_backup, validate_archive_backup_object, RESTORE_LABEL};
pub use backup_policy::{
    validate_backup_policy, validate_backup_policy_object, verifies_backups, POLICY_NAME_MAX,
};
pub use cluster_retention_policy::{
    validate_cluster_retention_policy, validate_cluster_retention_policy_object,
};
pub use restore_request::{
    restore_store_problems, restored_database_name, restored_database_problems,
    validate_restore_against_policy, validate_restore_request, validate_restore_request_object,
    DEFAULT_DATABASE_SUFFIX, RESTORE_REQUEST_NAME_MAX,
};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use crate::plan::schedule::{parse_time_zone, Schedule, ScheduleError};

/// One problem in an object: the field at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The field path, for example `spec.stores[1].name` or `spec.quiesce.freeze`.
    pub field: String,
    /// What is wrong, in words.
    pub message: String,
}

impl FieldError {
    /// A problem at `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Collects the problems of one object.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<FieldError>);

impl Problems {
    /// Records a problem at `field`.
    pub(crate) fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Records `reason` at `field` if there is one (the result of a [`names`] check).
    pub(crate) fn check(&mut self, field: impl Into<String>, reason: Option<String>) {
        if let Some(message) = reason {
            self.push(field, message);
        }
    }

    /// Records a problem for every entry of `names` that is empty, not a DNS-1123 subdomain,
    /// or listed twice.
    pub(crate) fn unique_subdomains(&mut self, field: &str, names: &[String]) {
        for (i, name) in names.iter().enumerate() {
            let here = format!("{field}[{i}]");
            match names[..i].iter().position(|earlier| earlier == name) {
                Some(first) => self.push(here, format!("{name:?} is already listed as {field}[{first}]")),
                None => self.check(here, names::dns1123_subdomain(name)),
            }
        }
    }

    /// Records a problem if a command is empty or starts with an empty program name.
    pub(crate) fn command(&mut self, field: &str, command: &[String]) {
        match command.first() {
            None => self.push(field, "is empty"),
            Some(program) if program.trim().is_empty() => {
                self.push(format!("{field}[0]"), "the program name is empty")
            }
            Some(_) => {}
        }
    }

    /// The problems found.
    pub(crate) fn into_vec(self) -> Vec<FieldError> {
        self.0
    }
}

/// Checks an IANA time zone name such as `Europe/Istanbul` (with [`parse_time_zone`]);
/// `None` when it is known.
pub fn time_zone_problem(time_zone: &str) -> Option<String> {
    parse_time_zone(time_zone).err().map(|e| e.to_string())
}

/// Checks a schedule expression (5-field cron or a macro such as `@daily`, with
/// [`Schedule::parse`]); `None` when it parses. An unknown time zone is not reported here:
/// [`time_zone_problem`] reports it once, at `spec.timeZone`.
pub fn schedule_problem(expr: &str, time_zone: &str) -> Option<String> {
    if expr.trim().is_empty() {
        return Some("is empty (omit the field to disable scheduling)".into());
    }
    match Schedule::parse(expr, time_zone) {
        Err(e @ ScheduleError::BadCron { .. }) => Some(e.to_string()),
        Ok(_) | Err(ScheduleError::UnknownTimeZone { .. }) => None,
    }
}

/// How [`check_metadata`] treats `metadata`.
pub(crate) struct NameRules {
    /// The longest name allowed, when Archivist derives names or label values from it.
    pub max_len: usize,
    /// Why names are limited to `max_len` (appended to the message).
    pub why: &'static str,
}

/// Checks `metadata.name` (or `metadata.generateName`) and `metadata.namespace`.
pub(crate) fn check_metadata(problems: &mut Problems, meta: &ObjectMeta, rules: &NameRules) {
    match (&meta.name, &meta.generate_name) {
        (Some(name), _) => {
            if let Some(reason) = names::dns1123_subdomain(name) {
                problems.push("metadata.name", reason);
            } else if name.len() > rules.max_len {
                problems.push(
                    "metadata.name",
                    format!("{name:?} is longer than {} characters ({})", rules.max_len, rules.why),
                );
            }
        }
        (None, Some(prefix)) => {
            let trimmed = prefix.trim_end_matches('-');
            if let Some(reason) = names::dns1123_subdomain(trimmed) {
                problems.push("metadata.generateName", reason);
            }
        }
        (None, None) => problems.push("metadata.name", "is required"),
    }
    if let Some(namespace) = &meta.namespace {
        problems.check("metadata.namespace", names::dns1123_label(namespace));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_error_display() {
        let e = FieldError::new("spec.stores[1].name", "is empty");
        assert_eq!(e.to_string(), "spec.stores[1].name: is empty");
    }

    #[test]
    fn metadata_rules() {
        let rules = NameRules { max_len: 10, why: "test" };
        let meta = |name: Option<&str>, generate: Option<&str>, ns: Option<&str>| ObjectMeta {
            name: name.map(Into::into),
            generate_name: generate.map(Into::into),
            namespace: ns.map(Into::into),
            ..Default::default()
        };
        let cases = [
            (meta(Some("mail"), None, Some("prod")), vec![]),
            (meta(None, Some("restore-"), None), vec![]),
            (meta(None, None, None), vec!["metadata.name"]),
            (meta(Some("Mail"), None, None), vec!["metadata.name"]),
            (meta(Some("a-very-long-name"), None, None), vec!["metadata.name"]),
            (meta(None, Some("Restore-"), None), vec!["metadata.generateName"]),
            (meta(Some("mail"), None, Some("a.b")), vec!["metadata.namespace"]),
        ];
        for (i, (meta, want)) in cases.iter().enumerate() {
            let mut problems = Problems::default();
            check_metadata(&mut problems, meta, &rules);
            let fields: Vec<_> = problems.into_vec().into_iter().map(|e| e.field).collect();
            assert_eq!(&fields, want, "case {i}");
        }
    }

    #[test]
    fn time_zones() {
        assert_eq!(time_zone_problem("Europe/Istanbul"), None);
        assert_eq!(time_zone_problem("UTC"), None);
        assert!(time_zone_problem("Mars/Olympus").is_some());
        assert!(time_zone_problem("").is_some());
    }

    #[test]
    fn schedules() {
        let cases = [
            ("0 2 * * *", "UTC", true),
            ("@weekly", "Europe/Istanbul", true),
            ("0 2 * * *", "Mars/Olympus", true), // the time zone is reported elsewhere
            ("", "UTC", false),
            ("0 2 * *", "UTC", false),
            ("61 * * * *", "UTC", false),
            ("0 0 30 2 *", "UTC", false),
            ("@fortnightly", "UTC", false),
        ];
        for (expr, tz, ok) in cases {
            assert_eq!(schedule_problem(expr, tz).is_none(), ok, "{expr:?} in {tz}: {:?}", schedule_problem(expr, tz));
        }
    }
}
