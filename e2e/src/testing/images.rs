//! Test images for the local cluster's registry, built with buildah (`FROM scratch`, no daemon)
//! in the storage `operator/build-image` uses.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context as _};

/// Runs buildah with its storage where `operator/build-image` keeps it:
/// `${XDG_CACHE_HOME:-~/.cache}/archivist/buildah` (outside the repository).
fn buildah(args: &[&str], dir: &Path) -> anyhow::Result<String> {
    let root = super::cache_dir()?.join("buildah");
    let output = Command::new("buildah")
        .arg("--root")
        .arg(root.join("storage"))
        .arg("--runroot")
        .arg(root.join("run"))
        .args(["--storage-driver", "vfs"])
        .args(args)
        .current_dir(dir)
        .output()
        .context("failed to run buildah (Debian package buildah; operator/build-image installs it)")?;
    if !output.status.success() {
        bail!("buildah {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Builds `containerfile` with the `files` (name in the context, host path) and pushes it as
/// `reference` (plain HTTP); returns the pushed manifest digest.
pub fn build_and_push(reference: &str, containerfile: &str, files: &[(&str, &Path)]) -> anyhow::Result<String> {
    let context = std::env::temp_dir().join(super::unique_name("image-context"));
    let result = build_in(&context, reference, containerfile, files);
    let _ = std::fs::remove_dir_all(&context);
    result
}

fn build_in(context: &Path, reference: &str, containerfile: &str, files: &[(&str, &Path)]) -> anyhow::Result<String> {
    std::fs::create_dir_all(context).with_context(|| format!("failed to create {}", context.display()))?;
    for (name, host) in files {
        std::fs::copy(host, context.join(name)).with_context(|| format!("failed to copy {} into the build context", host.display()))?;
    }
    std::fs::write(context.join("Containerfile"), containerfile)?;
    buildah(&["bud", "--isolation", "chroot", "--format", "oci", "-q", "-t", reference, "-f", "Containerfile", "."], context)?;
    let digest_file = context.join("digest");
    let digest_arg = digest_file.to_string_lossy().into_owned();
    buildah(&["push", "--tls-verify=false", "--digestfile", &digest_arg, reference, &format!("docker://{reference}")], context)?;
    let digest = std::fs::read_to_string(&digest_file).context("buildah push wrote no digest")?;
    Ok(digest.trim().to_string())
}
