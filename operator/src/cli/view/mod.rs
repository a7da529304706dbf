//! What the cluster commands print, computed from objects and a clock: pure functions, so
//! every line is unit-tested. The commands in `cli/` fetch the objects and write the text.

pub mod backup;
pub mod conditions;
pub mod drill;
pub mod events;
pub mod progress;
pub mod restore;
pub mod status;

/// `-` for an absent value, as kubectl prints `<none>` columns tersely.
pub(crate) fn or_dash(value: Option<impl ToString>) -> String {
    value.map(|v| v.to_string()).filter(|s| !s.is_empty()).unwrap_or_else(|| "-".into())
}

/// The debug name of a unit enum (`Completed`, `Freeze`): how the API spells its values.
pub(crate) fn word(value: impl std::fmt::Debug) -> String {
    format!("{value:?}")
}

/// The `Started` and `Finished` fields of a run that has these times: the start with how long
/// ago, the end with how long the run took.
pub(crate) fn push_run_times(
    fields: &mut Vec<(&'static str, String)>,
    start: Option<chrono::DateTime<chrono::Utc>>,
    end: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) {
    use super::output::{age, seconds, timestamp};
    if let Some(start) = start {
        fields.push(("Started", format!("{} ({} ago)", timestamp(start), age(Some(start), now))));
    }
    if let Some(end) = end {
        let took = start.map(|s| format!(" (took {})", seconds((end - s).num_milliseconds() as f64 / 1000.0)));
        fields.push(("Finished", format!("{}{}", timestamp(end), took.unwrap_or_default())));
    }
}

/// The head of a `describe`: one `Key:  value` line per field, values aligned.
pub(crate) fn fields_text(fields: &[(&str, String)]) -> String {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
    fields.iter().map(|(key, value)| format!("{:<width$}{value}\n", format!("{key}:"))).collect()
}
