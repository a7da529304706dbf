//! `archivist restore list` and `archivist restore describe`.

use super::super::output::{age, namespaced_table, section};
use super::{or_dash, word};
use crate::api::{RestoreRequest, RestoreRequestStatus};
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Event;

/// What a request restores from, in words: `backup X`, `latest of policy P`, or
/// `latest verified of policy P`.
pub fn source_summary(request: &RestoreRequest) -> String {
    let source = &request.spec.source;
    match (&source.backup_name, &source.policy_name) {
        (Some(backup), _) => format!("backup {backup}"),
        (None, Some(policy)) => match source.select.unwrap_or_default() {
            crate::api::RestoreSelect::Latest => format!("latest of policy {policy}"),
            crate::api::RestoreSelect::LatestVerified => format!("latest verified of policy {policy}"),
        },
        (None, None) => "-".into(),
    }
}

/// Where the restore's data comes from, once chosen: `snapshots`, or `repository <URL>` (the
/// URL without credentials; the Secret when the URL is not known).
pub fn data_from(status: &RestoreRequestStatus) -> String {
    match (status.resolved_from, &status.repository) {
        (Some(crate::api::SourceFrom::Repository), Some(r)) => {
            format!("repository {}", r.repository.clone().unwrap_or_else(|| format!("of Secret {}", r.secret_name)))
        }
        (Some(crate::api::SourceFrom::Repository), None) => "repository".into(),
        (Some(_), _) => "snapshots".into(),
        (None, _) => "-".into(),
    }
}

/// The rows of `restore list`, sorted by namespace, then newest first.
pub fn list_table(requests: &[RestoreRequest], all_namespaces: bool, now: DateTime<Utc>) -> String {
    let created = |r: &RestoreRequest| r.metadata.creation_timestamp.as_ref().map(crate::kube::time::from_kube);
    let mut sorted: Vec<&RestoreRequest> = requests.iter().collect();
    sorted.sort_by(|a, b| a.metadata.namespace.cmp(&b.metadata.namespace).then_with(|| created(b).cmp(&created(a))));
    let rows = sorted
        .iter()
        .map(|r| {
            let status = r.status.clone().unwrap_or_default();
            let row = vec![
                r.metadata.name.clone().unwrap_or_default(),
                word(r.spec.target.mode),
                or_dash(status.resolved_backup.clone()),
                or_dash(status.phase.map(word)),
                status.mapping.len().to_string(),
                age(created(r), now),
            ];
            (r.metadata.namespace.clone().unwrap_or_default(), row)
        })
        .collect();
    namespaced_table(all_namespaces, &["NAME", "MODE", "BACKUP", "PHASE", "ITEMS", "AGE"], rows)
}

