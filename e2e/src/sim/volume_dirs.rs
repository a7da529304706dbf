//! Directories that back the simulated volumes and snapshots, below the cluster's state dir:
//! `<state-dir>/volumes/<pv-name>` and `<state-dir>/snapshots/<content-name>`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// Directory of the PV named `pv_name`.
pub fn volume_dir(state_dir: &Path, pv_name: &str) -> PathBuf {
    state_dir.join("volumes").join(pv_name)
}

/// Directory holding the data of the VolumeSnapshotContent named `content_name`.
pub fn snapshot_dir(state_dir: &Path, content_name: &str) -> PathBuf {
    state_dir.join("snapshots").join(content_name)
}

/// Creates `dst` as a copy of the directory `src` (or empty when `src` is `None`).
///
/// The copy is made beside `dst` and renamed into place, so `dst` either does not exist or is
/// complete; an existing `dst` is left as it is (the operation is idempotent).
pub async fn create_dir_from(src: Option<&Path>, dst: &Path) -> anyhow::Result<()> {
    if tokio::fs::try_exists(dst).await.unwrap_or(false) {
        return Ok(());
    }
    let parent = dst
        .parent()
        .with_context(|| format!("{} has no parent", dst.display()))?;
    tokio::fs::create_dir_all(parent)
        .await
        .with_context(|| format!("failed to create {}", parent.display()))?;
    let mut tmp = dst.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    remove_dir(&tmp).await?;
    match src {
        Some(src) => {
            // `cp -a` keeps modes, owners, times and links, and reflinks where the filesystem can.
            let status = tokio::process::Command::new("cp")
                .arg("-a")
                .arg("--reflink=auto")
                .arg(src)
                .arg(&tmp)
                .status()
                .await
                .context("failed to run cp")?;
            if !status.success() {
                bail!("cp -a {} {} failed: {status}", src.display(), tmp.display());
            }
        }
        None => tokio::fs::create_dir(&tmp)
            .await
            .with_context(|| format!("failed to create {}", tmp.display()))?,
    }
    // Volumes are used by pods running as any user.
    set_mode_777(&tmp).await?;
    tokio::fs::rename(&tmp, dst)
        .await
        .with_context(|| format!("failed to rename {} to {}", tmp.display(), dst.display()))
}

async fn set_mode_777(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
        .await
        .with_context(|| format!("failed to chmod {}", dir.display()))
}

/// Removes the directory `dir` and everything below it; a missing directory is fine.
pub async fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("failed to remove {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn copies_and_is_idempotent() {
        let base = std::env::temp_dir().join(format!("archivist-sim-test-{}", std::process::id()));
        let src = base.join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/a.txt"), "hello").unwrap();
        let dst = base.join("out/dst");
        create_dir_from(Some(&src), &dst).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(dst.join("sub/a.txt")).unwrap(),
            "hello"
        );
        std::fs::write(src.join("sub/a.txt"), "changed").unwrap();
        create_dir_from(Some(&src), &dst).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(dst.join("sub/a.txt")).unwrap(),
            "hello"
        );
        let empty = base.join("out/empty");
        create_dir_from(None, &empty).await.unwrap();
        assert!(empty.is_dir());
        remove_dir(&base).await.unwrap();
        remove_dir(&base).await.unwrap();
        assert!(!base.exists());
    }
}
