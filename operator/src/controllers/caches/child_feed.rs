//! The feed of one kind of the runs' children into [`RunChildren`] (see `run_children` for
//! why only unfinished runs are kept, and why the index may be trusted).

use super::{logged, settled_in, FirstList, RunChildren, RunKey};
use super::run_children::Child;
use crate::api::ArchiveBackup;
use crate::kube::labels::BACKUP;
use futures::channel::mpsc::UnboundedSender;
use futures::StreamExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use std::sync::Arc;

/// One kind of the runs' children, watched by the label `archivist.dev/backup` and applied to
/// [`RunChildren`]; each run whose children changed is woken after the index shows it.
pub(super) struct ChildFeed {
    /// The index the feed writes.
    pub(super) children: Arc<RunChildren>,
    /// The runs, to tell a settled one (whose children are not kept).
    pub(super) backups: Store<ArchiveBackup>,
    /// The ArchiveBackup controller's trigger.
    pub(super) wake: UnboundedSender<ObjectRef<ArchiveBackup>>,
    /// Counts this feed's first complete list for `Caches::ready`.
    pub(super) first: FirstList,
    /// Turns true once the runs have been listed: the feed starts then.
    pub(super) backups_listed: tokio::sync::watch::Receiver<bool>,
}

impl ChildFeed {
    /// Watches `api`'s objects labelled `archivist.dev/backup` for as long as it runs.
    pub(super) async fn drive<K>(self, api: Api<K>)
    where
        K: Child + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    {
        let ChildFeed { children, backups, wake, mut first, mut backups_listed } = self;
        // Only once the runs are known: the children of settled runs are then never kept, not
        // even for a moment (20,000 snapshots at 10,000 restore points).
        let _ = backups_listed.wait_for(|listed| *listed).await;
        // Listed in pages from etcd (not `any_semantic`, which the API server answers whole
        // from its watch cache): at start-up the settled runs' snapshots stream through a
        // page at a time, and are dropped.
        watcher(api, watcher::Config::default().labels(BACKUP))
            .default_backoff()
            .for_each(|event| {
                first.saw(&event);
                if let Some(event) = logged(K::KIND, &event) {
                    let keep = |(namespace, name): &RunKey| !settled_in(&backups, namespace, name);
                    for (namespace, name) in children.apply(event, keep) {
                        let _ = wake.unbounded_send(ObjectRef::new(&name).within(&namespace));
                    }
                }
                futures::future::ready(())
            })
            .await;
    }
}
