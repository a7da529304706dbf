//! The RestoreRequest controller: drives a restore through `plan::restore`, one step per
//! reconcile: observe, decide, act, record.

mod act;
mod observe;

use super::backoff;
use super::error::Context as _;
use super::fresh::{self, Fresh};
use super::error::Error;
use super::Context;
use crate::api::RestoreRequest;
use crate::kube::restore::RESTORE;
use futures::channel::mpsc::UnboundedReceiver;
use kube::runtime::reflector::{ObjectRef, ReflectHandle};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::runtime::controller::Action;
use kube::runtime::{watcher, Controller};
use kube::ResourceExt;
use std::sync::Arc;
use tracing::Instrument;

/// Runs the controller until `stop` resolves (the shutdown began).
///
/// It is woken by the shared RestoreRequest cache (`requests`), and by the ArchiveBackups
/// labelled with a request (`by_backup`: an in-place restore waits for its pre-restore backup);
/// see `controllers::caches`.
pub async fn run(
    ctx: Arc<Context>,
    requests: ReflectHandle<RestoreRequest>,
    by_backup: UnboundedReceiver<ObjectRef<RestoreRequest>>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // Only our own Jobs are watched: each carries `archivist.dev/restore`.
    Controller::for_shared_stream(requests, ctx.caches.restores.clone())
        .with_config(super::controller_config())
        .owns(ctx.watched::<Job>(), watcher::Config::default().labels(RESTORE))
        .reconcile_on(by_backup)
        // Restored PVCs (labelled with the request, not owned by it so they outlive it): a
        // restore moves on when they bind instead of at its next 2 s poll.
        .watches(ctx.watched::<PersistentVolumeClaim>(), watcher::Config::default().labels(RESTORE), |claim| {
            let request = claim.labels().get(RESTORE)?.clone();
            Some(ObjectRef::new(&request).within(&claim.namespace()?))
        })
        .graceful_shutdown_on(stop)
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
    let span = tracing::info_span!("reconcile", kind = "RestoreRequest", namespace = request.namespace().unwrap_or_default(), name = request.name_any());
    let key = backoff::key("RestoreRequest", request.namespace().as_deref(), &request.name_any());
    let result = async {
        let mut request = request;
        let mut observed = observe::observe(&request, &ctx).await?;
        let mut step = observed.next_step();
        if step.has_side_effect() {
            // A stale status could repeat a side effect (`controllers::fresh`): a workload copy
            // the TTL deleted, seen from a status still Restoring, would be made again.
            let api = kube::Api::<RestoreRequest>::namespaced(ctx.client.clone(), &observed.namespace);
            match fresh::read_again(&api, &request).await.during(|| format!("failed to read RestoreRequest {}/{}", observed.namespace, observed.name))? {
                Fresh::Current => {}
                Fresh::Gone => return Ok(Action::await_change()),
                Fresh::Newer(newer) => {
                    request = Arc::new(newer);
                    observed = observe::observe(&request, &ctx).await?;
                    step = observed.next_step();
                }
            }
        }
        tracing::debug!(?step, "next restore step");
        act::act(&request, &ctx, observed, step).await
    }
    .instrument(span)
    .await;
    if result.is_ok() {
        ctx.backoff.succeeded(&key);
    }
    result
}

fn error_policy(request: Arc<RestoreRequest>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff.failed(&backoff::key("RestoreRequest", request.namespace().as_deref(), &request.name_any()));
    tracing::warn!(namespace = request.namespace().unwrap_or_default(), name = request.name_any(), reason = error.reason(), %error, retry_in_ms = delay.as_millis() as u64, "reconcile failed; retrying");
    Action::requeue(delay)
}
