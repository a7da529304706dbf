//! Throwaway PostgreSQL and MariaDB servers for end-to-end tests: Debian's packages (installed
//! with apt-get when missing), a fresh data directory, a free port on 127.0.0.1, a password
//! user for TCP clients. Stopped and removed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};

/// The user name and password every test server gets (a throwaway server on loopback).
pub const USER: &str = "archivist";
/// See [`USER`].
pub const PASSWORD: &str = "e2e-secret";

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command.output().with_context(|| format!("failed to run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Installs Debian packages when `probe` is not on the machine.
pub(crate) fn ensure_packages(probe: &Path, packages: &[&str]) -> anyhow::Result<()> {
    if probe.exists() {
        return Ok(());
    }
    let mut install = Command::new("apt-get");
    install
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["-o", "DPkg::Lock::Timeout=600", "-q", "install", "-y", "--no-install-recommends"])
        .args(packages);
    if run(&mut install).is_err() {
        run(Command::new("apt-get").args(["-o", "DPkg::Lock::Timeout=600", "-q", "update"]))?;
        run(&mut install)?;
    }
    if !probe.exists() {
        bail!("{} is still missing after installing {packages:?}", probe.display());
    }
    Ok(())
}

pub(crate) fn wait_port(port: u16, what: &str) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not listen on 127.0.0.1:{port} within 60 s")
}

