//! One case per rule: a valid baseline, one mutation, the exact fields reported.

use super::*;
use crate::api::{PostRestoreJob, RepositorySource, RestoreSelect, RestoreSource};

fn baseline() -> RestoreRequestSpec {
    serde_yaml::from_str(
        r#"
source: {policyName: mailstore, select: LatestVerified}
target: {mode: SideBySide, nameSuffix: -restored}
stores: [store-2024, store-2025]
sqlTarget: {host: pg.mail.svc, port: 5432, credentialsSecret: pg-restore, databaseSuffix: _restored}
postRestore:
  - {name: rebuild-index, image: "mailstore/tools:1", command: [rebuild-index, --all]}
ttlSecondsAfterFinished: 86400
"#,
    )
    .expect("baseline parses")
}

fn job(name: &str, image: &str, command: &[&str]) -> PostRestoreJob {
    PostRestoreJob { name: name.into(), image: image.into(), command: command.iter().map(|c| c.to_string()).collect() }
}

fn sql(change: fn(&mut SqlTarget)) -> Option<SqlTarget> {
    let mut target = baseline().sql_target;
    if let Some(t) = target.as_mut() {
        change(t);
    }
    target
}

type Mutation = fn(&mut RestoreRequestSpec);

fn repository(secret: &str) -> RepositorySource {
    RepositorySource { secret_name: secret.into(), ..Default::default() }
}

#[test]
fn baseline_is_valid() {
    assert_eq!(validate_restore_request(&baseline()), vec![]);
}

