//! `archivist crds`: the CRDs generated from the Rust types, as checked in under `crds/`.

use super::error::CliError;
use crate::api::{ArchiveBackup, BackupPolicy, ClusterRetentionPolicy, RestoreRequest};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use std::io::Write;
use std::process::ExitCode;

/// Every CRD with the file name it has under `crds/`.
pub fn all() -> Vec<(String, CustomResourceDefinition)> {
    [ArchiveBackup::crd(), BackupPolicy::crd(), ClusterRetentionPolicy::crd(), RestoreRequest::crd()]
        .into_iter()
        .map(|crd| (format!("{}.yaml", crd.spec.names.plural), crd))
        .collect()
}

/// One CRD as the YAML document stored in its file.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    Ok(format!("---\n{}", serde_yaml::to_string(crd)?))
}

/// Prints every CRD as multi-document YAML.
pub fn run(out: &mut impl Write) -> Result<ExitCode, CliError> {
    for (_, crd) in all() {
        let yaml = to_yaml(&crd)
            .map_err(|e| CliError::Output(std::io::Error::other(e.to_string())))?;
        out.write_all(yaml.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}