pub(crate) fn scratch_dir(prefix: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "archivist-e2e-{prefix}-{}-{}",
        std::process::id(),
        free_port()?
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A PostgreSQL server (the newest major version under /usr/lib/postgresql).
pub struct Postgres {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl Postgres {
    /// Installs (if needed), initialises and starts a server with the password user [`USER`]
    /// (a superuser) and the database `database`.
    pub fn start(database: &str) -> anyhow::Result<Self> {
        ensure_packages(Path::new("/usr/lib/postgresql"), &["postgresql"])?;
        let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")?
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        versions.sort();
        let version = versions.last().context("no PostgreSQL under /usr/lib/postgresql")?;
        let bin = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"));
        let dir = scratch_dir("pg")?;
        run(Command::new("chown").args(["postgres:postgres"]).arg(&dir))?;
        let data = dir.join("data");
        let port = free_port()?;
        let server = Self { port, dir: dir.clone(), bin: bin.clone() };
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            // TCP clients need the password (so a wrong one fails); the unix socket trusts.
            .args(["--auth-local=trust", "--auth-host=scram-sha-256", "-U", "postgres", "-D"])
            .arg(&data))?;
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-o")
            .arg(format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", dir.display()))
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-w", "start"])
            .stdout(Stdio::null()))?;
        wait_port(port, "PostgreSQL")?;
        server.psql_as_postgres("postgres", &format!("CREATE USER {USER} SUPERUSER PASSWORD '{PASSWORD}'"))?;
        server.psql_as_postgres("postgres", &format!("CREATE DATABASE {database} OWNER {USER}"))?;
        Ok(server)
    }

    fn psql_as_postgres(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        run(Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", database])
            .arg("-h")
            .arg(&self.dir)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg(sql))
    }

    /// A `psql` command (tuples only, unaligned) as [`USER`] against `database`.
    pub fn psql_command(&self, database: &str) -> Command {
        let mut command = Command::new("psql");
        command
            .env("PGPASSWORD", PASSWORD)
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", USER, "-d", database])
            .arg("-p")
            .arg(self.port.to_string());
        command
    }

    /// Runs `sql` as [`USER`] in `database`; returns the output (tuples only, unaligned).
    pub fn psql(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        run(self.psql_command(database).arg("-c").arg(sql))
    }

    /// Restores a `pg_dump --format=custom` file into a new database `database`.
    pub fn restore_into_new_database(&self, dump: &Path, database: &str) -> anyhow::Result<()> {
        self.psql("postgres", &format!("CREATE DATABASE {database}"))?;
        run(Command::new("pg_restore")
            .env("PGPASSWORD", PASSWORD)
            .args(["--no-owner", "--exit-on-error", "-h", "127.0.0.1", "-U", USER, "-d", database])
            .arg("-p")
            .arg(self.port.to_string())
            .arg(dump))?;
        Ok(())
    }

    /// Dumps `database` (custom format) into `file`, as the operator's dump Job does.
    pub fn dump(&self, database: &str, file: &Path) -> anyhow::Result<()> {
        run(Command::new("pg_dump")
            .env("PGPASSWORD", PASSWORD)
            .args(["--format=custom", "--no-owner", "-h", "127.0.0.1", "-U", USER, "-d", database])
            .arg("-p")
            .arg(self.port.to_string())
            .arg(format!("--file={}", file.display())))?;
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A MariaDB server.
pub struct MariaDb {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    child: std::process::Child,
}

impl MariaDb {
    /// Installs (if needed), initialises and starts a server with the password user [`USER`]
    /// (all privileges, from 127.0.0.1) and the database `database`.
    pub fn start(database: &str) -> anyhow::Result<Self> {
        ensure_packages(Path::new("/usr/sbin/mariadbd"), &["mariadb-server", "mariadb-client"])?;
        let dir = scratch_dir("mariadb")?;
        let data = dir.join("data");
        run(Command::new("mariadb-install-db")
            .args(["--user=root", "--auth-root-authentication-method=socket", "--skip-test-db"])
            .arg(format!("--datadir={}", data.display()))
            .stdout(Stdio::null()))?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.join("server.log"))?;
        let child = Command::new("/usr/sbin/mariadbd")
            .arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .arg("--skip-log-bin")
            .arg("--innodb-flush-log-at-trx-commit=2")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("failed to start mariadbd")?;
        let server = Self { port, dir: dir.clone(), child };
        wait_port(port, "MariaDB")?;
        run(Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", dir.join("sock").display()))
            .args(["-u", "root", "-e"])
            .arg(format!(
                "CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; \
                 CREATE USER '{USER}'@'localhost' IDENTIFIED BY '{PASSWORD}'; \
                 GRANT ALL ON *.* TO '{USER}'@'127.0.0.1'; GRANT ALL ON *.* TO '{USER}'@'localhost'; \
                 CREATE DATABASE {database};"
            )))?;
        Ok(server)
    }

    /// A `mariadb` client command (batch, no column names) as [`USER`] over TCP.
    pub fn client_command(&self, database: &str) -> Command {
        let mut command = Command::new("mariadb");
        command
            .env("MYSQL_PWD", PASSWORD)
            .args(["--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-u", USER, "-N", "-B"])
            .arg(format!("--port={}", self.port))
            .arg(database);
        command
    }

    /// Runs `sql` in `database`; returns the output (tab separated, no column names).
    pub fn sql(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        run(self.client_command(database).arg("-e").arg(sql))
    }

    /// Loads an SQL dump into a new database `database`.
    pub fn restore_into_new_database(&self, dump: &Path, database: &str) -> anyhow::Result<()> {
        self.sql("mysql", &format!("CREATE DATABASE {database}"))?;
        let file = std::fs::File::open(dump).with_context(|| format!("{}", dump.display()))?;
        run(self.client_command(database).stdin(file))?;
        Ok(())
    }

    /// Dumps `database` into `file` as the operator's dump Job does.
    pub fn dump(&self, database: &str, file: &Path) -> anyhow::Result<()> {
        let out = std::fs::File::create(file)?;
        let status = Command::new("mariadb-dump")
            .env("MYSQL_PWD", PASSWORD)
            .args(["--no-defaults", "--single-transaction", "--protocol=TCP", "-h", "127.0.0.1", "-u", USER])
            .arg(format!("--port={}", self.port))
            .arg(database)
            .stdout(out)
            .status()?;
        if !status.success() {
            bail!("mariadb-dump failed ({status})");
        }
        Ok(())
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
