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
//! - `archivist_archive_quiesce_overdue{namespace,workload}`: 1 while a run has held the
//!   workload longer than its policy's `quiesce.timeoutSeconds` (the operator releases at the
//!   deadline, so this means the release itself is failing).
//! - `archivist_backup_verification_failed{namespace,policy}`: 1 when the newest verified run
//!   of the policy (by `verification.finishedAt`) failed verification, 0 when it passed.
//! - `archivist_backup_export_failed{namespace,policy}`: 1 when the newest ended export of the
//!   policy's restore points (by `export.finishedAt`) failed, 0 when it was exported.
//! - `archivist_backup_schedule_interval_seconds{namespace,policy}`: the time between the
//!   policy's next two scheduled runs, for scheduled policies that are not suspended (the alert
//!   on a missing backup compares the last success with it).
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

use chrono::{DateTime, Utc};

use crate::api::{ArchiveBackup, BackupPhase, BackupPolicy, BackupPolicySpec, ExportState, VerificationState};
use crate::plan::schedule::Schedule;

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
    /// 1 for a workload held longer than its quiesce timeout, 0 for the other targets.
    pub quiesce_overdue: BTreeMap<WorkloadLabels, i64>,
    /// 1 when the policy's newest verification failed, 0 when it passed.
    pub verification_failed: BTreeMap<PolicyLabels, i64>,
    /// 1 when the policy's newest ended export failed, 0 when it was exported.
    pub export_failed: BTreeMap<PolicyLabels, i64>,
    /// Seconds between the next two scheduled runs of each scheduled, unsuspended policy.
    pub schedule_interval: BTreeMap<PolicyLabels, f64>,
}

/// Computes the gauges from `backups` and `policies` at `now`.
pub fn compute<'a>(
    backups: impl IntoIterator<Item = &'a ArchiveBackup>,
    policies: impl IntoIterator<Item = &'a BackupPolicy>,
    now: DateTime<Utc>,
) -> ObjectGauges {
    let mut gauges = ObjectGauges::default();
    let mut newest_verification: BTreeMap<PolicyLabels, (DateTime<Utc>, bool)> = BTreeMap::new();
    let mut newest_export: BTreeMap<PolicyLabels, (DateTime<Utc>, bool)> = BTreeMap::new();
    for policy in policies {
        let labels = PolicyLabels { namespace: policy.namespace().unwrap_or_default(), policy: policy.name_any() };
        if let Some(interval) = schedule_interval(&policy.spec, now) {
            gauges.schedule_interval.insert(labels, interval);
        }
    }
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
                let last = gauges.last_success.entry(policy.clone()).or_insert(seconds);
                *last = last.max(seconds);
            }
        }
        if let Some(verification) = status.and_then(|s| s.verification.as_ref()) {
            let failed = match verification.state {
                VerificationState::Failed => Some(true),
                VerificationState::Passed => Some(false),
                VerificationState::Pending | VerificationState::Skipped => None,
            };
            if let (Some(failed), Some(at)) = (failed, verification.finished_at) {
                let newest = newest_verification.entry(policy.clone()).or_insert((at, failed));
                if at > newest.0 {
                    *newest = (at, failed);
                }
            }
        }
        if let Some(export) = status.and_then(|s| s.export.as_ref()) {
            let failed = match export.state {
                ExportState::Failed => Some(true),
                ExportState::Exported => Some(false),
                ExportState::Pending | ExportState::Running => None,
            };
            if let (Some(failed), Some(at)) = (failed, export.finished_at) {
                let newest = newest_export.entry(policy.clone()).or_insert((at, failed));
                if at > newest.0 {
                    *newest = (at, failed);
                }
            }
        }
        if let Some(spec) = status.and_then(|s| s.policy_spec.as_ref()) {
            let held_since = status
                .and_then(|s| s.quiesce.as_ref())
                .filter(|q| q.released_at.is_none())
                .and_then(|q| q.quiesced_at);
            let overdue = held_since.is_some_and(|at| (now - at).num_milliseconds() > i64::from(spec.quiesce.timeout_seconds) * 1000);
            let workload = WorkloadLabels { namespace, workload: spec.target.name.clone() };
            let value = gauges.quiesced.entry(workload.clone()).or_default();
            *value = (*value).max(i64::from(held_since.is_some()));
            let value = gauges.quiesce_overdue.entry(workload).or_default();
            *value = (*value).max(i64::from(overdue));
        }
    }
    gauges.verification_failed = newest_verification.into_iter().map(|(k, (_, failed))| (k, i64::from(failed))).collect();
    gauges.export_failed = newest_export.into_iter().map(|(k, (_, failed))| (k, i64::from(failed))).collect();
    gauges
}

