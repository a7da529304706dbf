//! `archivist validate FILE...`: checks manifests before they reach a cluster (for GitOps
//! pipelines).
//!
//! Every document of every file (multi-document YAML and `List`s allowed; a directory means
//! every `.yaml`, `.yml` and `.json` file under it) is checked:
//! - objects of the `archivist.dev` group are validated with [`crate::plan::validate`]; each
//!   problem is one line on stdout: `FILE: KIND NAMESPACE/NAME: FIELD: MESSAGE` (`KIND NAME`
//!   when the manifest names no namespace);
//! - an `archivist.dev` object of an unknown kind or version is a problem too;
//! - a RestoreRequest whose `source.policyName` names a BackupPolicy among the inputs (same
//!   namespace) is also checked against it: its `stores` exist, `LatestVerified` can succeed;
//! - objects of other API groups (a Deployment next to its policy) are skipped, and so are
//!   documents with neither `apiVersion` nor `kind` (such as a `kustomization.yaml`);
//! - a file that cannot be read, is not YAML, or has a field of the wrong type gives one line on
//!   stderr naming the file and the field; the other files are still checked.
//!
//! A summary goes to stderr. Exit status: 2 if any file was unreadable or malformed, else 1 if
//! any problem was found, else 0.

use super::error::CliError;
use super::input::{parse_object, read_documents, Document};
use crate::api::{
    ArchiveBackup, BackupPolicy, BackupPolicySpec, ClusterRetentionPolicy, RestoreRequest, GROUP, VERSION,
};
use crate::plan::validate::{
    validate_archive_backup_object, validate_backup_policy_object,
    validate_cluster_retention_policy_object, validate_restore_against_policy,
    validate_restore_request_object, FieldError,
};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The kinds `archivist validate` knows.
const KINDS: [&str; 4] = ["BackupPolicy", "RestoreRequest", "ArchiveBackup", "ClusterRetentionPolicy"];

/// What was checked, for the summary line.
#[derive(Debug, Default)]
struct Tally {
    files: usize,
    objects: usize,
    skipped: usize,
    problems: usize,
    bad_input: usize,
}

