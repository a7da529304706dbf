//! What unfinished runs made, indexed by run: the VolumeSnapshots, Jobs and PVCs labelled
//! `archivist.dev/backup: <run>`, each projected to the little a run observes of it.
//!
//! A run observes its children from here instead of listing them on every reconcile
//! (`archive_backup::observe`), and is woken by their changes (`Subscriptions::backups_by_child`):
//! the index is written *before* the run is woken, so a run woken by a snapshot's cut already
//! sees the cut.
//!
//! **Only unfinished runs are kept.** Children of a settled run (`plan::backup::settled`) are
//! neither stored nor kept: a settled run is never observed again, and with 10,000 restore
//! points their 20,000 snapshots would cost more memory than the rest of the operator. The
//! ArchiveBackup feed calls [`RunChildren::forget`] when a run settles or goes; a child event
//! asks [`RunChildren::apply`]'s `keep` under the same lock, so a child seen just before its run
//! settled is never left behind.
//!
//! **What a stale index can do.** The index can be older than the API server, like any cache.
//! Deciding from it is safe: every step it feeds is idempotent (snapshots, Jobs and claims are
//! created under deterministic names with `create_if_absent`, deletes tolerate "gone") or only
//! waits longer; the step that is not (a hook, a scale) is decided from a fresh read of the run
//! itself (`controllers::fresh`), never from its children.

use crate::kube::labels::BACKUP;
use crate::kube::snapshot::VolumeSnapshot;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};

/// A run: its namespace and name.
pub type RunKey = (String, String);

/// What one run made, as it observes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Children {
    /// Its VolumeSnapshots by name: name, spec and status.
    pub snapshots: BTreeMap<String, VolumeSnapshot>,
    /// Its Jobs (dumps and the verify Job) by name: name and status.
    pub jobs: BTreeMap<String, Job>,
    /// Its PVCs (dump and verification scratch claims) by name: name and phase.
    pub claims: BTreeMap<String, PersistentVolumeClaim>,
}

impl Children {
    fn is_empty(&self) -> bool {
        self.snapshots.is_empty() && self.jobs.is_empty() && self.claims.is_empty()
    }
}

/// A kind of child a run makes: how it is projected and where it is kept.
pub trait Child: Resource<DynamicType = ()> + Clone + PartialEq + Sized {
    /// The kind, for logs and for telling relists apart.
    const KIND: &'static str;
    /// The object reduced to what a run reads of it.
    fn projected(self) -> Self;
    /// Where a run's children of this kind are kept.
    fn slot(children: &mut Children) -> &mut BTreeMap<String, Self>;
}

/// Only the name and namespace of an object's metadata.
fn name_only(meta: &ObjectMeta) -> ObjectMeta {
    ObjectMeta { name: meta.name.clone(), namespace: meta.namespace.clone(), ..ObjectMeta::default() }
}

impl Child for VolumeSnapshot {
    const KIND: &'static str = "VolumeSnapshot";
    fn projected(self) -> Self {
        let mut out = VolumeSnapshot::new(&self.name_any(), self.spec);
        out.metadata = name_only(&self.metadata);
        out.status = self.status;
        out
    }
    fn slot(children: &mut Children) -> &mut BTreeMap<String, Self> {
        &mut children.snapshots
    }
}

impl Child for Job {
    const KIND: &'static str = "Job";
    fn projected(self) -> Self {
        Job { metadata: name_only(&self.metadata), spec: None, status: self.status }
    }
    fn slot(children: &mut Children) -> &mut BTreeMap<String, Self> {
        &mut children.jobs
    }
}

impl Child for PersistentVolumeClaim {
    const KIND: &'static str = "PersistentVolumeClaim";
    fn projected(self) -> Self {
        let phase = self.status.and_then(|s| s.phase);
        PersistentVolumeClaim {
            metadata: name_only(&self.metadata),
            spec: None,
            status: Some(PersistentVolumeClaimStatus { phase, ..PersistentVolumeClaimStatus::default() }),
        }
    }
    fn slot(children: &mut Children) -> &mut BTreeMap<String, Self> {
        &mut children.claims
    }
}

/// The run a child belongs to, from its namespace and `archivist.dev/backup` label.
pub fn run_of<K: Resource>(child: &K) -> Option<RunKey> {
    Some((child.meta().namespace.clone()?, child.meta().labels.as_ref()?.get(BACKUP)?.clone()))
}

