//! Pod volumes as host directories: claims resolve to their PV's `hostPath`, emptyDir is a
//! directory in the pod's sandbox, configMap / secret / downwardAPI / projected are
//! materialised as files there; and each container's `volumeMounts` become [`Mount`]s.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, KeyToPath, PersistentVolume, PersistentVolumeClaim, Pod, Secret,
};
use kube::api::Api;
use kube::{Client, ResourceExt as _};

use super::env::{self, ConfigError, Sources};
use super::sandbox::Mount;

/// A volume as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostVolume {
    /// Directory on the host.
    pub path: PathBuf,
    /// The volume source forces read-only mounts (configMap, secret, downwardAPI, projected,
    /// or a claim mounted `readOnly`).
    pub read_only: bool,
}

/// Why a pod's volumes cannot be set up (yet).
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A claim is not Bound yet, or its PV names no `hostPath`.
    #[error("persistentvolumeclaim \"{0}\" is not bound to a hostPath volume yet")]
    ClaimNotReady(String),
    /// A config map / secret / key is missing.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A volume type the simulator does not implement.
    #[error("volume {name}: unsupported volume type")]
    Unsupported {
        /// The volume's name.
        name: String,
    },
    /// A `volumeMount` names a volume the pod does not have, or has a bad subPath.
    #[error("volumeMount {0}: invalid")]
    BadMount(String),
    /// Writing the volume's files failed.
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

/// Names of the config maps and secrets the pod refers to (env, envFrom, volumes).
pub fn referenced_sources(pod: &Pod) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut cms, mut secrets) = (BTreeSet::new(), BTreeSet::new());
    let spec = pod.spec.as_ref();
    let containers = spec.iter().flat_map(|s| s.init_containers.iter().flatten().chain(s.containers.iter()));
    for c in containers {
        for from in c.env_from.iter().flatten() {
            cms.extend(from.config_map_ref.as_ref().map(|r| r.name.clone()));
            secrets.extend(from.secret_ref.as_ref().map(|r| r.name.clone()));
        }
        for var in c.env.iter().flatten().filter_map(|v| v.value_from.as_ref()) {
            cms.extend(var.config_map_key_ref.as_ref().map(|r| r.name.clone()));
            secrets.extend(var.secret_key_ref.as_ref().map(|r| r.name.clone()));
        }
    }
    for v in spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        cms.extend(v.config_map.as_ref().map(|c| c.name.clone()));
        secrets.extend(v.secret.as_ref().and_then(|s| s.secret_name.clone()));
        for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            cms.extend(source.config_map.as_ref().map(|c| c.name.clone()));
            secrets.extend(source.secret.as_ref().map(|s| s.name.clone()));
        }
    }
    (cms, secrets)
}

/// Fetches every config map and secret the pod refers to (missing ones are left out).
pub async fn fetch_sources(client: &Client, pod: &Pod) -> anyhow::Result<Sources> {
    let namespace = pod.namespace().unwrap_or_default();
    let (cm_names, secret_names) = referenced_sources(pod);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let mut sources = Sources::default();
    for name in cm_names {
        if let Some(cm) = cms.get_opt(&name).await.with_context(|| format!("failed to read configmap {namespace}/{name}"))? {
            sources.config_maps.insert(name, cm);
        }
    }
    for name in secret_names {
        if let Some(s) = secrets.get_opt(&name).await.with_context(|| format!("failed to read secret {namespace}/{name}"))? {
            sources.secrets.insert(name, s);
        }
    }
    Ok(sources)
}

