//! A container's sandbox: a bubblewrap invocation with the host's `/usr` and `/etc`, a
//! per-container writable root directory, the pod's volumes at their mount paths, the
//! container's environment and working directory.
//!
//! Every process (container or exec) starts in its own process group and its own PID
//! namespace: a signal to the group's non-bwrap members asks the container to stop, and
//! SIGKILL to the group ends everything in it. bwrap gets `PR_SET_PDEATHSIG` and
//! `--die-with-parent`, so all pod processes die with the simulator.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use anyhow::Context as _;

use super::images::PulledImage;

/// The default `PATH` of a container whose spec does not set one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One bind mount into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Directory or file on the host.
    pub host: PathBuf,
    /// Absolute path inside the sandbox.
    pub target: String,
    /// Bind read-only.
    pub read_only: bool,
}

/// Everything needed to start a process "inside" a container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sandbox {
    /// The container's own writable root directory on the host.
    pub rootfs: PathBuf,
    /// Volume mounts, in the order they are applied.
    pub mounts: Vec<Mount>,
    /// The process environment (the only variables the process sees).
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox.
    pub working_dir: String,
    /// The image the container runs from: its root is a copy of the image's rootfs, with no
    /// host directory in it. `None`: host programs (the host's `/usr` and `/etc`).
    pub image: Option<Arc<PulledImage>>,
    /// The user and group the process runs as (in a user namespace that maps them to the
    /// simulator's own user); `None`: root.
    pub user: Option<(u32, u32)>,
    /// `readOnlyRootFilesystem`: the root is remounted read-only once the volumes are mounted.
    pub read_only_root: bool,
}

impl Sandbox {
    /// The bubblewrap arguments (without the trailing `--` and command).
    pub fn bwrap_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |items: &[&dyn AsRef<std::ffi::OsStr>]| {
            args.extend(items.iter().map(|i| i.as_ref().to_os_string()));
        };
        push(&[&"--bind", &self.rootfs, &"/"]);
        if self.image.is_some() {
            // The image's own /usr and /etc, copied into the root.
        } else if self.mounts.iter().any(|m| m.target.starts_with("/etc/")) {
            push(&[&"--ro-bind", &"/usr", &"/usr"]);
            // bwrap cannot create mount points inside a read-only /etc: bind its entries one
            // by one into the container's own (writable) /etc instead.
            for entry in host_entries("/etc") {
                push(&[&"--ro-bind-try", &entry, &entry]);
            }
        } else {
            push(&[&"--ro-bind", &"/usr", &"/usr"]);
            push(&[&"--ro-bind", &"/etc", &"/etc"]);
        }
        push(&[&"--proc", &"/proc", &"--dev", &"/dev"]);
        push(&[&"--unshare-pid", &"--die-with-parent"]);
        if let Some((uid, gid)) = self.user {
            push(&[&"--unshare-user", &"--uid", &uid.to_string(), &"--gid", &gid.to_string()]);
        }
        let mut mounts: Vec<&Mount> = self.mounts.iter().collect();
        // Parents before children, whatever order the spec lists them in.
        mounts.sort_by_key(|m| m.target.trim_end_matches('/').matches('/').count());
        for mount in mounts {
            let flag = if mount.read_only {
                "--ro-bind"
            } else {
                "--bind"
            };
            push(&[&flag, &mount.host, &mount.target]);
        }
        push(&[&"--dir", &self.working_dir, &"--chdir", &self.working_dir]);
        if self.read_only_root {
            push(&[&"--remount-ro", &"/"]);
        }
        args
    }

    /// Creates the root directory: for an image, a copy of its rootfs (once: a restarted
    /// container keeps what it wrote, as a container's writable layer does) and the mount
    /// points bubblewrap needs; for host programs, a skeleton (merged-/usr symlinks, `/tmp`,
    /// `/root`).
    pub fn prepare_rootfs(&self) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let root = &self.rootfs;
        if let Some(image) = &self.image {
            return copy_image_rootfs(&image.rootfs, root);
        }
        for dir in ["tmp", "root", "usr", "etc", "proc", "dev", "var/tmp", "run"] {
            std::fs::create_dir_all(root.join(dir))
                .with_context(|| format!("failed to create {}", root.join(dir).display()))?;
        }
        for sticky in ["tmp", "var/tmp"] {
            std::fs::set_permissions(root.join(sticky), std::fs::Permissions::from_mode(0o1777))
                .with_context(|| format!("failed to chmod {}", root.join(sticky).display()))?;
        }
        for link in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
            let host = Path::new("/").join(link);
            let Ok(target) = std::fs::read_link(&host) else {
                continue;
            };
            let inside = root.join(link);
            if inside.symlink_metadata().is_err() {
                std::os::unix::fs::symlink(&target, &inside)
                    .with_context(|| format!("failed to link {}", inside.display()))?;
            }
        }
        Ok(())
    }

    /// A command that runs `argv` inside the sandbox, in a new process group; stdio is null
    /// until the caller sets it.
    pub fn command(&self, argv: &[String]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("bwrap");
        command.args(self.bwrap_args()).arg("--").args(argv);
        self.finish(command)
    }

    /// A command that runs `argv` inside the running sandbox whose PID namespace init has
    /// host pid `init` (nsenter into its mount and PID namespaces and root), with this
    /// sandbox's environment and working directory, in a new process group.
    pub fn enter_command(&self, init: u32, argv: &[String]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("nsenter");
        command
            .arg(format!("--target={init}"))
            .args([
                "--mount",
                "--pid",
                "--root",
                "--",
                "sh",
                "-c",
                r#"cd -- "$1" && shift && exec "$@""#,
                "sh",
            ])
            .arg(&self.working_dir)
            .args(argv);
        self.finish(command)
    }

    /// Environment, stdio, process group and parent-death signal of every sandbox command.
    fn finish(&self, mut command: tokio::process::Command) -> tokio::process::Command {
        command
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command
    }
}

