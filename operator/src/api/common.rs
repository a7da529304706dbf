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
