//! `archivist schedule preview`: the next run times of a BackupPolicy, offline.
//!
//! A policy without `spec.schedule` (manual backups only) has no run times: JSON output is
//! `[]`, table output one line saying so, and the exit status is 0. A suspended policy
//! (`spec.suspend: true`) still shows the times its schedule names; table output adds a note
//! that they start only once the policy is resumed.

use super::error::CliError;
use super::input::read_object;
use crate::api::BackupPolicy;
use crate::plan::schedule::{parse_time_zone, Schedule, ScheduleError};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `archivist schedule ...`
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Print the next run times of a BackupPolicy's schedule (RFC 3339, UTC).
    Preview(PreviewArgs),
}

/// Arguments of `archivist schedule preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The BackupPolicy manifest (YAML).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// List the runs after this time (RFC 3339, for example 2026-11-22T00:00:00Z). Default: now.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// How many run times to list.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub count: u32,
    /// Output format: `table` (UTC and the policy's local time) or `json` (an array of strings).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// Output formats of `archivist schedule preview`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per run: the UTC time and the local time in the policy's time zone.
    Table,
    /// A JSON array of RFC 3339 UTC strings.
    Json,
}

/// Runs an `archivist schedule` subcommand.
pub fn run(command: ScheduleCommand, out: &mut impl Write) -> Result<ExitCode, CliError> {
    match command {
        ScheduleCommand::Preview(args) => preview(&args, out),
    }
}

/// Parses `--now`.
fn parse_now(text: &str) -> Result<DateTime<Utc>, CliError> {
    DateTime::parse_from_rfc3339(text).map(|t| t.to_utc()).map_err(|e| CliError::Argument {
        flag: "--now".into(),
        message: format!("{text:?} is not an RFC 3339 time such as 2026-11-22T02:00:00Z ({e})"),
    })
}

fn input_error(path: &Path, err: ScheduleError) -> CliError {
    let field = match err {
        ScheduleError::BadCron { .. } => "spec.schedule",
        ScheduleError::UnknownTimeZone { .. } => "spec.timeZone",
    };
    CliError::Input { path: path.to_path_buf(), field: field.into(), message: err.to_string() }
}

/// `archivist schedule preview`.
pub fn preview(args: &PreviewArgs, out: &mut impl Write) -> Result<ExitCode, CliError> {
    let now = match &args.now {
        Some(text) => parse_now(text)?,
        None => Utc::now(),
    };
    let policy: BackupPolicy = read_object(&args.policy)?;
    let spec = &policy.spec;
    // The time zone matters without a schedule too (retention buckets), so it is always checked.
    let time_zone = parse_time_zone(&spec.time_zone).map_err(|e| input_error(&args.policy, e))?;
    let runs = match &spec.schedule {
        Some(expr) => {
            let schedule = Schedule::parse(expr, &spec.time_zone).map_err(|e| input_error(&args.policy, e))?;
            schedule.upcoming(now, args.count as usize)
        }
        None => Vec::new(),
    };
    let utc = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    match args.output {
        Format::Json => {
            let strings: Vec<String> = runs.iter().map(utc).collect();
            let json = serde_json::to_string_pretty(&strings).map_err(std::io::Error::other)?;
            writeln!(out, "{json}")?;
        }
        Format::Table if spec.schedule.is_none() => {
            writeln!(out, "no schedule (spec.schedule is not set): manual backups only")?;
        }
        Format::Table => {
            writeln!(out, "{:<22}LOCAL ({})", "UTC", time_zone.name())?;
            for run in &runs {
                let local = run.with_timezone(&time_zone).format("%Y-%m-%d %H:%M:%S %:z %a");
                writeln!(out, "{:<22}{local}", utc(run))?;
            }
            if spec.suspend {
                writeln!(out, "note: spec.suspend is true; these runs start only once it is false")?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