#[test]
fn each_rule_names_its_field() {
    let cases: Vec<(&str, Mutation, Vec<&str>)> = vec![
        ("no source", |s| s.source = RestoreSource::default(), vec!["spec.source"]),
        ("both sources", |s| s.source.backup_name = Some("mailstore-20261122020000".into()), vec!["spec.source"]),
        (
            "backup name is fine",
            |s| s.source = RestoreSource { backup_name: Some("mailstore-20261122020000".into()), policy_name: None, select: None, ..Default::default() },
            vec![],
        ),
        (
            "select without policyName",
            |s| s.source = RestoreSource { backup_name: Some("b".into()), policy_name: None, select: Some(RestoreSelect::Latest), ..Default::default() },
            vec!["spec.source.select"],
        ),
        (
            "backup name not DNS",
            |s| s.source = RestoreSource { backup_name: Some("Backup 1".into()), policy_name: None, select: None, ..Default::default() },
            vec!["spec.source.backupName"],
        ),
        ("policy name empty", |s| s.source.policy_name = Some(String::new()), vec!["spec.source.policyName"]),
        ("repository is fine", |s| s.source.repository = Some(repository("archive-repo")), vec![]),
        ("repository secret not a name", |s| s.source.repository = Some(repository("Repo Secret")), vec!["spec.source.repository.secretName"]),
        (
            "repository namespace not a label",
            |s| s.source.repository = Some(RepositorySource { namespace: Some("Mail_1".into()), ..repository("r") }),
            vec!["spec.source.repository.namespace"],
        ),
        (
            "repository image blank",
            |s| s.source.repository = Some(RepositorySource { image: Some(" ".into()), ..repository("r") }),
            vec!["spec.source.repository.image"],
        ),
        (
            "repository with from Snapshots",
            |s| {
                s.source.repository = Some(repository("r"));
                s.source.from = Some(SourceFrom::Snapshots);
            },
            vec!["spec.source.repository"],
        ),
        (
            "InPlace from the repository is fine (the old claims are kept, a backup is taken first)",
            |s| {
                s.source.from = Some(SourceFrom::Repository);
                s.target.mode = RestoreMode::InPlace;
                s.ttl_seconds_after_finished = None;
            },
            vec![],
        ),
        ("namespace not a label", |s| s.target.namespace = Some("Mail".into()), vec!["spec.target.namespace"]),
        ("suffix uppercase", |s| s.target.name_suffix = Some("-Restored".into()), vec!["spec.target.nameSuffix"]),
        ("suffix with dot", |s| s.target.name_suffix = Some(".r".into()), vec!["spec.target.nameSuffix"]),
        ("suffix ends with dash", |s| s.target.name_suffix = Some("-r-".into()), vec!["spec.target.nameSuffix"]),
        ("suffix empty", |s| s.target.name_suffix = Some(String::new()), vec!["spec.target.nameSuffix"]),
        (
            "suffix empty InPlace is fine",
            |s| {
                s.target.mode = RestoreMode::InPlace;
                s.target.name_suffix = Some(String::new());
                s.ttl_seconds_after_finished = None;
            },
            vec![],
        ),
        ("suffix without dash is fine", |s| s.target.name_suffix = Some("restored2".into()), vec![]),
        ("store empty", |s| s.stores[0] = String::new(), vec!["spec.stores[0]"]),
        ("store not a label", |s| s.stores[1] = "store_2025".into(), vec!["spec.stores[1]"]),
        ("store twice", |s| s.stores[1] = "store-2024".into(), vec!["spec.stores[1]"]),
        ("sql host URL", |s| s.sql_target = sql(|t| t.host = Some("postgres://pg".into())), vec!["spec.sqlTarget.host"]),
        ("sql port 0", |s| s.sql_target = sql(|t| t.port = Some(0)), vec!["spec.sqlTarget.port"]),
        ("sql secret not DNS", |s| s.sql_target = sql(|t| t.credentials_secret = Some("PG".into())), vec!["spec.sqlTarget.credentialsSecret"]),
        ("database suffix empty", |s| s.sql_target = sql(|t| t.database_suffix = String::new()), vec!["spec.sqlTarget.databaseSuffix"]),
        ("database suffix with dash", |s| s.sql_target = sql(|t| t.database_suffix = "-restored".into()), vec!["spec.sqlTarget.databaseSuffix"]),
        ("database suffix with quote", |s| s.sql_target = sql(|t| t.database_suffix = "x\";drop".into()), vec!["spec.sqlTarget.databaseSuffix"]),
        ("database suffix of 63 characters", |s| s.sql_target = sql(|t| t.database_suffix = "r".repeat(63)), vec!["spec.sqlTarget.databaseSuffix"]),
        ("database suffix starting with a digit is fine", |s| s.sql_target = sql(|t| t.database_suffix = "2".into()), vec![]),
        ("hook name empty", |s| s.post_restore[0].name = String::new(), vec!["spec.postRestore[0].name"]),
        ("hook name not a label", |s| s.post_restore[0].name = "Rebuild".into(), vec!["spec.postRestore[0].name"]),
        ("hook name twice", |s| s.post_restore.push(job("rebuild-index", "x", &["y"])), vec!["spec.postRestore[1].name"]),
        ("hook image empty", |s| s.post_restore[0].image = String::new(), vec!["spec.postRestore[0].image"]),
        ("hook command empty", |s| s.post_restore[0].command.clear(), vec!["spec.postRestore[0].command"]),
        ("hook program empty", |s| s.post_restore[0].command = vec![String::new()], vec!["spec.postRestore[0].command[0]"]),
        ("ttl with Volumes", |s| s.target.mode = RestoreMode::Volumes, vec!["spec.ttlSecondsAfterFinished"]),
        (
            "ttl 0 with Volumes is fine",
            |s| {
                s.target.mode = RestoreMode::Volumes;
                s.ttl_seconds_after_finished = Some(0);
            },
            vec![],
        ),
    ];
    for (name, mutate, want) in cases {
        let mut spec = baseline();
        mutate(&mut spec);
        let got: Vec<String> = validate_restore_request(&spec).into_iter().map(|e| e.field).collect();
        assert_eq!(got, want, "case {name:?}");
    }
}

/// SQL injection through the suffix: a quote or a backtick is refused, and the message names
/// the field and says why.
#[test]
fn database_suffix_with_a_quote_or_backtick_is_refused_naming_the_field() {
    for hostile in ["x'; DROP DATABASE y; --", "x`; DROP DATABASE y; --", "_r\"; DROP DATABASE y; --"] {
        let mut spec = baseline();
        if let Some(t) = spec.sql_target.as_mut() {
            t.database_suffix = hostile.into();
        }
        let problems = validate_restore_request(&spec);
        let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 1, "{hostile:?}: {messages:?}");
        assert!(
            messages[0].starts_with("spec.sqlTarget.databaseSuffix: ") && messages[0].contains("may only hold letters, digits and '_'"),
            "{hostile:?}: {}",
            messages[0]
        );
    }
}

