//! Reading Archivist's objects and their Events for the cluster commands, with errors that
//! name the object.

use super::cluster::api_error;
use super::error::CliError;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

/// The object `namespace/name` of kind `K`; NotFound is exit 2 naming it.
pub async fn get<K>(client: &Client, namespace: &str, name: &str) -> Result<K, CliError>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    check_name::<K>(namespace, name)?;
    Api::<K>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(|e| api_error(&K::kind(&()), namespace, name, e))
}

/// Every object of kind `K` in `namespace`, or in every namespace when it is `None`.
pub async fn list<K>(client: &Client, namespace: Option<&str>) -> Result<Vec<K>, CliError>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let api = match namespace {
        Some(ns) => Api::<K>::namespaced(client.clone(), ns),
        None => Api::<K>::all(client.clone()),
    };
    let scope = namespace.map_or_else(|| "every namespace".to_string(), |ns| format!("namespace {ns}"));
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .map_err(|e| CliError::Runtime(format!("cannot list {}s in {scope}: {e}", K::kind(&()))))
}

/// The Events about one object (core v1, as the operator's recorder publishes them).
pub async fn events(client: &Client, namespace: &str, kind: &str, name: &str) -> Result<Vec<Event>, CliError> {
    let selector = format!("involvedObject.kind={kind},involvedObject.name={name}");
    Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().fields(&selector))
        .await
        .map(|l| l.items)
        .map_err(|e| CliError::Runtime(format!("cannot list the Events of {kind} {namespace}/{name}: {e}")))
}

/// Refuses a name no object can have before it reaches the API server (exit 2, naming it).
pub fn check_name<K: Resource<DynamicType = ()>>(namespace: &str, name: &str) -> Result<(), CliError> {
    match crate::plan::validate::names::dns1123_subdomain(name) {
        Some(problem) => Err(CliError::Object {
            object: format!("{} {namespace}/{name}", K::kind(&())),
            field: "metadata.name".into(),
            message: problem,
        }),
        None => Ok(()),
    }
}

/// The field manager of objects the command line creates, so `managedFields` says who made
/// them.
pub const FIELD_MANAGER: &str = "archivist-cli";

/// Create options naming [`FIELD_MANAGER`].
pub fn post_params() -> PostParams {
    PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() }
}

/// Drops `metadata.managedFields` before printing, as kubectl does: bookkeeping, not state.
pub fn without_managed_fields<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}
