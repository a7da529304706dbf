//! The metadata-then-content check of a store whose metadata is in an SQL database and whose
//! content is a volume, shared by the PostgreSQL and MariaDB tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use archivist::api::{ArchiveBackup, Component};
use archivist_e2e::snapshot_api::VolumeSnapshot;
use archivist_e2e::testing::databases::{MariaDb, Postgres, PASSWORD, USER};
use archivist_e2e::testing::volumes::snapshot;
use archivist_e2e::testing::wait_for;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, Client};

use super::*;

/// A database server the test can write to, dump and restore.
pub trait TestDb: Send + Sync + 'static {
    /// `PostgreSQL` or `MySQL` (the policy's `sql.engine`).
    fn engine(&self) -> &'static str;
    /// The dump image named in the policy (the simulated kubelet ignores images and runs the
    /// host's client tools).
    fn image(&self) -> &'static str;
    fn port(&self) -> u16;
    /// The file the operator's dump Job writes.
    fn dump_file(&self) -> &'static str;
    fn sql(&self, database: &str, sql: &str) -> anyhow::Result<String>;
    fn dump(&self, database: &str, file: &Path) -> anyhow::Result<()>;
    fn restore(&self, dump: &Path, database: &str) -> anyhow::Result<()>;
}

impl TestDb for Postgres {
    fn engine(&self) -> &'static str { "PostgreSQL" }
    fn image(&self) -> &'static str { "postgres:16" }
    fn port(&self) -> u16 { self.port }
    fn dump_file(&self) -> &'static str { "dump.pgdump" }
    fn sql(&self, database: &str, sql: &str) -> anyhow::Result<String> { self.psql(database, sql) }
    fn dump(&self, database: &str, file: &Path) -> anyhow::Result<()> { Postgres::dump(self, database, file) }
    fn restore(&self, dump: &Path, database: &str) -> anyhow::Result<()> { self.restore_into_new_database(dump, database) }
}

impl TestDb for MariaDb {
    fn engine(&self) -> &'static str { "MySQL" }
    fn image(&self) -> &'static str { "mariadb:11" }
    fn port(&self) -> u16 { self.port }
    fn dump_file(&self) -> &'static str { "dump.sql" }
    fn sql(&self, database: &str, sql: &str) -> anyhow::Result<String> { MariaDb::sql(self, database, sql) }
    fn dump(&self, database: &str, file: &Path) -> anyhow::Result<()> { MariaDb::dump(self, database, file) }
    fn restore(&self, dump: &Path, database: &str) -> anyhow::Result<()> { self.restore_into_new_database(dump, database) }
}

pub const DATABASE: &str = "archive_meta";

/// An archiving writer: message n is written to `<content>/msg-<n>.eml` (and synced) first,
/// then its metadata row is inserted. Runs until stopped.
pub struct Writer {
    stop: Arc<AtomicBool>,
    pub written: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Writer {
    pub fn start(db: Arc<dyn TestDb>, content: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let (s, w) = (stop.clone(), written.clone());
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                n += 1;
                let path = content.join(format!("msg-{n}.eml"));
                let file = std::fs::File::create(&path)?;
                std::io::Write::write_all(&mut &file, format!("Subject: message {n}\n\nbody\n").as_bytes())?;
                file.sync_all()?;
                db.sql(DATABASE, &format!("INSERT INTO messages (id, path) VALUES ({n}, 'msg-{n}.eml')"))?;
                w.store(n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        });
        Self { stop, written, thread: Some(thread) }
    }

