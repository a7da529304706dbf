//! The RestoreRequest controller: drives a restore through `plan::restore`, one step per
//! reconcile: observe, decide, act, record.

mod act;
mod observe;

use super::error::Error;
use super::Context;
use crate::api::{ArchiveBackup, RestoreRequest};
use crate::kube::restore::RESTORE;
use kube::runtime::reflector::ObjectRef;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::runtime::controller::Action;
use kube::runtime::{watcher, Controller};
use kube::ResourceExt;
use std::sync::Arc;
use std::time::Duration;

/// Runs the controller until the process is signalled.
pub async fn run(ctx: Arc<Context>) {
    Controller::new(ctx.watched::<RestoreRequest>(), watcher::Config::default().any_semantic())
        .owns(ctx.watched::<Job>(), watcher::Config::default())
        // An in-place restore waits for its pre-restore backup, labelled with its name.
        .watches(ctx.watched::<ArchiveBackup>(), watcher::Config::default(), |backup| {
            let request = backup.labels().get(RESTORE)?.clone();
            Some(ObjectRef::new(&request).within(&backup.namespace()?))
        })
        // Restored PVCs (labelled with the request, not owned by it so they outlive it): a
        // restore moves on when they bind instead of at its next 2 s poll.
        .watches(ctx.watched::<PersistentVolumeClaim>(), watcher::Config::default().labels(RESTORE), |claim| {
            let request = claim.labels().get(RESTORE)?.clone();
            Some(ObjectRef::new(&request).within(&claim.namespace()?))
        })
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "restorerequest reconcile ended with an error");
            }
        })
        .await;
}

/// One reconcile of one RestoreRequest.
pub async fn reconcile(request: Arc<RestoreRequest>, ctx: Arc<Context>) -> Result<Action, Error> {
    let observed = observe::observe(&request, &ctx).await?;
    let step = observed.next_step();
    tracing::debug!(namespace = %observed.namespace, name = %observed.name, ?step, "next restore step");
    act::act(&request, &ctx, observed, step).await
}

fn error_policy(request: Arc<RestoreRequest>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(namespace = request.namespace().unwrap_or_default(), name = request.name_any(), reason = error.reason(), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}
