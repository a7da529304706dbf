//! The message a finished restore leaves in its status: where the data went, and for an
//! in-place restore where the old data is.

use super::RestoreItem;
use crate::plan::names::component_word;
use crate::api::{RestoreMode, RestoreRequestStatus};

/// The status message of a Completed restore.
///
/// `InPlace` names the kept volumes and the pre-restore backup. Every mode names each
/// database an SQL dump was restored into: a restore never overwrites a database, so after an
/// in-place restore the target still uses its old database until it is pointed at the new one;
/// a side-by-side copy has its environment pointed at it (`kube::restore::CopyRenames`).
pub fn completion_message(items: &[RestoreItem], status: &RestoreRequestStatus, mode: RestoreMode) -> String {
    let mut message = match mode {
        RestoreMode::InPlace => {
            let kept: Vec<String> = status.retained_volumes.iter().map(|r| format!("{} (was {})", r.volume, r.claim)).collect();
            format!(
                "restored in place; the old volumes are kept with reclaim policy Retain: {}; pre-restore backup: {}",
                if kept.is_empty() { "none".to_string() } else { kept.join(", ") },
                status.pre_restore_backup.as_deref().unwrap_or("none")
            )
        }
        RestoreMode::Volumes | RestoreMode::SideBySide => format!("restored {} item(s); see ConfigMap with restore.csv", items.len()),
    };
    for item in items.iter().filter(|i| i.is_sql()) {
        message.push_str(&format!("; the SQL {} of store {} is in the new database {}", component_word(item.component), item.store, item.restored));
        match mode {
            RestoreMode::InPlace => message.push_str(&format!(" (the target still uses {}: point it at {} to use the restored data)", item.original, item.restored)),
            RestoreMode::SideBySide => message.push_str(&format!(" (the copy's environment variables set to {} name it instead)", item.original)),
            RestoreMode::Volumes => {}
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Component, RetainedVolume, SqlEngine};
    use crate::plan::restore::{DataSource, ItemKind};

    fn volume(original: &str) -> RestoreItem {
        RestoreItem {
            component: Component::Content,
            store: "s1".into(),
            original: original.into(),
            restored: original.into(),
            kind: ItemKind::Volume { from: DataSource::Cluster(format!("b1-{original}")), size: None },
        }
    }

    fn sql(original: &str, restored: &str) -> RestoreItem {
        RestoreItem {
            component: Component::Metadata,
            store: "s2".into(),
            original: original.into(),
            restored: restored.into(),
            kind: ItemKind::Sql {
                from: DataSource::Cluster("b1-dump".into()),
                size: None,
                claim: "dump-r".into(),
                job: "r1-sql-metadata-s2".into(),
                engine: SqlEngine::PostgreSQL,
                host: "db".into(),
                port: None,
                credentials_secret: "creds".into(),
            },
        }
    }

    #[test]
    fn names_kept_volumes_the_pre_restore_backup_and_each_new_database() {
        let in_place = RestoreRequestStatus {
            retained_volumes: vec![RetainedVolume { claim: "content-s1".into(), volume: "pv-1".into() }],
            pre_restore_backup: Some("r1-pre-restore".into()),
            ..RestoreRequestStatus::default()
        };
        let fresh = RestoreRequestStatus::default();
        let cases: Vec<(&str, Vec<RestoreItem>, &RestoreRequestStatus, RestoreMode, &str)> = vec![
            (
                "in place, volumes only",
                vec![volume("content-s1")],
                &in_place,
                RestoreMode::InPlace,
                "restored in place; the old volumes are kept with reclaim policy Retain: pv-1 (was content-s1); pre-restore backup: r1-pre-restore",
            ),
            (
                "in place with an SQL store: the target still uses the old database",
                vec![volume("content-s1"), sql("meta_s2", "meta_s2_restored")],
                &in_place,
                RestoreMode::InPlace,
                "restored in place; the old volumes are kept with reclaim policy Retain: pv-1 (was content-s1); pre-restore backup: r1-pre-restore; \
                 the SQL metadata of store s2 is in the new database meta_s2_restored (the target still uses meta_s2: point it at meta_s2_restored to use the restored data)",
            ),
            (
                "side by side with an SQL store",
                vec![volume("content-s1"), sql("meta_s2", "meta_s2_restored")],
                &fresh,
                RestoreMode::SideBySide,
                "restored 2 item(s); see ConfigMap with restore.csv; the SQL metadata of store s2 is in the new database meta_s2_restored \
                 (the copy's environment variables set to meta_s2 name it instead)",
            ),
            ("volumes, nothing in place", vec![volume("content-s1")], &fresh, RestoreMode::Volumes, "restored 1 item(s); see ConfigMap with restore.csv"),
            (
                "in place before anything was recorded",
                vec![],
                &fresh,
                RestoreMode::InPlace,
                "restored in place; the old volumes are kept with reclaim policy Retain: none; pre-restore backup: none",
            ),
            (
                "volumes with an SQL store",
                vec![sql("meta_s2", "meta_s2_r")],
                &fresh,
                RestoreMode::Volumes,
                "restored 1 item(s); see ConfigMap with restore.csv; the SQL metadata of store s2 is in the new database meta_s2_r",
            ),
        ];
        for (case, items, status, mode, want) in cases {
            assert_eq!(completion_message(&items, status, mode), want, "{case}");
        }
    }
}