#[test]
fn in_place_stays_in_its_namespace() {
    let request = |own: Option<&str>, target: Option<&str>, mode: RestoreMode| {
        let mut spec = baseline();
        spec.ttl_seconds_after_finished = None;
        spec.target.mode = mode;
        spec.target.namespace = target.map(Into::into);
        let mut r = RestoreRequest::new("restore-1", spec);
        r.metadata.namespace = own.map(Into::into);
        r
    };
    let cases = [
        (request(Some("mail"), Some("other"), RestoreMode::InPlace), vec!["spec.target.namespace"]),
        (request(Some("mail"), Some("mail"), RestoreMode::InPlace), vec![]),
        (request(None, Some("other"), RestoreMode::InPlace), vec![]),
        (request(Some("mail"), Some("other"), RestoreMode::Volumes), vec![]),
    ];
    for (i, (r, want)) in cases.iter().enumerate() {
        let got: Vec<String> = validate_restore_request_object(r).into_iter().map(|e| e.field).collect();
        assert_eq!(&got, want, "case {i}");
    }
}

fn sql_source(database: &str) -> crate::api::DataSource {
    crate::api::DataSource {
        volume_claims: vec![],
        sql: Some(crate::api::SqlSource {
            engine: crate::api::SqlEngine::MySQL,
            host: "db".into(),
            port: None,
            database: database.into(),
            credentials_secret: "db-creds".into(),
        }),
    }
}

#[test]
fn checked_against_its_policy() {
    let policy: crate::api::BackupPolicySpec = serde_yaml::from_str(
        "target: {kind: StatefulSet, name: mailstore}\n\
         stores:\n\
         - {name: store-2024, metadata: {volumeClaims: [m]}, content: {volumeClaims: [c]}}\n\
         - {name: store-2025, metadata: {volumeClaims: [m2]}, content: {volumeClaims: [c2]}}\n\
         verification: {afterBackup: true, command: [x], image: y}\n",
    )
    .expect("policy parses");
    type Mutation = fn(&mut RestoreRequestSpec, &mut crate::api::BackupPolicySpec);
    let cases: Vec<(&str, Mutation, Vec<&str>)> = vec![
        ("baseline", |_, _| {}, vec![]),
        ("every store", |r, _| r.stores.clear(), vec![]),
        ("unknown store", |r, _| r.stores[1] = "store-2023".into(), vec!["spec.stores[1]"]),
        ("LatestVerified without verification", |_, p| p.verification = None, vec!["spec.source.select"]),
        ("Latest without verification", |r, p| {
            p.verification = None;
            r.source.select = Some(RestoreSelect::Latest);
        }, vec![]),
        ("SQL store: the new database name fits", |_, p| p.stores[1].metadata = sql_source(&"m".repeat(54)), vec![]),
        (
            "SQL store: the new database name is too long",
            |_, p| p.stores[1].metadata = sql_source(&"m".repeat(55)),
            vec!["spec.sqlTarget.databaseSuffix"],
        ),
        (
            "SQL store not restored: its name is not checked",
            |r, p| {
                p.stores[1].metadata = sql_source(&"m".repeat(55));
                r.stores = vec!["store-2024".into()];
            },
            vec![],
        ),
        (
            "SQL store with an unsafe source database (a backup made before names were checked)",
            |_, p| p.stores[0].content = sql_source("x'; DROP DATABASE y; --"),
            vec!["spec.source"],
        ),
        (
            "without sqlTarget the default suffix counts",
            |r, p| {
                r.sql_target = None;
                p.stores[1].metadata = sql_source(&"m".repeat(55));
            },
            vec!["spec.sqlTarget.databaseSuffix"],
        ),
    ];
    for (name, mutate, want) in cases {
        let (mut request, mut policy) = (baseline(), policy.clone());
        mutate(&mut request, &mut policy);
        let got: Vec<String> = validate_restore_against_policy(&request, &policy).into_iter().map(|e| e.field).collect();
        assert_eq!(got, want, "case {name:?}");
    }
}
