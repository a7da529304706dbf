//! `archivist status`: one line per BackupPolicy (see [`super::view::status`]).

use super::cluster::{block_on, connect, ClusterArgs};
use super::error::CliError;
use super::fetch::list;
use super::output::{write_structured, OutputFormat};
use super::view::status::{policy_health, status_table, PolicyHealth};
use crate::api::{ArchiveBackup, BackupPolicy};
use std::io::Write;
use std::process::ExitCode;

/// Arguments of `archivist status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The policies of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format (`json`/`yaml`: one record per policy).
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Connection flags.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Prints the health of every policy in scope, from two list requests.
pub fn run(args: &StatusArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    block_on(async move {
        let cluster = connect(&args.cluster).await?;
        let scope = (!args.all_namespaces).then_some(cluster.namespace.as_str());
        let policies: Vec<BackupPolicy> = list(&cluster.client, scope).await?;
        let backups: Vec<ArchiveBackup> = list(&cluster.client, scope).await?;
        let now = chrono::Utc::now();
        let rows: Vec<PolicyHealth> = policies.iter().map(|p| policy_health(p, &backups, now)).collect();
        match args.output {
            OutputFormat::Table if rows.is_empty() => {
                let scope = scope.map_or_else(|| "any namespace".to_string(), |ns| format!("namespace {ns}"));
                writeln!(out, "No BackupPolicies found in {scope}.")?;
            }
            OutputFormat::Table => write!(out, "{}", status_table(&rows, args.all_namespaces, now))?,
            format => write_structured(out, format, &rows)?,
        }
        Ok(ExitCode::SUCCESS)
    })
}
