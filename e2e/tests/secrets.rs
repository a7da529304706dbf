//! Secrets stay secret: the values of the credentials Secret never leave it, even when a run
//! fails with output that holds them.
//!
//! The Secret `db-credentials` gets a unique user name and password. Each is planted in the
//! output of something that fails and whose output the operator copies into a message:
//! - a freeze hook, run in the archive pod that reads the password from the Secret
//!   (`secretKeyRef`), prints its environment and the password on stderr and fails;
//! - a dump Job connects with the Secret's user, which the server does not know, and fails:
//!   `pg_dump` prints `password authentication failed for user "<the user name>"` (PostgreSQL
//!   never prints a password, so the user name is the Secret value a dump can show; the
//!   redaction treats every value of the Secret alike);
//! - an SQL restore Job with `sqlTarget.credentialsSecret: db-credentials` fails the same way.
//!
//! Each run's message must show the redaction marker `***` where the value was (so the test
//! cannot pass because nothing was printed), and neither value may appear anywhere: not in the
//! operator's log, not in an Event, not in any ArchiveBackup or RestoreRequest, not in the
//! command, arguments or literal environment of any Job or Pod, not in any ConfigMap.

mod backup_support;
mod restore_support;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use archivist::api::{ArchiveBackup, BackupPhase, BackupPolicy, RestoreRequest};
use archivist_e2e::testing::databases::{Postgres, PASSWORD, USER};
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Event, Pod, PodSpec, Secret};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use restore_support::{request, wait_restore_failed};

/// A value no other test, log line or object holds: `<prefix><16 hex digits>`.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}{:016x}", (nanos as u64) ^ (u64::from(std::process::id()) << 40))
}

async fn secret(client: &Client, ns: &str, name: &str, username: &str, password: &str) -> anyhow::Result<()> {
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "stringData": {"username": username, "password": password}
    }))?;
    Api::<Secret>::namespaced(client.clone(), ns).create(&PostParams::default(), &secret).await?;
    Ok(())
}

/// The archive server: one replica whose container `server` has `PW` from the Secret
/// `db-credentials` and mounts the claim `content`.
async fn archive(client: &Client, ns: &str) -> anyhow::Result<()> {
    let sts = serde_json::json!({
        "metadata": {"name": "archive"},
        "spec": {
            "serviceName": "archive",
            "replicas": 1,
            "selector": {"matchLabels": {"app": "archive"}},
            "template": {
                "metadata": {"labels": {"app": "archive"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "server",
                        "image": "ignored",
                        "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}}}],
                        "volumeMounts": [{"name": "content", "mountPath": "/content"}]
                    }],
                    "volumes": [{"name": "content", "persistentVolumeClaim": {"claimName": "content"}}]
                }
            }
        }
    });
    create::<StatefulSet>(client, ns, &serde_json::to_string(&sts)?).await?;
    wait_ready_replicas(client, ns, "archive", 1).await
}

/// Runs backup `name` and expects it Failed, its message holding `words` (where a secret value
/// was) and its BackupFailed Event published.
async fn failed_run(client: &Client, ns: &str, name: &str, operator: &mut archivist_e2e::testing::operator::Operator, words: &str) -> anyhow::Result<String> {
    start_backup(client, ns, name, "archive").await?;
    let run = wait_finished(client, ns, name, operator).await?;
    let message = run.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default();
    ensure!(phase(&run) == BackupPhase::Failed, "{name} ended {:?}: {message}", phase(&run));
    ensure!(message.contains(words), "{name}'s message does not show {words:?} where the secret was: {message}");
    until(&format!("{name}'s BackupFailed Event"), Duration::from_secs(10), || async {
        Ok(run_event_reasons(client, ns, name).await?.iter().any(|r| r == "BackupFailed"))
    })
    .await?;
    eprintln!("{name} failed, redacted: {message}");
    Ok(message)
}

/// Every place the test looks for the secret values, with what it found there.
async fn places(client: &Client, ns: &str, operator_log: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut places = Vec::new();
    let log = std::fs::read_to_string(operator_log).with_context(|| format!("{}", operator_log.display()))?;
    ensure!(log.contains("b2"), "the operator's log {} does not mention the runs: wrong file?", operator_log.display());
    places.push(("the operator's log".to_string(), log));
    let lp = ListParams::default();
    let events = Api::<Event>::namespaced(client.clone(), ns).list(&lp).await?.items;
    ensure!(!events.is_empty(), "no Events in {ns}");
    places.push(("Events".into(), serde_json::to_string(&events)?));
    places.push(("ArchiveBackups".into(), serde_json::to_string(&Api::<ArchiveBackup>::namespaced(client.clone(), ns).list(&lp).await?.items)?));
    places.push(("RestoreRequests".into(), serde_json::to_string(&Api::<RestoreRequest>::namespaced(client.clone(), ns).list(&lp).await?.items)?));
    places.push(("BackupPolicies".into(), serde_json::to_string(&Api::<BackupPolicy>::namespaced(client.clone(), ns).list(&lp).await?.items)?));
    places.push(("ConfigMaps".into(), serde_json::to_string(&Api::<ConfigMap>::namespaced(client.clone(), ns).list(&lp).await?.items)?));
    let jobs = Api::<Job>::namespaced(client.clone(), ns).list(&lp).await?.items;
    // The SQL restore Job stays (the dump Jobs may be deleted with their dump PVCs).
    ensure!(!jobs.is_empty(), "no Jobs in {ns}: the SQL restore Job should be there");
    for job in &jobs {
        let spec = job.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        places.push((format!("Job {:?}", job.metadata.name), commands(spec)));
    }
    for pod in Api::<Pod>::namespaced(client.clone(), ns).list(&lp).await?.items {
        places.push((format!("Pod {:?}", pod.metadata.name), commands(pod.spec.as_ref())));
    }
    Ok(places)
}

