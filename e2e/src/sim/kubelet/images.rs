//! Container images from the local registry: resolved, pulled and unpacked once per digest.
//!
//! An image whose reference starts with the local registry's address (`--registry`, for
//! example `127.0.0.1:5000/archivist:0.1.0`) is pulled with `skopeo` and unpacked with `umoci`
//! into `<state-dir>/images/<digest>/rootfs`; its configuration (entrypoint, cmd, env, user,
//! working directory) is kept beside it as `config.json`. Every other image keeps the
//! simulator's first behaviour: the container runs host programs and the image is only
//! reported (`imageID: host://<image>`).
//!
//! The tag is resolved to a digest on every container start (the registry is on loopback, so
//! this is cheap and a pushed tag is always seen); the unpacking happens once per digest.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use serde::Deserialize;

/// What an image says a container runs, from its OCI configuration (`config` of the image's
/// config blob); the pod's `command`, `args`, `env` and `workingDir` override it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    /// `ENTRYPOINT`.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// `ENV`, as `NAME=value`.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// `USER`: `uid`, `uid:gid` (names are not resolved).
    #[serde(default)]
    pub user: Option<String>,
    /// `WORKDIR`.
    #[serde(default)]
    pub working_dir: Option<String>,
}

impl ImageConfig {
    /// The image's environment as pairs, in order.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .flatten()
            .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect()
    }

    /// The image's user as numeric `(uid, gid)`; a missing group is the uid's.
    pub fn numeric_user(&self) -> Result<Option<(u32, Option<u32>)>, String> {
        let Some(user) = self.user.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, None),
        };
        let uid = uid
            .parse::<u32>()
            .map_err(|_| format!("the image's user {user:?} is not numeric (names are not resolved)"))?;
        let gid = match gid {
            Some(g) => Some(
                g.parse::<u32>()
                    .map_err(|_| format!("the image's group in {user:?} is not numeric"))?,
            ),
            None => None,
        };
        Ok(Some((uid, gid)))
    }
}

/// A pulled, unpacked image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// The reference as the pod names it.
    pub reference: String,
    /// The manifest digest (`sha256:…`).
    pub digest: String,
    /// The unpacked root filesystem (shared: containers copy it, never write to it).
    pub rootfs: PathBuf,
    /// The image's configuration.
    pub config: ImageConfig,
}

impl PulledImage {
    /// `imageID` as a kubelet reports it: `docker-pullable://<repository>@<digest>`.
    pub fn image_id(&self) -> String {
        format!("docker-pullable://{}@{}", repository(&self.reference), self.digest)
    }
}

/// Where a container's programs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// Host programs; the image is only reported.
    Host,
    /// An image of the local registry.
    Pulled(Arc<PulledImage>),
}

impl ImageSource {
    /// `imageID` of the container's status.
    pub fn image_id(&self, image: &str) -> String {
        match self {
            ImageSource::Host => format!("host://{image}"),
            ImageSource::Pulled(pulled) => pulled.image_id(),
        }
    }

    /// The pulled image, if any.
    pub fn pulled(&self) -> Option<&Arc<PulledImage>> {
        match self {
            ImageSource::Host => None,
            ImageSource::Pulled(pulled) => Some(pulled),
        }
    }
}

/// The repository part of a reference: without `@digest` and without the tag.
fn repository(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    // A tag follows the last ':' after the last '/' (a ':' before it is the registry's port).
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].rfind(':') {
        Some(i) => &without_digest[..last_slash + i],
        None => without_digest,
    }
}

/// The local registry and the cache of unpacked images.
#[derive(Debug)]
pub struct Images {
    /// `host:port` of the local registry; `None`: every image runs host programs.
    registry: Option<String>,
    /// `<state-dir>/images`.
    cache: PathBuf,
    /// One unpacking at a time (two pods of one new image unpack it once).
    unpacking: tokio::sync::Mutex<()>,
}

impl Images {
    /// Images of `registry` (if any), unpacked below `cache`.
    pub fn new(registry: Option<String>, cache: PathBuf) -> Self {
        Images { registry: registry.filter(|r| !r.is_empty()), cache, unpacking: tokio::sync::Mutex::default() }
    }

