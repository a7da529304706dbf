//! The MailStore-with-SQL seed (`examples/seeds/mailstore-sql/`): the server archives without
//! pause, writing each message file before its metadata row in PostgreSQL. The seed's files
//! are applied as they are, except the database address (the seed's `mailstore-db:5432`
//! becomes this test's server on 127.0.0.1), and the test gives the seed's role a login.
//!
//! The hot backup (quiesce `None`) restores to metadata whose content is all there; the same
//! capture with the order reversed loses content (the shared order proof); and the seed's
//! SideBySide restore puts the metadata into a new database, consistent with the restored
//! content, with a copy of the server that archives into that database (its `PGDATABASE`
//! pointed there), while the running server keeps archiving into its own.

mod backup_support;
mod restore_support;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use archivist_e2e::testing::databases::Postgres;
use archivist_e2e::testing::operator::repo_dir;
use archivist_e2e::testing::volumes::host_dir;
use archivist_e2e::testing::with_namespace;
use backup_support::sql::{missing_content, prove_metadata_then_content, LiveArchive, TestDb};
use backup_support::*;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Patch, PatchParams};
use kube::Api;
use restore_support::{restored_name, wait_restore_completed};
use serde_json::{json, Value};

const SEED: &str = "examples/seeds/mailstore-sql";
/// The seed's metadata database.
const DATABASE: &str = "mailstore_meta";

/// The host directory of claim `name`'s volume.
async fn claim_dir(client: &kube::Client, ns: &str, name: &str) -> anyhow::Result<std::path::PathBuf> {
    let claim = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns).get(name).await?;
    let volume = claim.spec.and_then(|s| s.volume_name).with_context(|| format!("claim {name} is unbound"))?;
    host_dir(&Api::<PersistentVolume>::all(client.clone()).get(&volume).await?)
}

fn seed(file: &str) -> anyhow::Result<Vec<Value>> {
    read_manifest(&repo_dir().join(SEED).join(file))
}

/// The object of `kind` among `objects`.
fn find<'a>(objects: &'a mut [Value], kind: &str) -> anyhow::Result<&'a mut Value> {
    objects.iter_mut().find(|o| o["kind"] == kind).with_context(|| format!("the seed has no {kind}"))
}