    pub fn stop(&mut self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
        }
        Ok(self.written.load(Ordering::Relaxed))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Join, so the thread's handle on the database server is gone before the test's, and
        // the server is stopped even when the test fails half-way.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The metadata rows of a database whose content file is not in `content`, and the number of
/// rows. The rows are read before the files, so a database and volume that a writer is still
/// archiving into (file first, then row) never show a row as missing its file.
pub fn missing_content(db: &dyn TestDb, database: &str, content: &Path) -> anyhow::Result<(Vec<String>, usize)> {
    let rows = db.sql(database, "SELECT path FROM messages ORDER BY id")?;
    let rows: Vec<String> = rows.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    let files = file_names(content)?;
    let missing = rows.iter().filter(|p| !files.contains_key(*p)).cloned().collect();
    Ok((missing, rows.len()))
}

/// An archive under live writes, as the order proof sees it.
pub struct LiveArchive {
    /// The policy (quiesce `None`) whose backup `b1` the proof runs.
    pub policy: String,
    /// The database holding the metadata (`messages (id, path)`).
    pub database: String,
    /// The content claim (snapshotted by hand for the reversed order).
    pub content_claim: String,
    /// How many messages the archive has written so far.
    pub written: Box<dyn Fn() -> anyhow::Result<u64> + Send + Sync>,
}

/// The whole test: a quiesce=None backup while the writer archives, then the same check with
/// the capture order reversed by hand.
pub async fn metadata_then_content(client: Client, ns: String, db: Arc<dyn TestDb>) -> anyhow::Result<()> {
    let mut operator = start_operator(&client, &ns).await?;
    db.sql(DATABASE, "CREATE TABLE messages (id BIGINT PRIMARY KEY, path VARCHAR(200) NOT NULL)")?;
    // The content cut takes 3 s: the writer adds rows between the metadata and content cuts.
    let content = data_pvc(&client, &ns, "content", &[("sim.archivist.dev/snapshot-cut-delay", "3s")]).await?;
    archive_statefulset(&client, &ns, "archive", 1, &["content"]).await?;
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "db-credentials"},
        "stringData": {"username": USER, "password": PASSWORD}
    }))?;
    Api::<Secret>::namespaced(client.clone(), &ns).create(&PostParams::default(), &secret).await?;
    policy(&client, &ns, "archive", &format!(r#"
  target: {{kind: StatefulSet, name: archive}}
  quiesce: {{mode: None}}
  stores:
  - name: s1
    metadata:
      sql: {{engine: {engine}, host: 127.0.0.1, port: {port}, database: {DATABASE}, credentialsSecret: db-credentials}}
    content: {{volumeClaims: [content]}}
  dump: {{size: 1Gi, image: "{image}"}}
"#, engine = db.engine(), port = db.port(), image = db.image())).await?;

    let mut writer = Writer::start(db.clone(), content.clone());
    let written = writer.written.clone();
    let archive = LiveArchive {
        policy: "archive".into(),
        database: DATABASE.into(),
        content_claim: "content".into(),
        written: Box::new(move || Ok(written.load(Ordering::Relaxed))),
    };
    prove_metadata_then_content(&client, &ns, &mut operator, db, &archive).await?;
    let total = writer.stop()?;
    eprintln!("the writer wrote {total} messages");
    Ok(())
}

/// The order proof on an archive under live writes whose content claim is cut 3 s after the
/// snapshot is made (`sim.archivist.dev/snapshot-cut-delay`): the operator's backup `b1`
/// (metadata cut first) restores to metadata rows that all have their content, while the
/// capture order reversed by hand (content cut, then a dump) loses content. Returns `b1`.
pub async fn prove_metadata_then_content(
    client: &Client,
    ns: &str,
    operator: &mut archivist_e2e::testing::operator::Operator,
    db: Arc<dyn TestDb>,
    archive: &LiveArchive,
) -> anyhow::Result<ArchiveBackup> {
    let (client, ns) = (client.clone(), ns.to_string());
    let written = &archive.written;
    until("the writer to archive some messages", Duration::from_secs(60), || {
        let n = written();
        async move { Ok(n? >= 20) }
    })
    .await?;

    // 1. The operator's order: metadata (dump) cut first, then content.
    start_backup(&client, &ns, "b1", &archive.policy).await?;
    let backup = wait_completed(&client, &ns, "b1", operator).await?;
    eprintln!("{} store: {}", db.engine(), timeline(&backup));
    let window = backup.status.as_ref().and_then(|s| s.quiesce.as_ref()).and_then(|q| q.window_seconds);
    anyhow::ensure!(window == Some(0.0), "quiesce None: the archive was never unavailable, windowSeconds should be 0, got {window:?}");
    let meta_dir = restore_to_dir(&client, &ns, &snapshot_of(&backup, Component::Metadata)?, "restored-meta").await?;
    let content_dir = restore_to_dir(&client, &ns, &snapshot_of(&backup, Component::Content)?, "restored-content").await?;
    db.restore(&meta_dir.join(db.dump_file()), "restored_ok").context("restoring the operator's dump")?;
    let (missing, rows) = missing_content(db.as_ref(), "restored_ok", &content_dir)?;
    let files = file_names(&content_dir)?.len();
    eprintln!("{}: operator's order: {rows} metadata rows, {files} content files, {} missing", db.engine(), missing.len());
    anyhow::ensure!(rows > 0, "the restored dump has no rows");
    anyhow::ensure!(missing.is_empty(), "metadata rows without content after the operator's backup: {missing:?}");
    anyhow::ensure!(files > rows, "the writer added nothing between the cuts ({files} files, {rows} rows): the test proves nothing");

    // 2. The reversed order, by hand: content cut first, then the dump.
    let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns);
    snapshots.create(&PostParams::default(), &snapshot("reversed-content", &archive.content_claim, None)).await?;
    wait_for(&snapshots, "reversed-content", Duration::from_secs(60), "the reversed content snapshot to be cut", |s| {
        s.and_then(|s| s.status.as_ref()).and_then(|s| s.creation_time.as_ref()).is_some()
    })
    .await?;
    let at_cut = written()?;
    until("the writer to archive after the content cut", Duration::from_secs(60), || {
        let n = written();
        async move { Ok(n? >= at_cut + 5) }
    })
    .await?;
    let reversed_dump = std::env::temp_dir().join(format!("{ns}-reversed-{}", db.dump_file()));
    db.dump(&archive.database, &reversed_dump)?;
    let reversed_dir = restore_to_dir(&client, &ns, "reversed-content", "restored-reversed").await?;
    db.restore(&reversed_dump, "restored_reversed")?;
    let _ = std::fs::remove_file(&reversed_dump);
    let (missing, rows) = missing_content(db.as_ref(), "restored_reversed", &reversed_dir)?;
    eprintln!("{}: reversed order: {rows} metadata rows, {} missing content", db.engine(), missing.len());
    anyhow::ensure!(!missing.is_empty(), "the reversed order lost nothing: the check could not catch a wrong order");
    Ok(backup)
}
