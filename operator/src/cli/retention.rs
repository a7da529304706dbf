//! `archivist retention preview`: what retention would keep and prune, offline.
//!
//! Reads a BackupPolicy (`--policy`), its ArchiveBackups (`--backups`: a List as
//! `kubectl get archivebackups -o yaml` prints, or multi-document YAML), optionally
//! ClusterRetentionPolicies (`--cluster-policy`, repeatable; every one given applies, since
//! offline there are no namespace labels to match their `namespaceSelector` against), and
//! prints one decision per backup, newest first.
//!
//! Backups of other policies (`spec.policyName` differs from the policy's `metadata.name`, or
//! both name a namespace and the namespaces differ) are ignored, with one note on stderr.
//!
//! `--restores` (optional) are the namespace's RestoreRequests, in the same formats as
//! `--backups` (`kubectl get restorerequests -o yaml`): a backup an unfinished one reads from
//! is kept, reason `restore-source`. Requests of another namespace (both name one and they
//! differ) are ignored, with a note on stderr. `PreRestore` backups are kept (`pre-restore`)
//! from the backups alone.

use super::error::CliError;
use super::input::{parse_object, read_documents, read_object, read_objects};
use crate::api::{ArchiveBackup, BackupPolicy, ClusterRetentionPolicy, RestoreRequest};
use crate::plan::retention::restores::restore_sources;
use crate::plan::retention::{cluster::plan_with_cluster, plan, Action, Decision, RetentionCandidate};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The `retention` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RetentionCommand {
    /// Show what retention would keep and prune, offline.
    Preview(PreviewArgs),
}

/// How to print the decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A table for people.
    Table,
    /// A JSON array of `{"name", "action", "reasons"}`, newest backup first.
    Json,
}

/// The arguments of `archivist retention preview`.
#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// A BackupPolicy manifest.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// The policy's ArchiveBackups: `kubectl get archivebackups -o yaml` output or multi-document YAML.
    #[arg(long, value_name = "FILE")]
    pub backups: PathBuf,
    /// The time to plan at (RFC 3339); default: the current time. Only cluster policies use it.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// ClusterRetentionPolicy manifests whose floors and ceilings apply too (all of them).
    #[arg(long = "cluster-policy", value_name = "FILE")]
    pub cluster_policy: Vec<PathBuf>,
    /// The namespace's RestoreRequests (`kubectl get restorerequests -o yaml` output or
    /// multi-document YAML): the backups unfinished ones read from are kept (`restore-source`).
    #[arg(long, value_name = "FILE")]
    pub restores: Option<PathBuf>,
}

/// Runs a `retention` subcommand.
pub fn run(command: RetentionCommand, out: &mut impl Write) -> Result<ExitCode, CliError> {
    match command {
        RetentionCommand::Preview(args) => preview(&args, out),
    }
}

fn input_error(path: &Path, field: impl Into<String>, message: impl Into<String>) -> CliError {
    CliError::Input { path: path.to_path_buf(), field: field.into(), message: message.into() }
}

/// Parses `--now`, defaulting to the current time (the one clock read of this subcommand).
fn parse_now(now: Option<&str>) -> Result<DateTime<Utc>, CliError> {
    match now {
        None => Ok(Utc::now()),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| CliError::Argument {
                flag: "--now".into(),
                message: format!("{text:?} is not an RFC 3339 time: {e}"),
            }),
    }
}

/// One backup of the policy, as read.
struct Read {
    backup: ArchiveBackup,
    candidate: RetentionCandidate,
}

