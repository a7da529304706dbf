//! The `archivist` command's subcommands.
//!
//! Exit status: 0 success; 1 `validate` found problems; 2 bad input (an unreadable or malformed
//! file, a wrong kind, an unknown time zone, a bad cron expression, a usage error), with one
//! line on stderr that names the file and the field.

pub mod crds;
pub mod error;
pub mod input;
pub mod retention;

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
    Crds,
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
        Command::Crds => crds::run(&mut stdout),
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
