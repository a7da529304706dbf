use super::*;
use crate::api::{ArchiveBackupSpec, RepositorySource};

/// A snapshot line as `restic snapshots --json` prints it.
fn listed(id: &str, minute: u32, host: &str, tags: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "time": format!("2026-12-03T10:{minute:02}:00.123456789Z"),
        "hostname": host,
        "tags": tags,
        "paths": ["/export/0"],
        "id": id,
        "short_id": &id[..8],
    })
}

fn item_tags(backup: &str, component: &str, store: &str, claim: &str) -> Vec<String> {
    vec![
        format!("archivist.dev/policy=mail"),
        format!("archivist.dev/backup={backup}"),
        format!("archivist.dev/component={component}"),
        format!("archivist.dev/store={store}"),
        format!("archivist.dev/claim={claim}"),
    ]
}

/// Backup `backup` of namespace `ns` exported at `minute`: master, a store's metadata, the
/// Secret copy, then the manifest (verified or not).
fn export(ns: &str, backup: &str, minute: u32, verified: bool, seed: char) -> Vec<serde_json::Value> {
    let host = format!("{ns}/mail");
    let id = |n: char| std::iter::repeat_n(seed, 63).chain(std::iter::once(n)).collect::<String>();
    let mut manifest = item_tags(backup, "manifest", "", backup);
    if verified {
        manifest.push("archivist.dev/verified=true".into());
    }
    let as_str = |tags: &Vec<String>| tags.clone();
    vec![
        listed(&id('1'), minute, &host, &as_str(&item_tags(backup, "master", "", "master")).iter().map(String::as_str).collect::<Vec<_>>()),
        listed(&id('2'), minute, &host, &item_tags(backup, "metadata", "s1", "meta").iter().map(String::as_str).collect::<Vec<_>>()),
        listed(&id('3'), minute, &host, &item_tags(backup, "secrets", "", &format!("{backup}-secrets")).iter().map(String::as_str).collect::<Vec<_>>()),
        listed(&id('4'), minute, &host, &manifest.iter().map(String::as_str).collect::<Vec<_>>()),
    ]
}

fn catalog(exports: Vec<Vec<serde_json::Value>>) -> Vec<CatalogSnapshot> {
    let all: Vec<serde_json::Value> = exports.into_iter().flatten().collect();
    parse_catalog(serde_json::to_string(&all).expect("json").as_bytes()).expect("catalog")
}

fn source(backup: Option<&str>, policy: Option<&str>, select: Option<RestoreSelect>, namespace: Option<&str>) -> RestoreSource {
    RestoreSource {
        backup_name: backup.map(Into::into),
        policy_name: policy.map(Into::into),
        select,
        repository: Some(RepositorySource { secret_name: "repo".into(), namespace: namespace.map(Into::into), image: None }),
        ..Default::default()
    }
}

