//! A throwaway restic repository for end-to-end tests: a real restic REST server on loopback
//! (`rclone serve restic DIR --addr 127.0.0.1:PORT`, Debian's `rclone`), and the host's
//! `restic` (Debian's `restic`) to read it as a user would. Both packages are installed with
//! apt-get when missing. The server stops when dropped, and its directory is removed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context as _};

use super::databases::{ensure_packages, free_port, scratch_dir, wait_port};

/// A restic REST server on 127.0.0.1 storing into a fresh directory.
pub struct ResticServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Where the repositories' files are.
    pub dir: PathBuf,
    child: Child,
}

impl ResticServer {
    /// Starts the server (installing `rclone` and `restic` first when missing).
    pub fn start() -> anyhow::Result<Self> {
        ensure_packages(Path::new("/usr/bin/rclone"), &["rclone"])?;
        ensure_packages(Path::new("/usr/bin/restic"), &["restic"])?;
        let port = free_port()?;
        let dir = scratch_dir("restic")?;
        let child = Command::new("rclone")
            .args(["serve", "restic"])
            .arg(&dir)
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("failed to start rclone serve restic")?;
        let server = Self { port, dir, child };
        wait_port(port, "rclone serve restic")?;
        Ok(server)
    }

    /// Stops the server process (SIGSTOP): connections are accepted by the kernel but no
    /// request is answered, so an export against it stays under way until [`Self::resume`].
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("STOP")
    }

    /// Lets a [`Self::pause`]d server go on (SIGCONT).
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("CONT")
    }

    fn signal(&self, name: &str) -> anyhow::Result<()> {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().context("failed to run kill")?;
        if !status.success() {
            bail!("kill -{name} {} failed: {status}", self.child.id());
        }
        Ok(())
    }

    /// The `RESTIC_REPOSITORY` of repository `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("rest:http://127.0.0.1:{}/{name}/", self.port)
    }

    /// Runs the host's `restic` against repository `name` with `password` (in the
    /// environment, as the export Job gets it) and returns its stdout.
    pub fn restic(&self, name: &str, password: &str, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new("restic")
            .env("RESTIC_REPOSITORY", self.url(name))
            .env("RESTIC_PASSWORD", password)
            .env("RESTIC_CACHE_DIR", self.dir.join(".cache"))
            .args(args)
            .output()
            .context("failed to run restic")?;
        if !output.status.success() {
            bail!("restic {args:?} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `restic snapshots --json` of repository `name`.
    pub fn snapshots(&self, name: &str, password: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let text = self.restic(name, password, &["snapshots", "--json"])?;
        serde_json::from_str(&text).with_context(|| format!("restic snapshots --json printed {text}"))
    }

    /// Whether any file of repository `name` holds `needle` as plain bytes.
    pub fn any_file_contains(&self, name: &str, needle: &[u8]) -> anyhow::Result<bool> {
        fn walk(dir: &Path, needle: &[u8]) -> anyhow::Result<bool> {
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                if path.is_dir() {
                    if walk(&path, needle)? {
                        return Ok(true);
                    }
                } else if std::fs::read(&path)?.windows(needle.len()).any(|w| w == needle) {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        walk(&self.dir.join(name), needle)
    }
}

impl Drop for ResticServer {
    fn drop(&mut self) {
        let _ = self.resume();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