fn preview(args: &PreviewArgs, out: &mut impl Write) -> Result<ExitCode, CliError> {
    let now = parse_now(args.now.as_deref())?;
    let policy: BackupPolicy = read_object(&args.policy)?;
    let policy_name = policy
        .metadata
        .name
        .clone()
        .ok_or_else(|| input_error(&args.policy, "metadata.name", "is missing"))?;
    let tz: Tz = policy.spec.time_zone.parse().map_err(|_| {
        input_error(
            &args.policy,
            "spec.timeZone",
            format!("unknown time zone {:?} (expected an IANA name such as Europe/Istanbul)", policy.spec.time_zone),
        )
    })?;
    let mut cluster = Vec::new();
    for path in &args.cluster_policy {
        cluster.extend(read_objects::<ClusterRetentionPolicy>(path)?.into_iter().map(|c| c.spec));
    }
    let mut requests = Vec::new();
    let mut other_requests = Vec::new();
    if let Some(path) = &args.restores {
        for request in read_objects::<RestoreRequest>(path)? {
            let other_namespace = matches!(
                (&policy.metadata.namespace, &request.metadata.namespace),
                (Some(a), Some(b)) if a != b
            );
            if other_namespace {
                other_requests.push(request.metadata.name.clone().unwrap_or_default());
            } else {
                requests.push(request);
            }
        }
    }

    let mut read = Vec::new();
    let mut ignored = Vec::new();
    for doc in read_documents(&args.backups)? {
        let backup: ArchiveBackup = parse_object(&args.backups, &doc)?;
        let other_namespace = matches!(
            (&policy.metadata.namespace, &backup.metadata.namespace),
            (Some(a), Some(b)) if a != b
        );
        if backup.spec.policy_name != policy_name || other_namespace {
            ignored.push(backup.metadata.name.clone().unwrap_or_default());
            continue;
        }
        let candidate = RetentionCandidate::try_from(&backup).map_err(|e| {
            input_error(&args.backups, format!("{}{}", doc.location, e.field()), e.message())
        })?;
        read.push(Read { backup, candidate });
    }
    if !ignored.is_empty() {
        eprintln!(
            "archivist: note: ignoring {} backup(s) not of policy {policy_name}: {}",
            ignored.len(),
            ignored.join(", ")
        );
    }
    if !other_requests.is_empty() {
        eprintln!(
            "archivist: note: ignoring {} restore request(s) of another namespace: {}",
            other_requests.len(),
            other_requests.join(", ")
        );
    }

    let backups: Vec<ArchiveBackup> = read.iter().map(|r| r.backup.clone()).collect();
    let sources = restore_sources(&requests, &backups);
    for r in &mut read {
        r.candidate = r.candidate.clone().reading(&sources);
    }

    let candidates: Vec<RetentionCandidate> = read.iter().map(|r| r.candidate.clone()).collect();
    let rules = &policy.spec.retention;
    let decisions = if cluster.is_empty() {
        plan(rules, tz, &candidates, now)
    } else {
        plan_with_cluster(rules, tz, &candidates, now, &cluster)
    };
    match args.output {
        OutputFormat::Json => {
            let json = serde_json::to_string_pretty(&decisions)
                .map_err(|e| CliError::Output(std::io::Error::other(e)))?;
            writeln!(out, "{json}")?;
        }
        OutputFormat::Table => write_table(out, &decisions, &read, tz)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the decisions as a table: name, time in the policy's zone, phase, verification,
/// action, reasons; then a one-line summary.
fn write_table(out: &mut impl Write, decisions: &[Decision], read: &[Read], tz: Tz) -> std::io::Result<()> {
    let by_name: HashMap<&str, &Read> =
        read.iter().map(|r| (r.candidate.name.as_str(), r)).collect();
    let mut rows = vec![["NAME", "TIME", "PHASE", "VERIFIED", "ACTION", "REASONS"].map(String::from)];
    for d in decisions {
        let r = by_name.get(d.name.as_str());
        let status = r.and_then(|r| r.backup.status.as_ref());
        let dash = || "-".to_string();
        rows.push([
            d.name.clone(),
            r.map(|r| r.candidate.time.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z").to_string())
                .unwrap_or_else(dash),
            status.and_then(|s| s.phase).map(|p| format!("{p:?}")).unwrap_or_else(dash),
            status
                .and_then(|s| s.verification.as_ref())
                .map(|v| format!("{:?}", v.state))
                .unwrap_or_else(dash),
            d.action.to_string(),
            if d.reasons.is_empty() {
                dash()
            } else {
                d.reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
            },
        ]);
    }
    let widths: Vec<usize> =
        (0..6).map(|c| rows.iter().map(|row| row[c].chars().count()).max().unwrap_or(0)).collect();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   ", width = widths[c]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    let keep = decisions.iter().filter(|d| d.action == Action::Keep).count();
    writeln!(out, "\n{} backups: keep {keep}, prune {} (times in {tz})", decisions.len(), decisions.len() - keep)
}