/// Validates every file (or directory) in `paths`, writing problems to `out` and input errors
/// and the summary to `err`. All files are read first, so that a RestoreRequest can be checked
/// against the BackupPolicy it names when that policy is among the inputs.
pub fn run(paths: &[PathBuf], out: &mut impl Write, err: &mut impl Write) -> Result<ExitCode, CliError> {
    let mut tally = Tally::default();
    let mut objects = Vec::new();
    for path in paths {
        let files = match expand(path) {
            Ok(files) => files,
            Err(e) => {
                tally.bad_input += 1;
                writeln!(err, "archivist: {e}")?;
                continue;
            }
        };
        for file in files {
            tally.files += 1;
            read_file(&file, &mut tally, &mut objects, err)?;
        }
    }
    let policies: HashMap<(Option<&str>, &str), &BackupPolicySpec> = objects
        .iter()
        .filter_map(|o| match &o.object {
            Object::Policy(p) => Some(((p.metadata.namespace.as_deref(), p.metadata.name.as_deref()?), &p.spec)),
            _ => None,
        })
        .collect();
    for object in &objects {
        let problems = match &object.object {
            Object::Policy(p) => validate_backup_policy_object(p),
            Object::Restore(r) => {
                let mut problems = validate_restore_request_object(r);
                let key = r.spec.source.policy_name.as_deref().map(|name| (r.metadata.namespace.as_deref(), name));
                if let Some(policy) = key.and_then(|key| policies.get(&key)) {
                    problems.extend(validate_restore_against_policy(&r.spec, policy));
                }
                problems
            }
            Object::Backup(b) => validate_archive_backup_object(b),
            Object::Cluster(c) => validate_cluster_retention_policy_object(c),
            Object::Unusable(problem) => vec![problem.clone()],
        };
        tally.objects += 1;
        tally.problems += problems.len();
        for problem in problems {
            writeln!(out, "{}: {}: {problem}", object.file.display(), object.who)?;
        }
    }
    writeln!(err, "archivist validate: {}", summary(&tally))?;
    Ok(if tally.bad_input > 0 {
        ExitCode::from(2)
    } else if tally.problems > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// An archivist.dev object read from a file.
struct Found {
    /// The file it is in.
    file: PathBuf,
    /// `KIND NAMESPACE/NAME`.
    who: String,
    /// The object.
    object: Object,
}

/// The archivist.dev objects `validate` knows, or why one cannot be used.
enum Object {
    /// A BackupPolicy.
    Policy(Box<BackupPolicy>),
    /// A RestoreRequest.
    Restore(Box<RestoreRequest>),
    /// An ArchiveBackup.
    Backup(Box<ArchiveBackup>),
    /// A ClusterRetentionPolicy.
    Cluster(Box<ClusterRetentionPolicy>),
    /// An unknown kind or version: the problem to report.
    Unusable(FieldError),
}

fn summary(t: &Tally) -> String {
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut s = format!(
        "{} in {}: {}",
        plural(t.objects, "archivist.dev object", "archivist.dev objects"),
        plural(t.files, "file", "files"),
        match t.problems {
            0 => "no problems".to_string(),
            n => plural(n, "problem", "problems"),
        }
    );
    if t.skipped > 0 {
        s.push_str(&format!(", {} skipped", plural(t.skipped, "other document", "other documents")));
    }
    if t.bad_input > 0 {
        s.push_str(&format!(", {}", plural(t.bad_input, "input error", "input errors") + " (listed above)"));
    }
    s
}

/// A file as itself; a directory as every manifest file under it, sorted.
fn expand(path: &Path) -> Result<Vec<PathBuf>, CliError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| CliError::Read { path: dir.clone(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| CliError::Read { path: dir.clone(), source })?;
            let p = entry.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json") {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn read_file(path: &Path, tally: &mut Tally, objects: &mut Vec<Found>, err: &mut impl Write) -> Result<(), CliError> {
    let docs = match read_documents(path) {
        Ok(docs) => docs,
        Err(e) => {
            tally.bad_input += 1;
            writeln!(err, "archivist: {e}")?;
            return Ok(());
        }
    };
    for doc in &docs {
        match read_document(path, doc) {
            Ok(Some(found)) => objects.push(found),
            Ok(None) => tally.skipped += 1,
            Err(e) => {
                tally.bad_input += 1;
                writeln!(err, "archivist: {e}")?;
            }
        }
    }
    Ok(())
}

/// One document: an archivist.dev object, `None` for anything else, or an error when it is
/// not an object or a field has the wrong type.
fn read_document(path: &Path, doc: &Document) -> Result<Option<Found>, CliError> {
    let bad = |field: &str, message: &str| CliError::Input {
        path: path.to_path_buf(),
        field: format!("{}{field}", doc.location),
        message: message.to_string(),
    };
    if !doc.value.is_mapping() {
        return Err(bad("", "is not a Kubernetes object (expected a mapping with apiVersion and kind)"));
    }
    let text = |key: &str| doc.value.get(key).map(|v| v.as_str());
    let (api_version, kind) = match (text("apiVersion"), text("kind")) {
        (None, None) => return Ok(None),
        (Some(Some(a)), Some(Some(k))) => (a, k),
        (None, _) => return Err(bad("apiVersion", "is missing")),
        (_, None) => return Err(bad("kind", "is missing")),
        (Some(None), _) => return Err(bad("apiVersion", "must be a string")),
        (_, Some(None)) => return Err(bad("kind", "must be a string")),
    };
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    if group != GROUP {
        return Ok(None);
    }
    let object = if version != VERSION {
        Object::Unusable(FieldError::new("apiVersion", format!("is {api_version}, expected {GROUP}/{VERSION}")))
    } else {
        match kind {
            "BackupPolicy" => Object::Policy(Box::new(parse_object(path, doc)?)),
            "RestoreRequest" => Object::Restore(Box::new(parse_object(path, doc)?)),
            "ArchiveBackup" => Object::Backup(Box::new(parse_object(path, doc)?)),
            "ClusterRetentionPolicy" => Object::Cluster(Box::new(parse_object(path, doc)?)),
            other => Object::Unusable(FieldError::new(
                "kind",
                format!("{other} is not an {GROUP} kind (expected one of {})", KINDS.join(", ")),
            )),
        }
    };
    Ok(Some(Found { file: path.to_path_buf(), who: identity(kind, doc), object }))
}

/// `KIND NAMESPACE/NAME`, `KIND NAME` without a namespace, `KIND <unnamed ...>` without a name.
fn identity(kind: &str, doc: &Document) -> String {
    let meta = |key: &str| doc.value.get("metadata").and_then(|m| m.get(key)).and_then(|v| v.as_str());
    let name = match (meta("name"), meta("generateName")) {
        (Some(name), _) => name.to_string(),
        (None, Some(prefix)) => format!("{prefix}*"),
        (None, None) => {
            let location = doc.location.trim_end_matches([' ', ':', '.']);
            if location.is_empty() { "<unnamed>".to_string() } else { format!("<unnamed {location}>") }
        }
    };
    match meta("namespace") {
        Some(namespace) => format!("{kind} {namespace}/{name}"),
        None => format!("{kind} {name}"),
    }
}
