//! `archivist restore create|list|describe`: restores for people, on a live cluster.

use super::cluster::{block_on, connect, ClusterArgs};
use super::error::CliError;
use super::fetch::{events, get, list};
use super::output::{write_structured, ObjectList, OutputFormat};
use super::view::progress::RestoreProgress;
use super::wait::{create_then_follow, CreateOptions};
use super::view::restore::{describe, list_table};
use crate::api::{ArchiveBackup, BackupPolicy, RepositorySource, RestoreMode, RestoreRequest, RestoreRequestSpec, RestoreSelect, RestoreSource, RestoreTarget, SourceFrom};
use crate::plan::names::requested_restore_name;
use crate::plan::validate::validate_restore_request_object;
use kube::api::Api;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// The `restore` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RestoreCommand {
    /// Restore a backup (or a policy's newest one) into new PVCs: a RestoreRequest.
    Create(CreateArgs),
    /// List the RestoreRequests.
    List(ListArgs),
    /// Show one RestoreRequest: its source, where each item went, and its Events.
    Describe(DescribeArgs),
}

/// `--mode`: how the restored data is put in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "PascalCase")]
pub enum ModeArg {
    /// New PVCs and databases only.
    Volumes,
    /// New PVCs plus a temporary copy of the archive server mounting them.
    SideBySide,
    /// Replace the target's PVCs, keeping the old volumes and a pre-restore backup.
    InPlace,
}

/// `--select`: which backup of `--policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "PascalCase")]
pub enum SelectArg {
    /// The newest Completed backup.
    Latest,
    /// The newest Completed backup whose verification passed.
    LatestVerified,
}

/// `--source-from`: where the data comes from (`spec.source.from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "PascalCase")]
pub enum SourceArg {
    /// The snapshots when they all exist, else the repository.
    Auto,
    /// The VolumeSnapshots and Secret copy in the cluster.
    Snapshots,
    /// The exported copy in the restic repository.
    Repository,
}

