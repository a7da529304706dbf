//! `archivist release-finalizers`: after `helm uninstall`, takes Archivist's finalizers off its
//! objects so that deleting a namespace (or a policy) does not wait forever for an operator
//! that is gone. A run that may hold its archive quiesced keeps its finalizer: that is the one
//! thing an operator must still do.

use super::cluster::{block_on, connect, ClusterArgs};
use super::error::CliError;
use super::fetch::list;
use crate::api::{ArchiveBackup, BackupPolicy};
use crate::controllers::backup_policy::FINALIZER as POLICY_FINALIZER;
use crate::plan::backup::RELEASE_FINALIZER;
use crate::plan::claim::release_finalizer_removable_unattended;
use kube::api::Api;
use kube::ResourceExt;
use std::io::Write;
use std::process::ExitCode;

/// Arguments of `archivist release-finalizers`.
#[derive(Debug, clap::Args)]
pub struct ReleaseFinalizersArgs {
    /// Every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Say what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Connection flags.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Removes `archivist.dev/deletion-policy` from every BackupPolicy and `archivist.dev/release`
/// from every ArchiveBackup that cannot hold its archive (with a resourceVersion precondition,
/// so a concurrent change is not overwritten); one line per object. Exit 1, naming them, when
/// some runs may still hold an archive quiesced.
pub fn run(args: &ReleaseFinalizersArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    block_on(async move {
        let cluster = connect(&args.cluster).await?;
        let scope = (!args.all_namespaces).then_some(cluster.namespace.as_str());
        let verb = if args.dry_run { "would remove" } else { "removed" };
        let policies: Vec<BackupPolicy> = list(&cluster.client, scope).await?;
        for policy in policies.iter().filter(|p| p.finalizers().iter().any(|f| f == POLICY_FINALIZER)) {
            let (ns, name) = (policy.namespace().unwrap_or_default(), policy.name_any());
            if !args.dry_run {
                let api = Api::<BackupPolicy>::namespaced(cluster.client.clone(), &ns);
                crate::kube::finalizers::set(&api, policy, POLICY_FINALIZER, false)
                    .await
                    .map_err(|e| CliError::Runtime(format!("BackupPolicy {ns}/{name}: cannot remove {POLICY_FINALIZER}: {e}")))?;
            }
            writeln!(out, "backuppolicy {ns}/{name}: {verb} {POLICY_FINALIZER}")?;
        }
        let backups: Vec<ArchiveBackup> = list(&cluster.client, scope).await?;
        let mut held = Vec::new();
        for backup in backups.iter().filter(|b| b.finalizers().iter().any(|f| f == RELEASE_FINALIZER)) {
            let (ns, name) = (backup.namespace().unwrap_or_default(), backup.name_any());
            let status = backup.status.clone().unwrap_or_default();
            if !release_finalizer_removable_unattended(&status) {
                let phase = status.phase.map_or_else(|| "-".to_string(), |p| format!("{p:?}"));
                held.push(format!("ArchiveBackup {ns}/{name} (phase {phase}) may hold its archive quiesced"));
                continue;
            }
            if !args.dry_run {
                let api = Api::<ArchiveBackup>::namespaced(cluster.client.clone(), &ns);
                crate::kube::finalizers::set(&api, backup, RELEASE_FINALIZER, false)
                    .await
                    .map_err(|e| CliError::Runtime(format!("ArchiveBackup {ns}/{name}: cannot remove {RELEASE_FINALIZER}: {e}")))?;
            }
            writeln!(out, "archivebackup {ns}/{name}: {verb} {RELEASE_FINALIZER}")?;
        }
        if held.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        for line in &held {
            eprintln!("archivist: {line}: its finalizer stays; install the operator again to release it");
        }
        Ok(ExitCode::FAILURE)
    })
}
