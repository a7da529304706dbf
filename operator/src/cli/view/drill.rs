//! `archivist drill report`: the history of a policy's restore drills.

use super::super::output::{age, short_duration, table, timestamp};
use super::{or_dash, word};
use crate::api::{BackupPolicy, DrillState, DrillStatus};
use chrono::{DateTime, Utc};

/// The drills of `policy`, newest first: the running one (`lastDrill`, not yet in the
/// history), then `recentDrills` (the last 10 finished).
pub fn drills(policy: &BackupPolicy) -> Vec<DrillStatus> {
    let Some(status) = policy.status.as_ref() else { return Vec::new() };
    let current = status.last_drill.iter().filter(|d| !status.recent_drills.iter().any(|r| r.restore_request == d.restore_request));
    current.chain(status.recent_drills.iter()).cloned().collect()
}

/// The report: one row per drill (started, backup, result, how long, the RestoreRequest, the
/// message), then the next scheduled drill.
pub fn report(policy: &BackupPolicy, now: DateTime<Utc>) -> String {
    let name = policy.metadata.name.clone().unwrap_or_default();
    let all = drills(policy);
    let mut text = if all.is_empty() {
        format!("No restore drills of BackupPolicy {name} yet.\n")
    } else {
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|d| {
                let result = match (d.state, d.torn_down) {
                    (DrillState::Running, _) => "Running".to_string(),
                    (state, true) => word(state),
                    (state, false) => format!("{} (tearing down)", word(state)),
                };
                let took = d.finished_at.map(|end| short_duration((end - d.started_at).num_seconds()));
                vec![
                    format!("{} ({} ago)", timestamp(d.started_at), age(Some(d.started_at), now)),
                    d.backup.clone(),
                    result,
                    or_dash(took),
                    d.restore_request.clone(),
                    or_dash(d.message.as_deref().map(|m| m.replace('\n', " "))),
                ]
            })
            .collect();
        table(&["STARTED", "BACKUP", "RESULT", "TOOK", "RESTORE REQUEST", "MESSAGE"], &rows)
    };
    let next = policy.status.as_ref().and_then(|s| s.next_drill_time);
    let schedule = policy.spec.verification.as_ref().and_then(|v| v.drill_schedule.clone());
    match (schedule, next) {
        (Some(schedule), Some(next)) => text.push_str(&format!("Next drill: {} ({schedule})\n", timestamp(next))),
        (Some(schedule), None) => text.push_str(&format!("Drill schedule: {schedule}\n")),
        (None, _) => text.push_str("No drillSchedule: drills run only when annotated archivist.dev/drill-now.\n"),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, h, m, 0).single().expect("time")
    }

    fn drill(request: &str, state: DrillState, started: DateTime<Utc>, torn_down: bool) -> DrillStatus {
        DrillStatus {
            state,
            backup: "mail-20261204020000".into(),
            restore_request: request.into(),
            started_at: started,
            finished_at: (state != DrillState::Running).then(|| started + chrono::Duration::seconds(95)),
            message: Some("the probe command failed\nexit 1".into()).filter(|_| state == DrillState::Failed),
            output: None,
            torn_down,
        }
    }

    fn policy(last: Option<DrillStatus>, recent: Vec<DrillStatus>, schedule: Option<&str>) -> BackupPolicy {
        let mut p: BackupPolicy = serde_json::from_value(serde_json::json!({
            "apiVersion": "archivist.dev/v1alpha1", "kind": "BackupPolicy", "metadata": {"name": "mail", "namespace": "ns"},
            "spec": {"target": {"kind": "StatefulSet", "name": "mail"}, "stores": [], "verification": {"drillSchedule": schedule}}
        }))
        .expect("policy");
        p.status = Some(crate::api::BackupPolicyStatus { last_drill: last, recent_drills: recent, next_drill_time: schedule.map(|_| t(4, 0) + chrono::Duration::days(7)), ..Default::default() });
        p
    }

    #[test]
    fn the_report_lists_the_running_drill_then_the_history() {
        let passed = drill("mail-drill-1", DrillState::Passed, t(1, 0), true);
        let failed = drill("mail-drill-0", DrillState::Failed, t(0, 0), true);
        let running = drill("mail-drill-2", DrillState::Running, t(2, 0), false);
        let cases = [
            ("nothing yet", policy(None, vec![], None), "No restore drills of BackupPolicy mail yet.\nNo drillSchedule: drills run only when annotated archivist.dev/drill-now.\n".to_string()),
            (
                "a running drill and two finished",
                policy(Some(running), vec![passed.clone(), failed], Some("0 4 * * 0")),
                [
                    "STARTED                         BACKUP                RESULT    TOOK    RESTORE REQUEST   MESSAGE",
                    "2026-12-04T02:00:00Z (1h ago)   mail-20261204020000   Running   -       mail-drill-2      -",
                    "2026-12-04T01:00:00Z (2h ago)   mail-20261204020000   Passed    1m35s   mail-drill-1      -",
                    "2026-12-04T00:00:00Z (3h ago)   mail-20261204020000   Failed    1m35s   mail-drill-0      the probe command failed exit 1",
                    "Next drill: 2026-12-11T04:00:00Z (0 4 * * 0)",
                    "",
                ]
                .join("\n"),
            ),
            (
                "the last drill finished, not torn down yet",
                policy(Some(drill("mail-drill-1", DrillState::Passed, t(1, 0), false)), vec![], Some("0 4 * * 0")),
                [
                    "STARTED                         BACKUP                RESULT                  TOOK    RESTORE REQUEST   MESSAGE",
                    "2026-12-04T01:00:00Z (2h ago)   mail-20261204020000   Passed (tearing down)   1m35s   mail-drill-1      -",
                    "Next drill: 2026-12-11T04:00:00Z (0 4 * * 0)",
                    "",
                ]
                .join("\n"),
            ),
        ];
        for (name, policy, want) in cases {
            assert_eq!(report(&policy, t(3, 0)), want, "{name}");
        }
    }
}
