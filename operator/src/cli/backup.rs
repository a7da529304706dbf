//! `archivist backup create|list|describe`: backups for people, on a live cluster.

use super::cluster::{block_on, connect, ClusterArgs};
use super::error::CliError;
use super::fetch::{events, get, list};
use super::output::{write_structured, ObjectList, OutputFormat};
use super::view::progress::BackupProgress;
use super::wait::{create_then_follow, CreateOptions};
use super::view::backup::{describe, list_table};
use crate::api::{ArchiveBackup, ArchiveBackupSpec, BackupPolicy, BackupReason};
use crate::plan::names::requested_backup_name;
use crate::plan::validate::{validate_archive_backup_object, validate_backup_policy_object};
use kube::api::Api;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// The `backup` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BackupCommand {
    /// Start a backup of a BackupPolicy now (an ArchiveBackup with reason Manual).
    Create(CreateArgs),
    /// List the ArchiveBackups: phase, quiesce window, verification, age.
    List(ListArgs),
    /// Show one ArchiveBackup: its run, quiesce window, verification, items and Events.
    Describe(DescribeArgs),
}

/// Arguments of `archivist backup create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The BackupPolicy to run, in the namespace.
    #[arg(value_name = "POLICY")]
    pub policy: String,
    /// The ArchiveBackup's name. Default: `<policy>-manual-<yyyymmddhhmmss>` (UTC).
    #[arg(long)]
    pub name: Option<String>,
    /// Put the backup on legal hold: retention never prunes it.
    #[arg(long)]
    pub hold: bool,
    /// Follow the run with a line per phase; exit 0 when it completes, 1 when it fails.
    #[arg(long)]
    pub wait: bool,
    /// With `--wait`: give up (exit 1) after this many seconds; the run itself goes on.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub timeout: u64,
    /// How to print the created object (`table`: one line).
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Connection flags.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Arguments of `archivist backup list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// List the backups of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Only the backups of this BackupPolicy.
    #[arg(long, value_name = "POLICY")]
    pub policy: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Connection flags.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Arguments of `archivist backup describe`.
#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// The ArchiveBackup.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Output format (`json`/`yaml`: the object).
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Connection flags.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Runs a `backup` subcommand.
pub fn run(command: BackupCommand, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    block_on(async move {
        match command {
            BackupCommand::Create(args) => create(&args, out).await,
            BackupCommand::List(args) => list_backups(&args, out).await,
            BackupCommand::Describe(args) => describe_backup(&args, out).await,
        }
    })
}

/// Checks the policy, creates the ArchiveBackup and, with `--wait`, follows it.
async fn create(args: &CreateArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    let cluster = connect(&args.cluster).await?;
    let namespace = cluster.namespace.as_str();
    let policy: BackupPolicy = get(&cluster.client, namespace, &args.policy).await?;
    if let Some(problem) = validate_backup_policy_object(&policy).into_iter().next() {
        return Err(CliError::Object { object: format!("BackupPolicy {namespace}/{}", args.policy), field: problem.field, message: problem.message });
    }
    let name = args.name.clone().unwrap_or_else(|| requested_backup_name(&args.policy, chrono::Utc::now()));
    let mut backup = ArchiveBackup::new(&name, ArchiveBackupSpec { policy_name: args.policy.clone(), reason: BackupReason::Manual, hold: args.hold });
    backup.metadata.namespace = Some(namespace.to_string());
    if let Some(problem) = validate_archive_backup_object(&backup).into_iter().next() {
        let field = if problem.field == "metadata.name" { "--name".to_string() } else { problem.field };
        return Err(CliError::Object { object: format!("ArchiveBackup {namespace}/{name}"), field, message: problem.message });
    }
    let api = Api::<ArchiveBackup>::namespaced(cluster.client.clone(), namespace);
    let options = CreateOptions { output: args.output, wait: args.wait, timeout: Duration::from_secs(args.timeout) };
    let mut progress = BackupProgress::default();
    create_then_follow(api, &backup, options, out, |b: &ArchiveBackup, elapsed| {
        (progress.observe(b.status.as_ref(), elapsed), BackupProgress::outcome(b.status.as_ref()))
    })
    .await
}

/// Lists the backups of the namespace (or every namespace).
async fn list_backups(args: &ListArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    let cluster = connect(&args.cluster).await?;
    let scope = (!args.all_namespaces).then_some(cluster.namespace.as_str());
    let mut backups: Vec<ArchiveBackup> = list(&cluster.client, scope).await?;
    backups.iter_mut().for_each(super::fetch::without_managed_fields);
    if let Some(policy) = &args.policy {
        backups.retain(|b| &b.spec.policy_name == policy);
    }
    match args.output {
        OutputFormat::Table if backups.is_empty() => {
            let scope = scope.map_or_else(|| "any namespace".to_string(), |ns| format!("namespace {ns}"));
            writeln!(out, "No ArchiveBackups found in {scope}.")?;
        }
        OutputFormat::Table => write!(out, "{}", list_table(&backups, args.all_namespaces, chrono::Utc::now()))?,
        format => write_structured(out, format, &ObjectList::new(backups))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Describes one backup with its Events.
async fn describe_backup(args: &DescribeArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    let cluster = connect(&args.cluster).await?;
    let mut backup: ArchiveBackup = get(&cluster.client, &cluster.namespace, &args.name).await?;
    super::fetch::without_managed_fields(&mut backup);
    match args.output {
        OutputFormat::Table => {
            let events = events(&cluster.client, &cluster.namespace, "ArchiveBackup", &args.name).await?;
            write!(out, "{}", describe(&backup, &events, chrono::Utc::now()))?;
        }
        format => write_structured(out, format, &backup)?,
    }
    Ok(ExitCode::SUCCESS)
}
