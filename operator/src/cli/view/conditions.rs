//! The Conditions section of `describe`.

use super::super::output::section;
use crate::api::Condition;

/// The conditions as `TYPE STATUS REASON MESSAGE` rows, indented; `<none>` without any.
pub fn conditions_section(conditions: &[Condition]) -> String {
    let rows: Vec<Vec<String>> = conditions
        .iter()
        .map(|c| vec![c.type_.clone(), super::word(c.status), c.reason.clone(), c.message.clone()])
        .collect();
    section("Conditions", &["TYPE", "STATUS", "REASON", "MESSAGE"], &rows)
}
