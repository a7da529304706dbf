//! The rules of a ClusterRetentionPolicy.

use super::names::{self, DNS1123_SUBDOMAIN_MAX};
use super::{check_metadata, FieldError, NameRules, Problems};
use crate::api::{ClusterRetentionPolicy, ClusterRetentionPolicySpec, LabelSelector};

/// Checks a whole ClusterRetentionPolicy: `metadata.name` and
/// [`validate_cluster_retention_policy`].
pub fn validate_cluster_retention_policy_object(policy: &ClusterRetentionPolicy) -> Vec<FieldError> {
    let mut problems = Problems::default();
    check_metadata(&mut problems, &policy.metadata, &NameRules { max_len: DNS1123_SUBDOMAIN_MAX, why: "" });
    let mut all = problems.into_vec();
    all.extend(validate_cluster_retention_policy(&policy.spec));
    all
}

/// Checks a ClusterRetentionPolicy spec: a well-formed `namespaceSelector`, ceilings of at
/// least 1 (absent means no ceiling; 0 would prune everything), and floors that do not exceed
/// the ceilings of the same policy.
pub fn validate_cluster_retention_policy(spec: &ClusterRetentionPolicySpec) -> Vec<FieldError> {
    let mut problems = Problems::default();
    if let Some(selector) = &spec.namespace_selector {
        check_selector(&mut problems, "spec.namespaceSelector", selector);
    }
    let ceilings = [
        ("spec.maxRetentionDays", spec.max_retention_days),
        ("spec.maxRestorePointsPerPolicy", spec.max_restore_points_per_policy),
    ];
    for (field, ceiling) in ceilings {
        if ceiling == Some(0) {
            problems.push(field, "must be at least 1 (omit it for no ceiling)");
        }
    }
    let conflicts = [
        ("spec.minRetentionDays", spec.min_retention_days, "maxRetentionDays", spec.max_retention_days),
        ("spec.minKeepDaily", spec.min_keep_daily, "maxRestorePointsPerPolicy", spec.max_restore_points_per_policy),
        ("spec.minKeepVerified", spec.min_keep_verified, "maxRestorePointsPerPolicy", spec.max_restore_points_per_policy),
    ];
    for (field, floor, ceiling_name, ceiling) in conflicts {
        if let (Some(floor), Some(ceiling)) = (floor, ceiling) {
            if ceiling > 0 && floor > ceiling {
                problems.push(
                    field,
                    format!("{floor} is more than {ceiling_name} ({ceiling}): the floor and the ceiling contradict each other"),
                );
            }
        }
    }
    problems.into_vec()
}

fn check_selector(problems: &mut Problems, field: &str, selector: &LabelSelector) {
    for (key, value) in &selector.match_labels {
        problems.check(format!("{field}.matchLabels.{key}"), names::label_key(key));
        problems.check(format!("{field}.matchLabels.{key}"), names::label_value(value));
    }
    for (i, requirement) in selector.match_expressions.iter().enumerate() {
        let here = format!("{field}.matchExpressions[{i}]");
        problems.check(format!("{here}.key"), names::label_key(&requirement.key));
        match requirement.operator.as_str() {
            "In" | "NotIn" if requirement.values.is_empty() => problems.push(
                format!("{here}.values"),
                format!("must not be empty when operator is {}", requirement.operator),
            ),
            "In" | "NotIn" => {
                for (j, value) in requirement.values.iter().enumerate() {
                    problems.check(format!("{here}.values[{j}]"), names::label_value(value));
                }
            }
            "Exists" | "DoesNotExist" if !requirement.values.is_empty() => problems.push(
                format!("{here}.values"),
                format!("must be empty when operator is {}", requirement.operator),
            ),
            "Exists" | "DoesNotExist" => {}
            other => problems.push(
                format!("{here}.operator"),
                format!("{other:?} is not one of In, NotIn, Exists, DoesNotExist"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::LabelSelectorRequirement;

    fn baseline() -> ClusterRetentionPolicySpec {
        serde_yaml::from_str(
            "namespaceSelector: {matchLabels: {archive: mail}, matchExpressions: [{key: env, operator: In, values: [prod]}]}\n\
             minKeepDaily: 7\nminKeepVerified: 1\nminRetentionDays: 30\nmaxRetentionDays: 3650\nmaxRestorePointsPerPolicy: 400\n",
        )
        .expect("baseline parses")
    }

    fn requirement(op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement { key: "env".into(), operator: op.into(), values: values.iter().map(|v| v.to_string()).collect() }
    }

    fn expression(spec: &mut ClusterRetentionPolicySpec, req: LabelSelectorRequirement) {
        if let Some(selector) = spec.namespace_selector.as_mut() {
            selector.match_expressions = vec![req];
        }
    }

    #[test]
    fn each_rule_names_its_field() {
        type Mutation = fn(&mut ClusterRetentionPolicySpec);
        let cases: Vec<(&str, Mutation, Vec<&str>)> = vec![
            ("baseline", |_| {}, vec![]),
            ("empty spec", |s| *s = ClusterRetentionPolicySpec::default(), vec![]),
            ("max days 0", |s| s.max_retention_days = Some(0), vec!["spec.maxRetentionDays"]),
            ("max points 0", |s| s.max_restore_points_per_policy = Some(0), vec!["spec.maxRestorePointsPerPolicy"]),
            ("min days above max", |s| s.min_retention_days = Some(4000), vec!["spec.minRetentionDays"]),
            ("min daily above max points", |s| s.min_keep_daily = Some(401), vec!["spec.minKeepDaily"]),
            ("min verified above max points", |s| s.min_keep_verified = Some(401), vec!["spec.minKeepVerified"]),
            ("bad label key", |s| s.namespace_selector = Some(LabelSelector { match_labels: [("a b".to_string(), "x".to_string())].into(), ..Default::default() }), vec!["spec.namespaceSelector.matchLabels.a b"]),
            ("bad label value", |s| s.namespace_selector = Some(LabelSelector { match_labels: [("a".to_string(), "x y".to_string())].into(), ..Default::default() }), vec!["spec.namespaceSelector.matchLabels.a"]),
            ("unknown operator", |s| expression(s, requirement("Equals", &["x"])), vec!["spec.namespaceSelector.matchExpressions[0].operator"]),
            ("In without values", |s| expression(s, requirement("In", &[])), vec!["spec.namespaceSelector.matchExpressions[0].values"]),
            ("Exists with values", |s| expression(s, requirement("Exists", &["x"])), vec!["spec.namespaceSelector.matchExpressions[0].values"]),
            ("bad value", |s| expression(s, requirement("NotIn", &["ok", "not ok"])), vec!["spec.namespaceSelector.matchExpressions[0].values[1]"]),
            ("bad key", |s| expression(s, LabelSelectorRequirement { key: String::new(), ..requirement("Exists", &[]) }), vec!["spec.namespaceSelector.matchExpressions[0].key"]),
        ];
        for (name, mutate, want) in cases {
            let mut spec = baseline();
            mutate(&mut spec);
            let got: Vec<String> = validate_cluster_retention_policy(&spec).into_iter().map(|e| e.field).collect();
            assert_eq!(got, want, "case {name:?}");
        }
    }

    #[test]
    fn object_name() {
        let policy = ClusterRetentionPolicy::new("Compliance", baseline());
        let got: Vec<String> = validate_cluster_retention_policy_object(&policy).into_iter().map(|e| e.field).collect();
        assert_eq!(got, vec!["metadata.name"]);
    }
}
