//! The ArchiveBackup controller: drives one backup run through the state machine of
//! `plan::backup`, one step per reconcile: observe, decide, act, record.

mod act;
mod observe;

use super::error::Error;
use super::Context;
use crate::api::ArchiveBackup;
use crate::kube::snapshot::VolumeSnapshot;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::controller::Action;
use kube::runtime::{watcher, Controller};
use kube::ResourceExt;
use std::sync::Arc;
use std::time::Duration;

/// Runs the controller until the process is signalled.
pub async fn run(ctx: Arc<Context>) {
    Controller::new(ctx.watched::<ArchiveBackup>(), watcher::Config::default().any_semantic())
        .owns(ctx.watched::<VolumeSnapshot>(), watcher::Config::default())
        .owns(ctx.watched::<Job>(), watcher::Config::default())
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "archivebackup reconcile ended with an error");
            }
        })
        .await;
}

/// One reconcile of one ArchiveBackup.
pub async fn reconcile(backup: Arc<ArchiveBackup>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = tracing::info_span!("reconcile", kind = "ArchiveBackup", namespace = backup.namespace().unwrap_or_default(), name = backup.name_any());
    let _enter = span.enter();
    let observed = observe::observe(&backup, &ctx).await?;
    let step = observed.next_step(&ctx);
    tracing::debug!(?step, "next step");
    act::act(&backup, &ctx, observed, step).await
}

fn error_policy(backup: Arc<ArchiveBackup>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(namespace = backup.namespace().unwrap_or_default(), name = backup.name_any(), reason = error.reason(), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}
