//! Installing Archivist as users do: the operator image built and pushed to the local cluster's
//! registry (`operator/build-image`), and the real `helm`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context as _};

use super::operator::repo_dir as repo;

/// `$HELM`, else the newest helm that `charts/test.sh --helm-path` cached in
/// `~/.cache/archivist/helm/<version>/helm`.
pub fn helm_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("HELM") {
        let path = PathBuf::from(path);
        anyhow::ensure!(path.is_file(), "HELM={} does not exist", path.display());
        return Ok(path);
    }
    let cache = super::cache_dir()?.join("helm");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&cache)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("helm"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop().with_context(|| {
        format!("helm not found: set HELM to a helm binary, or fetch one into {} with `charts/test.sh --helm-path`", cache.display())
    })
}

/// Runs helm with `args` against the local cluster (`KUBECONFIG`); its stdout, or its stderr as
/// the error.
pub fn helm(args: &[String]) -> anyhow::Result<String> {
    let output = Command::new(helm_binary()?)
        .args(args)
        .env("KUBECONFIG", super::kubeconfig_path())
        .current_dir(repo())
        .output()
        .context("failed to run helm")?;
    if !output.status.success() {
        bail!("helm {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The local cluster's registry (`host:port`): `$LOCAL_REGISTRY`, else the address
/// `e2e/local-cluster up` wrote to `<state-dir>/registry`.
pub fn local_registry() -> anyhow::Result<String> {
    if let Some(registry) = std::env::var("LOCAL_REGISTRY").ok().filter(|r| !r.is_empty()) {
        return Ok(registry);
    }
    let state = std::env::var_os("LOCAL_CLUSTER_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/local-cluster"));
    let file = state.join("registry");
    let registry = std::fs::read_to_string(&file)
        .with_context(|| format!("no local registry: set LOCAL_REGISTRY or run e2e/local-cluster up (no {})", file.display()))?;
    Ok(registry.trim().to_string())
}

/// An image pushed to the local registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// `host:port/archivist`.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The manifest digest (`sha256:…`).
    pub digest: String,
}

/// Builds the operator image from this checkout and pushes it to `registry` as
/// `archivist:<tag>` (`operator/build-image --push`).
pub fn build_and_push_operator_image(registry: &str, tag: &str) -> anyhow::Result<PushedImage> {
    let repository = format!("{registry}/archivist");
    let reference = format!("{repository}:{tag}");
    let output = Command::new(repo().join("operator/build-image"))
        .args(["--push", "--tag", &reference])
        .current_dir(repo())
        .output()
        .context("failed to run operator/build-image")?;
    if !output.status.success() {
        bail!("operator/build-image --push --tag {reference} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let digest = stdout
        .split_whitespace()
        .filter_map(|w| w.rsplit_once('@').map(|(_, d)| d))
        .find(|d| d.starts_with("sha256:"))
        .with_context(|| format!("operator/build-image printed no digest: {stdout}"))?
        .to_string();
    Ok(PushedImage { repository, tag: tag.to_string(), digest })
}