/// Copies an image's rootfs to a container's root directory unless it was copied before (the
/// marker `<root>.copied`), and makes the mount points `/proc`, `/dev` and `/tmp`.
fn copy_image_rootfs(image: &Path, root: &Path) -> anyhow::Result<()> {
    let marker = root.with_extension("copied");
    if !marker.exists() {
        if root.exists() {
            std::fs::remove_dir_all(root).with_context(|| format!("failed to remove {}", root.display()))?;
        }
        std::fs::create_dir_all(root).with_context(|| format!("failed to create {}", root.display()))?;
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(image.join("."))
            .arg(root)
            .status()
            .context("failed to run cp")?;
        anyhow::ensure!(status.success(), "copying the image's rootfs {} failed", image.display());
        std::fs::write(&marker, b"").with_context(|| format!("failed to write {}", marker.display()))?;
    }
    for dir in ["proc", "dev", "tmp"] {
        std::fs::create_dir_all(root.join(dir)).with_context(|| format!("failed to create {}", root.join(dir).display()))?;
    }
    Ok(())
}

/// The absolute paths of the entries of directory `dir` on the host, sorted.
fn host_entries(dir: &str) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries
}

/// Sends `signal` to every process of group `pgid` except bubblewrap's own (the sandbox
/// monitor and the PID namespace's init), so the container's processes may stop gracefully.
/// Returns how many processes were signalled.
pub fn signal_container(pgid: u32, signal: i32) -> usize {
    if pgid == 0 {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut signalled = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((comm, _, pgrp)) = parse_stat(&stat) else {
            continue;
        };
        if pgrp == pgid && comm != "bwrap" {
            // SAFETY: kill(2) with a pid read from /proc; at worst the process is gone (ESRCH).
            if unsafe { libc::kill(pid, signal) } == 0 {
                signalled += 1;
            }
        }
    }
    signalled
}

/// Sends SIGKILL to the whole process group `pgid` (bubblewrap included).
pub fn kill_group(pgid: u32) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        // kill(0) or kill(-1) would hit our own group or every process.
        return;
    }
    // SAFETY: kill(2) on a process group we created; ESRCH when it is already gone.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// The host pid of the PID namespace's init (bubblewrap's second process) of the sandbox
/// whose process group is `pgid`: entering its namespaces enters the container.
pub fn namespace_init(pgid: u32) -> Option<u32> {
    if pgid == 0 {
        return None;
    }
    let entries = std::fs::read_dir("/proc").ok()?;
    entries.flatten().find_map(|entry| {
        let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        let (comm, ppid, pgrp) = parse_stat(&stat)?;
        (comm == "bwrap" && ppid == pgid && pgrp == pgid).then_some(pid)
    })
}

