//! A restore deletes only what it made. Every object it creates carries the label
//! `archivist.dev/restore: <request>`; those it may delete are also owned by the request, and
//! the `SideBySide` workload copy is recorded (kind, name, uid) in `status.workloadCopy` right
//! after it is created: the TTL deletes that uid and nothing else.
//!
//! Before a request creates anything, every name it would create is checked: a name already
//! taken (a PVC, Secret, workload copy, pre-restore backup or mapping ConfigMap that exists)
//! fails the request, and the message names each object. Pure: decided from observations.

use super::{pre_restore_backup_name, ItemKind, RestoreItem, RestoreObservation};
use crate::api::{RestoreMode, TargetKind, TargetRef, WorkloadCopy};
use crate::plan::names::{fit, MAX_LABEL_NAME};

/// An object a request may have made, as observed: its uid, its `archivist.dev/restore` label
/// and the uids of its owners.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectObs {
    /// `metadata.uid`.
    pub uid: String,
    /// The `archivist.dev/restore` label: the request that made it.
    pub restored_by: Option<String>,
    /// The uids of its ownerReferences.
    pub owner_uids: Vec<String>,
}

impl ObjectObs {
    /// Whether the request `name` with uid `uid` made it: labelled with the request and owned
    /// by it (a request of the same name made earlier has another uid).
    pub fn made_by(&self, name: &str, uid: &str) -> bool {
        self.restored_by.as_deref() == Some(name) && self.owner_uids.iter().any(|u| u == uid)
    }
}

/// The side-by-side copy's name: `<target><suffix>`.
pub fn copy_name(target: &TargetRef, suffix: &str) -> String {
    fit(&format!("{}{suffix}", target.name), MAX_LABEL_NAME)
}

/// The kind's name as in messages: `StatefulSet` or `Deployment`.
pub fn kind_word(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::StatefulSet => "StatefulSet",
        TargetKind::Deployment => "Deployment",
    }
}

/// The workload copy a `SideBySide` request of `target` makes (its uid is not known yet).
pub fn planned_copy(target: &TargetRef, suffix: &str) -> WorkloadCopy {
    WorkloadCopy { kind: target.kind, name: copy_name(target, suffix), uid: String::new() }
}

/// Every object a request that has created nothing yet would create but finds already there,
/// as `<Kind> <namespace>/<name>`: the restored PVCs (volumes and SQL dump claims; for
/// `InPlace` only the dump claims, as the volumes replace the originals by design), the
/// restored Secrets, the workload copy (`SideBySide`), the pre-restore backup (`InPlace`) and
/// the mapping ConfigMap (unless a request of the same name made it; it is rewritten).
pub fn taken_names(obs: &RestoreObservation<'_>, items: &[RestoreItem], copy: Option<&WorkloadCopy>) -> Vec<String> {
    let ns = obs.namespace;
    let in_place = obs.spec.target.mode == RestoreMode::InPlace;
    let mut taken = Vec::new();
    for item in items {
        match &item.kind {
            ItemKind::Volume { .. } if !in_place && obs.claims.contains_key(&item.restored) => {
                taken.push(format!("PersistentVolumeClaim {ns}/{}", item.restored));
            }
            ItemKind::Sql { claim, .. } if obs.claims.contains_key(claim) => taken.push(format!("PersistentVolumeClaim {ns}/{claim}")),
            ItemKind::Secret { .. } if obs.secrets.contains(&item.restored) => taken.push(format!("Secret {ns}/{}", item.restored)),
            _ => {}
        }
    }
    if let (Some(copy), Some(_), RestoreMode::SideBySide) = (copy, &obs.copy, obs.spec.target.mode) {
        taken.push(format!("{} {ns}/{}", kind_word(copy.kind), copy.name));
    }
    if in_place {
        let pre = pre_restore_backup_name(obs.name);
        if obs.backups.iter().any(|b| b.metadata.name.as_deref() == Some(pre.as_str())) {
            taken.push(format!("ArchiveBackup {ns}/{pre}"));
        }
    }
    if obs.mapping.as_ref().is_some_and(|m| m.restored_by.as_deref() != Some(obs.name)) {
        taken.push(format!("ConfigMap {ns}/{}", super::mapping_config_map_name(obs.name)));
    }
    taken
}

