//! A container's environment: defaults, `envFrom`, `env` (with `valueFrom`), and `$(VAR)`
//! expansion as the real kubelet does it. Pure: config maps and secrets are looked up in
//! [`Sources`], fetched beforehand.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::ResourceExt as _;

use super::downward;
use super::sandbox::DEFAULT_PATH;

/// The config maps and secrets of the pod's namespace that the pod refers to, by name
/// (absent: does not exist).
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// Config maps by name.
    pub config_maps: BTreeMap<String, ConfigMap>,
    /// Secrets by name.
    pub secrets: BTreeMap<String, Secret>,
}

/// Why a container's environment (or a volume built from the same sources) cannot be built;
/// the container waits with reason `CreateContainerConfigError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A referenced config map does not exist.
    #[error("configmap \"{0}\" not found")]
    MissingConfigMap(String),
    /// A referenced secret does not exist.
    #[error("secret \"{0}\" not found")]
    MissingSecret(String),
    /// A referenced key does not exist in an existing object.
    #[error("couldn't find key {key} in {kind} {name}")]
    MissingKey {
        /// `ConfigMap` or `Secret`.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// The missing key.
        key: String,
    },
    /// A `fieldRef`/`resourceFieldRef` path the simulator does not support.
    #[error("unsupported field path {0}")]
    UnsupportedField(String),
}

impl Sources {
    /// The string entries of config map `name` (`None`: it does not exist).
    pub fn config_map(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let cm = self.config_maps.get(name)?;
        let mut entries: BTreeMap<String, Vec<u8>> = cm
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect();
        entries.extend(
            cm.binary_data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.0.clone())),
        );
        Some(entries)
    }

    /// The entries of secret `name` (`None`: it does not exist).
    pub fn secret(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let secret = self.secrets.get(name)?;
        let mut entries: BTreeMap<String, Vec<u8>> = secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        entries.extend(
            secret
                .string_data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone().into_bytes())),
        );
        Some(entries)
    }
}

/// The environment of `container` in `pod`, whose IP is `pod_ip`, in order of definition: the
/// defaults (`PATH`, `HOSTNAME`, `HOME`), then `base` (an image's `ENV`, the in-cluster
/// variables), then the container's `envFrom` and `env`.
pub fn container_env(
    container: &Container,
    pod: &Pod,
    pod_ip: &str,
    sources: &Sources,
    base: &[(String, String)],
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOSTNAME".into(), pod.name_any()),
        ("HOME".into(), "/root".into()),
    ];
    let set = |env: &mut Vec<(String, String)>, key: String, value: String| {
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    };
    for (key, value) in base {
        set(&mut env, key.clone(), value.clone());
    }
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let entries = if let Some(cm) = &from.config_map_ref {
            match sources.config_map(&cm.name) {
                Some(entries) => entries,
                None if cm.optional == Some(true) => BTreeMap::new(),
                None => return Err(ConfigError::MissingConfigMap(cm.name.clone())),
            }
        } else if let Some(secret) = &from.secret_ref {
            match sources.secret(&secret.name) {
                Some(entries) => entries,
                None if secret.optional == Some(true) => BTreeMap::new(),
                None => return Err(ConfigError::MissingSecret(secret.name.clone())),
            }
        } else {
            BTreeMap::new()
        };
        for (key, value) in entries {
            set(
                &mut env,
                format!("{prefix}{key}"),
                String::from_utf8_lossy(&value).into_owned(),
            );
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => {
                let defined: BTreeMap<&str, &str> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                Some(expand(var.value.as_deref().unwrap_or(""), &defined))
            }
            Some(from) => {
                if let Some(field) = &from.field_ref {
                    Some(downward::field_value(field, pod, pod_ip)?)
                } else if let Some(resource) = &from.resource_field_ref {
                    Some(downward::resource_value(resource, container)?)
                } else if let Some(key) = &from.config_map_key_ref {
                    let optional = key.optional == Some(true);
                    lookup(
                        "ConfigMap",
                        &key.name,
                        &key.key,
                        optional,
                        sources.config_map(&key.name),
                    )?
                } else if let Some(key) = &from.secret_key_ref {
                    let optional = key.optional == Some(true);
                    lookup(
                        "Secret",
                        &key.name,
                        &key.key,
                        optional,
                        sources.secret(&key.name),
                    )?
                } else {
                    None
                }
            }
        };
        if let Some(value) = value {
            set(&mut env, var.name.clone(), value);
        }
    }
    Ok(env)
}

