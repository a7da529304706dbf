//! Output of the cluster commands: kubectl's `-o table|json|yaml`, aligned tables and
//! human durations.

use super::error::CliError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::io::Write;

/// `-o`: how a command prints what it found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns (or, for `describe`, sections) for people.
    #[default]
    Table,
    /// JSON: the objects themselves (a `List` for several), or the rows of `status`.
    Json,
    /// YAML, the same content as `json`.
    Yaml,
}

/// Writes `value` as JSON or YAML; `Table` is the caller's own rendering and never reaches here.
pub fn write_structured<T: Serialize>(out: &mut dyn Write, format: OutputFormat, value: &T) -> Result<(), CliError> {
    match format {
        OutputFormat::Json | OutputFormat::Table => {
            let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Runtime(format!("cannot print JSON: {e}")))?;
            writeln!(out, "{text}")?;
        }
        OutputFormat::Yaml => {
            let text = serde_yaml::to_string(value).map_err(|e| CliError::Runtime(format!("cannot print YAML: {e}")))?;
            write!(out, "{text}")?;
        }
    }
    Ok(())
}

/// A kubectl-style `List` of objects, for `-o json|yaml` of a list command.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectList<T> {
    /// Always `v1`.
    pub api_version: &'static str,
    /// Always `List`.
    pub kind: &'static str,
    /// The objects.
    pub items: Vec<T>,
}

impl<T> ObjectList<T> {
    /// A list of `items`.
    pub fn new(items: Vec<T>) -> Self {
        ObjectList { api_version: "v1", kind: "List", items }
    }
}

/// Renders rows under headers, each column as wide as its widest cell, separated by three
/// spaces, as kubectl does; no trailing spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut text = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("   ");
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(cell.chars().count());
                line.push_str(&" ".repeat(pad));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// A `describe` section: `Title:` and the table indented by two spaces, or `Title:  <none>`
/// without rows.
pub fn section(title: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return format!("{title}:  <none>\n");
    }
    let mut text = format!("{title}:\n");
    for line in table(headers, rows).lines() {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// A list command's table: with `all_namespaces`, a first column NAMESPACE holding each row's
/// namespace.
pub fn namespaced_table(all_namespaces: bool, headers: &[&str], rows: Vec<(String, Vec<String>)>) -> String {
    let mut all_headers = Vec::with_capacity(headers.len() + 1);
    if all_namespaces {
        all_headers.push("NAMESPACE");
    }
    all_headers.extend_from_slice(headers);
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(namespace, row)| if all_namespaces { std::iter::once(namespace).chain(row).collect() } else { row })
        .collect();
    table(&all_headers, &rows)
}

/// A duration in kubectl's short form: `45s`, `3m12s`, `5h3m`, `2d4h`, `400d`. Negative
/// durations (clock skew) read as `0s`.
pub fn short_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (days, hours, minutes, secs) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60, s % 60);
    match () {
        _ if s < 60 => format!("{secs}s"),
        _ if s < 3_600 => if secs == 0 { format!("{minutes}m") } else { format!("{minutes}m{secs}s") },
        _ if s < 86_400 => if minutes == 0 { format!("{hours}h") } else { format!("{hours}h{minutes}m") },
        _ if days < 8 && hours > 0 => format!("{days}d{hours}h"),
        _ => format!("{days}d"),
    }
}

/// How long before `now` the time was, short: `3m12s`; `<unknown>` without a time.
pub fn age(time: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match time {
        Some(t) => short_duration((now - t).num_seconds()),
        None => "<unknown>".into(),
    }
}

/// Seconds with one decimal: `1.4 s`.
pub fn seconds(value: f64) -> String {
    format!("{value:.1} s")
}

/// A time as RFC 3339 in UTC, to the second.
pub fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_kubectl_prints_ages() {
        for (seconds, expected) in [
            (-5, "0s"),
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (192, "3m12s"),
            (3_600, "1h"),
            (18_180, "5h3m"),
            (86_400, "1d"),
            (187_200, "2d4h"),
            (8 * 86_400 + 3_600, "8d"),
            (400 * 86_400, "400d"),
        ] {
            assert_eq!(short_duration(seconds), expected, "{seconds} s");
        }
    }

    #[test]
    fn a_table_aligns_every_column_to_its_widest_cell_without_trailing_spaces() {
        let rows = vec![vec!["a-long-name".to_string(), "x".into(), "".into()], vec!["b".into(), "yy".into(), "z".into()]];
        assert_eq!(table(&["NAME", "P", "LAST"], &rows), "NAME          P    LAST\na-long-name   x\nb             yy   z\n");
    }

    #[test]
    fn a_section_is_an_indented_table_or_none() {
        assert_eq!(section("Items", &["A", "B"], &[vec!["x".into(), "y".into()]]), "Items:\n  A   B\n  x   y\n");
        assert_eq!(section("Items", &["A"], &[]), "Items:  <none>\n");
    }

    #[test]
    fn a_namespaced_table_adds_the_namespace_column_only_for_every_namespace() {
        let rows = || vec![("mail".to_string(), vec!["b1".to_string()])];
        assert_eq!(namespaced_table(true, &["NAME"], rows()), "NAMESPACE   NAME\nmail        b1\n");
        assert_eq!(namespaced_table(false, &["NAME"], rows()), "NAME\nb1\n");
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(table(&["NAME", "AGE"], &[]), "NAME   AGE\n");
    }

    #[test]
    fn structured_output_is_json_or_yaml_of_the_same_value() {
        let value = ObjectList::new(vec![serde_json::json!({"a": 1})]);
        let mut json = Vec::new();
        write_structured(&mut json, OutputFormat::Json, &value).expect("json");
        let parsed: serde_json::Value = serde_json::from_slice(&json).expect("parse json");
        let mut yaml = Vec::new();
        write_structured(&mut yaml, OutputFormat::Yaml, &value).expect("yaml");
        let from_yaml: serde_json::Value = serde_yaml::from_slice(&yaml).expect("parse yaml");
        assert_eq!(parsed, from_yaml);
        assert_eq!(parsed["kind"], "List");
        assert_eq!(parsed["items"][0]["a"], 1);
    }
}
