//! Gauges computed from the ArchiveBackups at each scrape, from the operator's cache: they
//! describe the cluster, not this process, so they survive restarts and failovers (a new leader
//! reports the same values), and alerts on them do not reset.
//!
//! - `archivist_backup_last_success_timestamp_seconds{namespace,policy}`: the completion time of
//!   the newest Completed run of the policy.
//! - `archivist_restore_points{namespace,policy}`: the policy's Completed runs.
//! - `archivist_backup_in_progress{namespace,policy}`: its runs not yet Completed or Failed.
//! - `archivist_archive_quiesced{namespace,workload}`: 1 while a run holds the workload frozen
//!   or stopped (quiesced and not yet released), 0 for the other targets of runs in progress.
//!   Settled runs are cached without their copy of the policy (`plan::backup::cached`), so a
//!   workload with no run in progress has no series; a settled run never holds its workload.
//!
//! A standby (not leading) has no cache and reports none of them.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use kube::runtime::reflector::Store;
use kube::ResourceExt as _;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::api::{ArchiveBackup, BackupPhase};

/// Labels of the per-policy gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct PolicyLabels {
    /// The policy's namespace.
    pub namespace: String,
    /// The policy's name.
    pub policy: String,
}

/// Labels of `archivist_archive_quiesced`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct WorkloadLabels {
    /// The workload's namespace.
    pub namespace: String,
    /// The workload's name (a StatefulSet or Deployment).
    pub workload: String,
}

/// The values of the gauges, computed from a set of ArchiveBackups.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ObjectGauges {
    /// Completion time (Unix seconds) of each policy's newest Completed run.
    pub last_success: BTreeMap<PolicyLabels, f64>,
    /// Completed runs per policy.
    pub restore_points: BTreeMap<PolicyLabels, i64>,
    /// Unfinished runs per policy (0 for a policy whose runs are all finished).
    pub in_progress: BTreeMap<PolicyLabels, i64>,
    /// 1 for a workload held quiesced, 0 for the other workloads runs have targeted.
    pub quiesced: BTreeMap<WorkloadLabels, i64>,
}

/// Computes the gauges from `backups`.
pub fn compute<'a>(backups: impl IntoIterator<Item = &'a ArchiveBackup>) -> ObjectGauges {
    let mut gauges = ObjectGauges::default();
    for backup in backups {
        let namespace = backup.namespace().unwrap_or_default();
        let policy = PolicyLabels { namespace: namespace.clone(), policy: backup.spec.policy_name.clone() };
        let status = backup.status.as_ref();
        let phase = status.and_then(|s| s.phase);
        let finished = phase.is_some_and(BackupPhase::is_finished);
        *gauges.in_progress.entry(policy.clone()).or_default() += i64::from(!finished);
        let points = gauges.restore_points.entry(policy.clone()).or_default();
        if phase == Some(BackupPhase::Completed) {
            *points += 1;
            if let Some(done) = status.and_then(|s| s.completion_time) {
                let seconds = done.timestamp_millis() as f64 / 1000.0;
                let last = gauges.last_success.entry(policy).or_insert(seconds);
                *last = last.max(seconds);
            }
        }
        if let Some(target) = status.and_then(|s| s.policy_spec.as_ref()).map(|p| &p.target) {
            let held = status
                .and_then(|s| s.quiesce.as_ref())
                .is_some_and(|q| q.quiesced_at.is_some() && q.released_at.is_none());
            let workload = WorkloadLabels { namespace, workload: target.name.clone() };
            let value = gauges.quiesced.entry(workload).or_default();
            *value = (*value).max(i64::from(held));
        }
    }
    gauges
}

/// The collector registered with the metrics: reads the ArchiveBackup cache, once the
/// controllers have made it, at each scrape.
#[derive(Debug, Default, Clone)]
pub struct BackupGauges {
    backups: Arc<OnceLock<Store<ArchiveBackup>>>,
}

impl BackupGauges {
    /// Starts reporting from `backups` (the controllers' cache); later calls change nothing.
    pub fn observe(&self, backups: Store<ArchiveBackup>) {
        let _ = self.backups.set(backups);
    }
}

impl Collector for BackupGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(store) = self.backups.get() else {
            return Ok(());
        };
        let backups = store.state();
        let gauges = compute(backups.iter().map(AsRef::as_ref));
        encode_family(&mut encoder, "backup_last_success_timestamp_seconds", "Completion time of the newest Completed backup of the policy (Unix seconds)", &gauges.last_success)?;
        encode_family(&mut encoder, "restore_points", "Completed backups (restore points) of the policy", &gauges.restore_points)?;
        encode_family(&mut encoder, "backup_in_progress", "Backups of the policy not yet Completed or Failed", &gauges.in_progress)?;
        encode_family(&mut encoder, "archive_quiesced", "1 while a backup holds the workload frozen or stopped", &gauges.quiesced)?;
        Ok(())
    }
}