/// Arguments of `archivist restore create`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["from", "policy"])))]
pub struct CreateArgs {
    /// The ArchiveBackup to restore.
    #[arg(long, value_name = "BACKUP")]
    pub from: Option<String>,
    /// Restore the newest backup of this BackupPolicy (see `--select`).
    #[arg(long, value_name = "POLICY")]
    pub policy: Option<String>,
    /// With `--policy`: which backup (default `Latest`).
    #[arg(long, value_enum)]
    pub select: Option<SelectArg>,
    /// Where the data comes from (default `Auto`: the snapshots when they all exist, else the
    /// repository).
    #[arg(long, value_enum, value_name = "FROM")]
    pub source_from: Option<SourceArg>,
    /// Restore from the restic repository of this Secret (its restic environment), finding the
    /// backup or policy by name in the repository's manifests: no ArchiveBackup object needed
    /// (an empty namespace, a new cluster).
    #[arg(long, value_name = "SECRET")]
    pub repository_secret: Option<String>,
    /// With `--repository-secret`: the namespace the restore point was exported from, when two
    /// namespaces exported one of that name.
    #[arg(long, value_name = "NAMESPACE", requires = "repository_secret")]
    pub repository_namespace: Option<String>,
    /// How the restored data is put in place.
    #[arg(long, value_enum, default_value_t = ModeArg::Volumes)]
    pub mode: ModeArg,
    /// The namespace to restore into. Default: the request's namespace.
    #[arg(long, value_name = "NAMESPACE")]
    pub target_namespace: Option<String>,
    /// Appended to every restored name, usually starting with `-` (`--name-suffix -copy`).
    /// Default: `-r-` and 5 characters of the request's uid.
    #[arg(long, value_name = "SUFFIX", allow_hyphen_values = true)]
    pub name_suffix: Option<String>,
    /// Restore only these stores (comma-separated); default every store.
    #[arg(long, value_delimiter = ',', value_name = "STORE,...")]
    pub stores: Vec<String>,
    /// Leave out the master database and the copied Secrets.
    #[arg(long)]
    pub without_master: bool,
    /// The RestoreRequest's name. Default: `<backup or policy>-restore-<yyyymmddhhmmss>` (UTC).
    #[arg(long)]
    pub name: Option<String>,
    /// Follow the restore with a line per phase and the restored names; exit 0 when it
    /// completes, 1 when it fails.
    #[arg(long)]
    pub wait: bool,
    /// With `--wait`: give up (exit 1) after this many seconds; the restore itself goes on.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub timeout: u64,
    /// How to print the created object (`table`: one line).
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Connection flags.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Arguments of `archivist restore list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// List the requests of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Connection flags.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Arguments of `archivist restore describe`.
#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// The RestoreRequest.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Output format (`json`/`yaml`: the object).
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Connection flags.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Runs a `restore` subcommand.
pub fn run(command: RestoreCommand, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    block_on(async move {
        match command {
            RestoreCommand::Create(args) => create(&args, out).await,
            RestoreCommand::List(args) => list_requests(&args, out).await,
            RestoreCommand::Describe(args) => describe_request(&args, out).await,
        }
    })
}

/// Refuses flag combinations clap cannot express (exit 2, naming the flag).
fn check_flags(args: &CreateArgs) -> Result<(), CliError> {
    if args.select.is_some() && args.policy.is_none() {
        return Err(CliError::Argument { flag: "--select".into(), message: "chooses a backup of --policy; with --from the backup is named".into() });
    }
    Ok(())
}

/// The request the flags describe, in `namespace`.
fn request_from(args: &CreateArgs, namespace: &str, now: chrono::DateTime<chrono::Utc>) -> RestoreRequest {
    let source = RestoreSource {
        backup_name: args.from.clone(),
        policy_name: args.policy.clone(),
        select: args.policy.as_ref().map(|_| match args.select.unwrap_or(SelectArg::Latest) {
            SelectArg::Latest => RestoreSelect::Latest,
            SelectArg::LatestVerified => RestoreSelect::LatestVerified,
        }),
        from: args.source_from.map(|s| match s {
            SourceArg::Auto => SourceFrom::Auto,
            SourceArg::Snapshots => SourceFrom::Snapshots,
            SourceArg::Repository => SourceFrom::Repository,
        }),
        repository: args.repository_secret.as_ref().map(|secret| RepositorySource {
            secret_name: secret.clone(),
            namespace: args.repository_namespace.clone(),
            image: None,
        }),
    };
    let mode = match args.mode {
        ModeArg::Volumes => RestoreMode::Volumes,
        ModeArg::SideBySide => RestoreMode::SideBySide,
        ModeArg::InPlace => RestoreMode::InPlace,
    };
    let from = args.from.as_deref().or(args.policy.as_deref()).unwrap_or("restore");
    let name = args.name.clone().unwrap_or_else(|| requested_restore_name(from, now));
    let mut request = RestoreRequest::new(
        &name,
        RestoreRequestSpec {
            source,
            target: RestoreTarget { mode, namespace: args.target_namespace.clone(), name_suffix: args.name_suffix.clone() },
            stores: args.stores.clone(),
            include_master: !args.without_master,
            sql_target: None,
            post_restore: Vec::new(),
            ttl_seconds_after_finished: None,
        },
    );
    request.metadata.namespace = Some(namespace.to_string());
    request
}

/// The flag that sets a field of the request, so an error names what the person typed.
fn flag_of(field: &str) -> String {
    let flag = match field {
        "metadata.name" => "--name",
        "spec.source.backupName" => "--from",
        "spec.source.policyName" => "--policy",
        "spec.target.mode" => "--mode",
        "spec.target.namespace" => "--target-namespace",
        "spec.target.nameSuffix" => "--name-suffix",
        f if f.starts_with("spec.stores") => "--stores",
        other => other,
    };
    flag.to_string()
}

/// Checks the source exists, creates the RestoreRequest and, with `--wait`, follows it.
async fn create(args: &CreateArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    check_flags(args)?;
    let cluster = connect(&args.cluster).await?;
    let namespace = cluster.namespace.as_str();
    let request = request_from(args, namespace, chrono::Utc::now());
    let name = request.metadata.name.clone().unwrap_or_default();
    if let Some(problem) = validate_restore_request_object(&request).into_iter().next() {
        return Err(CliError::Object { object: format!("RestoreRequest {namespace}/{name}"), field: flag_of(&problem.field), message: problem.message });
    }
    if let Some(backup) = &args.from {
        get::<ArchiveBackup>(&cluster.client, namespace, backup).await?;
    }
    if let Some(policy) = &args.policy {
        get::<BackupPolicy>(&cluster.client, namespace, policy).await?;
    }
    let api = Api::<RestoreRequest>::namespaced(cluster.client.clone(), namespace);
    let options = CreateOptions { output: args.output, wait: args.wait, timeout: Duration::from_secs(args.timeout) };
    let mut progress = RestoreProgress::default();
    create_then_follow(api, &request, options, out, |r: &RestoreRequest, elapsed| {
        (progress.observe(r.status.as_ref(), elapsed), RestoreProgress::outcome(r.status.as_ref()))
    })
    .await
}

/// Lists the requests of the namespace (or every namespace).
async fn list_requests(args: &ListArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    let cluster = connect(&args.cluster).await?;
    let scope = (!args.all_namespaces).then_some(cluster.namespace.as_str());
    let mut requests: Vec<RestoreRequest> = list(&cluster.client, scope).await?;
    requests.iter_mut().for_each(super::fetch::without_managed_fields);
    match args.output {
        OutputFormat::Table if requests.is_empty() => {
            let scope = scope.map_or_else(|| "any namespace".to_string(), |ns| format!("namespace {ns}"));
            writeln!(out, "No RestoreRequests found in {scope}.")?;
        }
        OutputFormat::Table => write!(out, "{}", list_table(&requests, args.all_namespaces, chrono::Utc::now()))?,
        format => write_structured(out, format, &ObjectList::new(requests))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Describes one request with its Events.
async fn describe_request(args: &DescribeArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    let cluster = connect(&args.cluster).await?;
    let mut request: RestoreRequest = get(&cluster.client, &cluster.namespace, &args.name).await?;
    super::fetch::without_managed_fields(&mut request);
    match args.output {
        OutputFormat::Table => {
            let events = events(&cluster.client, &cluster.namespace, "RestoreRequest", &args.name).await?;
            write!(out, "{}", describe(&request, &events, chrono::Utc::now()))?;
        }
        format => write_structured(out, format, &request)?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Harness {
        #[command(flatten)]
        args: CreateArgs,
    }

    fn parse(argv: &[&str]) -> Result<CreateArgs, clap::Error> {
        Harness::try_parse_from(std::iter::once("restore-create").chain(argv.iter().copied())).map(|h| h.args)
    }

    #[test]
    fn the_flags_make_the_request_the_api_describes() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z").expect("time").to_utc();
        assert_eq!(parse(&["--from", "b", "--name-suffix", "-copy"]).expect("a suffix may start with -").name_suffix.as_deref(), Some("-copy"));
        let args = parse(&["--policy", "mailstore", "--select", "LatestVerified", "--mode", "SideBySide", "--stores", "s1,s2", "--without-master"]).expect("parse");
        let request = request_from(&args, "mail", at);
        assert_eq!(request.metadata.name.as_deref(), Some("mailstore-restore-20261203100000"));
        assert_eq!(request.metadata.namespace.as_deref(), Some("mail"));
        assert_eq!(request.spec.source, RestoreSource { backup_name: None, policy_name: Some("mailstore".into()), select: Some(RestoreSelect::LatestVerified), ..Default::default() });
        assert_eq!(request.spec.target.mode, RestoreMode::SideBySide);
        assert_eq!(request.spec.stores, ["s1", "s2"]);
        assert!(!request.spec.include_master);
        assert!(validate_restore_request_object(&request).is_empty());
        let from = request_from(&parse(&["--from", "b1"]).expect("parse"), "mail", at);
        assert_eq!(from.spec.source, RestoreSource { backup_name: Some("b1".into()), policy_name: None, select: None, ..Default::default() });
        assert_eq!(from.spec.target.mode, RestoreMode::Volumes);
        assert!(from.spec.include_master);
        let args = parse(&["--policy", "mailstore", "--repository-secret", "archive-repo", "--repository-namespace", "mail", "--source-from", "Repository"]).expect("parse");
        let dr = request_from(&args, "mail-dr", at);
        assert_eq!(dr.spec.source.from, Some(SourceFrom::Repository));
        assert_eq!(dr.spec.source.repository, Some(RepositorySource { secret_name: "archive-repo".into(), namespace: Some("mail".into()), image: None }));
        assert!(validate_restore_request_object(&dr).is_empty());
        assert!(parse(&["--policy", "p", "--repository-namespace", "mail"]).is_err(), "a namespace needs the repository");
        let snapshots = request_from(&parse(&["--from", "b1", "--source-from", "Snapshots", "--repository-secret", "r"]).expect("parse"), "mail", at);
        let problems = validate_restore_request_object(&snapshots);
        assert_eq!(problems.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(), ["spec.source.repository"], "{problems:?}");
    }

    #[test]
    fn a_source_is_required_and_only_one() {
        for argv in [vec![], vec!["--from", "b", "--policy", "p"], vec!["--from", "b", "--mode", "Sideways"]] {
            let err = parse(&argv).expect_err("refused");
            assert_eq!(err.exit_code(), 2, "{argv:?}");
        }
        let err = check_flags(&parse(&["--from", "b", "--select", "Latest"]).expect("parse")).expect_err("refused");
        assert_eq!(err.to_string(), "--select: chooses a backup of --policy; with --from the backup is named");
        assert!(check_flags(&parse(&["--policy", "p", "--select", "Latest"]).expect("parse")).is_ok());
    }

    #[test]
    fn a_bad_suffix_is_refused_naming_the_flag() {
        let args = parse(&["--from", "b1", "--name-suffix=Bad'"]).expect("parse");
        let request = request_from(&args, "mail", chrono::Utc::now());
        let problem = validate_restore_request_object(&request).into_iter().next().expect("a problem");
        assert_eq!(flag_of(&problem.field), "--name-suffix");
    }
}
