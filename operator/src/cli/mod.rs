//! The `archivist` command's subcommands.
//!
//! Exit status: 0 success; 1 `validate` found problems, a waited-for run failed, or the cluster
//! could not be reached; 2 bad input (an unreadable or malformed file, a wrong kind, an unknown
//! time zone, a bad cron expression, a usage error, an object that is not there or not valid),
//! with one line on stderr that names the file or object and the field.
//!
//! Installed as `kubectl-archivist` on the PATH, the same binary is a kubectl plugin:
//! `kubectl archivist status -A`.

pub mod backup;
pub mod cluster;
pub mod crds;
pub mod drill;
pub mod fetch;
pub mod finalizers;
pub mod output;
pub mod restore;
pub mod status;
pub mod view;
pub mod wait;
pub mod error;
pub mod input;
pub mod run;
pub mod retention;
pub mod schedule;
pub mod validate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The `archivist` command line.
#[derive(Debug, Parser)]
#[command(name = "archivist", version, about = "Backs up and restores containerized mail archive servers on Kubernetes")]
pub struct Cli {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every CRD as multi-document YAML (the same text as the files in crds/).
    Crds(crds::CrdsArgs),
    /// Run the operator (every controller), using the usual kubeconfig or in-cluster config.
    Run(run::RunArgs),
    /// Check manifests (files, or directories of .yaml/.yml/.json files) before they reach a
    /// cluster: one line per problem on stdout, exit 1 if any, 2 if a file is unreadable or
    /// malformed. Objects of other API groups are skipped.
    Validate {
        /// Manifest files or directories.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<std::path::PathBuf>,
    },
    /// Offline views of a BackupPolicy's schedule.
    Schedule {
        /// The schedule subcommand.
        #[command(subcommand)]
        command: schedule::ScheduleCommand,
    },
    /// Backups on a live cluster: create one now (and follow it), list them, describe one.
    Backup {
        /// The backup subcommand.
        #[command(subcommand)]
        command: backup::BackupCommand,
    },
    /// Restores on a live cluster: create one (and follow it), list them, describe one.
    Restore {
        /// The restore subcommand.
        #[command(subcommand)]
        command: restore::RestoreCommand,
    },
    /// Restore drills on a live cluster: the history of a policy's drills.
    Drill {
        /// The drill subcommand.
        #[command(subcommand)]
        command: drill::DrillCommand,
    },
    /// One line per BackupPolicy: last success, next run, restore points, verification, and
    /// what is failing.
    Status(status::StatusArgs),
    /// After `helm uninstall`: remove Archivist's finalizers so namespaces and policies can be
    /// deleted without the operator; a run that may hold its archive quiesced keeps its own
    /// (exit 1, naming it).
    ReleaseFinalizers(finalizers::ReleaseFinalizersArgs),
    /// Retention planning (offline).
    Retention {
        /// The retention subcommand.
        #[command(subcommand)]
        command: retention::RetentionCommand,
    },
}

/// Parses the command line, runs the subcommand, and turns errors into a line on stderr and
/// an exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse_from(std::env::args_os().enumerate().map(|(i, arg)| if i == 0 { program_name(&arg).into() } else { arg }));
    let mut stdout = std::io::stdout().lock();
    let result = match cli.command {
        Command::Crds(args) => crds::run(&args, &mut stdout),
        Command::Run(args) => run::run(&args),
        Command::Schedule { command } => schedule::run(command, &mut stdout),
        Command::Validate { files } => validate::run(&files, &mut stdout, &mut std::io::stderr().lock()),
        Command::Retention { command } => retention::run(command, &mut stdout),
        Command::Backup { command } => backup::run(command, &mut stdout),
        Command::Restore { command } => restore::run(command, &mut stdout),
        Command::Drill { command } => drill::run(command, &mut stdout),
        Command::Status(args) => status::run(&args, &mut stdout),
        Command::ReleaseFinalizers(args) => finalizers::run(&args, &mut stdout),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("archivist: {err}");
            err.exit_code()
        }
    }
}

/// The name help and errors use: `kubectl archivist` when run as the kubectl plugin
/// (`kubectl-archivist`), else `archivist`.
fn program_name(argv0: &std::ffi::OsStr) -> &'static str {
    let file = std::path::Path::new(argv0).file_name().and_then(|f| f.to_str()).unwrap_or("archivist");
    if file.starts_with("kubectl-") {
        "kubectl archivist"
    } else {
        "archivist"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn as_a_kubectl_plugin_the_program_is_named_kubectl_archivist() {
        for (argv0, expected) in [("/usr/local/bin/kubectl-archivist", "kubectl archivist"), ("archivist", "archivist"), ("/opt/archivist", "archivist")] {
            assert_eq!(program_name(std::ffi::OsStr::new(argv0)), expected);
        }
    }

    #[test]
    fn kubectl_flags_parse_on_every_cluster_command() {
        for argv in [
            vec!["archivist", "status", "-A", "-o", "json"],
            vec!["archivist", "backup", "list", "-n", "mail", "--kubeconfig", "/k", "--context", "c", "-o", "yaml"],
            vec!["archivist", "backup", "create", "mailstore", "--wait", "-n", "mail"],
            vec!["archivist", "backup", "describe", "b1", "-n", "mail"],
            vec!["archivist", "restore", "create", "--from", "b1", "--mode", "InPlace", "--wait"],
            vec!["archivist", "restore", "describe", "r1", "-o", "json"],
            vec!["archivist", "drill", "report", "mailstore", "-n", "mail", "-o", "yaml"],
        ] {
            Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        }
    }
}