    /// Whether `image` is pulled from the local registry.
    pub fn is_local(&self, image: &str) -> bool {
        self.registry
            .as_deref()
            .is_some_and(|registry| image.strip_prefix(registry).is_some_and(|rest| rest.starts_with('/')))
    }

    /// Where `image` runs from: pulled from the local registry, or host programs. An error
    /// is a failed pull (the pod shows `ErrImagePull`, then `ImagePullBackOff`).
    pub async fn resolve(&self, image: &str) -> anyhow::Result<ImageSource> {
        if !self.is_local(image) {
            return Ok(ImageSource::Host);
        }
        let transport = format!("docker://{image}");
        let inspected = skopeo(&["inspect", "--tls-verify=false", "--no-tags", &transport]).await?;
        #[derive(Deserialize)]
        struct Inspected {
            #[serde(rename = "Digest")]
            digest: String,
        }
        let Inspected { digest } = serde_json::from_slice(&inspected).context("unexpected output of skopeo inspect")?;
        let Some(hex) = digest.strip_prefix("sha256:").filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())) else {
            bail!("unexpected digest {digest:?} for {image}");
        };
        let dir = self.cache.join(hex);
        let pinned = format!("docker://{}@{digest}", repository(image));
        let _one_at_a_time = self.unpacking.lock().await;
        if !dir.join("config.json").is_file() {
            unpack(&pinned, &dir).await.with_context(|| format!("failed to unpack {image} ({digest})"))?;
        }
        let config = read_config(&dir.join("config.json"))?;
        Ok(ImageSource::Pulled(Arc::new(PulledImage { reference: image.to_string(), digest, rootfs: dir.join("rootfs"), config })))
    }
}

