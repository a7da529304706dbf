//! `archivist status`: one line per BackupPolicy, computed from the policy and its
//! ArchiveBackups.

use super::super::output::{age, namespaced_table, short_duration};
use super::word;
use crate::api::{ArchiveBackup, BackupPhase, BackupPolicy, ConditionStatus, VerificationState};
use chrono::{DateTime, Utc};
use kube::ResourceExt;
use serde::Serialize;

/// One policy's health, as `status -o json|yaml` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyHealth {
    /// The policy's namespace.
    pub namespace: String,
    /// The policy's name.
    pub policy: String,
    /// The newest Completed backup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<String>,
    /// When it completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success_time: Option<DateTime<Utc>>,
    /// When the next scheduled run is due (`status.nextScheduleTime`); none for a manual or
    /// suspended policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<DateTime<Utc>>,
    /// `Scheduled`, `Manual` (no schedule) or `Suspended`.
    pub schedule: String,
    /// How many Completed backups (restore points) the policy has.
    pub restore_points: u32,
    /// Runs not finished yet.
    pub in_progress: u32,
    /// The verification of the newest restore point: `Passed`, `Failed`, `Pending`,
    /// `Skipped`, or absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<String>,
    /// What is failing, in words; empty when healthy.
    pub failing: Vec<String>,
}

/// The health of `policy` from its backups (others are ignored) at `now`.
pub fn policy_health(policy: &BackupPolicy, backups: &[ArchiveBackup], now: DateTime<Utc>) -> PolicyHealth {
    let namespace = policy.namespace().unwrap_or_default();
    let name = policy.name_any();
    let own: Vec<&ArchiveBackup> = backups
        .iter()
        .filter(|b| b.spec.policy_name == name && b.namespace().unwrap_or_default() == namespace)
        .collect();
    let phase = |b: &ArchiveBackup| b.status.as_ref().and_then(|s| s.phase);
    let started = |b: &ArchiveBackup| super::backup::backup_time(b);
    let completed: Vec<&&ArchiveBackup> = own.iter().filter(|b| phase(b) == Some(BackupPhase::Completed)).collect();
    let newest_success = completed.iter().max_by_key(|b| (started(b), b.name_any()));
    let newest_run = own.iter().max_by_key(|b| (started(b), b.name_any()));
    let mut failing = Vec::new();
    if let Some(ready) = policy.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready")) {
        if ready.status == ConditionStatus::False {
            failing.push(format!("not ready: {}", ready.message));
        }
    }
    if let Some(run) = newest_run.filter(|b| phase(b) == Some(BackupPhase::Failed)) {
        let message = run.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default();
        failing.push(format!("last run {} failed: {message}", run.name_any()));
    }
    let verification = newest_success.and_then(|b| b.status.as_ref()).and_then(|s| s.verification.as_ref()).map(|v| v.state);
    if let (Some(VerificationState::Failed), Some(b)) = (verification, newest_success) {
        failing.push(format!("verification of {} failed", b.name_any()));
    }
    let last_success_time = newest_success.and_then(|b| b.status.as_ref().and_then(|s| s.completion_time.or(s.start_time)));
    let schedule = match (&policy.spec.schedule, policy.spec.suspend) {
        (_, true) => "Suspended",
        (None, false) => "Manual",
        (Some(_), false) => "Scheduled",
    };
    if let Some(interval) = crate::gauges::schedule_interval(&policy.spec, now) {
        // The rule of the chart's ArchivistBackupMissing alert.
        let since = last_success_time.or_else(|| policy.metadata.creation_timestamp.as_ref().map(crate::kube::time::from_kube));
        if let Some(since) = since.filter(|s| (now - *s).num_milliseconds() as f64 > 2000.0 * interval) {
            failing.push(format!("no successful backup for {} (over twice the schedule interval)", short_duration((now - since).num_seconds())));
        }
    }
    PolicyHealth {
        namespace,
        policy: name,
        last_success: newest_success.map(|b| b.name_any()),
        last_success_time,
        next_run: if schedule == "Scheduled" { policy.status.as_ref().and_then(|s| s.next_schedule_time) } else { None },
        schedule: schedule.into(),
        restore_points: completed.len() as u32,
        in_progress: own.iter().filter(|b| !phase(b).is_some_and(BackupPhase::is_finished)).count() as u32,
        verified: verification.map(word),
        failing,
    }
}