/// The commands, arguments and literal environment values of every container of a pod spec.
fn commands(spec: Option<&PodSpec>) -> String {
    let containers = spec.iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()));
    let words = |c: &Container| {
        let env = c.env.iter().flatten().filter_map(|e| e.value.clone());
        c.command.iter().chain(c.args.iter()).flatten().cloned().chain(env).collect::<Vec<_>>()
    };
    containers.flat_map(words).collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn secret_values_appear_nowhere_even_in_failures() {
    let db = Arc::new(Postgres::start("archive_meta").expect("PostgreSQL"));
    with_namespace("secrets", move |client, ns| async move {
        let db = db.clone();
        let (username, password) = (unique("u"), unique("pw-"));
        eprintln!("planted: user {username}, password {password}");
        db.psql("archive_meta", "CREATE TABLE messages (id BIGINT PRIMARY KEY, path TEXT); INSERT INTO messages VALUES (1, 'msg-1.eml')")?;
        let mut operator = start_operator(&client, &ns).await?;
        secret(&client, &ns, "db-credentials", &username, &password).await?;
        secret(&client, &ns, "good-credentials", USER, PASSWORD).await?;
        data_pvc(&client, &ns, "content", &[]).await?;
        archive(&client, &ns).await?;

        // 1. The freeze hook prints its environment and the password it was given, and fails.
        policy(&client, &ns, "archive", &format!(r#"
  target: {{kind: StatefulSet, name: archive}}
  quiesce:
    mode: Freeze
    freeze: {{exec: {{container: server, command: [sh, -c, 'env >&2; echo "the archive was given $PW" >&2; exit 1']}}}}
    thaw: {{exec: {{container: server, command: [sh, -c, "true"]}}}}
    timeoutSeconds: 60
  stores:
  - name: s1
    metadata:
      sql: {{engine: PostgreSQL, host: 127.0.0.1, port: {port}, database: archive_meta, credentialsSecret: db-credentials}}
    content: {{volumeClaims: [content]}}
  dump: {{size: 1Gi, image: "postgres:16"}}
"#, port = db.port)).await?;
        failed_run(&client, &ns, "b1", &mut operator, "the archive was given ***").await?;

        // 2. No hooks: the dump Job logs in as the Secret's (unknown) user and fails.
        merge_patch::<BackupPolicy>(&client, &ns, "archive", serde_json::json!({"spec": {"quiesce": {"mode": "None", "freeze": null, "thaw": null}}})).await?;
        failed_run(&client, &ns, "b2", &mut operator, "for user \"***\"").await?;

        // 3. A good backup with the good credentials, then a restore into the same server
        // with the planted credentials: the SQL restore Job fails.
        let good = serde_json::json!({"spec": {"stores": [{
            "name": "s1",
            "metadata": {"sql": {"engine": "PostgreSQL", "host": "127.0.0.1", "port": db.port, "database": "archive_meta", "credentialsSecret": "good-credentials"}},
            "content": {"volumeClaims": ["content"]}
        }]}});
        merge_patch::<BackupPolicy>(&client, &ns, "archive", good).await?;
        start_backup(&client, &ns, "b3", "archive").await?;
        wait_completed(&client, &ns, "b3", &mut operator).await?;
        request(&client, &ns, "r1", "  source: {backupName: b3}\n  target: {mode: Volumes, nameSuffix: -r}\n  sqlTarget: {credentialsSecret: db-credentials, databaseSuffix: _restored}\n").await?;
        let message = wait_restore_failed(&client, &ns, "r1", &mut operator).await?;
        eprintln!("r1 failed, redacted: {message}");
        ensure!(message.contains("for user \"***\""), "r1's message does not show *** where the user name was: {message}");
        until("r1's RestoreFailed Event", Duration::from_secs(10), || {
            let (client, ns) = (client.clone(), ns.clone());
            async move {
                let reasons = archivist_e2e::testing::operator::event_reasons(&client, &ns, "RestoreRequest", "r1").await?;
                Ok(reasons.iter().any(|r| r == "RestoreFailed"))
            }
        })
        .await?;

        // Nowhere: neither value, in any place the operator writes to.
        let log = operator.log.clone();
        for (place, text) in places(&client, &ns, &log).await? {
            for (what, value) in [("password", &password), ("user name", &username)] {
                ensure!(!text.contains(value.as_str()), "the {what} {value} appears in {place}");
            }
        }
        Ok(())
    })
    .await;
}
