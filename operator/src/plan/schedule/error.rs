//! Why a schedule cannot be used, in words a person understands.

use croner::errors::CronError;
use croner::parser::CronParser;

/// A `spec.schedule` / `spec.timeZone` pair that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression is malformed or never matches a date.
    #[error("bad cron expression {expression:?}: {reason}")]
    BadCron {
        /// The expression as written.
        expression: String,
        /// What is wrong, for example `minute 61 is out of range 0-59`.
        reason: String,
    },
    /// The time zone is not an IANA time zone name.
    #[error("unknown time zone {name:?}{}", suggestion_text(.suggestion))]
    UnknownTimeZone {
        /// The name as written.
        name: String,
        /// The correctly spelled name when only the letter case was wrong.
        suggestion: Option<String>,
    },
}

fn suggestion_text(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(name) => format!(" (did you mean {name:?}?)"),
        None => " (expected an IANA name such as \"Europe/Istanbul\" or \"UTC\")".to_string(),
    }
}

impl ScheduleError {
    pub(super) fn bad_cron(expression: &str, reason: String) -> Self {
        ScheduleError::BadCron { expression: expression.to_string(), reason }
    }

    /// A stable, CamelCase reason for Events, conditions and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ScheduleError::BadCron { .. } => "InvalidSchedule",
            ScheduleError::UnknownTimeZone { .. } => "UnknownTimeZone",
        }
    }
}

/// The five fields: name, smallest and largest value.
const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
];

const MACROS: &str = "@hourly, @daily, @weekly, @monthly, @yearly or @annually";

/// Explains why `parser` rejected `expr`: which field, and what is wrong with it. `croner`'s
/// own messages do not name the field, so each field is tried alone to find the culprit.
pub(super) fn explain(expr: &str, err: &CronError, parser: &CronParser) -> String {
    let expr = expr.trim();
    if expr.is_empty() {
        return format!("it is empty; expected 5 fields (minute hour day-of-month month day-of-week) or {MACROS}");
    }
    if expr.starts_with('@') {
        return format!("unknown macro; expected {MACROS}");
    }
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        let seconds = if fields.len() == 6 { " (seconds and years are not supported)" } else { "" };
        return format!(
            "has {} fields, expected 5: minute hour day-of-month month day-of-week{seconds}",
            fields.len()
        );
    }
    for (i, field) in fields.iter().enumerate() {
        let mut probe = ["*"; 5];
        probe[i] = field;
        if let Err(field_err) = parser.parse(&probe.join(" ")) {
            return explain_field(i, field, &field_err);
        }
    }
    tidy(&err.to_string())
}

fn explain_field(index: usize, text: &str, err: &CronError) -> String {
    let (name, min, max) = FIELDS[index];
    let sunday = if index == 4 { " (0 and 7 are Sunday)" } else { "" };
    for item in text.split(',') {
        let range = item.split_once('/').map_or(item, |(range, _)| range).trim_start_matches('+');
        let bounds: Vec<Option<u32>> = range
            .split('-')
            .map(|bound| bound.split('#').next().unwrap_or(bound).trim_end_matches(['L', 'l', 'W', 'w']).parse().ok())
            .collect();
        for value in bounds.iter().flatten() {
            if *value < min || *value > max {
                return format!("{name} {value} is out of range {min}-{max}{sunday}");
            }
        }
        if let [Some(start), Some(end)] = bounds[..] {
            if start > end {
                return format!("{name} range {start}-{end} runs backwards; write the smaller value first");
            }
        }
    }
    match err {
        CronError::IllegalCharacters(_) => {
            format!("{name} field {text:?} holds a character cron does not allow there")
        }
        CronError::ComponentError(message) | CronError::InvalidPattern(message) => {
            format!("{name} field {text:?}: {}", tidy(message))
        }
        other => format!("{name} field {text:?}: {}", tidy(&other.to_string())),
    }
}

/// `croner`'s messages start with a capital and end with a period; ours do neither.
fn tidy(message: &str) -> String {
    let message = message.trim().trim_end_matches('.');
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