#[test]
fn chooses_the_restore_point_the_request_names() {
    let one_namespace = catalog(vec![export("mail", "b1", 1, true, 'a'), export("mail", "b2", 2, false, 'b')]);
    let two_namespaces = catalog(vec![export("mail", "b1", 1, true, 'a'), export("other", "b1", 3, true, 'c')]);
    let unfinished = catalog(vec![export("mail", "b1", 1, true, 'a'), export("mail", "b2", 2, false, 'b')[..3].to_vec()]);
    // (case, catalog, source, Ok((namespace, backup, manifest seed)) or Err(field prefix))
    let cases: Vec<(&str, &[CatalogSnapshot], RestoreSource, Result<(&str, &str, char), &str>)> = vec![
        ("latest of the policy", &one_namespace, source(None, Some("mail"), None, None), Ok(("mail", "b2", 'b'))),
        ("latest verified", &one_namespace, source(None, Some("mail"), Some(RestoreSelect::LatestVerified), None), Ok(("mail", "b1", 'a'))),
        ("by name", &one_namespace, source(Some("b1"), None, None, None), Ok(("mail", "b1", 'a'))),
        ("unknown name", &one_namespace, source(Some("b9"), None, None, None), Err("spec.source:")),
        ("unknown policy", &one_namespace, source(None, Some("other"), None, None), Err("spec.source:")),
        ("two namespaces need one named", &two_namespaces, source(Some("b1"), None, None, None), Err("spec.source.repository.namespace:")),
        ("the namespace named", &two_namespaces, source(Some("b1"), None, None, Some("other")), Ok(("other", "b1", 'c'))),
        ("the other namespace named", &two_namespaces, source(None, Some("mail"), None, Some("mail")), Ok(("mail", "b1", 'a'))),
        ("a namespace that exported nothing", &two_namespaces, source(Some("b1"), None, None, Some("nope")), Err("spec.source:")),
        ("an export without its manifest does not count", &unfinished, source(None, Some("mail"), None, None), Ok(("mail", "b1", 'a'))),
    ];
    for (case, catalog, source, want) in cases {
        let got = choose(&source, catalog);
        match (want, got) {
            (Ok((ns, backup, seed)), Ok(chosen)) => {
                assert_eq!((chosen.namespace.as_str(), chosen.backup.as_str()), (ns, backup), "{case}");
                assert!(chosen.manifest.starts_with(seed) && chosen.manifest.ends_with('4'), "{case}: manifest {}", chosen.manifest);
                let items: Vec<(Component, &str, &str)> = chosen.items.iter().map(|i| (i.component, i.store.as_str(), i.claim.as_str())).collect();
                let copy = format!("{backup}-secrets");
                assert_eq!(items, [(Component::Master, "", "master"), (Component::Metadata, "s1", "meta"), (Component::Secrets, "", copy.as_str())], "{case}");
                assert!(chosen.items.iter().all(|i| i.id.starts_with(seed)), "{case}: items of another export: {:?}", chosen.items);
            }
            (Err(field), Err(why)) => assert!(why.starts_with(field), "{case}: {why}"),
            (want, got) => panic!("{case}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn a_repeated_item_takes_its_newest_snapshot() {
    let mut exports = export("mail", "b1", 1, false, 'a');
    exports.push(listed(&format!("{}2", "f".repeat(63)), 5, "mail/mail", &item_tags("b1", "metadata", "s1", "meta").iter().map(String::as_str).collect::<Vec<_>>()));
    let chosen = choose(&source(Some("b1"), None, None, None), &catalog(vec![exports])).expect("chosen");
    let meta = chosen.items.iter().find(|i| i.component == Component::Metadata).expect("metadata");
    assert!(meta.id.starts_with('f'), "{meta:?}");
}

#[test]
fn the_manifest_becomes_the_restore_point_with_its_snapshots() {
    let chosen = choose(&source(Some("b1"), None, None, None), &catalog(vec![export("mail", "b1", 1, true, 'a')])).expect("chosen");
    let mut original = ArchiveBackup::new("b1", ArchiveBackupSpec { policy_name: "mail".into(), reason: Default::default(), hold: false });
    original.metadata.namespace = Some("mail".into());
    let manifest = serde_json::to_vec(&crate::plan::export::manifest(&original)).expect("json");
    let backup = backup_from_manifest(&manifest, &chosen, Some("rest:http://127.0.0.1:1/r".into())).expect("backup");
    assert_eq!(backup.spec.policy_name, "mail");
    assert!(exported(&backup));
    assert_eq!(item_snapshot(&backup, Component::Metadata, "s1", "meta"), Some(chosen.items[1].id.as_str()));
    assert_eq!(item_snapshot(&backup, Component::Metadata, "s1", "other"), None);
    let other = Chosen { backup: "b2".into(), ..chosen.clone() };
    assert!(backup_from_manifest(&manifest, &other, None).is_err(), "a manifest of another backup is refused");
    assert!(backup_from_manifest(b"not json", &chosen, None).is_err());
}

#[test]
fn commands_take_only_snapshot_ids() {
    let id = "0123456789abcdef";
    assert_eq!(manifest_command(id), Some(vec!["restic".into(), "dump".into(), id.into(), "/manifest.json".into()]));
    assert_eq!(secrets_command(id), Some(vec!["restic".into(), "dump".into(), id.into(), "/".into()]));
    assert_eq!(fetch_command(id, "/restore/data").map(|c| c.join(" ")), Some(format!("restic restore {id} --target /restore/data")));
    for bad in ["--password-file=/etc/shadow", "latest", "", "abc;rm"] {
        assert_eq!(manifest_command(bad), None, "{bad}");
        assert_eq!(secrets_command(bad), None, "{bad}");
        assert_eq!(fetch_command(bad, "/t"), None, "{bad}");
    }
    assert_eq!(catalog_command(&source(Some("b1"), None, None, None)).join(" "), "restic snapshots --json --tag archivist.dev/backup=b1");
    assert_eq!(catalog_command(&source(None, Some("mail"), None, None)).join(" "), "restic snapshots --json --tag archivist.dev/policy=mail");
}

#[test]
fn the_secret_copy_comes_back_from_restics_tar() {
    // `restic dump <id> /` (restic 0.14) of a secret volume as the kubelet writes it: the keys
    // in a timestamped directory, links beside it, one name long enough for a PAX header.
    let tar = include_bytes!("../testdata/secrets.tar");
    let data = secret_data(tar).expect("secret data");
    let long = format!("s.{}", "k".repeat(120));
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(keys, ["master-key.key", "pg.password", long.as_str()]);
    assert_eq!(data["master-key.key"], b"master-key-value");
    assert_eq!(data["pg.password"], b"abc\n");
    assert!(secret_data(&tar[..1100]).is_err(), "a cut archive is damaged, not a shorter Secret");
}

#[test]
fn names_fit_a_label() {
    let long = "r".repeat(80);
    for name in [reader_pod_name(&long), fetch_job_name(&long, Component::Content, "store-2024", "content-claim")] {
        assert!(name.len() <= MAX_LABEL_NAME, "{name}");
    }
    assert_eq!(fetch_job_name("req", Component::Master, "", "master"), "req-fetch-master-master");
    assert_eq!(fetch_job_name("req", Component::Content, "s1", "content"), "req-fetch-content-s1-content");
    assert_ne!(fetch_job_name(&long, Component::Content, "s1", "a"), fetch_job_name(&long, Component::Content, "s1", "b"));
}
