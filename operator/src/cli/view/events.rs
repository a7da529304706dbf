//! The Events section of `describe`.

use super::super::output::{age, section};
use crate::plan::retention::from_jiff;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Event;

/// When an Event last happened: its series' last observation, its `eventTime`, its
/// `lastTimestamp`, its `firstTimestamp`, or its creation.
pub fn event_time(event: &Event) -> Option<DateTime<Utc>> {
    event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref().and_then(|t| from_jiff(t.0)))
        .or_else(|| event.event_time.as_ref().and_then(|t| from_jiff(t.0)))
        .or_else(|| event.last_timestamp.as_ref().and_then(|t| from_jiff(t.0)))
        .or_else(|| event.first_timestamp.as_ref().and_then(|t| from_jiff(t.0)))
        .or_else(|| event.metadata.creation_timestamp.as_ref().and_then(|t| from_jiff(t.0)))
}

/// The Events, oldest first, as `AGE TYPE REASON MESSAGE` rows (`xN` after the age when the
/// Event repeated); `<none>` without any.
pub fn events_section(events: &[Event], now: DateTime<Utc>) -> String {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| event_time(e));
    let rows: Vec<Vec<String>> = sorted
        .iter()
        .map(|e| {
            let count = e.series.as_ref().and_then(|s| s.count).or(e.count).unwrap_or(1);
            let when = if count > 1 { format!("{} (x{count})", age(event_time(e), now)) } else { age(event_time(e), now) };
            vec![
                when,
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default().replace('\n', " "),
            ]
        })
        .collect();
    section("Events", &["AGE", "TYPE", "REASON", "MESSAGE"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

    fn jiff(t: DateTime<Utc>) -> k8s_openapi::jiff::Timestamp {
        k8s_openapi::jiff::Timestamp::from_millisecond(t.timestamp_millis()).expect("time in range")
    }

    fn event(reason: &str, seconds_ago: i64, now: DateTime<Utc>, message: &str) -> Event {
        Event {
            reason: Some(reason.into()),
            type_: Some("Normal".into()),
            message: Some(message.into()),
            event_time: Some(MicroTime(jiff(now - chrono::Duration::seconds(seconds_ago)))),
            ..Default::default()
        }
    }

    #[test]
    fn events_are_listed_oldest_first_with_their_age() {
        let now = Utc::now();
        let events = vec![event("Completed", 5, now, "done"), event("Started", 65, now, "line one\nline two")];
        let text = events_section(&events, now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Events:");
        assert!(lines[1].starts_with("  AGE"), "{text}");
        assert!(lines[2].contains("1m5s") && lines[2].contains("Started") && lines[2].ends_with("line one line two"), "{text}");
        assert!(lines[3].contains("5s") && lines[3].contains("Completed"), "{text}");
    }

    #[test]
    fn a_repeated_event_shows_its_count_and_no_events_read_none() {
        let now = Utc::now();
        let mut repeated = event("ReleaseFailed", 10, now, "thaw failed");
        repeated.event_time = None;
        repeated.last_timestamp = Some(Time(jiff(now - chrono::Duration::seconds(10))));
        repeated.count = Some(3);
        assert!(events_section(&[repeated], now).contains("10s (x3)"));
        assert_eq!(events_section(&[], now), "Events:  <none>\n");
    }
}