/// One key of a config map or secret; `Ok(None)` when it is optional and missing.
fn lookup(
    kind: &'static str,
    name: &str,
    key: &str,
    optional: bool,
    entries: Option<BTreeMap<String, Vec<u8>>>,
) -> Result<Option<String>, ConfigError> {
    match entries {
        None if optional => Ok(None),
        None if kind == "Secret" => Err(ConfigError::MissingSecret(name.to_string())),
        None => Err(ConfigError::MissingConfigMap(name.to_string())),
        Some(entries) => match entries.get(key) {
            Some(value) => Ok(Some(String::from_utf8_lossy(value).into_owned())),
            None if optional => Ok(None),
            None => Err(ConfigError::MissingKey {
                kind,
                name: name.to_string(),
                key: key.to_string(),
            }),
        },
    }
}

/// Expands `$(VAR)` references to variables in `defined`; `$$` is a literal `$`; references
/// to undefined variables stay as written (Kubernetes semantics).
pub fn expand(input: &str, defined: &BTreeMap<&str, &str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match defined.get(name) {
                        Some(value) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectFieldSelector;
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource,
        SecretKeySelector,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::ByteString;

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-0".into()),
                namespace: Some("shop".into()),
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn sources() -> Sources {
        let cm = ConfigMap {
            data: Some(BTreeMap::from([
                ("MODE".into(), "fast".into()),
                ("LEVEL".into(), "3".into()),
            ])),
            ..Default::default()
        };
        let secret = Secret {
            data: Some(BTreeMap::from([(
                "password".into(),
                ByteString(b"s3cret".to_vec()),
            )])),
            ..Default::default()
        };
        Sources {
            config_maps: BTreeMap::from([("settings".into(), cm)]),
            secrets: BTreeMap::from([("creds".into(), secret)]),
        }
    }

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    fn var_from(name: &str, from: EnvVarSource) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(from),
        }
    }

    #[test]
    fn resolves_every_kind_of_variable_in_order() {
        let container = Container {
            env_from: Some(vec![EnvFromSource {
                prefix: Some("CFG_".into()),
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "settings".into(),
                    optional: None,
                }),
                secret_ref: None,
            }]),
            env: Some(vec![
                var_from(
                    "POD",
                    EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "metadata.name".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    },
                ),
                var_from(
                    "IP",
                    EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "status.podIP".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    },
                ),
                var_from(
                    "PASSWORD",
                    EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: "creds".into(),
                            key: "password".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    },
                ),
                var_from(
                    "MODE",
                    EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "settings".into(),
                            key: "MODE".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    },
                ),
                var("URL", "http://$(IP):80/$(POD)/$(NOPE)/$$(POD)"),
            ]),
            ..Default::default()
        };
        let env = container_env(&container, &pod(), "127.0.1.7", &sources(), &[]).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("CFG_MODE"), Some("fast"));
        assert_eq!(get("CFG_LEVEL"), Some("3"));
        assert_eq!(get("POD"), Some("web-0"));
        assert_eq!(get("PASSWORD"), Some("s3cret"));
        assert_eq!(get("MODE"), Some("fast"));
        assert_eq!(get("HOSTNAME"), Some("web-0"));
        assert_eq!(get("URL"), Some("http://127.0.1.7:80/web-0/$(NOPE)/$(POD)"));
    }

    #[test]
    fn missing_sources_are_errors_unless_optional() {
        let missing = |optional| Container {
            env: Some(vec![var_from(
                "X",
                EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: "creds".into(),
                        key: "nope".into(),
                        optional,
                    }),
                    ..Default::default()
                },
            )]),
            ..Default::default()
        };
        let err = container_env(&missing(None), &pod(), "", &sources(), &[]).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::MissingKey { kind: "Secret", .. }
        ));
        let env = container_env(&missing(Some(true)), &pod(), "", &sources(), &[]).unwrap();
        assert!(!env.iter().any(|(k, _)| k == "X"));
        let err = container_env(&missing(None), &pod(), "", &Sources::default(), &[]).unwrap_err();
        assert_eq!(err, ConfigError::MissingSecret("creds".into()));
    }

    #[test]
    fn expansion_edge_cases() {
        let defined = BTreeMap::from([("A", "1")]);
        assert_eq!(expand("$(A)$(A) $ $( $$ end", &defined), "11 $ $( $ end");
    }
}
