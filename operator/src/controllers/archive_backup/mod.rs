//! The ArchiveBackup controller: drives one backup run through the state machine of
//! `plan::backup`, one step per reconcile: observe, decide, act, record.

mod act;
mod export;
mod observe;

use super::backoff;
use super::fresh::{self, Fresh};
use super::error::{Context as _, Error};
use super::Context;
use crate::api::{ArchiveBackup, BackupPhase};
use observe::OtherRuns;
use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, ReflectHandle};
use kube::runtime::Controller;
use kube::ResourceExt;
use std::sync::Arc;
use crate::plan::backup::is_settled;
use crate::plan::claim::holds_archive;
use std::time::Duration;
use tracing::Instrument;

/// Runs the controller until the shutdown (`stop`) has begun and every quiesced archive in
/// scope is released, or `timeout` after the shutdown began.
pub async fn run(
    ctx: Arc<Context>,
    backups: ReflectHandle<ArchiveBackup>,
    by_child: UnboundedReceiver<ObjectRef<ArchiveBackup>>,
    stop: tokio::sync::watch::Receiver<bool>,
    timeout: Duration,
) {
    // When the shutdown begins, every run is reconciled once more: those holding an archive
    // begin releasing (plan::backup, rule 5).
    let reconcile_all = futures::stream::unfold(Some(stop.clone()), |rx| async move {
        super::stopped(rx?).await;
        Some(((), None))
    });
    let drained = tokio::spawn(drain(ctx.clone(), stop, timeout));
    // Woken by the shared ArchiveBackup cache, and by the changes of what a run made (its
    // snapshots, Jobs and PVCs, each labelled `archivist.dev/backup`) once the run's children
    // index shows them (`controllers::caches`).
    Controller::for_shared_stream(backups, ctx.caches.backups.clone())
        .with_config(super::controller_config())
        .reconcile_on(by_child)
        .reconcile_all_on(reconcile_all)
        .graceful_shutdown_on(async move {
            let _ = drained.await;
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "archivebackup reconcile ended with an error");
            }
        })
        .await;
}

/// Resolves once the shutdown has begun and no run in scope holds an archive quiesced, or
/// `timeout` after the shutdown began (then the runs left are released by the next
/// operator, see `plan::backup`, rule 6, and by the sweeper).
async fn drain(ctx: Arc<Context>, stop: tokio::sync::watch::Receiver<bool>, timeout: Duration) {
    super::stopped(stop).await;
    let api = ctx.watched::<ArchiveBackup>();
    let released = async {
        loop {
            match api.list(&kube::api::ListParams::default()).await {
                Ok(list) => {
                    let holding: Vec<String> = list
                        .items
                        .iter()
                        .filter(|b| b.status.as_ref().is_some_and(holds_archive))
                        .map(|b| format!("{}/{}", b.namespace().unwrap_or_default(), b.name_any()))
                        .collect();
                    if holding.is_empty() {
                        return;
                    }
                    tracing::info!(?holding, "shutting down: waiting for these runs to release");
                }
                Err(e) => tracing::warn!(error = %e, "shutting down: cannot list ArchiveBackups"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    if tokio::time::timeout(timeout, released).await.is_err() {
        tracing::warn!(?timeout, "shutting down before every archive was released; the next operator releases the rest");
    }
}

/// One reconcile of one ArchiveBackup.
pub async fn reconcile(backup: Arc<ArchiveBackup>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = tracing::info_span!("reconcile", kind = "ArchiveBackup", namespace = backup.namespace().unwrap_or_default(), name = backup.name_any());
    let key = backoff::key("ArchiveBackup", backup.namespace().as_deref(), &backup.name_any());
    let result = async {
        if is_settled(&backup) {
            // Nothing left to do (`plan::backup::settled`): no request at all.
            tracing::trace!("settled");
            return Ok(Action::await_change());
        }
        let mut backup = backup;
        let mut observed = observe::observe(&backup, &ctx, OtherRuns::Cached).await?;
        if ctx.caches.settled_now(&observed.namespace, &observed.name) {
            // The object this reconcile holds is older than the cache, which has seen the run
            // settle meanwhile, and the children index has forgotten what it made: deciding
            // from both would see its snapshots gone. Checked after observing, so a run that
            // settles later was observed with its children still there.
            tracing::trace!("settled since this reconcile began");
            return Ok(Action::await_change());
        }
        let mut step = observed.next_step(&ctx);
        if step.has_side_effect() {
            // A stale status could repeat a side effect (`controllers::fresh`), and a stale
            // cache could let a pending run begin beside another (`observe::OtherRuns`): the
            // run and, while it is pending, its policy's other runs are read again.
            let api = kube::Api::<ArchiveBackup>::namespaced(ctx.client.clone(), &observed.namespace);
            let pending = backup.status.as_ref().and_then(|s| s.phase).unwrap_or(BackupPhase::Pending) == BackupPhase::Pending;
            let again = match fresh::read_again(&api, &backup).await.during(|| format!("failed to read ArchiveBackup {}/{}", observed.namespace, observed.name))? {
                Fresh::Gone => return Ok(Action::await_change()),
                Fresh::Current => pending,
                Fresh::Newer(newer) => {
                    backup = Arc::new(newer);
                    true
                }
            };
            if again {
                observed = observe::observe(&backup, &ctx, OtherRuns::Fresh).await?;
                step = observed.next_step(&ctx);
            }
        }
        tracing::debug!(?step, "next step");
        act::act(&backup, &ctx, observed, step).await
    }
    .instrument(span)
    .await;
    if result.is_ok() {
        ctx.backoff.succeeded(&key);
    }
    result
}

fn error_policy(backup: Arc<ArchiveBackup>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff.failed(&backoff::key("ArchiveBackup", backup.namespace().as_deref(), &backup.name_any()));
    tracing::warn!(namespace = backup.namespace().unwrap_or_default(), name = backup.name_any(), reason = error.reason(), %error, retry_in_ms = delay.as_millis() as u64, "reconcile failed; retrying");
    Action::requeue(delay)
}
