//! What a backup run captures, and in which order: the capture plan.
//!
//! The order is the product's consistency rule: the master volumes, then each store's
//! **metadata**, then each store's **content** (then its index when indexes are included).
//! Every metadata item is cut before any content item starts, so after a restore every
//! metadata record has its content (content written after the metadata cut has no metadata
//! row pointing at it; the reverse order would lose content of rows already recorded).

use super::names;
use crate::api::{BackupPolicySpec, CapturedItem, Component, DataSource, SqlSource, TargetKind};

/// The workload a policy targets, as far as the capture plan needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadShape {
    /// StatefulSet or Deployment.
    pub kind: TargetKind,
    /// The workload's name.
    pub name: String,
    /// The StatefulSet's volumeClaimTemplate names (empty for a Deployment).
    pub claim_templates: Vec<String>,
    /// The replicas whose PVCs are captured (for `Stop`, the count before scaling to 0).
    pub replicas: i32,
}

impl WorkloadShape {
    /// The PVC names a policy's `volumeClaims` entry means: for a StatefulSet, a
    /// volumeClaimTemplate name means `<template>-<statefulset>-<ordinal>` of every replica;
    /// any other name is a PVC name as it is.
    pub fn expand_claim(&self, claim: &str) -> Vec<String> {
        if self.kind == TargetKind::StatefulSet && self.claim_templates.iter().any(|t| t == claim) {
            (0..self.replicas.max(0)).map(|i| format!("{claim}-{}-{i}", self.name)).collect()
        } else {
            vec![claim.to_string()]
        }
    }
}

/// The phase of the run an item is captured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CaptureStage {
    /// Master and every store's metadata: cut before any content capture starts.
    Metadata,
    /// Every store's content, then indexes.
    Content,
}

/// Where a planned item's data comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemSource {
    /// A PVC that is snapshotted directly.
    Claim(String),
    /// An SQL database that a Job dumps into the PVC `dump_claim` (also the Job's name),
    /// which is then snapshotted.
    Sql {
        /// The database.
        sql: SqlSource,
        /// The dump PVC, and the dump Job, of this item.
        dump_claim: String,
    },
}

/// One item of the capture plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedItem {
    /// Metadata or content stage.
    pub stage: CaptureStage,
    /// The archive component.
    pub component: Component,
    /// The store; empty for the master.
    pub store: String,
    /// What is captured.
    pub source: ItemSource,
    /// The VolumeSnapshot that holds it.
    pub snapshot: String,
}

impl PlannedItem {
    /// The PVC that is snapshotted: the source claim, or the dump PVC of an SQL source.
    pub fn claim(&self) -> &str {
        match &self.source {
            ItemSource::Claim(claim) => claim,
            ItemSource::Sql { dump_claim, .. } => dump_claim,
        }
    }
}

/// The capture plan of a run, in capture order: master volumes, each store's metadata, each
/// store's content, each store's index (when `includeIndexes`).
pub fn capture_plan(backup: &str, policy: &BackupPolicySpec, workload: &WorkloadShape) -> Vec<PlannedItem> {
    let mut items = Vec::new();
    let mut add = |stage, component, store: &str, source: &DataSource| {
        if let Some(sql) = &source.sql {
            let dump_claim = names::dump_name(backup, component, store);
            items.push(PlannedItem {
                stage,
                component,
                store: store.to_string(),
                snapshot: names::snapshot_name(backup, component, store, "dump"),
                source: ItemSource::Sql { sql: sql.clone(), dump_claim },
            });
        }
        for claim in source.volume_claims.iter().flat_map(|c| workload.expand_claim(c)) {
            items.push(PlannedItem {
                stage,
                component,
                store: store.to_string(),
                snapshot: names::snapshot_name(backup, component, store, &claim),
                source: ItemSource::Claim(claim),
            });
        }
    };
    if let Some(master) = &policy.master {
        let source = DataSource { volume_claims: master.volume_claims.clone(), sql: None };
        add(CaptureStage::Metadata, Component::Master, "", &source);
    }
    for store in &policy.stores {
        add(CaptureStage::Metadata, Component::Metadata, &store.name, &store.metadata);
    }
    for store in &policy.stores {
        add(CaptureStage::Content, Component::Content, &store.name, &store.content);
    }
    // One-volume stores hold metadata too: cut with the content, after every metadata item.
    for store in policy.stores.iter().filter(|s| !s.volume_claims.is_empty()) {
        let whole = DataSource { volume_claims: store.volume_claims.clone(), sql: None };
        add(CaptureStage::Content, Component::Store, &store.name, &whole);
    }
    if policy.include_indexes {
        for store in &policy.stores {
            if let Some(index) = &store.index {
                add(CaptureStage::Content, Component::Index, &store.name, index);
            }
        }
    }
    items
}