/// The message of a request refused for names already taken: each object, and that nothing
/// was created or changed.
pub fn describe_taken(taken: &[String]) -> String {
    let each: Vec<String> = taken.iter().map(|t| format!("{t} already exists")).collect();
    format!(
        "{} and was not made by this request; nothing was created and the existing object{} left as it is (remove it or choose another spec.target.nameSuffix)",
        each.join(", "),
        if taken.len() == 1 { " is" } else { "s are" }
    )
}

/// What the TTL of a completed `SideBySide` request may delete: the observed copy only when
/// its uid is the one recorded at creation; an object that took the name since is left.
pub fn deletable_copy<'a>(recorded: Option<&'a WorkloadCopy>, observed: Option<&ObjectObs>) -> Option<&'a WorkloadCopy> {
    let recorded = recorded?;
    (observed?.uid == recorded.uid && !recorded.uid.is_empty()).then_some(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(uid: &str, label: Option<&str>, owners: &[&str]) -> ObjectObs {
        ObjectObs { uid: uid.into(), restored_by: label.map(String::from), owner_uids: owners.iter().map(|o| o.to_string()).collect() }
    }

    #[test]
    fn made_by_needs_the_label_and_the_owner() {
        let cases = [
            ("labelled and owned", obs("u", Some("req"), &["req-uid"]), true),
            ("owned, not labelled", obs("u", None, &["req-uid"]), false),
            ("labelled by another request", obs("u", Some("other"), &["req-uid"]), false),
            ("labelled, owned by an earlier request of the same name", obs("u", Some("req"), &["old-uid"]), false),
            ("labelled, owned by nobody", obs("u", Some("req"), &[]), false),
        ];
        for (name, o, want) in cases {
            assert_eq!(o.made_by("req", "req-uid"), want, "{name}");
        }
    }

    #[test]
    fn the_ttl_deletes_only_the_recorded_uid() {
        let recorded = WorkloadCopy { kind: TargetKind::StatefulSet, name: "archive-r".into(), uid: "uid-1".into() };
        let unknown = WorkloadCopy { uid: String::new(), ..recorded.clone() };
        let cases: [(&str, Option<&WorkloadCopy>, Option<ObjectObs>, bool); 6] = [
            ("the copy it made", Some(&recorded), Some(obs("uid-1", Some("req"), &["req-uid"])), true),
            ("replaced by a user object", Some(&recorded), Some(obs("uid-2", None, &[])), false),
            ("replaced by an object that looks like ours", Some(&recorded), Some(obs("uid-2", Some("req"), &["req-uid"])), false),
            ("gone", Some(&recorded), None, false),
            ("never recorded", None, Some(obs("uid-1", Some("req"), &["req-uid"])), false),
            ("recorded without a uid", Some(&unknown), Some(obs("", Some("req"), &["req-uid"])), false),
        ];
        for (name, rec, seen, want) in cases {
            assert_eq!(deletable_copy(rec, seen.as_ref()).is_some(), want, "{name}");
        }
    }

    #[test]
    fn refusal_messages_name_every_object() {
        assert_eq!(
            describe_taken(&["StatefulSet mail/archive-r".into()]),
            "StatefulSet mail/archive-r already exists and was not made by this request; nothing was created and the existing object is left as it is (remove it or choose another spec.target.nameSuffix)"
        );
        let two = describe_taken(&["PersistentVolumeClaim mail/a-r".into(), "Secret mail/k-r".into()]);
        assert!(two.starts_with("PersistentVolumeClaim mail/a-r already exists, Secret mail/k-r already exists and was not made"), "{two}");
        assert!(two.contains("the existing objects are left"), "{two}");
    }
}
