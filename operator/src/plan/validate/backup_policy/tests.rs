//! One case per rule: a valid baseline, one mutation, the exact fields reported.

use super::*;
use crate::api::{DumpSpec, ExecHook, HttpHook, MasterSpec, SqlEngine, StoreSpec};

/// A valid policy using every feature: Freeze hooks, master, a volume store and an SQL store.
fn baseline() -> BackupPolicySpec {
    serde_yaml::from_str(
        r#"
target: {kind: StatefulSet, name: mailstore}
schedule: "0 2 * * *"
timeZone: Europe/Istanbul
quiesce:
  mode: Freeze
  freeze: {exec: {container: server, command: [/bin/freeze]}}
  thaw: {http: {port: 8463, path: /thaw}}
  timeoutSeconds: 60
master: {volumeClaims: [master], secrets: [mailstore-key]}
stores:
  - name: store-2024
    metadata: {volumeClaims: [meta-2024]}
    content: {volumeClaims: [content-2024]}
    index: {volumeClaims: [index-2024]}
  - name: store-2025
    metadata: {sql: {engine: PostgreSQL, host: pg.mail.svc, database: meta2025, credentialsSecret: pg-creds}}
    content: {volumeClaims: [content-2025]}
dump: {size: 10Gi, image: "postgres:16"}
retention: {keepLast: 3, keepDaily: 7, keepVerified: 1}
verification: {afterBackup: true, command: [sh, -c, "true"], image: "busybox:1.36"}
"#,
    )
    .expect("baseline parses")
}

fn sql() -> SqlSource {
    SqlSource {
        engine: SqlEngine::MySQL,
        host: "db".into(),
        port: None,
        database: "content".into(),
        credentials_secret: "db-creds".into(),
    }
}

fn claims(names: &[&str]) -> DataSource {
    DataSource { volume_claims: names.iter().map(|n| n.to_string()).collect(), sql: None }
}

fn exec(command: &[&str]) -> Hook {
    Hook {
        exec: Some(ExecHook { container: None, command: command.iter().map(|c| c.to_string()).collect() }),
        http: None,
    }
}

fn https(ca_secret: Option<&str>, server_name: Option<&str>) -> Hook {
    let mut hook = http(8443, "/thaw", "POST");
    if let Some(h) = hook.http.as_mut() {
        h.scheme = crate::api::HttpScheme::HTTPS;
        h.ca_secret = ca_secret.map(String::from);
        h.server_name = server_name.map(String::from);
    }
    hook
}

fn http(port: u16, path: &str, method: &str) -> Hook {
    Hook {
        exec: None,
        http: Some(HttpHook { port, path: path.into(), method: method.into(), scheme: Default::default(), ca_secret: None, server_name: None }),
    }
}

type Mutation = fn(&mut BackupPolicySpec);

#[test]
fn baseline_is_valid() {
    assert_eq!(validate_backup_policy(&baseline()), vec![]);
}