/// Copies the image `pinned` (a `docker://repo@digest` reference) into an OCI layout, unpacks
/// it to `dir/rootfs` and writes its configuration to `dir/config.json`, last, so that a
/// `config.json` marks a complete unpacking.
async fn unpack(pinned: &str, dir: &Path) -> anyhow::Result<()> {
    let work = dir.with_extension("partial");
    if work.exists() {
        tokio::fs::remove_dir_all(&work).await.with_context(|| format!("failed to remove {}", work.display()))?;
    }
    tokio::fs::create_dir_all(&work).await.with_context(|| format!("failed to create {}", work.display()))?;
    let layout = work.join("oci");
    let layout_ref = format!("oci:{}:image", layout.display());
    skopeo(&["copy", "--quiet", "--src-tls-verify=false", pinned, &layout_ref]).await?;
    let bundle = work.join("bundle");
    let output = tokio::process::Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:image", layout.display()))
        .arg(&bundle)
        .output()
        .await
        .context("failed to run umoci (Debian package umoci)")?;
    if !output.status.success() {
        bail!("umoci unpack failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let raw = skopeo(&["inspect", "--tls-verify=false", "--config", pinned]).await?;
    #[derive(Deserialize)]
    struct Blob {
        #[serde(default)]
        config: ImageConfig,
    }
    let blob: Blob = serde_json::from_slice(&raw).context("unexpected image configuration")?;
    if dir.exists() {
        tokio::fs::remove_dir_all(dir).await.with_context(|| format!("failed to remove {}", dir.display()))?;
    }
    tokio::fs::create_dir_all(dir).await.with_context(|| format!("failed to create {}", dir.display()))?;
    tokio::fs::rename(bundle.join("rootfs"), dir.join("rootfs")).await.context("failed to move the unpacked rootfs")?;
    let config = serde_json::to_vec(&serde_json::json!({
        "Entrypoint": blob.config.entrypoint,
        "Cmd": blob.config.cmd,
        "Env": blob.config.env,
        "User": blob.config.user,
        "WorkingDir": blob.config.working_dir,
    }))?;
    tokio::fs::write(dir.join("config.json"), config).await.context("failed to write the image's config.json")?;
    tokio::fs::remove_dir_all(&work).await.ok();
    tracing::info!(image = pinned, dir = %dir.display(), "image unpacked");
    Ok(())
}

fn read_config(path: &Path) -> anyhow::Result<ImageConfig> {
    let raw = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    serde_json::from_slice(&raw).with_context(|| format!("invalid {}", path.display()))
}

/// Runs `skopeo ARGS`; its stdout, or its stderr as the error (a missing image or tag reads
/// as the registry says it: "manifest unknown", "name unknown").
async fn skopeo(args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let output = tokio::process::Command::new("skopeo")
        .args(args)
        .output()
        .await
        .context("failed to run skopeo (Debian package skopeo)")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr.lines().filter(|l| !l.trim().is_empty()).last().unwrap_or("no output");
        bail!("{line}");
    }
    Ok(output.stdout)
}

/// The process of a container from an image, as Kubernetes combines the image and the spec:
/// `command` replaces the entrypoint (and drops the image's cmd), `args` replace the cmd.
pub fn image_argv(config: &ImageConfig, command: Option<&[String]>, args: Option<&[String]>) -> Vec<String> {
    let entrypoint: Vec<String> = match command {
        Some(command) if !command.is_empty() => command.to_vec(),
        _ => config.entrypoint.clone().unwrap_or_default(),
    };
    let command_given = command.is_some_and(|c| !c.is_empty());
    let rest: Vec<String> = match args {
        Some(args) if !args.is_empty() => args.to_vec(),
        _ if command_given => Vec::new(),
        _ => config.cmd.clone().unwrap_or_default(),
    };
    entrypoint.into_iter().chain(rest).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_spec_overrides_the_image_as_kubernetes_does() {
        let config = ImageConfig { entrypoint: Some(s(&["/archivist"])), cmd: Some(s(&["run"])), ..ImageConfig::default() };
        let cases: &[(Option<&[&str]>, Option<&[&str]>, &[&str])] = &[
            (None, None, &["/archivist", "run"]),
            (None, Some(&["version"]), &["/archivist", "version"]),
            (Some(&["/bin/other"]), None, &["/bin/other"]),
            (Some(&["/bin/other"]), Some(&["x"]), &["/bin/other", "x"]),
            (Some(&[]), None, &["/archivist", "run"]),
        ];
        for (command, args, want) in cases {
            let command = command.map(s);
            let args = args.map(s);
            assert_eq!(image_argv(&config, command.as_deref(), args.as_deref()), s(want), "command {command:?} args {args:?}");
        }
    }

    #[test]
    fn repositories_lose_tag_and_digest_but_keep_the_port() {
        for (reference, want) in [
            ("127.0.0.1:5000/archivist:0.1.0", "127.0.0.1:5000/archivist"),
            ("127.0.0.1:5000/archivist", "127.0.0.1:5000/archivist"),
            ("127.0.0.1:5000/a/b@sha256:00", "127.0.0.1:5000/a/b"),
            ("127.0.0.1:5000/a/b:1@sha256:00", "127.0.0.1:5000/a/b"),
        ] {
            assert_eq!(repository(reference), want, "{reference}");
        }
    }

    #[test]
    fn only_the_local_registry_is_pulled() {
        let images = Images::new(Some("127.0.0.1:5000".into()), PathBuf::from("/nonexistent"));
        for (image, local) in [
            ("127.0.0.1:5000/archivist:1", true),
            ("127.0.0.1:50000/archivist:1", false),
            ("127.0.0.1:5000", false),
            ("busybox", false),
            ("ghcr.io/archivist-dev/archivist:1", false),
        ] {
            assert_eq!(images.is_local(image), local, "{image}");
        }
        assert!(!Images::new(None, PathBuf::new()).is_local("127.0.0.1:5000/x:1"));
    }

    #[test]
    fn users_are_numeric() {
        let user = |u: &str| ImageConfig { user: Some(u.into()), ..ImageConfig::default() }.numeric_user();
        assert_eq!(user("65532:65532"), Ok(Some((65532, Some(65532)))));
        assert_eq!(user("1000"), Ok(Some((1000, None))));
        assert_eq!(user(""), Ok(None));
        assert!(user("nonroot").is_err());
        assert!(user("1:staff").is_err());
    }
}
