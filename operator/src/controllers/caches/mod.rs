//! Shared caches: one watch per kind the controllers read, reflected into a store that every
//! controller reads instead of listing.
//!
//! - ArchiveBackups and RestoreRequests: one shared store each (managedFields dropped to save
//!   memory; of a settled ArchiveBackup only what its readers need,
//!   `plan::backup::cached`). Their own controllers are driven by subscriptions to these
//!   stores (`Controller::for_shared_stream`).
//! - ClusterRetentionPolicies, and the metadata of Namespaces, StatefulSets and Deployments
//!   (metadata-only watches), for the BackupPolicy controller's observation and the sweeper.
//! - The VolumeSnapshots, Jobs and PVCs labelled `archivist.dev/backup` (watches selected by
//!   that label), projected into [`RunChildren`] for the runs that are not settled: a run
//!   observes what it made from there and is woken by its changes.
//! - The metadata of Pods (no store): their events, and those of the workloads, wake the runs
//!   and restores of their namespace that wait on a target (`target_waiters`).
//!
//! **Why a cache may be trusted here.** Each store is written *before* the change it saw is
//! passed on, and every change of every store the BackupPolicy controller reads is passed on
//! to it ([`Change`], mapped to policies by `backup_policy`). So when a policy is reconciled
//! because of a change, the store already shows that change, and a later change of anything
//! else it read wakes it again. (Reading another watch's store than the one that woke it was
//! racy: the first attempt did, and a finished restore did not free its source.)
//!
//! A cache can still be older than the API server. Deciding from it is fine where acting is
//! idempotent (creating a run under its deterministic name). Where it is not, a fresh read is
//! made first and documented there: pruning (`backup_policy`), and every side effect of a run
//! or a restore (`controllers::fresh`).

use crate::api::{ArchiveBackup, ClusterRetentionPolicy, ClusterRetentionPolicySpec, RestoreRequest, TargetKind};
use crate::kube::snapshot::VolumeSnapshot;
use crate::plan::backup::is_settled;
use crate::plan::restore::RESTORE_LABEL as RESTORE;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, ReflectHandle, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource, ResourceExt};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

mod child_feed;
mod run_children;
mod target_waiters;
use child_feed::ChildFeed;
pub use run_children::{Child, Children, RunChildren, RunKey};
use target_waiters::TargetWaiters;

/// How many changes a shared store buffers for a subscriber that is behind.
const SUBSCRIBER_BUFFER: usize = 1024;

/// A change the BackupPolicy controller must look at: the policies it concerns are
/// reconciled (`backup_policy::affected`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An ArchiveBackup of this policy was created, changed or deleted.
    Backup {
        /// The backup's namespace.
        namespace: String,
        /// Its `spec.policyName`.
        policy: String,
    },
    /// A RestoreRequest of this namespace changed (restores protect their source backups).
    Restores {
        /// The request's namespace.
        namespace: String,
    },
    /// A Namespace's labels may have changed (they select ClusterRetentionPolicies).
    Namespace {
        /// The namespace.
        name: String,
    },
    /// A StatefulSet or Deployment appeared or went away.
    Target {
        /// Its namespace.
        namespace: String,
        /// Its kind.
        kind: TargetKind,
        /// Its name.
        name: String,
    },
    /// A ClusterRetentionPolicy changed, or a watch listed everything again (and may have
    /// missed deletions meanwhile): every policy.
    All,
}

/// The stores, readable by every controller.
#[derive(Clone)]
pub struct Caches {
    /// Every ArchiveBackup in scope.
    pub backups: Store<ArchiveBackup>,
    /// Every RestoreRequest in scope.
    pub restores: Store<RestoreRequest>,
    /// Every ClusterRetentionPolicy.
    pub cluster_policies: Store<ClusterRetentionPolicy>,
    /// The metadata of the Namespaces in scope.
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    /// The metadata of the StatefulSets in scope.
    pub stateful_sets: Store<PartialObjectMeta<StatefulSet>>,
    /// The metadata of the Deployments in scope.
    pub deployments: Store<PartialObjectMeta<Deployment>>,
    /// What the unfinished runs made (their labelled VolumeSnapshots, Jobs and PVCs).
    pub children: Arc<RunChildren>,
    /// How many of the [`CACHES`] stores have been listed once.
    listed: tokio::sync::watch::Receiver<usize>,
}

/// How many stores [`Caches`] has.
const CACHES: usize = 9;

