//! Types shared by several kinds: conditions and label selectors.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The status of a condition, as in `metav1.Condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    Unknown,
}

/// One aspect of an object's state (the shape of `metav1.Condition`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The aspect this condition describes, in CamelCase (for example `Ready`).
    #[serde(rename = "type")]
    pub type_: String,
    /// Whether the condition holds: `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// A CamelCase, machine-readable reason for the last transition.
    pub reason: String,
    /// What a person needs to know about the condition, in words.
    // Omitted when empty: Kubernetes 1.20 rejects "" inside arrays of custom resources.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When the condition last changed its status (RFC 3339, UTC).
    pub last_transition_time: DateTime<Utc>,
    /// The `metadata.generation` the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Selects objects by their labels (the shape of `metav1.LabelSelector`). An empty selector
/// selects everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must all be present with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Requirements that must all hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One requirement of a [`LabelSelector`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    /// The label key the requirement applies to.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// The values for `In` and `NotIn`; empty for `Exists` and `DoesNotExist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether a set of labels matches this selector. Unknown operators match nothing.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator.as_str() {
                    "In" => value.is_some_and(|v| r.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

/// The schema pattern of an SQL database name (a policy's `sql.database`, and the database a
/// restore creates): an ASCII letter or `_`, then up to 62 letters, digits and `_`. Such a
/// name is the same in PostgreSQL and MySQL, needs no quoting, and cannot break out of a
/// string or identifier.
pub const SQL_DATABASE_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]{0,62}$";
/// The schema pattern of `sqlTarget.databaseSuffix`: 1 to 62 letters, digits and `_`.
pub const DATABASE_SUFFIX_PATTERN: &str = "^[A-Za-z0-9_]{1,62}$";
/// The schema pattern of a RestoreRequest's `target.nameSuffix`: lowercase letters, digits
/// and `-`, ending with a letter or digit (it is appended to PVC and workload names); empty is
/// allowed by the schema (only `InPlace` accepts it, see `archivist validate`).
pub const NAME_SUFFIX_PATTERN: &str = "^([-a-z0-9]*[a-z0-9])?$";
/// The schema pattern of a DNS-1123 label (with `maxLength: 63`), for example a post-restore
/// hook's name.
pub const DNS_LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// The schema of `T` with every `pattern` and `maxLength` removed, for the copies of a spec
/// kept in a status (`ArchiveBackup.status.policySpec`, `RestoreRequest.status.acceptedSpec`):
/// a copy recorded by an older operator, before those rules existed, must stay writable, or
/// the run it belongs to could not record its progress (such as releasing the archive). The
/// spec itself is checked when it is written.
pub(crate) fn without_string_rules<T: JsonSchema>(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut value = generator.subschema_for::<T>().to_value();
    strip_string_rules(&mut value);
    // A schema with keywords removed is still an object (or a boolean).
    schemars::Schema::try_from(value).unwrap_or_default()
}

/// Removes the `pattern` and `maxLength` keywords from a schema and all its subschemas (not
/// from property names: a property called `pattern` stays).
fn strip_string_rules(schema: &mut serde_json::Value) {
    let Some(object) = schema.as_object_mut() else { return };
    object.remove("pattern");
    object.remove("maxLength");
    for (key, value) in object.iter_mut() {
        match key.as_str() {
            "properties" | "patternProperties" | "$defs" | "definitions" => {
                if let Some(children) = value.as_object_mut() {
                    children.values_mut().for_each(strip_string_rules);
                }
            }
            "items" | "additionalProperties" | "not" => match value {
                serde_json::Value::Array(list) => list.iter_mut().for_each(strip_string_rules),
                other => strip_string_rules(other),
            },
            "anyOf" | "oneOf" | "allOf" => {
                if let Some(list) = value.as_array_mut() {
                    list.iter_mut().for_each(strip_string_rules);
                }
            }
            _ => {}
        }
    }
}

/// The schema of a list of conditions: a list-map keyed by `type`, as for `metav1.Condition`.
pub(crate) fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_string_rules_removes_the_keywords_not_properties_named_pattern() {
        let mut schema = serde_json::json!({
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "pattern": "^a$"},
                "nested": {"type": "array", "items": {"type": "string", "pattern": "^b$", "maxLength": 3, "minLength": 1}},
                "either": {"anyOf": [{"type": "string", "pattern": "^c$"}]}
            },
            "additionalProperties": {"type": "string", "pattern": "^d$"}
        });
        strip_string_rules(&mut schema);
        assert_eq!(
            schema,
            serde_json::json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string"},
                    "nested": {"type": "array", "items": {"type": "string", "minLength": 1}},
                    "either": {"anyOf": [{"type": "string"}]}
                },
                "additionalProperties": {"type": "string"}
            })
        );
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn label_selector_matches_labels_and_expressions() {
        let req = |key: &str, op: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        let cases = [
            (LabelSelector::default(), labels(&[]), true),
            (
                LabelSelector { match_labels: labels(&[("tier", "mail")]), ..Default::default() },
                labels(&[("tier", "mail"), ("x", "y")]),
                true,
            ),
            (
                LabelSelector { match_labels: labels(&[("tier", "mail")]), ..Default::default() },
                labels(&[("tier", "web")]),
                false,
            ),
            (
                LabelSelector { match_expressions: vec![req("env", "In", &["prod"])], ..Default::default() },
                labels(&[("env", "prod")]),
                true,
            ),
            (
                LabelSelector { match_expressions: vec![req("env", "NotIn", &["prod"])], ..Default::default() },
                labels(&[]),
                true,
            ),
            (
                LabelSelector { match_expressions: vec![req("env", "Exists", &[])], ..Default::default() },
                labels(&[]),
                false,
            ),
            (
                LabelSelector { match_expressions: vec![req("env", "DoesNotExist", &[])], ..Default::default() },
                labels(&[]),
                true,
            ),
            (
                LabelSelector { match_expressions: vec![req("env", "Bogus", &[])], ..Default::default() },
                labels(&[("env", "x")]),
                false,
            ),
        ];
        for (i, (selector, labels, want)) in cases.iter().enumerate() {
            assert_eq!(selector.matches(labels), *want, "case {i}");
        }
    }
}