/// The `status` table: one line per policy, sorted by namespace and name.
pub fn status_table(rows: &[PolicyHealth], all_namespaces: bool, now: DateTime<Utc>) -> String {
    let mut sorted: Vec<&PolicyHealth> = rows.iter().collect();
    sorted.sort_by(|a, b| (&a.namespace, &a.policy).cmp(&(&b.namespace, &b.policy)));
    let rows = sorted
        .iter()
        .map(|h| {
            let last = match (&h.last_success, h.last_success_time) {
                (Some(name), Some(at)) => format!("{name} ({} ago)", age(Some(at), now)),
                (Some(name), None) => name.clone(),
                _ => "never".into(),
            };
            let next = match (h.schedule.as_str(), h.next_run) {
                ("Scheduled", Some(at)) if at >= now => format!("in {}", short_duration((at - now).num_seconds())),
                ("Scheduled", Some(at)) => format!("due {} ago", short_duration((now - at).num_seconds())),
                ("Scheduled", None) => "-".into(),
                (other, _) => other.to_lowercase(),
            };
            let points = if h.in_progress > 0 { format!("{} (+{} running)", h.restore_points, h.in_progress) } else { h.restore_points.to_string() };
            let row = vec![
                h.policy.clone(),
                last,
                next,
                points,
                h.verified.clone().unwrap_or_else(|| "-".into()),
                if h.failing.is_empty() { "-".into() } else { h.failing.join("; ") },
            ];
            (h.namespace.clone(), row)
        })
        .collect();
    namespaced_table(all_namespaces, &["POLICY", "LAST SUCCESS", "NEXT RUN", "RESTORE POINTS", "VERIFIED", "FAILING"], rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ArchiveBackupSpec, ArchiveBackupStatus, BackupPolicyStatus, BackupReason, Condition, VerificationStatus};
    use chrono::Duration;

    fn policy(schedule: Option<&str>, suspend: bool, now: DateTime<Utc>) -> BackupPolicy {
        let mut value: serde_json::Value = serde_json::from_str(
            r#"{"apiVersion":"archivist.dev/v1alpha1","kind":"BackupPolicy","metadata":{"name":"mailstore","namespace":"mail"},
                "spec":{"target":{"kind":"StatefulSet","name":"archive"},"stores":[{"name":"s1","metadata":{"volumeClaims":["m"]},"content":{"volumeClaims":["c"]}}]}}"#,
        )
        .expect("policy json");
        if let Some(s) = schedule {
            value["spec"]["schedule"] = s.into();
        }
        value["spec"]["suspend"] = suspend.into();
        let mut p: BackupPolicy = serde_json::from_value(value).expect("policy");
        let created = k8s_openapi::jiff::Timestamp::from_millisecond((now - Duration::days(30)).timestamp_millis()).expect("time");
        p.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(created));
        p.status = Some(BackupPolicyStatus { next_schedule_time: Some(now + Duration::hours(2)), ..Default::default() });
        p
    }

    fn backup(name: &str, policy: &str, phase: BackupPhase, hours_ago: i64, verification: Option<VerificationState>, now: DateTime<Utc>) -> ArchiveBackup {
        let mut b = ArchiveBackup::new(name, ArchiveBackupSpec { policy_name: policy.into(), reason: BackupReason::Scheduled, hold: false });
        b.metadata.namespace = Some("mail".into());
        let start = now - Duration::hours(hours_ago);
        b.status = Some(ArchiveBackupStatus {
            phase: Some(phase),
            start_time: Some(start),
            completion_time: phase.is_finished().then_some(start + Duration::seconds(30)),
            message: (phase == BackupPhase::Failed).then(|| "freeze hook failed".to_string()),
            verification: verification.map(|state| VerificationStatus { state, finished_at: None, message: None, reason: None }),
            ..Default::default()
        });
        b
    }

    #[test]
    fn a_healthy_policy_shows_its_last_success_next_run_and_restore_points() {
        let now = Utc::now();
        let backups = vec![
            backup("b1", "mailstore", BackupPhase::Completed, 30, Some(VerificationState::Passed), now),
            backup("b2", "mailstore", BackupPhase::Completed, 6, Some(VerificationState::Passed), now),
            backup("other", "another", BackupPhase::Failed, 1, None, now),
        ];
        let health = policy_health(&policy(Some("0 */6 * * *"), false, now), &backups, now);
        assert_eq!(health.last_success.as_deref(), Some("b2"));
        assert_eq!(health.restore_points, 2);
        assert_eq!(health.verified.as_deref(), Some("Passed"));
        assert!(health.failing.is_empty(), "{:?}", health.failing);
        let table = status_table(&[health], false, now);
        let line = table.lines().nth(1).expect("row");
        assert!(line.starts_with("mailstore") && line.contains("b2 (5h59m ago)") && line.contains("in 2h"), "{table}");
    }

    /// Each case: the policy's schedule and suspension, its backups, and what `failing` says.
    #[test]
    fn what_is_failing_is_said_in_words() {
        let now = Utc::now();
        let cases: Vec<(&str, Option<&str>, bool, Vec<ArchiveBackup>, Vec<&str>)> = vec![
            ("healthy", Some("@daily"), false, vec![backup("b1", "mailstore", BackupPhase::Completed, 3, None, now)], vec![]),
            (
                "the last run failed",
                Some("@daily"),
                false,
                vec![backup("b1", "mailstore", BackupPhase::Completed, 3, None, now), backup("b2", "mailstore", BackupPhase::Failed, 1, None, now)],
                vec!["last run b2 failed: freeze hook failed"],
            ),
            (
                "an older failure is history",
                Some("@daily"),
                false,
                vec![backup("b1", "mailstore", BackupPhase::Failed, 3, None, now), backup("b2", "mailstore", BackupPhase::Completed, 1, None, now)],
                vec![],
            ),
            (
                "verification of the newest restore point failed",
                Some("@daily"),
                false,
                vec![backup("b1", "mailstore", BackupPhase::Completed, 1, Some(VerificationState::Failed), now)],
                vec!["verification of b1 failed"],
            ),
            (
                "no success in twice the interval",
                Some("@hourly"),
                false,
                vec![backup("b1", "mailstore", BackupPhase::Completed, 3, None, now)],
                vec!["no successful backup for 2h59m (over twice the schedule interval)"],
            ),
            ("never a backup, scheduled for a month", Some("@daily"), false, vec![], vec!["no successful backup for 30d (over twice the schedule interval)"]),
            ("manual policies are never overdue", None, false, vec![], vec![]),
            ("suspended policies are never overdue", Some("@hourly"), true, vec![], vec![]),
        ];
        for (name, schedule, suspend, backups, expected) in cases {
            let health = policy_health(&policy(schedule, suspend, now), &backups, now);
            assert_eq!(health.failing, expected, "{name}");
        }
    }

    #[test]
    fn a_policy_that_is_not_ready_says_why_and_manual_or_suspended_policies_have_no_next_run() {
        let now = Utc::now();
        let mut p = policy(None, false, now);
        p.status.as_mut().expect("status").conditions.push(Condition {
            type_: "Ready".into(),
            status: ConditionStatus::False,
            reason: "TargetNotFound".into(),
            message: "StatefulSet mail/archive not found".into(),
            last_transition_time: now,
            observed_generation: None,
        });
        let health = policy_health(&p, &[], now);
        assert_eq!(health.failing, ["not ready: StatefulSet mail/archive not found"]);
        assert_eq!((health.schedule.as_str(), health.next_run), ("Manual", None));
        let table = status_table(&[health], true, now);
        assert!(table.starts_with("NAMESPACE"), "{table}");
        assert!(table.lines().nth(1).is_some_and(|l| l.contains("never") && l.contains("manual")), "{table}");
        assert_eq!(policy_health(&policy(Some("@daily"), true, now), &[], now).schedule, "Suspended");
    }

    #[test]
    fn running_backups_are_counted_beside_the_restore_points() {
        let now = Utc::now();
        let backups = vec![backup("b1", "mailstore", BackupPhase::Completed, 2, None, now), backup("b2", "mailstore", BackupPhase::CapturingContent, 0, None, now)];
        let health = policy_health(&policy(Some("@daily"), false, now), &backups, now);
        assert_eq!((health.restore_points, health.in_progress), (1, 1));
        assert!(status_table(&[health], false, now).contains("1 (+1 running)"));
    }
}
