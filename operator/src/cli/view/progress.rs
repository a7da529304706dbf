//! The live lines of `--wait`: one per phase the command sees, plus the moment the archive was
//! released, then the outcome.

use super::word;
use crate::api::{ArchiveBackupStatus, BackupPhase, RestorePhase, RestoreRequestStatus};

/// How a watched run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Completed: exit 0.
    Completed,
    /// Failed: exit 1.
    Failed,
}

/// A line's prefix: the seconds since the command started, right-aligned.
fn stamp(elapsed_seconds: f64) -> String {
    format!("{elapsed_seconds:>6.1}s  ")
}

/// What `backup create --wait` has printed so far of one backup.
#[derive(Debug, Default)]
pub struct BackupProgress {
    phase: Option<BackupPhase>,
    released_reported: bool,
}

impl BackupProgress {
    /// The lines to print for the backup's status as now seen, `elapsed_seconds` after the
    /// command started: nothing when nothing new happened. Phases the watch skipped over are
    /// not invented; the release line comes as soon as `releasedAt` is seen.
    pub fn observe(&mut self, status: Option<&ArchiveBackupStatus>, elapsed_seconds: f64) -> Vec<String> {
        let Some(status) = status else { return Vec::new() };
        let mut lines = Vec::new();
        let phase = status.phase;
        let quiesce = status.quiesce.as_ref();
        let released = quiesce.and_then(|q| q.released_at.zip(q.window_seconds));
        let phase_changed = phase.is_some() && phase != self.phase;
        // The release precedes every phase after Releasing, so say it before such a phase.
        let report_release = |lines: &mut Vec<String>, reported: &mut bool| {
            if let (Some((_, window)), false) = (released, *reported) {
                lines.push(format!("{}Released after {window:.1} s", stamp(elapsed_seconds)));
                *reported = true;
            }
        };
        if phase_changed && phase != Some(BackupPhase::Releasing) {
            report_release(&mut lines, &mut self.released_reported);
        }
        if let (true, Some(p)) = (phase_changed, phase) {
            self.phase = Some(p);
            let line = match p {
                BackupPhase::Quiescing => match quiesce.and_then(|q| q.mode) {
                    Some(mode) => format!("Quiescing ({})", word(mode)),
                    None => "Quiescing".into(),
                },
                BackupPhase::Completed => {
                    let verification = status.verification.as_ref().map(|v| format!(", verification {}", word(v.state))).unwrap_or_default();
                    format!("Completed: {} items{verification}", status.items.len())
                }
                BackupPhase::Failed => format!("Failed: {}", status.message.as_deref().unwrap_or("no message")),
                other => word(other),
            };
            lines.push(format!("{}{line}", stamp(elapsed_seconds)));
        }
        report_release(&mut lines, &mut self.released_reported);
        lines
    }

    /// How the run ended, once it has.
    pub fn outcome(status: Option<&ArchiveBackupStatus>) -> Option<Outcome> {
        match status.and_then(|s| s.phase) {
            Some(BackupPhase::Completed) => Some(Outcome::Completed),
            Some(BackupPhase::Failed) => Some(Outcome::Failed),
            _ => None,
        }
    }
}

/// What `restore create --wait` has printed so far of one request.
#[derive(Debug, Default)]
pub struct RestoreProgress {
    phase: Option<RestorePhase>,
}

impl RestoreProgress {
    /// The lines to print for the request's status as now seen: a line per new phase; at the
    /// end, the backup it restored and one line per restored item, or why it failed.
    pub fn observe(&mut self, status: Option<&RestoreRequestStatus>, elapsed_seconds: f64) -> Vec<String> {
        let Some(status) = status else { return Vec::new() };
        let Some(phase) = status.phase.filter(|p| Some(*p) != self.phase) else { return Vec::new() };
        self.phase = Some(phase);
        let mut lines = Vec::new();
        match phase {
            RestorePhase::Restoring => {
                let from = status.resolved_backup.as_deref().map(|b| format!(" from {b}")).unwrap_or_default();
                let from = match (&status.repository, status.resolved_from) {
                    (Some(_), Some(crate::api::SourceFrom::Repository)) => format!("{from} ({})", super::restore::data_from(status)),
                    _ => from,
                };
                lines.push(format!("{}Restoring{from}", stamp(elapsed_seconds)));
            }
            RestorePhase::Completed => {
                lines.push(format!("{}Completed: {} items restored", stamp(elapsed_seconds), status.mapping.len()));
                for m in &status.mapping {
                    let store = if m.store.is_empty() { String::new() } else { format!(" {}", m.store) };
                    lines.push(format!("          {}{store}: {} -> {}", word(m.component).to_lowercase(), m.original, m.restored));
                }
            }
            RestorePhase::Failed => lines.push(format!("{}Failed: {}", stamp(elapsed_seconds), status.message.as_deref().unwrap_or("no message"))),
            other => lines.push(format!("{}{}", stamp(elapsed_seconds), word(other))),
        }
        lines
    }