/// The index of the children of unfinished runs.
#[derive(Default)]
pub struct RunChildren {
    index: Mutex<Index>,
}

#[derive(Default)]
struct Index {
    runs: HashMap<RunKey, Children>,
    /// Per kind, while its watch lists everything again: what the new list holds so far.
    relisting: HashMap<&'static str, HashMap<RunKey, Children>>,
}

impl RunChildren {
    /// What run `namespace`/`name` made, as far as the watches have seen.
    pub fn of(&self, namespace: &str, name: &str) -> Children {
        let index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        index.runs.get(&(namespace.to_string(), name.to_string())).cloned().unwrap_or_default()
    }

    /// Drops what run `key` made: it settled or is gone.
    pub fn forget(&self, key: &RunKey) {
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        index.runs.remove(key);
        for relist in index.relisting.values_mut() {
            relist.remove(key);
        }
    }

    /// How many runs have children in the index.
    pub fn runs(&self) -> usize {
        self.index.lock().unwrap_or_else(PoisonError::into_inner).runs.len()
    }

    /// Applies one watch event of kind `K`; returns the runs to wake. `keep` says whether a run's
    /// children are kept (it is not settled); it is asked under the index's lock, the one
    /// [`Self::forget`] takes, so a run that settles meanwhile is forgotten after, not before.
    pub fn apply<K: Child>(&self, event: &watcher::Event<K>, keep: impl Fn(&RunKey) -> bool) -> BTreeSet<RunKey> {
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        let mut woken = BTreeSet::new();
        match event {
            watcher::Event::Apply(child) => {
                if let Some(key) = run_of(child) {
                    let name = child.name_any();
                    if keep(&key) {
                        K::slot(index.runs.entry(key.clone()).or_default()).insert(name, child.clone().projected());
                        woken.insert(key);
                    } else {
                        index.remove::<K>(&key, &name);
                    }
                }
            }
            watcher::Event::Delete(child) => {
                if let Some(key) = run_of(child) {
                    index.remove::<K>(&key, &child.name_any());
                    woken.insert(key);
                }
            }
            watcher::Event::Init => {
                index.relisting.insert(K::KIND, HashMap::new());
            }
            watcher::Event::InitApply(child) => {
                if let Some(key) = run_of(child).filter(|k| keep(k)) {
                    let relist = index.relisting.entry(K::KIND).or_default();
                    K::slot(relist.entry(key).or_default()).insert(child.name_any(), child.clone().projected());
                }
            }
            watcher::Event::InitDone => {
                let mut listed = index.relisting.remove(K::KIND).unwrap_or_default();
                for (key, children) in &mut index.runs {
                    let now = listed.remove(key).map(|mut c| std::mem::take(K::slot(&mut c))).unwrap_or_default();
                    let slot = K::slot(children);
                    if *slot != now {
                        *slot = now;
                        woken.insert(key.clone());
                    }
                }
                for (key, mut children) in listed {
                    let now = std::mem::take(K::slot(&mut children));
                    K::slot(index.runs.entry(key.clone()).or_default()).extend(now);
                    woken.insert(key);
                }
                index.runs.retain(|_, c| !c.is_empty());
            }
        }
        woken
    }
}