/// The host directories of the pod's claims, by claim name; a claim that is not Bound to a
/// PV with `spec.hostPath` yet is an error ([`VolumeError::ClaimNotReady`]).
pub async fn claim_paths(client: &Client, pod: &Pod) -> Result<BTreeMap<String, PathBuf>, VolumeError> {
    let namespace = pod.namespace().unwrap_or_default();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let mut paths = BTreeMap::new();
    let volumes = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
    for claim_name in volumes.filter_map(|v| v.persistent_volume_claim.as_ref()).map(|c| c.claim_name.clone()) {
        let not_ready = || VolumeError::ClaimNotReady(claim_name.clone());
        let claim = claims.get_opt(&claim_name).await.context("failed to read claim")?.ok_or_else(not_ready)?;
        let bound = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        let pv_name = claim.spec.as_ref().and_then(|s| s.volume_name.clone()).filter(|_| bound).ok_or_else(not_ready)?;
        let pv = pvs.get_opt(&pv_name).await.context("failed to read volume")?.ok_or_else(not_ready)?;
        let path = pv.spec.and_then(|s| s.host_path).map(|h| PathBuf::from(h.path)).ok_or_else(not_ready)?;
        std::fs::create_dir_all(&path).with_context(|| format!("failed to create {}", path.display()))?;
        paths.insert(claim_name, path);
    }
    Ok(paths)
}

/// Sets every volume of the pod up under `volumes_dir` and returns them by name.
pub fn materialise(
    pod: &Pod,
    pod_ip: &str,
    volumes_dir: &Path,
    sources: &Sources,
    claims: &BTreeMap<String, PathBuf>,
) -> Result<BTreeMap<String, HostVolume>, VolumeError> {
    let mut out = BTreeMap::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let dir = volumes_dir.join(&v.name);
        let files = |dir: &Path, files: Vec<(String, Vec<u8>, i32)>| -> Result<HostVolume, VolumeError> {
            write_files(dir, &files)?;
            Ok(HostVolume { path: dir.to_path_buf(), read_only: true })
        };
        let volume = if let Some(claim) = &v.persistent_volume_claim {
            let path = claims.get(&claim.claim_name).ok_or_else(|| VolumeError::ClaimNotReady(claim.claim_name.clone()))?;
            HostVolume { path: path.clone(), read_only: claim.read_only == Some(true) }
        } else if v.empty_dir.is_some() {
            std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
            HostVolume { path: dir, read_only: false }
        } else if let Some(host) = &v.host_path {
            HostVolume { path: PathBuf::from(&host.path), read_only: false }
        } else if let Some(cm) = &v.config_map {
            let mode = cm.default_mode.unwrap_or(0o644);
            let entries = match sources.config_map(&cm.name) {
                Some(e) => e,
                None if cm.optional == Some(true) => BTreeMap::new(),
                None => return Err(ConfigError::MissingConfigMap(cm.name.clone()).into()),
            };
            files(&dir, project_keys("ConfigMap", &cm.name, &entries, cm.items.as_deref(), mode)?)?
        } else if let Some(secret) = &v.secret {
            let name = secret.secret_name.clone().unwrap_or_default();
            let mode = secret.default_mode.unwrap_or(0o644);
            let entries = match sources.secret(&name) {
                Some(e) => e,
                None if secret.optional == Some(true) => BTreeMap::new(),
                None => return Err(ConfigError::MissingSecret(name).into()),
            };
            files(&dir, project_keys("Secret", &name, &entries, secret.items.as_deref(), mode)?)?
        } else if let Some(downward) = &v.downward_api {
            let mode = downward.default_mode.unwrap_or(0o644);
            files(&dir, downward_files(pod, pod_ip, downward.items.as_deref().unwrap_or_default(), mode)?)?
        } else if let Some(projected) = &v.projected {
            let mode = projected.default_mode.unwrap_or(0o644);
            let mut all = Vec::new();
            for source in projected.sources.iter().flatten() {
                if let Some(cm) = &source.config_map {
                    match sources.config_map(&cm.name) {
                        Some(e) => all.extend(project_keys("ConfigMap", &cm.name, &e, cm.items.as_deref(), mode)?),
                        None if cm.optional == Some(true) => {}
                        None => return Err(ConfigError::MissingConfigMap(cm.name.clone()).into()),
                    }
                } else if let Some(s) = &source.secret {
                    match sources.secret(&s.name) {
                        Some(e) => all.extend(project_keys("Secret", &s.name, &e, s.items.as_deref(), mode)?),
                        None if s.optional == Some(true) => {}
                        None => return Err(ConfigError::MissingSecret(s.name.clone()).into()),
                    }
                } else if let Some(d) = &source.downward_api {
                    all.extend(downward_files(pod, pod_ip, d.items.as_deref().unwrap_or_default(), mode)?);
                }
                // serviceAccountToken and clusterTrustBundle sources are skipped.
            }
            files(&dir, all)?
        } else {
            return Err(VolumeError::Unsupported { name: v.name.clone() });
        };
        out.insert(v.name.clone(), volume);
    }
    Ok(out)
}