/// The capture plan a started run recorded in `status.items` (every item but the Secrets
/// copy), in the recorded order: the plan is frozen at the start, so a target that scales or
/// vanishes mid-run cannot shrink it. An SQL item takes its database from the run's policy
/// copy (the store of the same name).
pub fn recorded_plan(items: &[CapturedItem], policy: &BackupPolicySpec) -> Vec<PlannedItem> {
    items
        .iter()
        .filter(|i| i.component != Component::Secrets)
        .filter_map(|item| {
            let claim = item.source_claim.clone()?;
            let snapshot = item.volume_snapshot.clone()?;
            let stage = match item.component {
                Component::Master | Component::Metadata => CaptureStage::Metadata,
                Component::Content | Component::Index | Component::Store | Component::Secrets => CaptureStage::Content,
            };
            let sql = item.source_sql.as_ref().and_then(|_| {
                let store = policy.stores.iter().find(|s| s.name == item.store)?;
                let source = match item.component {
                    Component::Metadata => &store.metadata,
                    Component::Content => &store.content,
                    _ => return None,
                };
                source.sql.clone()
            });
            let source = match sql {
                Some(sql) => ItemSource::Sql { sql, dump_claim: claim },
                None => ItemSource::Claim(claim),
            };
            Some(PlannedItem { stage, component: item.component, store: item.store.clone(), source, snapshot })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{MasterSpec, SqlEngine, StoreSpec, TargetRef};

    fn claims(names: &[&str]) -> DataSource {
        DataSource { volume_claims: names.iter().map(|s| s.to_string()).collect(), sql: None }
    }

    fn policy() -> BackupPolicySpec {
        serde_json::from_value(serde_json::json!({"target": {"kind": "StatefulSet", "name": "mailstore"}}))
            .expect("minimal policy")
    }

    fn sts(replicas: i32) -> WorkloadShape {
        WorkloadShape {
            kind: TargetKind::StatefulSet,
            name: "mailstore".into(),
            claim_templates: vec!["master".into(), "content".into()],
            replicas,
        }
    }

    #[test]
    fn claim_templates_expand_per_replica() {
        let cases: [(WorkloadShape, &str, Vec<&str>); 4] = [
            (sts(2), "master", vec!["master-mailstore-0", "master-mailstore-1"]),
            (sts(2), "plain-pvc", vec!["plain-pvc"]),
            (sts(0), "master", vec![]),
            (
                WorkloadShape { kind: TargetKind::Deployment, claim_templates: vec![], ..sts(3) },
                "master",
                vec!["master"],
            ),
        ];
        for (shape, claim, want) in cases {
            assert_eq!(shape.expand_claim(claim), want, "{claim} on {shape:?}");
        }
    }

    #[test]
    fn every_metadata_item_comes_before_every_content_item() {
        let mut p = policy();
        p.target = TargetRef { kind: TargetKind::StatefulSet, name: "mailstore".into() };
        p.master = Some(MasterSpec { volume_claims: vec!["master".into()], secrets: vec!["key".into()] });
        p.stores = vec![
            StoreSpec { name: "s1".into(), metadata: claims(&["meta-1"]), content: claims(&["content"]), index: Some(claims(&["idx-1"])), volume_claims: vec![] },
            StoreSpec {
                name: "s2".into(),
                metadata: DataSource {
                    volume_claims: vec![],
                    sql: Some(SqlSource {
                        engine: SqlEngine::PostgreSQL,
                        host: "db".into(),
                        port: None,
                        database: "meta".into(),
                        credentials_secret: "db".into(),
                    }),
                },
                content: claims(&["content-2"]),
                index: None,
                volume_claims: vec![],
            },
            // A one-volume store (metadata, content and index in one folder): with the content.
            StoreSpec { name: "s3".into(), metadata: DataSource::default(), content: DataSource::default(), index: None, volume_claims: vec!["store-3".into()] },
        ];
        let plan = capture_plan("b", &p, &sts(2));
        let got: Vec<(Component, &str, &str)> = plan.iter().map(|i| (i.component, i.store.as_str(), i.claim())).collect();
        assert_eq!(
            got,
            vec![
                (Component::Master, "", "master-mailstore-0"),
                (Component::Master, "", "master-mailstore-1"),
                (Component::Metadata, "s1", "meta-1"),
                (Component::Metadata, "s2", "b-dump-metadata-s2"),
                (Component::Content, "s1", "content-mailstore-0"),
                (Component::Content, "s1", "content-mailstore-1"),
                (Component::Content, "s2", "content-2"),
                (Component::Store, "s3", "store-3"),
                (Component::Index, "s1", "idx-1"),
            ]
        );
        let last_metadata = plan.iter().rposition(|i| i.stage == CaptureStage::Metadata).expect("metadata");
        let first_content = plan.iter().position(|i| i.stage == CaptureStage::Content).expect("content");
        assert!(last_metadata < first_content);
        assert_eq!(plan[3].snapshot, "b-metadata-s2-dump");
        // Frozen at the start: the plan read back from the recorded items is the same plan,
        // also after the target scaled to one replica (or vanished).
        let mut items: Vec<CapturedItem> = plan
            .iter()
            .map(|i| CapturedItem {
                component: i.component,
                store: i.store.clone(),
                source_claim: Some(i.claim().to_string()),
                source_sql: matches!(i.source, ItemSource::Sql { .. }).then(|| "PostgreSQL://db:5432/meta".to_string()),
                volume_snapshot: Some(i.snapshot.clone()),
                captured_at: None,
                ready_to_use: false,
                restore_size: None,
            })
            .collect();
        items.insert(0, CapturedItem { component: Component::Secrets, store: String::new(), source_claim: None, source_sql: None, volume_snapshot: None, captured_at: None, ready_to_use: true, restore_size: None });
        assert_eq!(recorded_plan(&items, &p), plan);
        assert_ne!(capture_plan("b", &p, &sts(1)).len(), plan.len(), "the live plan would have shrunk");

        p.include_indexes = false;
        assert!(capture_plan("b", &p, &sts(2)).iter().all(|i| i.component != Component::Index));
    }
}
