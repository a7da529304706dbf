//! Shared caches: the reflector stores the ArchiveBackup and RestoreRequest controllers keep
//! anyway, shared with the BackupPolicy controller, so a policy reconcile reads its backups and
//! the namespace's restores from memory instead of listing them.
//!
//! A cache can be older than the API server. Deciding from it is safe where the act is
//! idempotent (creating a run by its deterministic name). Where it is not (pruning deletes
//! data), the decision is made again from a fresh LIST first (`backup_policy::apply`).

use crate::api::{ArchiveBackup, RestoreRequest};
use kube::runtime::reflector::Store;
use kube::ResourceExt;
use std::sync::OnceLock;

/// The shared stores; each is set once its controller starts.
#[derive(Default)]
pub struct Caches {
    backups: OnceLock<Store<ArchiveBackup>>,
    restores: OnceLock<Store<RestoreRequest>>,
}

impl Caches {
    /// Shares the ArchiveBackup controller's store.
    pub fn share_backups(&self, store: Store<ArchiveBackup>) {
        let _ = self.backups.set(store);
    }

    /// Shares the RestoreRequest controller's store.
    pub fn share_restores(&self, store: Store<RestoreRequest>) {
        let _ = self.restores.set(store);
    }

    /// The ArchiveBackups of `namespace` from the cache, once it has synced; `None` when no
    /// cache is shared (then the caller lists).
    pub async fn backups_in(&self, namespace: &str) -> Option<Vec<ArchiveBackup>> {
        in_namespace(self.backups.get()?, namespace).await
    }

    /// The RestoreRequests of `namespace` from the cache, once it has synced; `None` when no
    /// cache is shared.
    pub async fn restores_in(&self, namespace: &str) -> Option<Vec<RestoreRequest>> {
        in_namespace(self.restores.get()?, namespace).await
    }
}

async fn in_namespace<K>(store: &Store<K>, namespace: &str) -> Option<Vec<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store.wait_until_ready().await.ok()?;
    Some(store.state_filter(|o| o.namespace().as_deref() == Some(namespace)).into_iter().map(|o| o.as_ref().clone()).collect())
}
