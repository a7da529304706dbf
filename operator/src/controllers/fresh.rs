//! The one fresh read before a side effect.
//!
//! A controller's cache can be older than this process's last write (a late watch event). A
//! step decided from a stale status could repeat a side effect: a freeze hook, a scale, a
//! snapshot, a workload copy the TTL already deleted. Before a side-effecting step, the
//! reconcile GETs the object (a quorum read); when that shows a newer object, it decides again
//! from it.

use kube::api::Api;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// What a fresh read found, compared with the cached object.
#[derive(Debug)]
pub enum Fresh<K> {
    /// The cached object is current: act on the decision made from it.
    Current,
    /// The server has a newer object: decide again from it.
    Newer(K),
    /// The object is gone.
    Gone,
}

/// Reads `cached` again from the API server (namespaced).
pub async fn read_again<K>(api: &Api<K>, cached: &K) -> Result<Fresh<K>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    match api.get_opt(&cached.name_any()).await? {
        None => Ok(Fresh::Gone),
        Some(fresh) if fresh.resource_version() != cached.resource_version() => {
            tracing::debug!(stale = ?cached.resource_version(), fresh = ?fresh.resource_version(), "the cached object was stale; deciding again");
            Ok(Fresh::Newer(fresh))
        }
        Some(_) => Ok(Fresh::Current),
    }
}