/// The seconds between a policy's next two scheduled runs after `now`; `None` for a manual,
/// suspended or invalid schedule.
pub fn schedule_interval(spec: &BackupPolicySpec, now: DateTime<Utc>) -> Option<f64> {
    if spec.suspend {
        return None;
    }
    let schedule = Schedule::parse(spec.schedule.as_deref()?, &spec.time_zone).ok()?;
    let first = schedule.next_after(now)?;
    let second = schedule.next_after(first)?;
    Some((second - first).num_milliseconds() as f64 / 1000.0)
}

/// The collector registered with the metrics: reads the ArchiveBackup and BackupPolicy caches,
/// once the controllers have made them, at each scrape.
#[derive(Debug, Default, Clone)]
pub struct BackupGauges {
    backups: Arc<OnceLock<Store<ArchiveBackup>>>,
    policies: Arc<OnceLock<Store<BackupPolicy>>>,
}

impl BackupGauges {
    /// Starts reporting from `backups` (the controllers' cache); later calls change nothing.
    pub fn observe(&self, backups: Store<ArchiveBackup>) {
        let _ = self.backups.set(backups);
    }

    /// Adds the policies (the BackupPolicy controller's store) for the schedule intervals;
    /// later calls change nothing.
    pub fn observe_policies(&self, policies: Store<BackupPolicy>) {
        let _ = self.policies.set(policies);
    }
}

impl Collector for BackupGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(store) = self.backups.get() else {
            return Ok(());
        };
        let backups = store.state();
        let policies = self.policies.get().map(Store::state).unwrap_or_default();
        let gauges = compute(backups.iter().map(AsRef::as_ref), policies.iter().map(AsRef::as_ref), Utc::now());
        encode_family(&mut encoder, "backup_last_success_timestamp_seconds", "Completion time of the newest Completed backup of the policy (Unix seconds)", &gauges.last_success)?;
        encode_family(&mut encoder, "restore_points", "Completed backups (restore points) of the policy", &gauges.restore_points)?;
        encode_family(&mut encoder, "backup_in_progress", "Backups of the policy not yet Completed or Failed", &gauges.in_progress)?;
        encode_family(&mut encoder, "archive_quiesced", "1 while a backup holds the workload frozen or stopped", &gauges.quiesced)?;
        encode_family(&mut encoder, "archive_quiesce_overdue", "1 while a backup has held the workload longer than its quiesce timeout", &gauges.quiesce_overdue)?;
        encode_family(&mut encoder, "backup_verification_failed", "1 when the newest verification of the policy's backups failed, 0 when it passed", &gauges.verification_failed)?;
        encode_family(&mut encoder, "backup_export_failed", "1 when the newest export of the policy's restore points failed, 0 when it was exported", &gauges.export_failed)?;
        encode_family(&mut encoder, "backup_schedule_interval_seconds", "Seconds between the next two scheduled backups of the policy", &gauges.schedule_interval)?;
        Ok(())
    }
}