#[test]
fn each_rule_names_its_field() {
    let cases: Vec<(&str, Mutation, Vec<&str>)> = vec![
        ("target name empty", |s| s.target.name = String::new(), vec!["spec.target.name"]),
        ("target name not DNS", |s| s.target.name = "Mail_Store".into(), vec!["spec.target.name"]),
        ("unknown time zone", |s| s.time_zone = "Europe/Atlantis".into(), vec!["spec.timeZone"]),
        ("empty schedule", |s| s.schedule = Some(" ".into()), vec!["spec.schedule"]),
        ("bad cron", |s| s.schedule = Some("0 25 * * *".into()), vec!["spec.schedule"]),
        ("four cron fields", |s| s.schedule = Some("0 2 * *".into()), vec!["spec.schedule"]),
        ("unknown macro", |s| s.schedule = Some("@nightly".into()), vec!["spec.schedule"]),
        ("macro is fine", |s| s.schedule = Some("@monthly".into()), vec![]),
        ("time zone reported once", |s| s.time_zone = "europe/istanbul".into(), vec!["spec.timeZone"]),
        ("no schedule is fine", |s| s.schedule = None, vec![]),
        ("Freeze without freeze hook", |s| s.quiesce.freeze = None, vec!["spec.quiesce.freeze"]),
        ("Freeze without thaw hook", |s| s.quiesce.thaw = None, vec!["spec.quiesce.thaw"]),
        ("Stop with hooks", |s| s.quiesce.mode = QuiesceMode::Stop, vec!["spec.quiesce.freeze", "spec.quiesce.thaw"]),
        (
            "None with a hook",
            |s| {
                s.quiesce.mode = QuiesceMode::None;
                s.quiesce.thaw = None;
            },
            vec!["spec.quiesce.freeze"],
        ),
        ("Stop without hooks is fine", |s| s.quiesce = QuiesceSpec::default(), vec![]),
        ("hook with neither", |s| s.quiesce.freeze = Some(Hook::default()), vec!["spec.quiesce.freeze"]),
        (
            "hook with both",
            |s| s.quiesce.freeze = Some(Hook { exec: exec(&["x"]).exec, http: http(80, "/", "POST").http }),
            vec!["spec.quiesce.freeze"],
        ),
        ("exec with empty command", |s| s.quiesce.freeze = Some(exec(&[])), vec!["spec.quiesce.freeze.exec.command"]),
        ("exec with empty program", |s| s.quiesce.freeze = Some(exec(&[""])), vec!["spec.quiesce.freeze.exec.command[0]"]),
        (
            "exec container not a DNS label",
            |s| s.quiesce.freeze = Some(Hook { exec: Some(ExecHook { container: Some("Server".into()), command: vec!["x".into()] }), http: None }),
            vec!["spec.quiesce.freeze.exec.container"],
        ),
        ("http port 0", |s| s.quiesce.thaw = Some(http(0, "/", "POST")), vec!["spec.quiesce.thaw.http.port"]),
        ("http path without slash", |s| s.quiesce.thaw = Some(http(80, "thaw", "POST")), vec!["spec.quiesce.thaw.http.path"]),
        ("http unknown method", |s| s.quiesce.thaw = Some(http(80, "/", "post")), vec!["spec.quiesce.thaw.http.method"]),
        ("http path that adds a header", |s| s.quiesce.thaw = Some(http(80, "/thaw HTTP/1.1\r\nX-Injected: 1\r\n", "POST")), vec!["spec.quiesce.thaw.http.path"]),
        ("http path with a space", |s| s.quiesce.thaw = Some(http(80, "/thaw now", "POST")), vec!["spec.quiesce.thaw.http.path"]),
        ("https with a CA Secret and a server name", |s| s.quiesce.thaw = Some(https(Some("thaw-ca"), Some("mailstore-0.mailstore.mail.svc"))), vec![]),
        ("https with an IP server name and the system roots", |s| s.quiesce.thaw = Some(https(None, Some("10.1.2.3"))), vec![]),
        ("https CA Secret not a name", |s| s.quiesce.thaw = Some(https(Some("Thaw CA"), None)), vec!["spec.quiesce.thaw.http.caSecret"]),
        ("https server name not a name", |s| s.quiesce.thaw = Some(https(None, Some("mail_store"))), vec!["spec.quiesce.thaw.http.serverName"]),
        (
            "a CA Secret and a server name on plain HTTP",
            |s| {
                let mut hook = https(Some("thaw-ca"), Some("mail.svc"));
                if let Some(h) = hook.http.as_mut() {
                    h.scheme = crate::api::HttpScheme::HTTP;
                }
                s.quiesce.thaw = Some(hook);
            },
            vec!["spec.quiesce.thaw.http.caSecret", "spec.quiesce.thaw.http.serverName"],
        ),
        ("timeout 0", |s| s.quiesce.timeout_seconds = 0, vec!["spec.quiesce.timeoutSeconds"]),
        (
            "timeout 0 with mode None is fine",
            |s| s.quiesce = QuiesceSpec { mode: QuiesceMode::None, freeze: None, thaw: None, timeout_seconds: 0 },
            vec![],
        ),
        ("master secret not DNS", |s| s.master = Some(MasterSpec { volume_claims: vec![], secrets: vec!["Key".into()] }), vec!["spec.master.secrets[0]"]),
        (
            "master secret twice",
            |s| s.master = Some(MasterSpec { volume_claims: vec![], secrets: vec!["k".into(), "k".into()] }),
            vec!["spec.master.secrets[1]"],
        ),
        (
            "nothing to back up",
            |s| {
                s.master = None;
                s.stores.clear();
                s.dump = None;
            },
            vec!["spec.stores"],
        ),
        ("store name empty", |s| s.stores[0].name = String::new(), vec!["spec.stores[0].name"]),
        ("store name not a DNS label", |s| s.stores[0].name = "store.2024".into(), vec!["spec.stores[0].name"]),
        ("duplicate store names", |s| s.stores[1].name = "store-2024".into(), vec!["spec.stores[1].name"]),
        ("source with both", |s| s.stores[0].content.sql = Some(sql()), vec!["spec.stores[0].content"]),
        ("source with neither", |s| s.stores[0].content = DataSource::default(), vec!["spec.stores[0].content"]),
        ("index with neither", |s| s.stores[0].index = Some(DataSource::default()), vec!["spec.stores[0].index"]),
        ("PVC name not DNS", |s| s.stores[0].index = Some(claims(&["Index_2024"])), vec!["spec.stores[0].index.volumeClaims[0]"]),
        ("metadata and content on one PVC", |s| s.stores[0].content = claims(&["meta-2024"]), vec!["spec.stores[0].content.volumeClaims[0]"]),
        ("PVC in two stores", |s| s.stores[1].content = claims(&["content-2024"]), vec!["spec.stores[1].content.volumeClaims[0]"]),
        ("PVC twice in one list", |s| s.stores[0].index = Some(claims(&["i", "i"])), vec!["spec.stores[0].index.volumeClaims[1]"]),
        ("store PVC is the master PVC", |s| s.stores[0].metadata = claims(&["master"]), vec!["spec.stores[0].metadata.volumeClaims[0]"]),
        ("index while includeIndexes false is fine", |s| s.include_indexes = false, vec![]),
        ("sql host empty", |s| s.stores[0].content = DataSource { volume_claims: vec![], sql: Some(SqlSource { host: String::new(), ..sql() }) }, vec!["spec.stores[0].content.sql.host"]),
        ("sql host is a URL", |s| s.stores[0].content = DataSource { volume_claims: vec![], sql: Some(SqlSource { host: "mysql://db".into(), ..sql() }) }, vec!["spec.stores[0].content.sql.host"]),
        ("sql port 0", |s| s.stores[0].content = DataSource { volume_claims: vec![], sql: Some(SqlSource { port: Some(0), ..sql() }) }, vec!["spec.stores[0].content.sql.port"]),
        ("sql database empty", |s| s.stores[0].content = DataSource { volume_claims: vec![], sql: Some(SqlSource { database: String::new(), ..sql() }) }, vec!["spec.stores[0].content.sql.database"]),
        ("sql database with a quote", |s| s.stores[1].metadata.sql.as_mut().map_or((), |q| q.database = "x'; DROP DATABASE y; --".into()), vec!["spec.stores[1].metadata.sql.database"]),
        ("sql database with a backtick", |s| s.stores[1].metadata.sql.as_mut().map_or((), |q| q.database = "x`; DROP DATABASE y; --".into()), vec!["spec.stores[1].metadata.sql.database"]),
        ("sql database with a dash", |s| s.stores[1].metadata.sql.as_mut().map_or((), |q| q.database = "archive-meta".into()), vec!["spec.stores[1].metadata.sql.database"]),
        ("sql database starting with a digit", |s| s.stores[1].metadata.sql.as_mut().map_or((), |q| q.database = "2025meta".into()), vec!["spec.stores[1].metadata.sql.database"]),
        ("sql database of 64 characters", |s| s.stores[1].metadata.sql.as_mut().map_or((), |q| q.database = "m".repeat(64)), vec!["spec.stores[1].metadata.sql.database"]),
        ("sql database with underscores is fine", |s| s.stores[1].metadata.sql.as_mut().map_or((), |q| q.database = "_Archive_Meta_2025".into()), vec![]),
        (
            "sql credentials empty",
            |s| s.stores[0].content = DataSource { volume_claims: vec![], sql: Some(SqlSource { credentials_secret: String::new(), ..sql() }) },
            vec!["spec.stores[0].content.sql.credentialsSecret"],
        ),
        ("sql without dump", |s| s.dump = None, vec!["spec.dump"]),
        ("dump without image", |s| s.dump = Some(DumpSpec { storage_class_name: None, size: "10Gi".into(), image: None }), vec!["spec.dump.image"]),
        ("dump size not a quantity", |s| s.dump = Some(DumpSpec { storage_class_name: None, size: "10GB".into(), image: Some("pg".into()) }), vec!["spec.dump.size"]),
        ("dump size zero", |s| s.dump = Some(DumpSpec { storage_class_name: None, size: "0".into(), image: Some("pg".into()) }), vec!["spec.dump.size"]),
        (
            "dump storage class not DNS",
            |s| s.dump = Some(DumpSpec { storage_class_name: Some("Fast SSD".into()), size: "1Gi".into(), image: Some("pg".into()) }),
            vec!["spec.dump.storageClassName"],
        ),
        (
            "no sql, no dump is fine",
            |s| {
                s.stores.truncate(1);
                s.dump = None;
            },
            vec![],
        ),
        (
            "a one-volume store",
            |s| s.stores.push(StoreSpec { name: "standard".into(), metadata: DataSource::default(), content: DataSource::default(), index: None, volume_claims: vec!["store-standard".into()] }),
            vec![],
        ),
        (
            "a one-volume store with a content part too",
            |s| s.stores.push(StoreSpec { name: "standard".into(), metadata: DataSource::default(), content: claims(&["c"]), index: Some(claims(&["i"])), volume_claims: vec!["store-standard".into()] }),
            vec!["spec.stores[2].content", "spec.stores[2].index"],
        ),
        (
            "a one-volume store on a claim already captured",
            |s| s.stores.push(StoreSpec { name: "standard".into(), metadata: DataSource::default(), content: DataSource::default(), index: None, volume_claims: vec!["meta-2024".into()] }),
            vec!["spec.stores[2].volumeClaims[0]"],
        ),
        (
            "a store with neither parts nor volumeClaims",
            |s| s.stores.push(StoreSpec { name: "empty".into(), metadata: DataSource::default(), content: DataSource::default(), index: None, volume_claims: vec![] }),
            vec!["spec.stores[2].metadata", "spec.stores[2].content"],
        ),
        ("snapshot class not DNS", |s| s.volume_snapshot_class_name = Some("CSI".into()), vec!["spec.volumeSnapshotClassName"]),
        ("verification without command", |s| set_verification(s, |v| v.command.clear()), vec!["spec.verification.command"]),
        ("verification with empty program", |s| set_verification(s, |v| v.command = vec![String::new()]), vec!["spec.verification.command[0]"]),
        ("verification without image", |s| set_verification(s, |v| v.image = None), vec!["spec.verification.image"]),
        ("drill schedule empty", |s| drilled(s, ""), vec!["spec.verification.drillSchedule"]),
        ("drill schedule bad cron", |s| drilled(s, "0 4 * * 8"), vec!["spec.verification.drillSchedule"]),
        (
            "a drill needs no verify command",
            |s| {
                drilled(s, "0 4 * * 0");
                set_verification(s, |v| {
                v.after_backup = false;
                v.command.clear();
                v.image = None;
                })
            },
            vec![],
        ),
        ("drill probe with two kinds", |s| set_probe(s, serde_json::json!({"http": {"port": 80}, "tcp": {"port": 25}})), vec!["spec.verification.drillProbe"]),
        ("drill probe with none", |s| set_probe(s, serde_json::json!({"timeoutSeconds": 5})), vec!["spec.verification.drillProbe"]),
        ("drill probe exec empty", |s| set_probe(s, serde_json::json!({"exec": {"command": []}})), vec!["spec.verification.drillProbe.exec.command"]),
        ("drill probe exec bad container", |s| set_probe(s, serde_json::json!({"exec": {"container": "A_b", "command": ["true"]}})), vec!["spec.verification.drillProbe.exec.container"]),
        ("drill probe port 0", |s| set_probe(s, serde_json::json!({"tcp": {"port": 0}})), vec!["spec.verification.drillProbe.tcp.port"]),
        ("drill probe path that ends the request line", |s| set_probe(s, serde_json::json!({"http": {"port": 8080, "path": "/ok HTTP/1.0\r\nX: y"}})), vec!["spec.verification.drillProbe.http.path"]),
        ("drill probe path without slash", |s| set_probe(s, serde_json::json!({"http": {"port": 8080, "path": "health"}})), vec!["spec.verification.drillProbe.http.path"]),
        ("drill probe http fine", |s| set_probe(s, serde_json::json!({"http": {"port": 8080, "path": "/health?deep=1"}})), vec![]),
        ("drills of a policy with an SQL source", |s| set_verification(s, |v| v.drill_schedule = Some("0 4 * * 0".into())), vec![]),
        (
            "drills of an SQL database name too long for the drill's suffix",
            |s| {
                set_verification(s, |v| v.drill_schedule = Some("0 4 * * 0".into()));
                if let Some(sql) = s.stores[1].metadata.sql.as_mut() {
                    sql.database = "m".repeat(48);
                }
            },
            vec!["spec.stores[1].metadata.sql.database"],
        ),
        (
            "without drills the same name is fine",
            |s| {
                if let Some(sql) = s.stores[1].metadata.sql.as_mut() {
                    sql.database = "m".repeat(48);
                }
            },
            vec![],
        ),
        (
            "verification off needs no command",
            |s| s.verification = Some(VerificationSpec::default()),
            vec![],
        ),
        (
            "retention all zero with afterBackup",
            |s| s.retention = RetentionRules { keep_daily: Some(0), ..Default::default() },
            vec!["spec.retention"],
        ),
        (
            "retention all zero without verification is fine",
            |s| {
                s.retention = RetentionRules::default();
                s.verification = None;
            },
            vec![],
        ),
        ("keepVerified 0 with verification", |s| s.retention.keep_verified = Some(0), vec!["spec.retention.keepVerified"]),
        (
            "keepVerified 0 with a drill only: drills verify, so the last drilled backup needs keepVerified",
            |s| {
                drilled(s, "0 4 * * 0");
                s.retention.keep_verified = None;
                set_verification(s, |v| v.after_backup = false);
            },
            vec!["spec.retention.keepVerified"],
        ),
        (
            "only keepVerified with a drill only would prune each backup before its drill",
            |s| {
                drilled(s, "0 4 * * 0");
                s.retention = RetentionRules { keep_verified: Some(2), ..Default::default() };
                set_verification(s, |v| v.after_backup = false);
            },
            vec!["spec.retention"],
        ),
        (
            "only keepVerified with afterBackup and a drill is fine",
            |s| {
                drilled(s, "0 4 * * 0");
                s.retention = RetentionRules { keep_verified: Some(2), ..Default::default() };
            },
            vec![],
        ),
        (
            "only keepFailed",
            |s| {
                s.retention = RetentionRules { keep_failed: Some(2), ..Default::default() };
                s.verification = None;
            },
            vec!["spec.retention"],
        ),
        (
            "only keepVerified without verification",
            |s| {
                s.retention = RetentionRules { keep_verified: Some(2), ..Default::default() };
                s.verification = None;
            },
            vec!["spec.retention.keepVerified"],
        ),
        (
            "only keepVerified with verification is fine",
            |s| s.retention = RetentionRules { keep_verified: Some(2), ..Default::default() },
            vec![],
        ),
        ("export is fine", |s| s.export = Some(export("archive-repo")), vec![]),
        ("export secret not a name", |s| s.export = Some(export("Repo'; rm")), vec!["spec.export.repositorySecret"]),
        ("export image blank", |s| s.export = Some(ExportSpec { image: Some(" ".into()), ..export("r") }), vec!["spec.export.image"]),
        (
            "export after Verified without verification",
            |s| {
                s.export = Some(ExportSpec { after: Some(ExportAfter::Verified), ..export("r") });
                s.verification = None;
                s.retention = RetentionRules::default();
            },
            vec!["spec.export.after"],
        ),
        ("export prune schedule bad", |s| s.export = Some(ExportSpec { prune_schedule: Some("0 5 * *".into()), ..export("r") }), vec!["spec.export.pruneSchedule"]),
        ("export check over 100%", |s| s.export = Some(ExportSpec { check_read_data_percent: 101, ..export("r") }), vec!["spec.export.checkReadDataPercent"]),
        ("export scratch class not a name", |s| s.export = Some(ExportSpec { storage_class_name: Some("Fast Disks".into()), ..export("r") }), vec!["spec.export.storageClassName"]),
        ("export scratch access mode unknown", |s| s.export = Some(ExportSpec { access_modes: vec!["ReadOnly".into()], ..export("r") }), vec!["spec.export.accessModes"]),
        ("export scratch access mode twice", |s| s.export = Some(ExportSpec { access_modes: vec!["ReadOnlyMany".into(), "ReadOnlyMany".into()], ..export("r") }), vec!["spec.export.accessModes"]),
        ("export onto a shallow read-only class is fine", |s| s.export = Some(ExportSpec { storage_class_name: Some("archivist-local-shallow".into()), access_modes: vec!["ReadOnlyMany".into()], ..export("r") }), vec![]),
    ];
    for (name, mutate, want) in cases {
        let mut spec = baseline();
        mutate(&mut spec);
        let got: Vec<String> = validate_backup_policy(&spec).into_iter().map(|e| e.field).collect();
        assert_eq!(got, want, "case {name:?}");
    }
}

