//! Conversions between the API's times (jiff, RFC 3339 strings) and the domain's (chrono).

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// A `metav1.Time` as chrono (the earliest time chrono knows when it is out of range).
pub fn from_kube(time: &Time) -> DateTime<Utc> {
    crate::plan::retention::from_jiff(time.0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// An RFC 3339 string as chrono; `None` when it does not parse.
pub fn parse_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}