/// `restore describe`: the request's source and target, its phase, where each item went, and
/// its Events.
pub fn describe(request: &RestoreRequest, events: &[Event], now: DateTime<Utc>) -> String {
    let status: RestoreRequestStatus = request.status.clone().unwrap_or_default();
    let namespace = request.metadata.namespace.clone().unwrap_or_default();
    let mut fields: Vec<(&str, String)> = vec![
        ("Name", request.metadata.name.clone().unwrap_or_default()),
        ("Namespace", namespace.clone()),
        ("Source", source_summary(request)),
        ("Backup", or_dash(status.resolved_backup.clone())),
        ("Data from", data_from(&status)),
        ("Mode", word(request.spec.target.mode)),
        ("Target namespace", request.spec.target.namespace.clone().unwrap_or(namespace)),
        ("Name suffix", or_dash(status.name_suffix.clone().or_else(|| request.spec.target.name_suffix.clone()))),
        ("Stores", if request.spec.stores.is_empty() { "all".into() } else { request.spec.stores.join(", ") }),
        ("Master", if request.spec.include_master { "included".into() } else { "not included".into() }),
        ("Phase", or_dash(status.phase.map(word))),
    ];
    super::push_run_times(&mut fields, status.start_time, status.completion_time, now);
    if let Some(backup) = &status.pre_restore_backup {
        fields.push(("Pre-restore backup", backup.clone()));
    }
    if let Some(copy) = &status.workload_copy {
        fields.push(("Workload copy", format!("{} {}", word(copy.kind), copy.name)));
    }
    for retained in &status.retained_volumes {
        fields.push(("Old volume kept", format!("{} (was claim {})", retained.volume, retained.claim)));
    }
    if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
        fields.push(("Message", message.to_string()));
    }
    let mut text = super::fields_text(&fields);
    text.push_str(&super::conditions::conditions_section(&status.conditions));
    let rows: Vec<Vec<String>> = status
        .mapping
        .iter()
        .map(|m| vec![word(m.component).to_lowercase(), or_dash(Some(m.store.clone())), m.original.clone(), m.restored.clone()])
        .collect();
    text.push_str(&section("Restored", &["COMPONENT", "STORE", "ORIGINAL", "RESTORED"], &rows));
    text.push_str(&super::events::events_section(events, now));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Component, RestoreMapping, RestoreMode, RestorePhase, RestoreRequestSpec, RestoreSelect, RestoreSource, RestoreTarget};

    fn request(source: RestoreSource) -> RestoreRequest {
        let mut r = RestoreRequest::new(
            "r1",
            RestoreRequestSpec {
                source,
                target: RestoreTarget { mode: RestoreMode::SideBySide, namespace: None, name_suffix: None },
                stores: vec![],
                include_master: true,
                sql_target: None,
                post_restore: vec![],
                ttl_seconds_after_finished: None,
            },
        );
        r.metadata.namespace = Some("mail".into());
        r
    }

    #[test]
    fn the_source_is_said_in_words() {
        let cases = [
            (RestoreSource { backup_name: Some("b1".into()), ..Default::default() }, "backup b1"),
            (RestoreSource { policy_name: Some("p".into()), ..Default::default() }, "latest of policy p"),
            (RestoreSource { policy_name: Some("p".into()), select: Some(RestoreSelect::LatestVerified), ..Default::default() }, "latest verified of policy p"),
            (RestoreSource::default(), "-"),
        ];
        for (source, expected) in cases {
            assert_eq!(source_summary(&request(source)), expected);
        }
    }

    #[test]
    fn describe_lists_where_each_item_went() {
        let mut r = request(RestoreSource { backup_name: Some("b1".into()), ..Default::default() });
        r.status = Some(RestoreRequestStatus {
            phase: Some(RestorePhase::Completed),
            resolved_backup: Some("b1".into()),
            name_suffix: Some("-r-abcde".into()),
            mapping: vec![
                RestoreMapping { component: Component::Secrets, store: String::new(), original: "key".into(), restored: "key-r-abcde".into() },
                RestoreMapping { component: Component::Content, store: "s1".into(), original: "content".into(), restored: "content-r-abcde".into() },
            ],
            ..Default::default()
        });
        let text = describe(&r, &[], Utc::now());
        assert!(text.contains("Mode:") && text.contains("SideBySide"), "{text}");
        assert!(text.lines().any(|l| l.starts_with("Data from:") && l.ends_with(" -")), "{text}");
        let from_repository = RestoreRequestStatus {
            resolved_from: Some(crate::api::SourceFrom::Repository),
            repository: Some(crate::api::RepositoryRestore { secret_name: "repo".into(), repository: Some("rest:http://h/r".into()), manifest: None }),
            ..Default::default()
        };
        assert_eq!(data_from(&from_repository), "repository rest:http://h/r");
        assert_eq!(data_from(&RestoreRequestStatus { resolved_from: Some(crate::api::SourceFrom::Snapshots), ..Default::default() }), "snapshots");
        assert!(text.lines().any(|l| l.starts_with("Target namespace:") && l.ends_with(" mail")), "{text}");
        assert!(text.contains("Name suffix:") && text.contains("-r-abcde"), "{text}");
        assert!(text.lines().any(|l| l.contains("secrets") && l.contains("key-r-abcde")), "{text}");
        assert!(text.lines().any(|l| l.contains("content") && l.contains("s1") && l.contains("content-r-abcde")), "{text}");
        assert!(list_table(&[r], false, Utc::now()).lines().nth(1).is_some_and(|l| l.starts_with("r1") && l.contains("SideBySide") && l.contains("Completed")));
    }
}
