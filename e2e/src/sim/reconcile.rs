//! Plumbing shared by the simulator's controllers (storage, snapshots): the reconcile error,
//! the error policy, server-side apply parameters and the clock.

use std::fmt::{Debug, Display};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use kube::api::PatchParams;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt as _};

/// Field manager of everything the simulator writes.
pub const FIELD_MANAGER: &str = "archivist-sim";

/// How long to wait before retrying after a failed reconcile.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(2);

/// A failed reconcile: what failed, with its causes (the message names the object).
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct ReconcileError(anyhow::Error);

impl ReconcileError {
    /// Whether the cause is a write conflict (409): normal when two writers race.
    pub fn is_conflict(&self) -> bool {
        self.0.chain().any(|cause| {
            matches!(cause.downcast_ref::<kube::Error>(), Some(kube::Error::Api(status)) if status.code == 409)
        })
    }
}

impl From<anyhow::Error> for ReconcileError {
    fn from(err: anyhow::Error) -> Self {
        Self(err)
    }
}

impl From<kube::Error> for ReconcileError {
    fn from(err: kube::Error) -> Self {
        Self(err.into())
    }
}

/// Error policy of every simulator controller: log, then retry shortly.
pub fn retry_after_error<K: Resource<DynamicType = ()>, C>(
    obj: Arc<K>,
    err: &ReconcileError,
    _ctx: Arc<C>,
) -> Action {
    let kind = K::kind(&());
    let object = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
    if err.is_conflict() {
        tracing::debug!(%kind, %object, "reconcile raced with another writer, retrying: {err}");
    } else {
        tracing::warn!(%kind, %object, "reconcile failed: {err}");
    }
    Action::requeue(RETRY_AFTER_ERROR)
}

/// Runs a controller's result stream to its end, logging what failed outside reconciles
/// (watch errors); reconcile errors are logged by [`retry_after_error`].
pub async fn drain<S, T, E>(name: &str, results: S)
where
    S: Stream<Item = Result<T, E>>,
    T: Debug,
    E: Display,
{
    results
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(controller = name, "{err}");
            }
        })
        .await;
}

/// Server-side apply as the simulator, taking over fields from others.
pub fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// The current time.
pub fn now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}