impl Index {
    fn remove<K: Child>(&mut self, key: &RunKey, name: &str) {
        if let Some(children) = self.runs.get_mut(key) {
            K::slot(children).remove(name);
            if children.is_empty() {
                self.runs.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::snapshot::{VolumeSnapshotSource, VolumeSnapshotSpec, VolumeSnapshotStatus};
    use k8s_openapi::api::batch::v1::JobStatus;

    fn labelled(meta: &mut ObjectMeta, namespace: &str, run: &str) {
        meta.namespace = Some(namespace.into());
        meta.labels = Some(BTreeMap::from([(BACKUP.to_string(), run.to_string()), ("other".to_string(), "x".to_string())]));
        meta.annotations = Some(BTreeMap::from([("kubectl.kubernetes.io/last-applied-configuration".to_string(), "{…}".to_string())]));
        meta.uid = Some(format!("uid-{run}"));
    }

    fn snapshot(namespace: &str, run: &str, name: &str, cut: Option<&str>) -> VolumeSnapshot {
        let spec = VolumeSnapshotSpec { source: VolumeSnapshotSource { persistent_volume_claim_name: Some("data-0".into()), volume_snapshot_content_name: None }, volume_snapshot_class_name: None };
        let mut s = VolumeSnapshot::new(name, spec);
        labelled(&mut s.metadata, namespace, run);
        s.status = cut.map(|t| VolumeSnapshotStatus { creation_time: Some(t.into()), ..VolumeSnapshotStatus::default() });
        s
    }

    fn job(namespace: &str, run: &str, name: &str, succeeded: i32) -> Job {
        let mut j = Job { status: Some(JobStatus { succeeded: Some(succeeded), ..JobStatus::default() }), spec: Some(Default::default()), ..Job::default() };
        j.metadata.name = Some(name.into());
        labelled(&mut j.metadata, namespace, run);
        j
    }

    fn key(namespace: &str, run: &str) -> RunKey {
        (namespace.to_string(), run.to_string())
    }

    fn keys(list: &[(&str, &str)]) -> BTreeSet<RunKey> {
        list.iter().map(|(n, r)| key(n, r)).collect()
    }

    /// Each event, in order, with the runs it wakes and what the index holds after it.
    #[test]
    fn events_update_the_index_and_wake_their_runs() {
        let children = RunChildren::default();
        let keep_all = |_: &RunKey| true;
        let a1 = snapshot("mail", "b1", "b1-meta", None);
        let a1_cut = snapshot("mail", "b1", "b1-meta", Some("2026-12-03T10:00:00Z"));
        let a2 = snapshot("mail", "b1", "b1-content", None);
        let other_ns = snapshot("other", "b1", "b1-meta", None);
        let unlabelled = VolumeSnapshot::new("stray", a1.spec.clone());

        assert_eq!(children.apply(&watcher::Event::Apply(a1.clone()), keep_all), keys(&[("mail", "b1")]));
        assert_eq!(children.apply(&watcher::Event::Apply(a2.clone()), keep_all), keys(&[("mail", "b1")]));
        assert_eq!(children.apply(&watcher::Event::Apply(other_ns), keep_all), keys(&[("other", "b1")]));
        assert_eq!(children.apply(&watcher::Event::Apply(unlabelled), keep_all), keys(&[]), "an object without the label belongs to no run");
        assert_eq!(children.of("mail", "b1").snapshots.len(), 2);
        assert_eq!(children.of("other", "b1").snapshots.len(), 1, "runs of the same name in two namespaces are apart");

        // A cut replaces the older copy.
        children.apply(&watcher::Event::Apply(a1_cut.clone()), keep_all);
        let seen = children.of("mail", "b1");
        assert_eq!(seen.snapshots["b1-meta"].status, a1_cut.status);

        // Deleted: gone, and the run is woken.
        assert_eq!(children.apply(&watcher::Event::Delete(a2), keep_all), keys(&[("mail", "b1")]));
        assert_eq!(children.of("mail", "b1").snapshots.keys().collect::<Vec<_>>(), vec!["b1-meta"]);

        // Jobs of the same run sit beside its snapshots.
        children.apply(&watcher::Event::Apply(job("mail", "b1", "b1-verify", 1)), keep_all);
        let seen = children.of("mail", "b1");
        assert_eq!(seen.jobs["b1-verify"].status.as_ref().and_then(|s| s.succeeded), Some(1));
        assert_eq!(seen.snapshots.len(), 1);
        assert_eq!(children.runs(), 2);
    }

    /// Only what a run reads is kept: no labels, annotations, uid or Job spec.
    #[test]
    fn children_are_kept_projected() {
        let children = RunChildren::default();
        children.apply(&watcher::Event::Apply(snapshot("mail", "b1", "s", Some("2026-12-03T10:00:00Z"))), |_| true);
        children.apply(&watcher::Event::Apply(job("mail", "b1", "j", 0)), |_| true);
        let mut claim = PersistentVolumeClaim { status: Some(PersistentVolumeClaimStatus { phase: Some("Bound".into()), capacity: Some(BTreeMap::new()), ..Default::default() }), spec: Some(Default::default()), ..Default::default() };
        claim.metadata.name = Some("c".into());
        labelled(&mut claim.metadata, "mail", "b1");
        children.apply(&watcher::Event::Apply(claim), |_| true);
        let seen = children.of("mail", "b1");
        let metas = [&seen.snapshots["s"].metadata, &seen.jobs["j"].metadata, &seen.claims["c"].metadata];
        for meta in metas {
            assert_eq!(meta, &ObjectMeta { name: meta.name.clone(), namespace: Some("mail".into()), ..ObjectMeta::default() });
        }
        assert!(seen.snapshots["s"].status.as_ref().and_then(|s| s.creation_time.as_ref()).is_some());
        assert!(seen.snapshots["s"].spec.source.persistent_volume_claim_name.is_some());
        assert_eq!(seen.jobs["j"].spec, None);
        assert_eq!(seen.claims["c"].spec, None);
        assert_eq!(seen.claims["c"].status.as_ref().and_then(|s| s.phase.as_deref()), Some("Bound"));
        assert_eq!(seen.claims["c"].status.as_ref().and_then(|s| s.capacity.as_ref()), None);
    }

    /// Children of a run that is not kept are neither stored nor left behind, and forgetting a
    /// run drops everything it made, also from a relist under way.
    #[test]
    fn settled_runs_keep_nothing() {
        let children = RunChildren::default();
        let settled = |k: &RunKey| k.1 != "settled";
        assert_eq!(children.apply(&watcher::Event::Apply(snapshot("mail", "settled", "s", None)), settled), keys(&[]));
        assert_eq!(children.runs(), 0);

        children.apply(&watcher::Event::Apply(snapshot("mail", "b1", "s", None)), |_| true);
        // The run settled since: its next child event drops what was kept.
        children.apply(&watcher::Event::Apply(snapshot("mail", "b1", "s", Some("2026-12-03T10:00:00Z"))), |_| false);
        assert_eq!(children.runs(), 0);

        children.apply(&watcher::Event::Apply(snapshot("mail", "b2", "s", None)), |_| true);
        children.apply(&watcher::Event::<VolumeSnapshot>::Init, |_| true);
        children.apply(&watcher::Event::InitApply(snapshot("mail", "b2", "s", None)), |_| true);
        children.forget(&key("mail", "b2"));
        children.apply(&watcher::Event::<VolumeSnapshot>::InitDone, |_| true);
        assert_eq!(children.runs(), 0, "a run forgotten during a relist stays forgotten");
    }

    /// A relist replaces one kind's children of every run: what it no longer holds is gone
    /// (a deletion missed while the watch was down), other kinds stay, and every run whose
    /// children changed is woken.
    #[test]
    fn a_relist_replaces_one_kind_and_wakes_the_runs_it_changed() {
        let children = RunChildren::default();
        let keep_all = |_: &RunKey| true;
        children.apply(&watcher::Event::Apply(snapshot("mail", "gone", "s", None)), keep_all);
        children.apply(&watcher::Event::Apply(snapshot("mail", "same", "s", None)), keep_all);
        children.apply(&watcher::Event::Apply(snapshot("mail", "cut", "s", None)), keep_all);
        children.apply(&watcher::Event::Apply(job("mail", "gone", "j", 0)), keep_all);

        children.apply(&watcher::Event::<VolumeSnapshot>::Init, keep_all);
        for s in [snapshot("mail", "same", "s", None), snapshot("mail", "cut", "s", Some("2026-12-03T10:00:00Z")), snapshot("mail", "new", "s", None)] {
            assert_eq!(children.apply(&watcher::Event::InitApply(s), keep_all), keys(&[]), "nothing is woken before the list is complete");
        }
        assert!(children.of("mail", "new").snapshots.is_empty(), "a relist under way changes nothing yet");
        let woken = children.apply(&watcher::Event::<VolumeSnapshot>::InitDone, keep_all);
        assert_eq!(woken, keys(&[("mail", "gone"), ("mail", "cut"), ("mail", "new")]));
        assert!(children.of("mail", "gone").snapshots.is_empty());
        assert_eq!(children.of("mail", "gone").jobs.len(), 1, "a snapshot relist leaves the Jobs alone");
        assert!(children.of("mail", "cut").snapshots["s"].status.is_some());
        assert_eq!(children.of("mail", "new").snapshots.len(), 1);
        assert_eq!(children.runs(), 4);
    }
}