/// `(comm, ppid, pgrp)` from the text of `/proc/<pid>/stat`.
fn parse_stat(stat: &str) -> Option<(&str, u32, u32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some((comm, ppid, pgrp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(root: &Path) -> Sandbox {
        Sandbox {
            rootfs: root.join("rootfs"),
            mounts: vec![
                Mount {
                    host: root.join("b"),
                    target: "/data/b".into(),
                    read_only: true,
                },
                Mount {
                    host: root.join("a"),
                    target: "/data".into(),
                    read_only: false,
                },
            ],
            env: vec![
                ("PATH".into(), DEFAULT_PATH.into()),
                ("GREETING".into(), "hi there".into()),
            ],
            working_dir: "/work".into(),
            ..Sandbox::default()
        }
    }

    #[test]
    fn mounts_parents_before_children() {
        let args: Vec<String> = sandbox(Path::new("/s"))
            .bwrap_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let data = args.iter().position(|a| a == "/data").unwrap();
        let data_b = args.iter().position(|a| a == "/data/b").unwrap();
        assert!(data < data_b);
        assert_eq!(args[data_b - 2], "--ro-bind");
        assert_eq!(args[data - 2], "--bind");
        assert_eq!(&args[..3], &["--bind", "/s/rootfs", "/"]);
    }

    #[test]
    fn mounts_under_etc_bind_its_entries_one_by_one() {
        let mut sandbox = sandbox(Path::new("/s"));
        sandbox.mounts.push(Mount {
            host: "/s/cfg".into(),
            target: "/etc/app".into(),
            read_only: true,
        });
        let args: Vec<String> = sandbox
            .bwrap_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(!args.windows(2).any(|w| w[0] == "/etc" && w[1] == "/etc"));
        assert!(args.iter().any(|a| a == "/etc/passwd"));
        let passwd = args.iter().position(|a| a == "/etc/passwd").unwrap();
        let app = args.iter().position(|a| a == "/etc/app").unwrap();
        assert!(passwd < app);
    }

    #[test]
    fn parses_proc_stat() {
        assert_eq!(
            parse_stat("123 (my (odd) cmd) S 1 77 77 0"),
            Some(("my (odd) cmd", 1, 77))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[tokio::test]
    async fn runs_a_command_inside_bubblewrap() {
        require("bwrap", "bubblewrap");
        let dir = std::env::temp_dir().join(format!("sandbox-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::create_dir_all(dir.join("b")).unwrap();
        std::fs::write(dir.join("a/file"), "from the host").unwrap();
        let sandbox = sandbox(&dir);
        sandbox.prepare_rootfs().unwrap();
        sandbox.prepare_rootfs().unwrap(); // idempotent
        let script = "cat /data/file; echo \" $GREETING $(pwd)\"; touch /data/b/x 2>/dev/null || echo ro; exit 3";
        let mut command = sandbox.command(&["sh".into(), "-c".into(), script.into()]);
        command.stdout(Stdio::piped());
        let output = command.output().await.unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "from the host hi there /work\nro\n"
        );
        assert_eq!(output.status.code(), Some(3));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn enters_a_running_sandbox() {
        require("bwrap", "bubblewrap");
        require("nsenter", "util-linux");
        let dir = std::env::temp_dir().join(format!("sandbox-enter-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::create_dir_all(dir.join("b")).unwrap();
        let sandbox = sandbox(&dir);
        sandbox.prepare_rootfs().unwrap();
        let mut container = sandbox.command(&[
            "sh".into(),
            "-c".into(),
            "echo x > /tmp/mine; sleep 30".into(),
        ]);
        let child = container.spawn().unwrap();
        let pgid = child.id().unwrap();
        let mut init = None;
        for _ in 0..50 {
            init = namespace_init(pgid);
            if init.is_some() && dir.join("rootfs/tmp/mine").exists() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let script = "echo $GREETING $(pwd) $(cat /tmp/mine); ps -e -o comm= | grep -c sleep";
        let mut command =
            sandbox.enter_command(init.unwrap(), &["sh".into(), "-c".into(), script.into()]);
        command.stdout(Stdio::piped());
        let output = command.output().await.unwrap();
        kill_group(pgid);
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "hi there /work x\n1\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Fails the test, loudly, when `program` is missing: the simulated kubelet runs every
    /// container with it, so a test that skipped would hide a broken machine (`e2e/test-all`
    /// installs `package` before `cargo test --workspace`).
    fn require(program: &str, package: &str) {
        assert!(
            which(program).is_some(),
            "{program} is not installed (Debian package {package}; e2e/test-all installs it): the sandbox cannot be tested"
        );
    }

    fn which(program: &str) -> Option<PathBuf> {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(program))
                .find(|p| p.exists())
        })
    }
}