    /// How the restore ended, once it has.
    pub fn outcome(status: Option<&RestoreRequestStatus>) -> Option<Outcome> {
        match status.and_then(|s| s.phase) {
            Some(RestorePhase::Completed) => Some(Outcome::Completed),
            Some(RestorePhase::Failed) => Some(Outcome::Failed),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Component, QuiesceMode, QuiesceStatus, RestoreMapping, VerificationState, VerificationStatus};
    use chrono::Utc;

    fn backup_status(phase: BackupPhase, released: Option<f64>) -> ArchiveBackupStatus {
        let now = Utc::now();
        ArchiveBackupStatus {
            phase: Some(phase),
            quiesce: Some(QuiesceStatus {
                mode: Some(QuiesceMode::Freeze),
                quiesced_at: Some(now),
                released_at: released.map(|_| now),
                window_seconds: released,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Each case: the phases (and release windows) the watch delivers, in order, and the lines
    /// printed, without their time stamps.
    #[test]
    fn backup_lines_follow_the_phases_seen_and_report_the_release_once() {
        use BackupPhase::*;
        let cases: Vec<(&str, Vec<(BackupPhase, Option<f64>)>, Vec<&str>)> = vec![
            (
                "every phase seen",
                vec![(Pending, None), (Quiescing, None), (CapturingMetadata, None), (CapturingContent, None), (Releasing, None), (Releasing, Some(1.44)), (Finalizing, Some(1.44)), (Completed, Some(1.44))],
                vec!["Pending", "Quiescing (Freeze)", "CapturingMetadata", "CapturingContent", "Releasing", "Released after 1.4 s", "Finalizing", "Completed: 0 items"],
            ),
            (
                "the release and Finalizing in one update",
                vec![(CapturingContent, None), (Finalizing, Some(0.36))],
                vec!["CapturingContent", "Released after 0.4 s", "Finalizing"],
            ),
            (
                "the same status twice prints nothing new",
                vec![(Quiescing, None), (Quiescing, None)],
                vec!["Quiescing (Freeze)"],
            ),
            (
                "the command started after the release",
                vec![(Completed, Some(2.0))],
                vec!["Released after 2.0 s", "Completed: 0 items"],
            ),
        ];
        for (name, updates, expected) in cases {
            let mut progress = BackupProgress::default();
            let lines: Vec<String> = updates
                .iter()
                .enumerate()
                .flat_map(|(i, (phase, released))| progress.observe(Some(&backup_status(*phase, *released)), i as f64))
                .map(|l| l.split_once("s  ").map(|(_, rest)| rest.to_string()).unwrap_or(l))
                .collect();
            assert_eq!(lines, expected, "{name}");
        }
    }

    #[test]
    fn a_finished_backup_reports_its_outcome_with_verification_or_message() {
        let mut completed = backup_status(BackupPhase::Completed, Some(1.0));
        completed.verification = Some(VerificationStatus { state: VerificationState::Passed, finished_at: None, message: None, reason: None });
        let mut progress = BackupProgress::default();
        let lines = progress.observe(Some(&completed), 3.25);
        assert_eq!(lines.last().map(String::as_str), Some("   3.2s  Completed: 0 items, verification Passed"));
        assert_eq!(BackupProgress::outcome(Some(&completed)), Some(Outcome::Completed));

        let mut failed = backup_status(BackupPhase::Failed, None);
        failed.message = Some("hook freeze failed on archive-0".into());
        let lines = BackupProgress::default().observe(Some(&failed), 1.0);
        assert_eq!(lines, ["   1.0s  Failed: hook freeze failed on archive-0"]);
        assert_eq!(BackupProgress::outcome(Some(&failed)), Some(Outcome::Failed));
        assert_eq!(BackupProgress::outcome(Some(&backup_status(BackupPhase::Verifying, Some(1.0)))), None);
        assert_eq!(BackupProgress::outcome(None), None);
    }

    #[test]
    fn restore_lines_name_the_backup_and_every_restored_item() {
        let mut progress = RestoreProgress::default();
        let restoring = RestoreRequestStatus { phase: Some(RestorePhase::Restoring), resolved_backup: Some("mailstore-1".into()), ..Default::default() };
        assert_eq!(progress.observe(Some(&restoring), 0.5), ["   0.5s  Restoring from mailstore-1"]);
        assert!(progress.observe(Some(&restoring), 0.7).is_empty());
        let completed = RestoreRequestStatus {
            phase: Some(RestorePhase::Completed),
            mapping: vec![RestoreMapping { component: Component::Metadata, store: "s1".into(), original: "meta".into(), restored: "meta-r".into() }],
            ..Default::default()
        };
        assert_eq!(progress.observe(Some(&completed), 2.0), ["   2.0s  Completed: 1 items restored", "          metadata s1: meta -> meta-r"]);
        assert_eq!(RestoreProgress::outcome(Some(&completed)), Some(Outcome::Completed));
        let failed = RestoreRequestStatus { phase: Some(RestorePhase::Failed), message: Some("spec.stores[0]: no store \"x\"".into()), ..Default::default() };
        assert_eq!(RestoreProgress::default().observe(Some(&failed), 1.0), ["   1.0s  Failed: spec.stores[0]: no store \"x\""]);
        assert_eq!(RestoreProgress::outcome(Some(&failed)), Some(Outcome::Failed));
    }
}