fn export(secret: &str) -> ExportSpec {
    ExportSpec { repository_secret: secret.into(), image: None, after: None, prune_schedule: None, check_read_data_percent: 0, ..Default::default() }
}

/// Drills on `schedule`, without the SQL store (drills refuse SQL sources).
fn drilled(spec: &mut BackupPolicySpec, schedule: &str) {
    spec.stores.truncate(1);
    spec.dump = None;
    set_verification(spec, |v| v.drill_schedule = Some(schedule.into()));
}

/// Drills with the probe `probe` (see [`drilled`]).
fn set_probe(spec: &mut BackupPolicySpec, probe: serde_json::Value) {
    drilled(spec, "0 4 * * 0");
    set_verification(spec, |v| v.drill_probe = Some(serde_json::from_value(probe).expect("probe")));
}

fn set_verification(spec: &mut BackupPolicySpec, change: impl FnOnce(&mut VerificationSpec)) {
    if let Some(v) = spec.verification.as_mut() {
        change(v);
    }
}

#[test]
fn several_problems_are_all_reported() {
    let mut spec = baseline();
    spec.stores.push(StoreSpec { name: "store-2024".into(), metadata: claims(&["master"]), content: DataSource::default(), index: None, volume_claims: vec![] });
    spec.quiesce.thaw = None;
    let got: Vec<String> = validate_backup_policy(&spec).into_iter().map(|e| e.to_string()).collect();
    assert_eq!(
        got,
        vec![
            "spec.quiesce.thaw: is required when mode is Freeze",
            "spec.stores[2].name: \"store-2024\" is already the name of spec.stores[0]",
            "spec.stores[2].metadata.volumeClaims[0]: PVC \"master\" is already captured as spec.master.volumeClaims[0]; a PVC can belong to only one part of the archive",
            "spec.stores[2].content: needs volumeClaims or sql, has neither (a store whose metadata, content and index share one volume sets the store's own volumeClaims instead)",
        ]
    );
}

#[test]
fn policy_names_leave_room_for_backup_names() {
    let policy = |name: &str| {
        let mut p = BackupPolicy::new(name, baseline());
        p.metadata.namespace = Some("mail".into());
        p
    };
    assert_eq!(validate_backup_policy_object(&policy(&"a".repeat(POLICY_NAME_MAX))), vec![]);
    let long = validate_backup_policy_object(&policy(&"a".repeat(POLICY_NAME_MAX + 1)));
    assert_eq!(long.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), vec!["metadata.name"]);
    assert_eq!(POLICY_NAME_MAX, 48);
}