/// `(relative path, content, mode)` for the selected keys (all keys when `items` is `None`).
fn project_keys(
    kind: &'static str,
    name: &str,
    entries: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
) -> Result<Vec<(String, Vec<u8>, i32)>, ConfigError> {
    match items {
        None => Ok(entries.iter().map(|(k, v)| (k.clone(), v.clone(), default_mode)).collect()),
        Some(items) => items
            .iter()
            .map(|item| {
                let value = entries.get(&item.key).ok_or_else(|| ConfigError::MissingKey {
                    kind,
                    name: name.to_string(),
                    key: item.key.clone(),
                })?;
                Ok((item.path.clone(), value.clone(), item.mode.unwrap_or(default_mode)))
            })
            .collect(),
    }
}

/// Files of a downwardAPI volume (fieldRef and resourceFieldRef items).
fn downward_files(
    pod: &Pod,
    pod_ip: &str,
    items: &[DownwardAPIVolumeFile],
    default_mode: i32,
) -> Result<Vec<(String, Vec<u8>, i32)>, ConfigError> {
    let containers = pod.spec.iter().flat_map(|s| s.containers.iter()).collect::<Vec<&Container>>();
    items
        .iter()
        .map(|item| {
            let value = if let Some(field) = &item.field_ref {
                env::field_value(field, pod, pod_ip)?
            } else if let Some(resource) = &item.resource_field_ref {
                let name = resource.container_name.as_deref().unwrap_or_default();
                let container = containers.iter().find(|c| c.name == name).copied().cloned().unwrap_or_default();
                env::resource_value(resource, &container)?
            } else {
                String::new()
            };
            Ok((item.path.clone(), value.into_bytes(), item.mode.unwrap_or(default_mode)))
        })
        .collect()
}

/// Replaces `dir`'s content with `files` (relative paths, no `..`).
fn write_files(dir: &Path, files: &[(String, Vec<u8>, i32)]) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("failed to clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    for (relative, content, mode) in files {
        let path = safe_join(dir, relative).with_context(|| format!("invalid volume file path {relative:?}"))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("failed to create {}", parent.display()))?;
        }
        std::fs::write(&path, content).with_context(|| format!("failed to write {}", path.display()))?;
        let mode = u32::try_from(*mode).unwrap_or(0o644) & 0o7777;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("failed to chmod {}", path.display()))?;
    }
    Ok(())
}

/// `base/relative` when `relative` is a plain relative path (no `..`, not absolute).
fn safe_join(base: &Path, relative: &str) -> Option<PathBuf> {
    let rel = Path::new(relative);
    let plain = rel.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    (plain && !relative.is_empty()).then(|| base.join(rel))
}