/// Points the seed at the test's database server: the server's PGHOST / PGPORT, and the
/// policy's `sql.host` / `sql.port`.
fn point_at_server(objects: &mut [Value], port: u16) -> anyhow::Result<()> {
    for object in objects.iter_mut() {
        match object["kind"].as_str() {
            Some("StatefulSet") => {
                let env = object["spec"]["template"]["spec"]["containers"][0]["env"].as_array_mut().context("the server has no env")?;
                for var in env.iter_mut() {
                    match var["name"].as_str() {
                        Some("PGHOST") => var["value"] = json!("127.0.0.1"),
                        Some("PGPORT") => var["value"] = json!(port.to_string()),
                        _ => {}
                    }
                }
            }
            Some("BackupPolicy") => {
                let sql = &mut object["spec"]["stores"][0]["metadata"]["sql"];
                ensure!(sql["database"] == DATABASE, "the seed's database is {}", sql["database"]);
                sql["host"] = json!("127.0.0.1");
                sql["port"] = json!(port);
            }
            _ => {}
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn the_mailstore_sql_seed_cuts_its_database_before_its_content_under_live_writes_and_restores_into_a_new_database() {
    let pg = Arc::new(Postgres::start(DATABASE).expect("PostgreSQL"));
    with_namespace("seed-mssql", move |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        let mut archive = seed("archive.yaml")?;
        // The seed's role, with the seed's password, owns the database (the database server is
        // the user's, not part of the seed).
        let credentials = &find(&mut archive, "Secret")?["stringData"];
        let (user, password) = (credentials["username"].as_str().context("username")?.to_string(), credentials["password"].as_str().context("password")?.to_string());
        pg.psql("postgres", &format!("CREATE ROLE {user} LOGIN CREATEDB PASSWORD '{password}'"))?;
        pg.psql("postgres", &format!("ALTER DATABASE {DATABASE} OWNER TO {user}"))?;
        point_at_server(&mut archive, pg.port)?;
        apply_objects(&client, &ns, archive).await?;
        wait_ready_replicas(&client, &ns, "mailstore", 1).await?;
        // The content cut takes 3 s, so the server archives between the metadata and content cuts.
        let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
        let patch = json!({"metadata": {"annotations": {"sim.archivist.dev/snapshot-cut-delay": "3s"}}});
        claims.patch("content-mailstore-0", &PatchParams::default(), &Patch::Merge(&patch)).await?;
        let mut policy = seed("policy.yaml")?;
        point_at_server(&mut policy, pg.port)?;
        apply_objects(&client, &ns, policy).await?;
        let db: Arc<dyn TestDb> = pg.clone();
        until("the server to create its table", Duration::from_secs(60), || {
            let tables = db.sql(DATABASE, "SELECT count(*) FROM pg_tables WHERE tablename = 'messages'");
            async move { Ok(tables?.trim() == "1") }
        })
        .await?;
        let counter = db.clone();
        let live = LiveArchive {
            policy: "mailstore".into(),
            database: DATABASE.into(),
            content_claim: "content-mailstore-0".into(),
            written: Box::new(move || Ok(counter.sql(DATABASE, "SELECT count(*) FROM messages")?.trim().parse()?)),
        };
        prove_metadata_then_content(&client, &ns, &mut operator, db.clone(), &live).await?;

        // The seed's restore: the metadata into a new database, the content into a new claim,
        // and a copy of the server on both.
        let dumped: u64 = db.sql("restored_ok", "SELECT count(*) FROM messages")?.trim().parse()?;
        apply_objects(&client, &ns, seed("restore.yaml")?).await?;
        let r = wait_restore_completed(&client, &ns, "mailstore-restore", &mut operator).await?;
        ensure!(r.status.as_ref().and_then(|s| s.resolved_backup.as_deref()) == Some("b1"), "restored from {:?}", r.status.as_ref().map(|s| &s.resolved_backup));
        let restored_db = restored_name(&r, DATABASE)?;
        ensure!(restored_db == format!("{DATABASE}_restored"), "the metadata went into {restored_db}");
        let restored_claim = restored_name(&r, "content-mailstore-0")?;
        let restored_dir = claim_dir(&client, &ns, &restored_claim).await?;
        let (missing, rows) = missing_content(db.as_ref(), &restored_db, &restored_dir)?;
        eprintln!("the seed's restore: {rows} metadata rows in {restored_db} ({dumped} dumped), {} without content", missing.len());
        ensure!(rows as u64 >= dumped && dumped > 0 && missing.is_empty(), "{restored_db}: {rows} rows ({dumped} dumped), without content: {missing:?}");

        // The copy archives into the restored database (its PGDATABASE was pointed at it), and
        // what it archives stays consistent with its restored content.
        let copy_db = restored_db.clone();
        until("the copy to archive into the restored database", Duration::from_secs(90), || {
            let n = db.sql(&copy_db, "SELECT count(*) FROM messages").and_then(|n| Ok(n.trim().parse::<u64>()?));
            async move { Ok(n? > dumped + 5) }
        })
        .await?;
        let (missing, rows) = missing_content(db.as_ref(), &restored_db, &restored_dir)?;
        ensure!(missing.is_empty(), "the copy's {rows} rows in {restored_db}: without content {missing:?}");
        let (missing, original_rows) = missing_content(db.as_ref(), DATABASE, &claim_dir(&client, &ns, "content-mailstore-0").await?)?;
        ensure!(missing.is_empty(), "the original database's {original_rows} rows: without content {missing:?}");

        // The running server was not touched: it still archives into its own database, beyond
        // the rows just counted there (the copy archives into the restored one meanwhile).
        until("the server to go on archiving into its own database", Duration::from_secs(60), || {
            let n = (live.written)();
            async move { Ok(n? > original_rows as u64) }
        })
        .await?;
        operator.check_running()?;
        Ok(())
    })
    .await;
}
