//! Adding and removing one finalizer with a resourceVersion precondition, so a stale read
//! can neither drop another controller's finalizer nor re-add one that was just removed.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// The finalizers of `object` with `finalizer` added (if missing) or removed.
pub fn with(object: &impl ResourceExt, finalizer: &str, present: bool) -> Vec<String> {
    let mut all: Vec<String> = object.finalizers().iter().filter(|f| f.as_str() != finalizer).cloned().collect();
    if present {
        all.push(finalizer.to_string());
    }
    all
}

/// Sets (`present`) or removes `finalizer` on `object`, failing with a 409 conflict when the
/// object changed since it was read.
pub async fn set<K>(api: &Api<K>, object: &K, finalizer: &str, present: bool) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": object.resource_version(),
            "finalizers": with(object, finalizer, present),
        }
    });
    api.patch(&object.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn adds_once_and_removes_only_its_own() {
        let mut cm = ConfigMap::default();
        cm.metadata.finalizers = Some(vec!["other.io/keep".into()]);
        assert_eq!(with(&cm, "archivist.dev/release", true), vec!["other.io/keep", "archivist.dev/release"]);
        cm.metadata.finalizers = Some(vec!["archivist.dev/release".into(), "other.io/keep".into()]);
        assert_eq!(with(&cm, "archivist.dev/release", true), vec!["other.io/keep", "archivist.dev/release"]);
        assert_eq!(with(&cm, "archivist.dev/release", false), vec!["other.io/keep"]);
    }
}