/// Writes one gauge family; nothing when it has no series.
fn encode_family<L, N>(encoder: &mut DescriptorEncoder, name: &str, help: &str, values: &BTreeMap<L, N>) -> Result<(), std::fmt::Error>
where
    L: EncodeLabelSet,
    N: Copy + std::fmt::Debug,
    ConstGauge<N>: prometheus_client::encoding::EncodeMetric,
{
    if values.is_empty() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in values {
        ConstGauge::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::QuiesceStatus;

    fn backup(ns: &str, policy: &str, phase: Option<BackupPhase>, completed_at: Option<&str>, quiesce: Option<(bool, bool)>) -> ArchiveBackup {
        let mut b: ArchiveBackup = serde_json::from_value(serde_json::json!({
            "apiVersion": "archivist.dev/v1alpha1", "kind": "ArchiveBackup",
            "metadata": {"name": format!("{policy}-{}", completed_at.unwrap_or("x")), "namespace": ns},
            "spec": {"policyName": policy},
            "status": {"policySpec": {"target": {"kind": "StatefulSet", "name": format!("{policy}-server")}}}
        }))
        .expect("backup");
        let status = b.status.get_or_insert_with(Default::default);
        status.phase = phase;
        status.completion_time = completed_at.map(|t| t.parse().expect("time"));
        let at: chrono::DateTime<chrono::Utc> = "2026-12-01T00:00:00Z".parse().expect("time");
        status.quiesce = quiesce.map(|(quiesced, released)| QuiesceStatus {
            quiesced_at: quiesced.then_some(at),
            released_at: released.then_some(at),
            ..QuiesceStatus::default()
        });
        b
    }

    fn policy(ns: &str, policy: &str) -> PolicyLabels {
        PolicyLabels { namespace: ns.into(), policy: policy.into() }
    }

    fn workload(ns: &str, name: &str) -> WorkloadLabels {
        WorkloadLabels { namespace: ns.into(), workload: name.into() }
    }

    #[test]
    fn gauges_follow_the_runs() {
        let runs = [
            backup("mail", "a", Some(BackupPhase::Completed), Some("2026-12-01T10:00:00Z"), Some((true, true))),
            backup("mail", "a", Some(BackupPhase::Completed), Some("2026-12-02T10:00:00Z"), Some((true, true))),
            backup("mail", "a", Some(BackupPhase::Failed), Some("2026-12-03T10:00:00Z"), Some((true, true))),
            backup("mail", "a", Some(BackupPhase::CapturingContent), None, Some((true, false))),
            backup("mail", "b", Some(BackupPhase::Failed), Some("2026-12-03T10:00:00Z"), None),
            backup("other", "a", None, None, None),
        ];
        let gauges = compute(runs.iter());
        let newest = "2026-12-02T10:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().expect("time").timestamp() as f64;
        assert_eq!(gauges.last_success, BTreeMap::from([(policy("mail", "a"), newest)]));
        assert_eq!(gauges.restore_points, BTreeMap::from([(policy("mail", "a"), 2), (policy("mail", "b"), 0), (policy("other", "a"), 0)]));
        assert_eq!(gauges.in_progress, BTreeMap::from([(policy("mail", "a"), 1), (policy("mail", "b"), 0), (policy("other", "a"), 1)]));
        assert_eq!(
            gauges.quiesced,
            BTreeMap::from([(workload("mail", "a-server"), 1), (workload("mail", "b-server"), 0), (workload("other", "a-server"), 0)])
        );
    }

    #[test]
    fn the_collector_reports_nothing_before_the_cache_exists_and_the_cache_after() {
        let gauges = BackupGauges::default();
        let mut registry = prometheus_client::registry::Registry::with_prefix("archivist");
        registry.register_collector(Box::new(gauges.clone()));
        let encode = |registry: &prometheus_client::registry::Registry| {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, registry).expect("encode");
            text
        };
        assert!(!encode(&registry).contains("archivist_restore_points"));
        let (store, mut writer) = kube::runtime::reflector::store::<ArchiveBackup>();
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(backup(
            "mail",
            "a",
            Some(BackupPhase::Completed),
            Some("2026-12-01T10:00:00Z"),
            None,
        )));
        gauges.observe(store);
        let text = encode(&registry);
        assert!(text.contains(r#"archivist_restore_points{namespace="mail",policy="a"} 1"#), "{text}");
        assert!(text.contains(r#"archivist_backup_in_progress{namespace="mail",policy="a"} 0"#), "{text}");
        assert!(text.contains(r#"archivist_backup_last_success_timestamp_seconds{namespace="mail",policy="a"} 1796119200"#), "{text}");
        assert!(text.contains("# TYPE archivist_archive_quiesced gauge"), "{text}");
    }
}
