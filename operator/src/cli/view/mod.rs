//! What the cluster commands print, computed from objects and a clock: pure functions, so
//! every line is unit-tested. The commands in `cli/` fetch the objects and write the text.

pub mod backup;
pub mod conditions;
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