/// The container's `volumeMounts` as bind mounts (`subPath`/`subPathExpr` resolved with `env`).
pub fn container_mounts(
    container: &Container,
    volumes: &BTreeMap<String, HostVolume>,
    env: &[(String, String)],
) -> Result<Vec<Mount>, VolumeError> {
    let defined: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    container
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            let volume = volumes.get(&m.name).ok_or_else(|| VolumeError::BadMount(m.name.clone()))?;
            let sub = match (&m.sub_path, &m.sub_path_expr) {
                (Some(p), _) if !p.is_empty() => Some(p.clone()),
                (_, Some(e)) if !e.is_empty() => Some(env::expand(e, &defined)),
                _ => None,
            };
            let host = match sub {
                None => volume.path.clone(),
                Some(sub) => {
                    let host = safe_join(&volume.path, &sub).ok_or_else(|| VolumeError::BadMount(m.name.clone()))?;
                    if !host.exists() {
                        std::fs::create_dir_all(&host).with_context(|| format!("failed to create {}", host.display()))?;
                    }
                    host
                }
            };
            Ok(Mount { host, target: m.mount_path.clone(), read_only: volume.read_only || m.read_only == Some(true) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapVolumeSource, DownwardAPIVolumeSource, EmptyDirVolumeSource, ObjectFieldSelector, PodSpec,
        SecretVolumeSource, Volume, VolumeMount,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::ByteString;

    fn pod() -> Pod {
        let volumes = vec![
            Volume { name: "scratch".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() },
            Volume {
                name: "cfg".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: "settings".into(),
                    items: Some(vec![KeyToPath { key: "a".into(), path: "sub/a.txt".into(), mode: Some(0o600) }]),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "creds".into(),
                secret: Some(SecretVolumeSource { secret_name: Some("creds".into()), default_mode: Some(0o400), ..Default::default() }),
                ..Default::default()
            },
            Volume {
                name: "info".into(),
                downward_api: Some(DownwardAPIVolumeSource {
                    items: Some(vec![DownwardAPIVolumeFile {
                        path: "name".into(),
                        field_ref: Some(ObjectFieldSelector { field_path: "metadata.name".into(), api_version: None }),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        Pod {
            metadata: ObjectMeta { name: Some("p".into()), namespace: Some("n".into()), ..Default::default() },
            spec: Some(PodSpec { volumes: Some(volumes), ..Default::default() }),
            ..Default::default()
        }
    }

    fn sources() -> Sources {
        let mut s = Sources::default();
        s.config_maps.insert(
            "settings".into(),
            ConfigMap { data: Some(BTreeMap::from([("a".into(), "alpha".into())])), ..Default::default() },
        );
        s.secrets.insert(
            "creds".into(),
            Secret { data: Some(BTreeMap::from([("pw".into(), ByteString(b"x".to_vec()))])), ..Default::default() },
        );
        s
    }

    #[test]
    fn materialises_files_with_modes() {
        let dir = std::env::temp_dir().join(format!("volumes-test-{}", std::process::id()));
        let volumes = materialise(&pod(), "127.0.1.2", &dir, &sources(), &BTreeMap::new()).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("cfg/sub/a.txt")).unwrap(), "alpha");
        let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("cfg/sub/a.txt"), 0o600);
        assert_eq!(mode("creds/pw"), 0o400);
        assert_eq!(std::fs::read_to_string(dir.join("info/name")).unwrap(), "p");
        assert!(volumes["creds"].read_only && !volumes["scratch"].read_only);

        let container = Container {
            volume_mounts: Some(vec![
                VolumeMount { name: "scratch".into(), mount_path: "/s".into(), sub_path: Some("x/y".into()), ..Default::default() },
                VolumeMount { name: "cfg".into(), mount_path: "/etc/cfg".into(), ..Default::default() },
            ]),
            ..Default::default()
        };
        let mounts = container_mounts(&container, &volumes, &[]).unwrap();
        assert_eq!(mounts[0].host, dir.join("scratch/x/y"));
        assert!(dir.join("scratch/x/y").is_dir());
        assert!(mounts[1].read_only);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_sources_and_claims_are_reported() {
        let err = materialise(&pod(), "", Path::new("/nonexistent"), &Sources::default(), &BTreeMap::new()).unwrap_err();
        assert!(matches!(err, VolumeError::Config(ConfigError::MissingConfigMap(_))), "{err}");
        let (cms, secrets) = referenced_sources(&pod());
        assert!(cms.contains("settings") && secrets.contains("creds"));
    }

    #[test]
    fn rejects_escaping_paths() {
        assert!(safe_join(Path::new("/a"), "../etc").is_none());
        assert!(safe_join(Path::new("/a"), "/etc").is_none());
        assert_eq!(safe_join(Path::new("/a"), "b/c"), Some(PathBuf::from("/a/b/c")));
    }
}
