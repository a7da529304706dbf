//! Files of configMap, secret, downwardAPI and projected volumes, written into the pod's
//! sandbox directory.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Container, DownwardAPIVolumeFile, KeyToPath, Pod};

use super::downward;
use super::env::ConfigError;

/// `(relative path, content, mode)` for the selected keys (all keys when `items` is `None`).
pub fn project_keys(
    kind: &'static str,
    name: &str,
    entries: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
) -> Result<Vec<(String, Vec<u8>, i32)>, ConfigError> {
    match items {
        None => Ok(entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), default_mode))
            .collect()),
        Some(items) => items
            .iter()
            .map(|item| {
                let value = entries
                    .get(&item.key)
                    .ok_or_else(|| ConfigError::MissingKey {
                        kind,
                        name: name.to_string(),
                        key: item.key.clone(),
                    })?;
                Ok((
                    item.path.clone(),
                    value.clone(),
                    item.mode.unwrap_or(default_mode),
                ))
            })
            .collect(),
    }
}

/// Files of a downwardAPI volume (fieldRef and resourceFieldRef items).
pub fn downward_files(
    pod: &Pod,
    pod_ip: &str,
    items: &[DownwardAPIVolumeFile],
    default_mode: i32,
) -> Result<Vec<(String, Vec<u8>, i32)>, ConfigError> {
    let containers = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .collect::<Vec<&Container>>();
    items
        .iter()
        .map(|item| {
            let value = if let Some(field) = &item.field_ref {
                downward::field_value(field, pod, pod_ip)?
            } else if let Some(resource) = &item.resource_field_ref {
                let name = resource.container_name.as_deref().unwrap_or_default();
                let container = containers
                    .iter()
                    .find(|c| c.name == name)
                    .copied()
                    .cloned()
                    .unwrap_or_default();
                downward::resource_value(resource, &container)?
            } else {
                String::new()
            };
            Ok((
                item.path.clone(),
                value.into_bytes(),
                item.mode.unwrap_or(default_mode),
            ))
        })
        .collect()
}

/// Replaces `dir`'s content with `files` (relative paths, no `..`).
pub fn write_files(dir: &Path, files: &[(String, Vec<u8>, i32)]) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("failed to clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    for (relative, content, mode) in files {
        let path = safe_join(dir, relative)
            .with_context(|| format!("invalid volume file path {relative:?}"))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create {}", parent.display()))?;
        }
        std::fs::write(&path, content)
            .with_context(|| format!("failed to write {}", path.display()))?;
        let mode = u32::try_from(*mode).unwrap_or(0o644) & 0o7777;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("failed to chmod {}", path.display()))?;
    }
    Ok(())
}

/// `base/relative` when `relative` is a plain relative path (no `..`, not absolute).
pub fn safe_join(base: &Path, relative: &str) -> Option<PathBuf> {
    let rel = Path::new(relative);
    let plain = rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    (plain && !relative.is_empty()).then(|| base.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_escaping_paths() {
        assert!(safe_join(Path::new("/a"), "../etc").is_none());
        assert!(safe_join(Path::new("/a"), "/etc").is_none());
        assert_eq!(
            safe_join(Path::new("/a"), "b/c"),
            Some(PathBuf::from("/a/b/c"))
        );
    }
}
