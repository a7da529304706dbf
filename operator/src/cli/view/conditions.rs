//! The Conditions section of `describe`.

use super::super::output::table;
use crate::api::Condition;

/// The conditions as `TYPE STATUS REASON MESSAGE` rows, indented; `<none>` without any.
pub fn conditions_section(conditions: &[Condition]) -> String {
    if conditions.is_empty() {
        return "Conditions:  <none>\n".into();
    }
    let rows: Vec<Vec<String>> = conditions
        .iter()
        .map(|c| vec![c.type_.clone(), super::word(c.status), c.reason.clone(), c.message.clone()])
        .collect();
    let mut text = String::from("Conditions:\n");
    for line in table(&["TYPE", "STATUS", "REASON", "MESSAGE"], &rows).lines() {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    text
}
