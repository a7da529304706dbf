//! Deterministic names of everything Archivist creates, so that re-running a step after a crash
//! finds the object it made before instead of making a second one.
//!
//! Kubernetes names are at most 253 characters (63 for labels and for objects used as DNS
//! labels, such as Jobs' pods); a name that would be longer is cut and given a short stable
//! hash of the full name, so two different long names never collide.

use crate::api::Component;
use chrono::{DateTime, Utc};

/// The longest name used for objects whose name must be a DNS label (Jobs, Pods, Services).
pub const MAX_LABEL_NAME: usize = 63;
/// The longest name of other objects (PVCs, VolumeSnapshots, Secrets, ConfigMaps).
pub const MAX_NAME: usize = 253;

/// The ArchiveBackup created for a scheduled run: `<policy>-<yyyymmddhhmmss>` (UTC).
pub fn scheduled_backup_name(policy: &str, at: DateTime<Utc>) -> String {
    fit(&format!("{policy}-{}", at.format("%Y%m%d%H%M%S")), MAX_NAME)
}

/// The ArchiveBackup created for an `archivist.dev/backup-now` request:
/// `<policy>-now-<8 hex digits of a stable hash of the annotation value>`, so a retried
/// request never makes a second backup.
pub fn manual_backup_name(policy: &str, request: &str) -> String {
    fit(&format!("{policy}-now-{:08x}", fnv1a(request.as_bytes()) as u32), MAX_NAME)
}

/// The ArchiveBackup `archivist backup create` makes: `<policy>-manual-<yyyymmddhhmmss>` (UTC),
/// at most 63 characters (the name is a label value on every snapshot).
pub fn requested_backup_name(policy: &str, at: DateTime<Utc>) -> String {
    fit(&format!("{policy}-manual-{}", at.format("%Y%m%d%H%M%S")), MAX_LABEL_NAME)
}

/// The RestoreRequest `archivist restore create` makes: `<backup or policy>-restore-<yyyymmddhhmmss>`
/// (UTC), at most 63 characters.
pub fn requested_restore_name(source: &str, at: DateTime<Utc>) -> String {
    fit(&format!("{source}-restore-{}", at.format("%Y%m%d%H%M%S")), MAX_LABEL_NAME)
}

/// The word a component has in names and labels.
pub fn component_word(component: Component) -> &'static str {
    match component {
        Component::Master => "master",
        Component::Metadata => "metadata",
        Component::Content => "content",
        Component::Index => "index",
        Component::Store => "store",
        Component::Secrets => "secrets",
    }
}

/// The VolumeSnapshot of one captured claim: `<backup>-<component>[-<store>]-<claim>`.
pub fn snapshot_name(backup: &str, component: Component, store: &str, claim: &str) -> String {
    let mut name = format!("{backup}-{}", component_word(component));
    if !store.is_empty() {
        name.push('-');
        name.push_str(store);
    }
    name.push('-');
    name.push_str(claim);
    fit(&name, MAX_NAME)
}

/// The PVC an SQL dump is written to, and the Job that writes it:
/// `<backup>-dump-<component>-<store>` (a DNS label, since the Job's pods are named after it).
pub fn dump_name(backup: &str, component: Component, store: &str) -> String {
    fit(&format!("{backup}-dump-{}-{store}", component_word(component)), MAX_LABEL_NAME)
}

/// The Secret holding the backup's copies of `master.secrets`: `<backup>-secrets`.
pub fn secret_copy_name(backup: &str) -> String {
    fit(&format!("{backup}-secrets"), MAX_NAME)
}

/// Cuts `name` to `max` characters, replacing the tail by `-` and 8 hex digits of a stable
/// hash (FNV-1a) of the whole name when it is too long. Short names are returned unchanged.
pub fn fit(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let hash = fnv1a(name.as_bytes());
    let keep = max.saturating_sub(9);
    let mut head: String = name.chars().take(keep).collect();
    while head.ends_with(['-', '.']) {
        head.pop();
    }
    format!("{head}-{:08x}", hash as u32)
}

/// 64-bit FNV-1a: a stable hash (the standard library's hasher is not stable across releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_are_deterministic_and_fit() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 2, 0, 0).single().expect("time");
        assert_eq!(scheduled_backup_name("mailstore", at), "mailstore-20261122020000");
        let cases = [
            (snapshot_name("b", Component::Master, "", "master-mailstore-0"), "b-master-master-mailstore-0"),
            (snapshot_name("b", Component::Content, "store-2024", "content-2024"), "b-content-store-2024-content-2024"),
            (dump_name("b", Component::Metadata, "s1"), "b-dump-metadata-s1"),
            (secret_copy_name("b"), "b-secrets"),
            (requested_backup_name("mailstore", at), "mailstore-manual-20261122020000"),
            (requested_restore_name("mailstore-manual-20261122020000", at), "mailstore-manual-20261122020000-restore-20261122020000"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        let long = requested_restore_name(&"p".repeat(60), at);
        assert!(long.len() <= MAX_LABEL_NAME && long.starts_with("ppp"), "{long}");
    }

    /// The names of `archivist.dev/backup-now` backups are pinned: the operator finds the backup
    /// of a request it already handled by this name, so a change of the hash (or the format)
    /// would start a second backup after an upgrade.
    #[test]
    fn manual_backup_names_are_pinned() {
        let cases = [
            ("mailstore", "1", "mailstore-now-86019afc"),
            ("mailstore", "2026-11-22T02:00:00Z", "mailstore-now-117974f3"),
            ("p", "x", "p-now-86021707"),
        ];
        for (policy, request, want) in cases {
            assert_eq!(manual_backup_name(policy, request), want, "{policy} {request}");
        }
    }

    #[test]
    fn long_names_are_cut_with_a_hash_and_stay_distinct() {
        let long_a = "a".repeat(70);
        let long_b = format!("{}b", "a".repeat(69));
        let a = dump_name(&long_a, Component::Content, "s");
        let b = dump_name(&long_b, Component::Content, "s");
        assert_eq!(a.len(), MAX_LABEL_NAME);
        assert_eq!(b.len(), MAX_LABEL_NAME);
        assert_ne!(a, b);
        assert_eq!(a, dump_name(&long_a, Component::Content, "s"), "stable");
    }
}
