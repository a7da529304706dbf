//! `archivist crds`: the CRDs generated from the Rust types, as checked in under `crds/`.

use super::error::CliError;
use crate::api::{ArchiveBackup, BackupPolicy, ClusterRetentionPolicy, RestoreRequest};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Every CRD with the file name it has under `crds/`.
pub fn all() -> Vec<(String, CustomResourceDefinition)> {
    [ArchiveBackup::crd(), BackupPolicy::crd(), ClusterRetentionPolicy::crd(), RestoreRequest::crd()]
        .into_iter()
        .map(portable)
        .map(|crd| (format!("{}.yaml", crd.spec.names.plural), crd))
        .collect()
}

/// Makes a generated CRD acceptable to older API servers: Kubernetes 1.20 rejects an
/// empty-string `default` ("must be of type string: null"), so such defaults are dropped
/// (serde still fills the empty string in when the field is absent).
fn portable(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if map.get("default").is_some_and(|d| d.as_str() == Some("")) {
                    map.remove("default");
                }
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let Ok(mut value) = serde_json::to_value(&crd) else { return crd };
    strip(&mut value);
    serde_json::from_value(value).unwrap_or(crd)
}

/// One CRD as the YAML document stored in its file.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    Ok(format!("---\n{}", serde_yaml::to_string(crd)?))
}

/// Arguments of `archivist crds`.
#[derive(Debug, clap::Args)]
pub struct CrdsArgs {
    /// Write one file per kind into this directory (as `crds/` holds them) instead of printing.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
}

/// Prints every CRD as multi-document YAML, or writes one file per kind with `--output-dir`.
pub fn run(args: &CrdsArgs, out: &mut impl Write) -> Result<ExitCode, CliError> {
    for (file_name, crd) in all() {
        let yaml = to_yaml(&crd)
            .map_err(|e| CliError::Output(std::io::Error::other(e.to_string())))?;
        match &args.output_dir {
            Some(dir) => {
                let path = dir.join(&file_name);
                std::fs::write(&path, yaml).map_err(|e| {
                    CliError::Output(std::io::Error::other(format!("{}: {e}", path.display())))
                })?;
                writeln!(out, "wrote {}", path.display())?;
            }
            None => out.write_all(yaml.as_bytes())?,
        }
    }
    Ok(ExitCode::SUCCESS)
}
