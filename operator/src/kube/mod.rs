//! The only place that talks to the API server: typed adapters for the objects Archivist
//! reads and writes (VolumeSnapshots, workloads, pods, Jobs, Secrets) and the status writer.

pub mod client;
pub mod dump;
pub mod exec;
pub mod export;
pub mod export_script;
pub mod finalizers;
pub mod hooks;
pub mod jobs;
pub mod drill;
pub mod labels;
pub mod lease;
pub mod probe;
pub mod redact;
pub mod repository;
pub mod restore;
pub mod snapshot;
#[cfg(test)]
mod test_server;
pub mod time;
pub mod tls;
pub mod verify;
pub mod workload;

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// The field manager of every server-side apply Archivist makes.
pub const FIELD_MANAGER: &str = "archivist";

/// Creates `object` unless an object of that name exists already (then returns `false`):
/// steps re-run after a crash find what they made before.
pub async fn create_if_absent<K>(api: &Api<K>, object: &K) -> Result<bool, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Deletes object `name`; returns whether it was there (already gone is fine): steps re-run
/// after a crash find their deletions done.
pub async fn delete_if_present<K>(api: &Api<K>, name: &str, params: &DeleteParams) -> Result<bool, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    match api.delete(name, params).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether `error` is a conflict (HTTP 409): a resourceVersion precondition failed because
/// the object changed since it was read (for a workload, often only its status). The caller
/// reads the object again and decides again.
pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// Gets an object, `None` when it does not exist.
pub async fn get_opt<K>(api: &Api<K>, name: &str) -> Result<Option<K>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    api.get_opt(name).await
}

/// Writes an object's whole `status` with server-side apply (force), as field manager
/// `archivist`.
pub async fn apply_status<K>(api: &Api<K>, name: &str, status: &impl Serialize) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(body)).await?;
    Ok(())
}
