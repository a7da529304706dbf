//! `archivist validate FILE...`: checks manifests before they reach a cluster (for GitOps
//! pipelines).
//!
//! Every document of every file (multi-document YAML and `List`s allowed; a directory means
//! every `.yaml`, `.yml` and `.json` file under it) is checked:
//! - objects of the `archivist.dev` group are validated with [`crate::plan::validate`]; each
//!   problem is one line on stdout: `FILE: KIND NAMESPACE/NAME: FIELD: MESSAGE` (`KIND NAME`
//!   when the manifest names no namespace);
//! - an `archivist.dev` object of an unknown kind or version is a problem too;
//! - objects of other API groups (a Deployment next to its policy) are skipped, and so are
//!   documents with neither `apiVersion` nor `kind` (such as a `kustomization.yaml`);
//! - a file that cannot be read, is not YAML, or has a field of the wrong type gives one line on
//!   stderr naming the file and the field; the other files are still checked.
//!
//! A summary goes to stderr. Exit status: 2 if any file was unreadable or malformed, else 1 if
//! any problem was found, else 0.

use super::error::CliError;
use super::input::{parse_object, read_documents, Document};
use crate::api::{ArchiveBackup, BackupPolicy, ClusterRetentionPolicy, RestoreRequest, GROUP, VERSION};
use crate::plan::validate::{
    validate_archive_backup_object, validate_backup_policy_object,
    validate_cluster_retention_policy_object, validate_restore_request_object, FieldError,
};
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
/// and the summary to `err`.
pub fn run(paths: &[PathBuf], out: &mut impl Write, err: &mut impl Write) -> Result<ExitCode, CliError> {
    let mut tally = Tally::default();
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
            check_file(&file, &mut tally, out, err)?;
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

fn check_file(path: &Path, tally: &mut Tally, out: &mut impl Write, err: &mut impl Write) -> Result<(), CliError> {
    let docs = match read_documents(path) {
        Ok(docs) => docs,
        Err(e) => {
            tally.bad_input += 1;
            writeln!(err, "archivist: {e}")?;
            return Ok(());
        }
    };
    for doc in &docs {
        match check_document(path, doc) {
            Checked::Skipped => tally.skipped += 1,
            Checked::BadInput(e) => {
                tally.bad_input += 1;
                writeln!(err, "archivist: {e}")?;
            }
            Checked::Validated(who, problems) => {
                tally.objects += 1;
                tally.problems += problems.len();
                for problem in problems {
                    writeln!(out, "{}: {who}: {problem}", path.display())?;
                }
            }
        }
    }
    Ok(())
}

/// The outcome of one document.
enum Checked {
    /// Not an archivist.dev object.
    Skipped,
    /// Unusable: not an object, or a field of the wrong type.
    BadInput(CliError),
    /// Validated: who it is (`KIND NAMESPACE/NAME`) and its problems.
    Validated(String, Vec<FieldError>),
}

fn check_document(path: &Path, doc: &Document) -> Checked {
    let bad = |field: &str, message: String| {
        Checked::BadInput(CliError::Input { path: path.to_path_buf(), field: format!("{}{field}", doc.location), message })
    };
    if !doc.value.is_mapping() {
        return bad("", "is not a Kubernetes object (expected a mapping with apiVersion and kind)".into());
    }
    let text = |key: &str| doc.value.get(key).map(|v| v.as_str());
    let (api_version, kind) = match (text("apiVersion"), text("kind")) {
        (None, None) => return Checked::Skipped,
        (Some(Some(a)), Some(Some(k))) => (a, k),
        (None, _) => return bad("apiVersion", "is missing".into()),
        (_, None) => return bad("kind", "is missing".into()),
        (Some(None), _) => return bad("apiVersion", "must be a string".into()),
        (_, Some(None)) => return bad("kind", "must be a string".into()),
    };
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    if group != GROUP {
        return Checked::Skipped;
    }
    let who = identity(kind, doc);
    let expected = format!("{GROUP}/{VERSION}");
    if version != VERSION {
        let problem = FieldError::new("apiVersion", format!("is {api_version}, expected {expected}"));
        return Checked::Validated(who, vec![problem]);
    }
    let result = match kind {
        "BackupPolicy" => parse_object::<BackupPolicy>(path, doc).map(|o| validate_backup_policy_object(&o)),
        "RestoreRequest" => parse_object::<RestoreRequest>(path, doc).map(|o| validate_restore_request_object(&o)),
        "ArchiveBackup" => parse_object::<ArchiveBackup>(path, doc).map(|o| validate_archive_backup_object(&o)),
        "ClusterRetentionPolicy" => {
            parse_object::<ClusterRetentionPolicy>(path, doc).map(|o| validate_cluster_retention_policy_object(&o))
        }
        other => Ok(vec![FieldError::new(
            "kind",
            format!("{other} is not an {GROUP} kind (expected one of {})", KINDS.join(", ")),
        )]),
    };
    match result {
        Ok(problems) => Checked::Validated(who, problems),
        Err(e) => Checked::BadInput(e),
    }
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