/// Counts a store as listed at its first complete list.
pub(super) struct FirstList {
    done: bool,
    listed: std::sync::Arc<tokio::sync::watch::Sender<usize>>,
}

impl FirstList {
    pub(super) fn saw<K>(&mut self, event: &Result<watcher::Event<K>, watcher::Error>) {
        if !self.done && matches!(event, Ok(watcher::Event::InitDone)) {
            self.done = true;
            self.listed.send_modify(|n| *n += 1);
        }
    }
}

/// What the controllers are woken by.
pub struct Subscriptions {
    /// The ArchiveBackup controller's trigger.
    pub backups: ReflectHandle<ArchiveBackup>,
    /// The RestoreRequest controller's trigger.
    pub restores: ReflectHandle<RestoreRequest>,
    /// Wakes a RestoreRequest when an ArchiveBackup labelled with it changes (the pre-restore
    /// backup of an in-place restore), and an unfinished in-place one when a workload or pod
    /// of its namespace changes (`target_waiters`).
    pub restores_by_backup: UnboundedReceiver<ObjectRef<RestoreRequest>>,
    /// Every change the BackupPolicy controller looks at.
    pub policy_changes: UnboundedReceiver<Change>,
    /// Wakes an ArchiveBackup when one of its children changed, after [`Caches::children`]
    /// shows the change, and a run waiting on its target when a workload or pod of its
    /// namespace changes (`target_waiters`).
    pub backups_by_child: UnboundedReceiver<ObjectRef<ArchiveBackup>>,
    /// Notified when a ClusterRetentionPolicy's spec changes or one goes (the evaluator,
    /// `controllers::cluster_retention`).
    pub cluster_specs: Arc<tokio::sync::Notify>,
}

impl Caches {
    /// Waits until every store has been listed once; says so every [`READY_PATIENCE`] while
    /// it waits.
    ///
    /// (Not `Store::wait_until_ready`: it wakes only the last of several tasks waiting at
    /// once, and the others would wait for their next poll; a `watch` channel wakes them all.)
    pub async fn ready(&self) {
        let mut listed = self.listed.clone();
        loop {
            if tokio::time::timeout(READY_PATIENCE, listed.wait_for(|n| *n >= CACHES)).await.is_ok() {
                return;
            }
            let so_far = *listed.borrow();
            tracing::warn!(listed = so_far, of = CACHES, "still waiting for the first list of the caches");
        }
    }

    /// The ArchiveBackups of `policy` in `namespace`.
    pub fn backups_of(&self, namespace: &str, policy: &str) -> Vec<ArchiveBackup> {
        self.backups
            .state_filter(|b| b.spec.policy_name == policy && b.namespace().as_deref() == Some(namespace))
            .into_iter()
            .map(|b| b.as_ref().clone())
            .collect()
    }

    /// Another run (`<namespace>/<name>`, not `namespace`/`name`) whose export to `repository`
    /// (as recorded: credentials removed) is running; exports to one repository go one at a time.
    pub fn export_running_to(&self, repository: &str, namespace: &str, name: &str) -> Option<String> {
        self.backups
            .state_filter(|b| {
                let running = b.status.as_ref().and_then(|s| s.export.as_ref()).is_some_and(|e| {
                    e.state == crate::api::ExportState::Running && e.repository.as_deref() == Some(repository)
                });
                running && !(b.namespace().as_deref() == Some(namespace) && b.name_any() == name)
            })
            .first()
            .map(|b| format!("{}/{}", b.namespace().unwrap_or_default(), b.name_any()))
    }

    /// The RestoreRequests of `namespace`.
    pub fn restores_in(&self, namespace: &str) -> Vec<RestoreRequest> {
        in_namespace(&self.restores, namespace)
    }

    /// Whether the newest version of run `namespace`/`name` that the cache holds is settled
    /// (`plan::backup::settled`). A reconcile may hold an older version than the cache: once the
    /// cache sees the run settled, [`RunChildren`] forgets what it made, and a reconcile of the
    /// older version would see its children gone (and record a stale status over the settled one).
    pub fn settled_now(&self, namespace: &str, name: &str) -> bool {
        settled_in(&self.backups, namespace, name)
    }

    /// Whether the target workload exists.
    pub fn target_exists(&self, namespace: &str, kind: TargetKind, name: &str) -> bool {
        match kind {
            TargetKind::StatefulSet => self.stateful_sets.get(&ObjectRef::new(name).within(namespace)).is_some(),
            TargetKind::Deployment => self.deployments.get(&ObjectRef::new(name).within(namespace)).is_some(),
        }
    }

