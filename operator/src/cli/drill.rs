//! `archivist drill report POLICY`: the history of a policy's restore drills.

use super::cluster::{block_on, connect, ClusterArgs};
use super::error::CliError;
use super::fetch::get;
use super::output::{write_structured, OutputFormat};
use super::view::drill::{drills, report};
use crate::api::BackupPolicy;
use std::io::Write;
use std::process::ExitCode;

/// The `drill` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DrillCommand {
    /// The last 10 restore drills of a BackupPolicy (and the running one): when, which
    /// backup, the result, how long, the RestoreRequest, and why a drill failed.
    Report(ReportArgs),
}

/// Arguments of `archivist drill report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The BackupPolicy, in the namespace.
    #[arg(value_name = "POLICY")]
    pub policy: String,
    /// Output format (`json`/`yaml`: the drill records, newest first).
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Connection flags.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Runs a `drill` subcommand.
pub fn run(command: DrillCommand, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    match command {
        DrillCommand::Report(args) => block_on(async move {
            let cluster = connect(&args.cluster).await?;
            let policy: BackupPolicy = get(&cluster.client, &cluster.namespace, &args.policy).await?;
            match args.output {
                OutputFormat::Table => write!(out, "{}", report(&policy, chrono::Utc::now()))?,
                format => write_structured(out, format, &drills(&policy))?,
            }
            Ok(ExitCode::SUCCESS)
        }),
    }
}
