//! Pod volumes as host directories: claims resolve to their PV's `hostPath`, emptyDir is a
//! directory in the pod's sandbox, configMap / secret / downwardAPI / projected are
//! materialised as files there; and each container's `volumeMounts` become [`Mount`]s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Container, Pod};

use super::env::{self, ConfigError, Sources};
use super::sandbox::Mount;
use super::volume_files::{downward_files, project_keys, safe_join, write_files};

/// A volume as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostVolume {
    /// Directory on the host.
    pub path: PathBuf,
    /// The volume source forces read-only mounts (configMap, secret, downwardAPI, projected,
    /// a claim mounted `readOnly`, or one whose PV is `ReadOnlyMany` only).
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

/// Sets every volume of the pod up under `volumes_dir` and returns them by name.
pub fn materialise(
    pod: &Pod,
    pod_ip: &str,
    volumes_dir: &Path,
    sources: &Sources,
    claims: &BTreeMap<String, HostVolume>,
) -> Result<BTreeMap<String, HostVolume>, VolumeError> {
    let mut out = BTreeMap::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let dir = volumes_dir.join(&v.name);
        let files =
            |dir: &Path, files: Vec<(String, Vec<u8>, i32)>| -> Result<HostVolume, VolumeError> {
                write_files(dir, &files)?;
                Ok(HostVolume {
                    path: dir.to_path_buf(),
                    read_only: true,
                })
            };
        let volume = if let Some(claim) = &v.persistent_volume_claim {
            let bound = claims
                .get(&claim.claim_name)
                .ok_or_else(|| VolumeError::ClaimNotReady(claim.claim_name.clone()))?;
            HostVolume {
                path: bound.path.clone(),
                read_only: bound.read_only || claim.read_only == Some(true),
            }
        } else if v.empty_dir.is_some() {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
            HostVolume {
                path: dir,
                read_only: false,
            }
        } else if let Some(host) = &v.host_path {
            HostVolume {
                path: PathBuf::from(&host.path),
                read_only: false,
            }
        } else if let Some(cm) = &v.config_map {
            let mode = cm.default_mode.unwrap_or(0o644);
            let entries = match sources.config_map(&cm.name) {
                Some(e) => e,
                None if cm.optional == Some(true) => BTreeMap::new(),
                None => return Err(ConfigError::MissingConfigMap(cm.name.clone()).into()),
            };
            files(
                &dir,
                project_keys("ConfigMap", &cm.name, &entries, cm.items.as_deref(), mode)?,
            )?
        } else if let Some(secret) = &v.secret {
            let name = secret.secret_name.clone().unwrap_or_default();
            let mode = secret.default_mode.unwrap_or(0o644);
            let entries = match sources.secret(&name) {
                Some(e) => e,
                None if secret.optional == Some(true) => BTreeMap::new(),
                None => return Err(ConfigError::MissingSecret(name).into()),
            };
            files(
                &dir,
                project_keys("Secret", &name, &entries, secret.items.as_deref(), mode)?,
            )?
        } else if let Some(downward) = &v.downward_api {
            let mode = downward.default_mode.unwrap_or(0o644);
            files(
                &dir,
                downward_files(
                    pod,
                    pod_ip,
                    downward.items.as_deref().unwrap_or_default(),
                    mode,
                )?,
            )?
        } else if let Some(projected) = &v.projected {
            let mode = projected.default_mode.unwrap_or(0o644);
            let mut all = Vec::new();
            for source in projected.sources.iter().flatten() {
                if let Some(cm) = &source.config_map {
                    match sources.config_map(&cm.name) {
                        Some(e) => all.extend(project_keys(
                            "ConfigMap",
                            &cm.name,
                            &e,
                            cm.items.as_deref(),
                            mode,
                        )?),
                        None if cm.optional == Some(true) => {}
                        None => return Err(ConfigError::MissingConfigMap(cm.name.clone()).into()),
                    }
                } else if let Some(s) = &source.secret {
                    match sources.secret(&s.name) {
                        Some(e) => all.extend(project_keys(
                            "Secret",
                            &s.name,
                            &e,
                            s.items.as_deref(),
                            mode,
                        )?),
                        None if s.optional == Some(true) => {}
                        None => return Err(ConfigError::MissingSecret(s.name.clone()).into()),
                    }
                } else if let Some(d) = &source.downward_api {
                    all.extend(downward_files(
                        pod,
                        pod_ip,
                        d.items.as_deref().unwrap_or_default(),
                        mode,
                    )?);
                }
                // serviceAccountToken and clusterTrustBundle sources are skipped.
            }
            files(&dir, all)?
        } else {
            return Err(VolumeError::Unsupported {
                name: v.name.clone(),
            });
        };
        out.insert(v.name.clone(), volume);
    }
    Ok(out)
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
            let volume = volumes
                .get(&m.name)
                .ok_or_else(|| VolumeError::BadMount(m.name.clone()))?;
            let sub = match (&m.sub_path, &m.sub_path_expr) {
                (Some(p), _) if !p.is_empty() => Some(p.clone()),
                (_, Some(e)) if !e.is_empty() => Some(env::expand(e, &defined)),
                _ => None,
            };
            let host = match sub {
                None => volume.path.clone(),
                Some(sub) => {
                    let host = safe_join(&volume.path, &sub)
                        .ok_or_else(|| VolumeError::BadMount(m.name.clone()))?;
                    if !host.exists() {
                        std::fs::create_dir_all(&host)
                            .with_context(|| format!("failed to create {}", host.display()))?;
                    }
                    host
                }
            };
            Ok(Mount {
                host,
                target: m.mount_path.clone(),
                read_only: volume.read_only || m.read_only == Some(true),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, DownwardAPIVolumeFile, KeyToPath, Secret};
    use k8s_openapi::api::core::v1::{
        ConfigMapVolumeSource, DownwardAPIVolumeSource, EmptyDirVolumeSource, ObjectFieldSelector,
        PodSpec, SecretVolumeSource, Volume, VolumeMount,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::ByteString;
    use std::os::unix::fs::PermissionsExt as _;

    fn pod() -> Pod {
        let volumes = vec![
            Volume {
                name: "scratch".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            },
            Volume {
                name: "cfg".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: "settings".into(),
                    items: Some(vec![KeyToPath {
                        key: "a".into(),
                        path: "sub/a.txt".into(),
                        mode: Some(0o600),
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "creds".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some("creds".into()),
                    default_mode: Some(0o400),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "info".into(),
                downward_api: Some(DownwardAPIVolumeSource {
                    items: Some(vec![DownwardAPIVolumeFile {
                        path: "name".into(),
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "metadata.name".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("n".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                volumes: Some(volumes),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn sources() -> Sources {
        let mut s = Sources::default();
        s.config_maps.insert(
            "settings".into(),
            ConfigMap {
                data: Some(BTreeMap::from([("a".into(), "alpha".into())])),
                ..Default::default()
            },
        );
        s.secrets.insert(
            "creds".into(),
            Secret {
                data: Some(BTreeMap::from([("pw".into(), ByteString(b"x".to_vec()))])),
                ..Default::default()
            },
        );
        s
    }

    #[test]
    fn materialises_files_with_modes() {
        let dir = std::env::temp_dir().join(format!("volumes-test-{}", std::process::id()));
        let volumes = materialise(&pod(), "127.0.1.2", &dir, &sources(), &BTreeMap::new()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("cfg/sub/a.txt")).unwrap(),
            "alpha"
        );
        let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("cfg/sub/a.txt"), 0o600);
        assert_eq!(mode("creds/pw"), 0o400);
        assert_eq!(std::fs::read_to_string(dir.join("info/name")).unwrap(), "p");
        assert!(volumes["creds"].read_only && !volumes["scratch"].read_only);

        let container = Container {
            volume_mounts: Some(vec![
                VolumeMount {
                    name: "scratch".into(),
                    mount_path: "/s".into(),
                    sub_path: Some("x/y".into()),
                    ..Default::default()
                },
                VolumeMount {
                    name: "cfg".into(),
                    mount_path: "/etc/cfg".into(),
                    ..Default::default()
                },
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
        let err = materialise(
            &pod(),
            "",
            Path::new("/nonexistent"),
            &Sources::default(),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(
            matches!(err, VolumeError::Config(ConfigError::MissingConfigMap(_))),
            "{err}"
        );
        let (cms, secrets) = super::super::volume_sources::referenced_sources(&pod());
        assert!(cms.contains("settings") && secrets.contains("creds"));
    }
}