    /// The specs of the ClusterRetentionPolicies whose `namespaceSelector` matches
    /// `namespace`'s labels, as retention acts on them (an invalid one without its ceilings:
    /// `plan::retention::governance::acting_spec`).
    pub fn cluster_policies_for(&self, namespace: &str) -> Vec<ClusterRetentionPolicySpec> {
        let policies = self.cluster_policies.state();
        if policies.is_empty() {
            return Vec::new();
        }
        let labels: BTreeMap<String, String> = self
            .namespaces
            .get(&ObjectRef::new(namespace))
            .and_then(|ns| ns.metadata.labels.clone())
            .unwrap_or_default();
        policies
            .iter()
            .filter(|p| p.spec.namespace_selector.as_ref().is_none_or(|s| s.matches(&labels)))
            .map(|p| crate::plan::retention::governance::acting_spec(p))
            .collect()
    }
}

/// How long a reconcile waits for a cache before it says so (and waits on).
pub const READY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

fn in_namespace<K>(store: &Store<K>, namespace: &str) -> Vec<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store.state_filter(|o| o.namespace().as_deref() == Some(namespace)).into_iter().map(|o| o.as_ref().clone()).collect()
}

/// Starts the watches: returns the stores, the controllers' triggers, and the future that
/// drives the watches (run it as long as any controller runs).
pub fn start(client: &kube::Client, scope: Option<&str>) -> (Caches, Subscriptions, impl std::future::Future<Output = ()> + Send + 'static) {
    let (policy_tx, policy_changes) = unbounded();
    let (listed_tx, listed) = tokio::sync::watch::channel(0usize);
    let listed_tx = std::sync::Arc::new(listed_tx);
    let first_list = || FirstList { done: false, listed: listed_tx.clone() };
    let (restore_tx, restores_by_backup) = unbounded();

    let children = Arc::new(RunChildren::default());
    let (backups_listed_tx, backups_listed) = tokio::sync::watch::channel(false);
    let (backups, backups_writer) = reflector::store_shared::<ArchiveBackup>(SUBSCRIBER_BUFFER);
    // `store_shared` always makes a writer that can be subscribed to.
    let backups_sub = backups_writer.subscribe().expect("a shared store has subscribers");
    let backups_feed = {
        let policy_tx = policy_tx.clone();
        let restore_tx = restore_tx.clone();
        let children = children.clone();
        let mut first = first_list();
        watcher(watched(client, scope), watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(crate::plan::backup::cached::cached_form)
            .reflect_shared(backups_writer)
            .for_each(move |event| {
                first.saw(&event);
                if let Some(event) = logged("ArchiveBackup", &event) {
                    // The store shows the change already: a child event now finds the run
                    // settled, and what it made so far is dropped here (`RunChildren`).
                    match event {
                        watcher::Event::Apply(b) | watcher::Event::InitApply(b) if is_settled(b) => children.forget(&run_key(b)),
                        watcher::Event::Delete(b) => children.forget(&run_key(b)),
                        watcher::Event::InitDone => {
                            backups_listed_tx.send_replace(true);
                        }
                        _ => {}
                    }
                    for backup in changed(event, &policy_tx) {
                        if let Some(namespace) = backup.namespace() {
                            let _ = policy_tx.unbounded_send(Change::Backup { namespace: namespace.clone(), policy: backup.spec.policy_name.clone() });
                            if let Some(request) = backup.labels().get(RESTORE) {
                                let _ = restore_tx.unbounded_send(ObjectRef::new(request).within(&namespace));
                            }
                        }
                    }
                }
                futures::future::ready(())
            })
    };

    let (restores, restores_writer) = reflector::store_shared::<RestoreRequest>(SUBSCRIBER_BUFFER);
    let restores_sub = restores_writer.subscribe().expect("a shared store has subscribers");
    let restores_feed = {
        let policy_tx = policy_tx.clone();
        let mut first = first_list();
        watcher(watched(client, scope), watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(|r: &mut RestoreRequest| r.managed_fields_mut().clear())
            .reflect_shared(restores_writer)
            .for_each(move |event| {
                first.saw(&event);
                if let Some(event) = logged("RestoreRequest", &event) {
                    for request in changed(event, &policy_tx) {
                        if let Some(namespace) = request.namespace() {
                            let _ = policy_tx.unbounded_send(Change::Restores { namespace });
                        }
                    }
                }
                futures::future::ready(())
            })
    };

    let (cluster_policies, cluster_writer) = reflector::store::<ClusterRetentionPolicy>();
    let cluster_specs = Arc::new(tokio::sync::Notify::new());
    let cluster_feed = {
        let policy_tx = policy_tx.clone();
        let cluster_specs = cluster_specs.clone();
        let mut first = first_list();
        // Only a new spec (generation) or a deletion wakes every policy: the evaluator writes
        // each cluster policy's status every minute, which must not.
        let mut generations: HashMap<String, Option<i64>> = HashMap::new();
        watcher(Api::<ClusterRetentionPolicy>::all(client.clone()), watcher::Config::default())
            .default_backoff()
            .reflect(cluster_writer)
            .for_each(move |event| {
                first.saw(&event);
                if let Some(event) = logged("ClusterRetentionPolicy", &event) {
                    let spec_changed = match event {
                        watcher::Event::Apply(p) => generations.insert(p.name_any(), p.metadata.generation) != Some(p.metadata.generation),
                        watcher::Event::InitApply(p) => {
                            generations.insert(p.name_any(), p.metadata.generation);
                            false
                        }
                        watcher::Event::Delete(p) => {
                            generations.remove(&p.name_any());
                            true
                        }
                        watcher::Event::Init | watcher::Event::InitDone => false,
                    };
                    if spec_changed {
                        let _ = policy_tx.unbounded_send(Change::All);
                        cluster_specs.notify_one();
                    } else {
                        // A re-list still wakes every policy (deletions may have been missed).
                        let _ = changed(event, &policy_tx);
                    }
                }
                futures::future::ready(())
            })
    };

    let (namespaces, namespaces_writer) = reflector::store::<PartialObjectMeta<Namespace>>();
    let namespace_config = match scope {
        Some(ns) => watcher::Config::default().fields(&format!("metadata.name={ns}")),
        None => watcher::Config::default(),
    };
    let namespaces_feed = {
        let policy_tx = policy_tx.clone();
        let mut first = first_list();
        watcher(Api::<PartialObjectMeta<Namespace>>::all(client.clone()), namespace_config)
            .default_backoff()
            .modify(|n| n.managed_fields_mut().clear())
            .reflect(namespaces_writer)
            .for_each(move |event| {
                first.saw(&event);
                if let Some(event) = logged("Namespace", &event) {
                    for ns in changed(event, &policy_tx) {
                        let _ = policy_tx.unbounded_send(Change::Namespace { name: ns.name_any() });
                    }
                }
                futures::future::ready(())
            })
    };

    let (child_tx, backups_by_child) = unbounded();
    let waiters = || {
        Arc::new(TargetWaiters { backups: backups.clone(), restores: restores.clone(), backup_tx: child_tx.clone(), restore_tx: restore_tx.clone() })
    };
    let (stateful_sets, sts_writer) = reflector::store::<PartialObjectMeta<StatefulSet>>();
    let sts_feed = workloads(watched::<PartialObjectMeta<StatefulSet>>(client, scope), sts_writer, TargetKind::StatefulSet, policy_tx.clone(), first_list(), waiters());
    let (deployments, deploy_writer) = reflector::store::<PartialObjectMeta<Deployment>>();
    let deploy_feed = workloads(watched::<PartialObjectMeta<Deployment>>(client, scope), deploy_writer, TargetKind::Deployment, policy_tx, first_list(), waiters());
    let pods_feed = {
        let waiters = waiters();
        watcher(watched::<PartialObjectMeta<Pod>>(client, scope), watcher::Config::default().any_semantic())
            .default_backoff()
            .for_each(move |event| {
                match logged("Pod", &event) {
                    Some(watcher::Event::Apply(p) | watcher::Event::Delete(p)) => waiters.wake(p.namespace().as_deref()),
                    Some(watcher::Event::InitDone) => waiters.wake(None),
                    _ => {}
                }
                futures::future::ready(())
            })
    };

    let child_feed = |first| ChildFeed { children: children.clone(), backups: backups.clone(), wake: child_tx.clone(), first, backups_listed: backups_listed.clone() };
    let snapshots_feed = child_feed(first_list()).drive(watched::<VolumeSnapshot>(client, scope));
    let jobs_feed = child_feed(first_list()).drive(watched::<Job>(client, scope));
    let claims_feed = child_feed(first_list()).drive(watched::<PersistentVolumeClaim>(client, scope));

    let drive = async move {
        futures::join!(backups_feed, restores_feed, cluster_feed, namespaces_feed, sts_feed, deploy_feed, snapshots_feed, jobs_feed, claims_feed, pods_feed);
    };
    let caches = Caches { backups, restores, cluster_policies, namespaces, stateful_sets, deployments, children, listed };
    let subscriptions = Subscriptions { backups: backups_sub, restores: restores_sub, restores_by_backup, policy_changes, backups_by_child, cluster_specs };
    (caches, subscriptions, drive)
}

/// The event, or `None` after logging a watch error (the watcher retries with backoff; until
/// its first complete list the store is not ready, and reconciles that read it wait).
pub(super) fn logged<'a, K>(kind: &str, event: &'a Result<watcher::Event<K>, watcher::Error>) -> Option<&'a watcher::Event<K>> {
    match event {
        Ok(event) => Some(event),
        Err(error) => {
            tracing::warn!(%error, kind, "watch failed; retrying");
            None
        }
    }
}