/// Writes one gauge family: its `# HELP` and `# TYPE` always (so every family the dashboard and
/// alerts query is discoverable), then its series, if any.
fn encode_family<L, N>(encoder: &mut DescriptorEncoder, name: &str, help: &str, values: &BTreeMap<L, N>) -> Result<(), std::fmt::Error>
where
    L: EncodeLabelSet,
    N: Copy + std::fmt::Debug,
    ConstGauge<N>: prometheus_client::encoding::EncodeMetric,
{
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in values {
        ConstGauge::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{QuiesceStatus, VerificationStatus};

    fn at(t: &str) -> DateTime<Utc> {
        t.parse().expect("time")
    }

    fn exported(mut b: ArchiveBackup, state: ExportState, finished: Option<&str>) -> ArchiveBackup {
        let export = crate::api::ExportStatus { state, repository: None, started_at: None, finished_at: finished.map(at), bytes_added: None, message: None, snapshots: vec![], manifest: None, forget_failed_at: None };
        b.status.get_or_insert_with(Default::default).export = Some(export);
        b
    }

    #[test]
    fn the_newest_ended_export_decides_export_failed() {
        let done = |name: &str, policy: &str| backup("mail", name, policy, Some(BackupPhase::Completed), Some("2026-12-01T10:00:00Z"));
        let runs = [
            // a: failed, then a newer one was exported: 0.
            exported(done("a1", "a"), ExportState::Failed, Some("2026-12-01T10:10:00Z")),
            exported(done("a2", "a"), ExportState::Exported, Some("2026-12-02T10:10:00Z")),
            // b: exported, then a newer one failed; one still running does not count: 1.
            exported(done("b1", "b"), ExportState::Exported, Some("2026-12-01T10:10:00Z")),
            exported(done("b2", "b"), ExportState::Failed, Some("2026-12-02T10:10:00Z")),
            exported(done("b3", "b"), ExportState::Running, None),
            // c: nothing ended yet: no series.
            exported(done("c1", "c"), ExportState::Pending, None),
        ];
        let gauges = compute(runs.iter(), [].iter(), at("2026-12-03T12:00:00Z"));
        assert_eq!(gauges.export_failed, BTreeMap::from([(policy("mail", "a"), 0), (policy("mail", "b"), 1)]));
    }

    /// A run of `policy` (target `<policy>-server`, quiesce timeout 60 s).
    fn backup(ns: &str, name: &str, policy: &str, phase: Option<BackupPhase>, completed_at: Option<&str>) -> ArchiveBackup {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "archivist.dev/v1alpha1", "kind": "ArchiveBackup",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"policyName": policy},
            "status": {
                "phase": phase,
                "completionTime": completed_at,
                "policySpec": {"target": {"kind": "StatefulSet", "name": format!("{policy}-server")}, "quiesce": {"mode": "Freeze", "timeoutSeconds": 60}, "stores": []}
            }
        }))
        .expect("backup")
    }

    fn quiesced(mut b: ArchiveBackup, since: &str, released: bool) -> ArchiveBackup {
        let status = b.status.get_or_insert_with(Default::default);
        status.quiesce = Some(QuiesceStatus { quiesced_at: Some(at(since)), released_at: released.then(|| at(since)), ..QuiesceStatus::default() });
        b
    }

    fn verified(mut b: ArchiveBackup, state: VerificationState, finished: &str) -> ArchiveBackup {
        b.status.get_or_insert_with(Default::default).verification = Some(VerificationStatus { state, finished_at: Some(at(finished)), message: None, reason: None });
        b
    }

    fn policy_object(ns: &str, name: &str, schedule: Option<&str>, suspend: bool) -> BackupPolicy {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "archivist.dev/v1alpha1", "kind": "BackupPolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"target": {"kind": "StatefulSet", "name": "x"}, "schedule": schedule, "suspend": suspend, "quiesce": {"mode": "None"}, "stores": []}
        }))
        .expect("policy")
    }

    fn policy(ns: &str, policy: &str) -> PolicyLabels {
        PolicyLabels { namespace: ns.into(), policy: policy.into() }
    }

    fn workload(ns: &str, name: &str) -> WorkloadLabels {
        WorkloadLabels { namespace: ns.into(), workload: name.into() }
    }

    #[test]
    fn gauges_follow_the_runs_and_the_policies() {
        let now = at("2026-12-03T12:00:00Z");
        let runs = [
            verified(quiesced(backup("mail", "a1", "a", Some(BackupPhase::Completed), Some("2026-12-01T10:00:00Z")), "2026-12-01T09:59:00Z", true), VerificationState::Failed, "2026-12-01T10:05:00Z"),
            verified(quiesced(backup("mail", "a2", "a", Some(BackupPhase::Completed), Some("2026-12-02T10:00:00Z")), "2026-12-02T09:59:00Z", true), VerificationState::Passed, "2026-12-02T10:05:00Z"),
            backup("mail", "a3", "a", Some(BackupPhase::Failed), Some("2026-12-03T10:00:00Z")),
            // Held for 30 s (within the 60 s timeout).
            quiesced(backup("mail", "a4", "a", Some(BackupPhase::CapturingContent), None), "2026-12-03T11:59:30Z", false),
            // Failed, and its release has been failing for 5 minutes.
            verified(quiesced(backup("mail", "b1", "b", Some(BackupPhase::Failed), Some("2026-12-03T11:55:00Z")), "2026-12-03T11:55:00Z", false), VerificationState::Failed, "2026-12-03T11:56:00Z"),
            verified(backup("other", "a1", "a", None, None), VerificationState::Pending, "2026-12-03T11:00:00Z"),
        ];
        let policies = [
            policy_object("mail", "a", Some("0 */6 * * *"), false),
            policy_object("mail", "b", Some("@daily"), true),
            policy_object("other", "a", None, false),
            policy_object("other", "bad", Some("not a schedule"), false),
        ];
        let gauges = compute(runs.iter(), policies.iter(), now);
        assert_eq!(gauges.last_success, BTreeMap::from([(policy("mail", "a"), at("2026-12-02T10:00:00Z").timestamp() as f64)]));
        assert_eq!(gauges.restore_points, BTreeMap::from([(policy("mail", "a"), 2), (policy("mail", "b"), 0), (policy("other", "a"), 0)]));
        assert_eq!(gauges.in_progress, BTreeMap::from([(policy("mail", "a"), 1), (policy("mail", "b"), 0), (policy("other", "a"), 1)]));
        assert_eq!(gauges.quiesced, BTreeMap::from([(workload("mail", "a-server"), 1), (workload("mail", "b-server"), 1), (workload("other", "a-server"), 0)]));
        assert_eq!(gauges.quiesce_overdue, BTreeMap::from([(workload("mail", "a-server"), 0), (workload("mail", "b-server"), 1), (workload("other", "a-server"), 0)]));
        // The newest verdict counts: a's failure was followed by a pass; pending ones do not.
        assert_eq!(gauges.verification_failed, BTreeMap::from([(policy("mail", "a"), 0), (policy("mail", "b"), 1)]));
        assert_eq!(gauges.schedule_interval, BTreeMap::from([(policy("mail", "a"), 6.0 * 3600.0)]));
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
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(backup("mail", "a1", "a", Some(BackupPhase::Completed), Some("2026-12-01T10:00:00Z"))));
        gauges.observe(store);
        let (policies, mut writer) = kube::runtime::reflector::store::<BackupPolicy>();
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(policy_object("mail", "a", Some("@hourly"), false)));
        gauges.observe_policies(policies);
        let text = encode(&registry);
        for want in [
            r#"archivist_restore_points{namespace="mail",policy="a"} 1"#,
            r#"archivist_backup_in_progress{namespace="mail",policy="a"} 0"#,
            r#"archivist_backup_last_success_timestamp_seconds{namespace="mail",policy="a"} 1796119200"#,
            r#"archivist_backup_schedule_interval_seconds{namespace="mail",policy="a"} 3600"#,
            r#"archivist_archive_quiesced{namespace="mail",workload="a-server"} 0"#,
            "# TYPE archivist_archive_quiesce_overdue gauge",
            // No verification ran: the family is announced with no series.
            "# TYPE archivist_backup_verification_failed gauge",
        ] {
            assert!(text.contains(want), "no {want} in\n{text}");
        }
        assert!(!text.contains("archivist_backup_verification_failed{"), "{text}");
    }
}
