//! The `archivist` command's subcommands.
//!
//! Exit status: 0 success; 1 `validate` found problems; 2 bad input (an unreadable or malformed
//! file, a wrong kind, an unknown time zone, a bad cron expression, a usage error), with one
//! line on stderr that names the file and the field.

pub mod crds;
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
    let cli = Cli::parse();
    let mut stdout = std::io::stdout().lock();
    let result = match cli.command {
        Command::Crds(args) => crds::run(&args, &mut stdout),
        Command::Run(args) => run::run(&args),
        Command::Schedule { command } => schedule::run(command, &mut stdout),
        Command::Validate { files } => validate::run(&files, &mut stdout, &mut std::io::stderr().lock()),
        Command::Retention { command } => retention::run(command, &mut stdout),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("archivist: {err}");
            err.exit_code()
        }
    }
}
