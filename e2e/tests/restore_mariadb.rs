//! A restore of a store whose metadata is in MariaDB: the operator's restore Job loads the
//! dump into a NEW database (`<database>_restored`) with the rows of the backup, leaves the
//! source database as it is, and refuses to overwrite a database that exists.

mod backup_support;
mod restore_support;

use anyhow::ensure;
use archivist_e2e::testing::databases::{MariaDb, PASSWORD, USER};
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use k8s_openapi::api::core::v1::Secret;
use restore_support::{request, restored_name, wait_restore_completed, wait_restore_failed};

/// The MariaDB database of the store's metadata.
const DATABASE: &str = "meta_maria";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_mariadb_store_is_restored_into_a_new_database_and_never_over_an_existing_one() {
    let db = MariaDb::start(DATABASE).expect("MariaDB");
    with_namespace("rs-maria", move |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        db.sql(DATABASE, "CREATE TABLE messages (id int PRIMARY KEY, subject text NOT NULL); \
            INSERT INTO messages SELECT seq, CONCAT('subject ', seq) FROM seq_1_to_300;")?;
        let backed_up = db.sql(DATABASE, "SELECT id, subject FROM messages ORDER BY id")?;
        create::<Secret>(&client, &ns, &format!("metadata: {{name: maria-credentials}}\nstringData: {{username: {USER}, password: {PASSWORD}}}")).await?;
        data_pvc(&client, &ns, "content", &[]).await?;
        archive_statefulset(&client, &ns, "archive", 1, &["content"]).await?;
        policy(&client, &ns, "archive", &format!(
            "  target: {{kind: StatefulSet, name: archive}}\n  quiesce: {{mode: None}}\n  dump: {{size: 1Gi, image: mariadb:11}}\n  stores:\n  - name: s1\n    metadata: {{sql: {{engine: MySQL, host: 127.0.0.1, port: {}, database: {DATABASE}, credentialsSecret: maria-credentials}}}}\n    content: {{volumeClaims: [content]}}\n",
            db.port
        )).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        wait_completed(&client, &ns, "b1", &mut operator).await?;
        db.sql(DATABASE, "DELETE FROM messages WHERE id > 200; INSERT INTO messages VALUES (1000, 'after the backup');")?;
        let source_after = db.sql(DATABASE, "SELECT id, subject FROM messages ORDER BY id")?;

        request(&client, &ns, "r1", "  source: {backupName: b1}\n  target: {mode: Volumes}\n").await?;
        let r1 = wait_restore_completed(&client, &ns, "r1", &mut operator).await?;
        let restored = restored_name(&r1, DATABASE)?;
        ensure!(restored == format!("{DATABASE}_restored"), "restored into {restored}");
        let rows = db.sql(&restored, "SELECT id, subject FROM messages ORDER BY id")?;
        ensure!(rows == backed_up && rows.lines().count() == 300, "restored rows differ from the backup ({} lines)", rows.lines().count());
        ensure!(db.sql(DATABASE, "SELECT id, subject FROM messages ORDER BY id")? == source_after, "the source database changed");

        // The same target database again: the restore Job refuses, nothing is overwritten.
        db.sql(&restored, "INSERT INTO messages VALUES (5000, 'written into the restored copy');")?;
        request(&client, &ns, "r2", "  source: {backupName: b1}\n  target: {mode: Volumes}\n").await?;
        let message = wait_restore_failed(&client, &ns, "r2", &mut operator).await?;
        ensure!(message.contains("already exists") && message.contains(&restored), "r2 failed with: {message}");
        let kept = db.sql(&restored, "SELECT subject FROM messages WHERE id = 5000")?;
        ensure!(kept.trim() == "written into the restored copy", "the existing database was overwritten: {kept:?}");
        operator.check_running()?;
        Ok(())
    })
    .await;
}
