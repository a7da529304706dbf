//! Errors of the `archivist` subcommands and their exit statuses.

use std::path::PathBuf;
use std::process::ExitCode;

/// What went wrong in a subcommand. The message is the one line printed on stderr.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file's content is not what the subcommand needs; `field` is a path such as
    /// `spec.retention.keepDaily` (empty when the problem is the whole document).
    #[error("{}: {}{message}", path.display(), field_prefix(field))]
    Input {
        /// The file.
        path: PathBuf,
        /// The field at fault, as a dotted path.
        field: String,
        /// What is wrong, in words.
        message: String,
    },
    /// A command-line argument is wrong (for example `--now` is not RFC 3339).
    #[error("{flag}: {message}")]
    Argument {
        /// The flag, for example `--now`.
        flag: String,
        /// What is wrong.
        message: String,
    },
    /// An object in the cluster is bad input for the command: its name, or one of its fields
    /// (for example a policy that is not valid, or a request the command would create).
    #[error("{object}: {}{message}", field_prefix(field))]
    Object {
        /// The object, as `<Kind> <namespace>/<name>`.
        object: String,
        /// The field at fault, as a dotted path (empty for the whole object).
        field: String,
        /// What is wrong, in words.
        message: String,
    },
    /// The object the command names does not exist.
    #[error("{kind} {object} not found")]
    NotFound {
        /// Its kind, for example `ArchiveBackup`.
        kind: String,
        /// `<namespace>/<name>`.
        object: String,
    },
    /// The object the command would create exists already.
    #[error("{kind} {object} already exists")]
    AlreadyExists {
        /// Its kind.
        kind: String,
        /// `<namespace>/<name>`.
        object: String,
    },
    /// The operator could not start or stopped on an error.
    #[error("{0}")]
    Runtime(String),
    /// Writing the output failed (for example a closed pipe).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    }
}

impl CliError {
    /// The exit status for this error: 2 for bad input and arguments, 1 for output failures.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Output(_) | CliError::Runtime(_) => ExitCode::FAILURE,
            _ => ExitCode::from(2),
        }
    }
}