fn kind_name(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::StatefulSet => "StatefulSet",
        TargetKind::Deployment => "Deployment",
    }
}

/// The objects a watch event changed; on a complete new list (`InitDone`, the store was just
/// replaced and deletions meanwhile were not seen one by one) it sends [`Change::All`] instead.
fn changed<'a, K>(event: &'a watcher::Event<K>, policy_tx: &UnboundedSender<Change>) -> Vec<&'a K> {
    match event {
        watcher::Event::Apply(o) | watcher::Event::Delete(o) => vec![o],
        watcher::Event::InitDone => {
            let _ = policy_tx.unbounded_send(Change::All);
            Vec::new()
        }
        watcher::Event::Init | watcher::Event::InitApply(_) => Vec::new(),
    }
}

/// Reflects the metadata of the workloads of one kind; passes on only their coming and going
/// (a policy reads whether its target exists, not its status, which changes all the time).
fn workloads<K>(
    api: Api<PartialObjectMeta<K>>,
    writer: reflector::store::Writer<PartialObjectMeta<K>>,
    kind: TargetKind,
    policy_tx: UnboundedSender<Change>,
    mut first: FirstList,
    waiters: Arc<TargetWaiters>,
) -> impl std::future::Future<Output = ()> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let mut known: HashSet<(String, String)> = HashSet::new();
    let mut listing: HashSet<(String, String)> = HashSet::new();
    watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|o| o.managed_fields_mut().clear())
        .reflect(writer)
        .for_each(move |event| {
                first.saw(&event);
            let key = |o: &PartialObjectMeta<K>| (o.namespace().unwrap_or_default(), o.name_any());
            let send = |(namespace, name): (String, String)| {
                let _ = policy_tx.unbounded_send(Change::Target { namespace, kind, name });
            };
            match logged(kind_name(kind), &event) {
                Some(watcher::Event::Apply(o)) => {
                    if known.insert(key(o)) {
                        send(key(o));
                    }
                    // A claim dropped, replicas scaled: the runs waiting on it look again.
                    waiters.wake(o.namespace().as_deref());
                }
                Some(watcher::Event::Delete(o)) => {
                    if known.remove(&key(o)) {
                        send(key(o));
                    }
                    waiters.wake(o.namespace().as_deref());
                }
                Some(watcher::Event::Init) => listing.clear(),
                Some(watcher::Event::InitApply(o)) => {
                    listing.insert(key(o));
                }
                Some(watcher::Event::InitDone) => {
                    let listed = std::mem::take(&mut listing);
                    for gone_or_new in known.symmetric_difference(&listed).cloned().collect::<Vec<_>>() {
                        send(gone_or_new);
                    }
                    known = listed;
                    waiters.wake(None);
                }
                None => {}
            }
            futures::future::ready(())
        })
}

/// A run's key in [`RunChildren`].
fn run_key(backup: &ArchiveBackup) -> RunKey {
    (backup.namespace().unwrap_or_default(), backup.name_any())
}

/// Whether the newest version of run `namespace`/`name` in `backups` is settled
/// (`plan::backup::is_settled`): it observes nothing any more.
pub(super) fn settled_in(backups: &Store<ArchiveBackup>, namespace: &str, name: &str) -> bool {
    backups.get(&ObjectRef::new(name).within(namespace)).is_some_and(|b| is_settled(&b))
}

/// An API for kind `K` in the watched scope: one namespace, or all.
fn watched<K>(client: &kube::Client, scope: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}
