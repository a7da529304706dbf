//! `archivist backup list` and `archivist backup describe`.

use super::super::output::{age, namespaced_table, seconds, section, timestamp};
use super::{or_dash, word};
use crate::api::{ArchiveBackup, ArchiveBackupStatus, QuiesceStatus};
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Event;

/// When a backup was made: its `status.startTime`, else its creation.
pub fn backup_time(backup: &ArchiveBackup) -> Option<DateTime<Utc>> {
    backup
        .status
        .as_ref()
        .and_then(|s| s.start_time)
        .or_else(|| backup.metadata.creation_timestamp.as_ref().map(crate::kube::time::from_kube))
}

/// The quiesce column: the window once released (`1.4 s`), `quiesced 12s` while the archive is
/// still quiesced, else `-`.
pub fn quiesce_summary(quiesce: Option<&QuiesceStatus>, now: DateTime<Utc>) -> String {
    match quiesce {
        Some(QuiesceStatus { window_seconds: Some(window), .. }) => seconds(*window),
        Some(QuiesceStatus { quiesced_at: Some(at), released_at: None, .. }) => format!("quiesced {}", age(Some(*at), now)),
        _ => "-".into(),
    }
}

/// The rows of `backup list`, sorted by namespace, then newest first. With `all_namespaces`,
/// the first column is the namespace.
pub fn list_table(backups: &[ArchiveBackup], all_namespaces: bool, now: DateTime<Utc>) -> String {
    let mut sorted: Vec<&ArchiveBackup> = backups.iter().collect();
    sorted.sort_by(|a, b| {
        a.metadata.namespace.cmp(&b.metadata.namespace).then_with(|| backup_time(b).cmp(&backup_time(a))).then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    let rows = sorted
        .iter()
        .map(|b| {
            let status = b.status.clone().unwrap_or_default();
            let row = vec![
                b.metadata.name.clone().unwrap_or_default(),
                b.spec.policy_name.clone(),
                word(b.spec.reason),
                or_dash(status.phase.map(word)),
                quiesce_summary(status.quiesce.as_ref(), now),
                or_dash(status.verification.as_ref().map(|v| word(v.state))),
                status.items.len().to_string(),
                if b.spec.hold { "yes".into() } else { "-".into() },
                age(backup_time(b), now),
            ];
            (b.metadata.namespace.clone().unwrap_or_default(), row)
        })
        .collect();
    namespaced_table(all_namespaces, &["NAME", "POLICY", "REASON", "PHASE", "QUIESCED", "VERIFIED", "ITEMS", "HOLD", "AGE"], rows)
}

/// `backup describe`: the backup's run, quiesce window, verification, items and Events.
pub fn describe(backup: &ArchiveBackup, events: &[Event], now: DateTime<Utc>) -> String {
    let status: ArchiveBackupStatus = backup.status.clone().unwrap_or_default();
    let mut fields: Vec<(&str, String)> = vec![
        ("Name", backup.metadata.name.clone().unwrap_or_default()),
        ("Namespace", backup.metadata.namespace.clone().unwrap_or_default()),
        ("Policy", backup.spec.policy_name.clone()),
        ("Reason", word(backup.spec.reason)),
        ("Hold", backup.spec.hold.to_string()),
        ("Phase", or_dash(status.phase.map(word))),
    ];
    super::push_run_times(&mut fields, status.start_time, status.completion_time, now);
    if let Some(quiesce) = &status.quiesce {
        fields.push(("Quiesce", quiesce_line(quiesce, now)));
        if !quiesce.pods.is_empty() {
            fields.push(("Quiesced pods", quiesce.pods.join(", ")));
        }
    }
    if let Some(v) = &status.verification {
        let mut line = word(v.state);
        if let Some(at) = v.finished_at {
            line.push_str(&format!(" at {}", timestamp(at)));
        }
        if let Some(message) = v.message.as_deref().filter(|m| !m.is_empty()) {
            line.push_str(&format!(": {message}"));
        }
        fields.push(("Verification", line));
    }
    if let Some(copy) = &status.secret_copy {
        fields.push(("Secret copy", copy.clone()));
    }
    if let Some(indexes) = status.indexes_included {
        fields.push(("Indexes", if indexes { "included".into() } else { "not included".into() }));
    }
    if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
        fields.push(("Message", message.to_string()));
    }
    let mut text = super::fields_text(&fields);
    text.push_str(&super::conditions::conditions_section(&status.conditions));
    text.push_str(&items_section(&status));
    text.push_str(&super::events::events_section(events, now));
    text
}

/// The Quiesce field: mode, window and times, or how long it has been quiesced.
fn quiesce_line(quiesce: &QuiesceStatus, now: DateTime<Utc>) -> String {
    let mode = or_dash(quiesce.mode.map(word));
    match (quiesce.quiesced_at, quiesce.released_at, quiesce.window_seconds) {
        (Some(from), Some(to), Some(window)) => format!("{mode}, {} ({} → {})", seconds(window), precise(from), precise(to)),
        (Some(from), None, _) => format!("{mode}, quiesced since {} ({} ago), not released yet", timestamp(from), age(Some(from), now)),
        _ => format!("{mode}, not quiesced yet"),
    }
}

/// A time to the millisecond: quiesce windows are often under a second.
fn precise(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The Items section: what was captured, in capture order.
fn items_section(status: &ArchiveBackupStatus) -> String {
    let rows: Vec<Vec<String>> = status
        .items
        .iter()
        .map(|i| {
            vec![
                word(i.component).to_lowercase(),
                or_dash(Some(i.store.clone())),
                or_dash(i.source_claim.clone().or_else(|| i.source_sql.clone())),
                or_dash(i.volume_snapshot.clone()),
                or_dash(i.captured_at.map(timestamp)),
                if i.ready_to_use { "yes".into() } else { "no".into() },
                or_dash(i.restore_size.clone()),
            ]
        })
        .collect();
    section("Items", &["COMPONENT", "STORE", "SOURCE", "SNAPSHOT", "CAPTURED", "READY", "SIZE"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ArchiveBackupSpec, BackupPhase, BackupReason, CapturedItem, Component, VerificationState, VerificationStatus};
    use crate::api::QuiesceMode;

    fn backup(namespace: &str, name: &str, started_seconds_ago: i64, now: DateTime<Utc>) -> ArchiveBackup {
        let mut b = ArchiveBackup::new(name, ArchiveBackupSpec { policy_name: "mailstore".into(), reason: BackupReason::Scheduled, hold: false });
        b.metadata.namespace = Some(namespace.into());
        b.status = Some(ArchiveBackupStatus {
            phase: Some(BackupPhase::Completed),
            start_time: Some(now - chrono::Duration::seconds(started_seconds_ago)),
            ..Default::default()
        });
        b
    }

    #[test]
    fn the_list_is_sorted_by_namespace_then_newest_first() {
        let now = Utc::now();
        let backups = vec![backup("b", "old", 600, now), backup("a", "x", 5, now), backup("b", "new", 60, now)];
        let text = list_table(&backups, true, now);
        let names: Vec<&str> = text.lines().skip(1).map(|l| l.split_whitespace().nth(1).unwrap_or("")).collect();
        assert_eq!(names, ["x", "new", "old"], "{text}");
        assert!(text.starts_with("NAMESPACE"), "{text}");
        assert!(!list_table(&backups, false, now).starts_with("NAMESPACE"));
    }

    #[test]
    fn the_quiesce_column_shows_the_window_or_how_long_it_has_been_quiesced() {
        let now = Utc::now();
        let cases = [
            (None, "-"),
            (Some(QuiesceStatus { window_seconds: Some(1.42), ..Default::default() }), "1.4 s"),
            (Some(QuiesceStatus { quiesced_at: Some(now - chrono::Duration::seconds(12)), ..Default::default() }), "quiesced 12s"),
            (Some(QuiesceStatus { mode: Some(QuiesceMode::Freeze), ..Default::default() }), "-"),
        ];
        for (quiesce, expected) in cases {
            assert_eq!(quiesce_summary(quiesce.as_ref(), now), expected, "{quiesce:?}");
        }
    }

    #[test]
    fn describe_shows_the_window_the_verification_and_each_item_in_capture_order() {
        let now = Utc::now();
        let mut b = backup("mail", "mailstore-1", 60, now);
        let status = b.status.as_mut().expect("status");
        let quiesced = now - chrono::Duration::seconds(58);
        status.quiesce = Some(QuiesceStatus {
            mode: Some(QuiesceMode::Freeze),
            quiesced_at: Some(quiesced),
            released_at: Some(quiesced + chrono::Duration::milliseconds(1400)),
            window_seconds: Some(1.4),
            pods: vec!["archive-0".into()],
            ..Default::default()
        });
        status.verification = Some(VerificationStatus { state: VerificationState::Passed, finished_at: None, message: Some("6 checks".into()), reason: None });
        status.items = vec![
            CapturedItem { component: Component::Metadata, store: "s1".into(), source_claim: Some("meta-s1".into()), source_sql: None, volume_snapshot: Some("snap-m".into()), captured_at: None, ready_to_use: true, restore_size: Some("1Gi".into()) },
            CapturedItem { component: Component::Content, store: "s1".into(), source_claim: Some("content-s1".into()), source_sql: None, volume_snapshot: Some("snap-c".into()), captured_at: None, ready_to_use: false, restore_size: None },
        ];
        let text = describe(&b, &[], now);
        assert!(text.contains("Quiesce:") && text.contains("Freeze, 1.4 s"), "{text}");
        assert!(text.contains("Quiesced pods:") && text.contains("archive-0"), "{text}");
        assert!(text.contains("Verification:") && text.contains("Passed: 6 checks"), "{text}");
        let metadata = text.find("snap-m").expect("metadata item");
        let content = text.find("snap-c").expect("content item");
        assert!(metadata < content, "{text}");
        assert!(text.ends_with("Events:  <none>\n"), "{text}");
    }

    #[test]
    fn describe_of_a_backup_still_quiesced_says_so() {
        let now = Utc::now();
        let mut b = backup("mail", "m", 10, now);
        let status = b.status.as_mut().expect("status");
        status.phase = Some(BackupPhase::CapturingContent);
        status.quiesce = Some(QuiesceStatus { mode: Some(QuiesceMode::Stop), quiesced_at: Some(now - chrono::Duration::seconds(7)), ..Default::default() });
        let text = describe(&b, &[], now);
        assert!(text.contains("Stop, quiesced since") && text.contains("(7s ago), not released yet"), "{text}");
    }
}
