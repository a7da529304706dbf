//! Reading manifests for the offline subcommands, with errors that name the file and the field.
//!
//! A file may hold one document, several YAML documents (`---`), or a `List` such as
//! `kubectl get archivebackups -o yaml` prints; [`read_objects`] flattens all of them.

use super::error::CliError;
use kube::Resource;
use serde::de::DeserializeOwned;
use std::path::Path;

/// One document of a file, with where it came from (for error messages).
#[derive(Debug, Clone)]
pub struct Document {
    /// The document's position, as a prefix for field paths: `""` for a lone document,
    /// `"document 2: "` for the second of several, `"items[3]."` for an entry of a List.
    pub location: String,
    /// The parsed YAML.
    pub value: serde_yaml::Value,
}

/// Reads a file and splits it into its documents, expanding `List`s into their `items`.
/// Empty documents are skipped.
pub fn read_documents(path: &Path) -> Result<Vec<Document>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| CliError::Read { path: path.to_path_buf(), source })?;
    let mut raw = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let value: serde_yaml::Value = serde::Deserialize::deserialize(de).map_err(|e| CliError::Input {
            path: path.to_path_buf(),
            field: String::new(),
            message: format!("document {} is not valid YAML: {e}", i + 1),
        })?;
        if !value.is_null() {
            raw.push(value);
        }
    }
    let several = raw.len() > 1;
    let mut docs = Vec::new();
    for (i, value) in raw.into_iter().enumerate() {
        let prefix = if several { format!("document {}: ", i + 1) } else { String::new() };
        let is_list = value
            .get("kind")
            .and_then(|k| k.as_str())
            .is_some_and(|k| k == "List" || k.ends_with("List"));
        if is_list {
            let items = match value.get("items") {
                Some(serde_yaml::Value::Sequence(items)) => items.clone(),
                Some(serde_yaml::Value::Null) | None => Vec::new(),
                Some(_) => {
                    return Err(CliError::Input {
                        path: path.to_path_buf(),
                        field: format!("{prefix}items"),
                        message: "must be a list".into(),
                    })
                }
            };
            docs.extend(items.into_iter().enumerate().map(|(j, value)| Document {
                location: format!("{prefix}items[{j}]."),
                value,
            }));
        } else {
            docs.push(Document { location: prefix, value });
        }
    }
    Ok(docs)
}

/// Turns one document into a `K`, checking `apiVersion` and `kind` first. Errors name the
/// field, for example `spec.retention.keepDaily: invalid type: string "x", expected u32`.
pub fn parse_object<K>(path: &Path, doc: &Document) -> Result<K, CliError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let field_error = |field: &str, message: String| CliError::Input {
        path: path.to_path_buf(),
        field: format!("{}{field}", doc.location),
        message,
    };
    let want_kind = K::kind(&());
    let want_api_version = K::api_version(&());
    match doc.value.get("kind").and_then(|k| k.as_str()) {
        Some(kind) if kind == want_kind => {}
        Some(kind) => return Err(field_error("kind", format!("is {kind}, expected {want_kind}"))),
        None => return Err(field_error("kind", format!("is missing, expected {want_kind}"))),
    }
    match doc.value.get("apiVersion").and_then(|v| v.as_str()) {
        Some(v) if v == want_api_version => {}
        Some(v) => return Err(field_error("apiVersion", format!("is {v}, expected {want_api_version}"))),
        None => return Err(field_error("apiVersion", format!("is missing, expected {want_api_version}"))),
    }
    serde_path_to_error::deserialize(doc.value.clone()).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        field_error(&field, e.into_inner().to_string())
    })
}

/// Reads a file that must hold exactly one object of kind `K`.
pub fn read_object<K>(path: &Path) -> Result<K, CliError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let docs = read_documents(path)?;
    match docs.as_slice() {
        [doc] => parse_object(path, doc),
        [] => Err(CliError::Input {
            path: path.to_path_buf(),
            field: String::new(),
            message: format!("holds no document, expected one {}", K::kind(&())),
        }),
        _ => Err(CliError::Input {
            path: path.to_path_buf(),
            field: String::new(),
            message: format!("holds {} documents, expected one {}", docs.len(), K::kind(&())),
        }),
    }
}

/// Reads a file of objects of kind `K`: one document, several, or a List.
pub fn read_objects<K>(path: &Path) -> Result<Vec<K>, CliError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    read_documents(path)?.iter().map(|doc| parse_object(path, doc)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ArchiveBackup, BackupPolicy};
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    const POLICY: &str = "apiVersion: archivist.dev/v1alpha1\nkind: BackupPolicy\nmetadata: {name: p}\nspec:\n  target: {kind: StatefulSet, name: mailstore}\n";

    #[test]
    fn reads_one_policy_with_defaults() {
        let f = file(POLICY);
        let policy: BackupPolicy = read_object(f.path()).expect("policy");
        assert_eq!(policy.spec.time_zone, "UTC");
        assert!(policy.spec.include_indexes);
        assert_eq!(policy.spec.quiesce.timeout_seconds, 60);
    }

    #[test]
    fn errors_name_file_and_field() {
        let cases = [
            (format!("{POLICY}  retention: {{keepDaily: lots}}\n"), "spec.retention.keepDaily: invalid type"),
            (POLICY.replace("kind: BackupPolicy", "kind: ConfigMap"), "kind: is ConfigMap, expected BackupPolicy"),
            (POLICY.replace("archivist.dev/v1alpha1", "v1"), "apiVersion: is v1, expected archivist.dev/v1alpha1"),
            (format!("{POLICY}  stores: [{{name: a, volumeClaims: store-a}}]\n"), "spec.stores[0].volumeClaims: invalid type"),
            ("a: [b\n".to_string(), "document 1 is not valid YAML"),
            (String::new(), "holds no document"),
            (format!("{POLICY}---\n{POLICY}"), "holds 2 documents"),
        ];
        for (text, want) in cases {
            let f = file(&text);
            let err = read_object::<BackupPolicy>(f.path()).expect_err(&text).to_string();
            assert!(err.starts_with(&f.path().display().to_string()), "{err}");
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }

    #[test]
    fn reads_lists_and_multiple_documents() {
        let backup = |name: &str| {
            format!("apiVersion: archivist.dev/v1alpha1\nkind: ArchiveBackup\nmetadata: {{name: {name}}}\nspec: {{policyName: p}}\n")
        };
        let multi = file(&format!("{}---\n{}", backup("a"), backup("b")));
        let list = file(&format!(
            "apiVersion: v1\nkind: List\nitems:\n- {}\n- {}",
            backup("a").trim_end().replace('\n', "\n  "),
            "{apiVersion: archivist.dev/v1alpha1, kind: ArchiveBackup, metadata: {name: b}, spec: {policyName: 7}}"
        ));
        let got: Vec<ArchiveBackup> = read_objects(multi.path()).expect("multi");
        assert_eq!(got.len(), 2);
        let err = read_objects::<ArchiveBackup>(list.path()).expect_err("bad second item").to_string();
        assert!(err.contains("items[1].spec.policyName"), "{err}");
    }
}
