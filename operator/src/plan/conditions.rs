//! Setting conditions the Kubernetes way: `lastTransitionTime` changes only when the status does.

use crate::api::{Condition, ConditionStatus};
use chrono::{DateTime, Utc};

/// Sets condition `type_` in `conditions`, keeping its `lastTransitionTime` when the status
/// does not change.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: impl Into<String>,
    now: DateTime<Utc>,
    generation: Option<i64>,
) {
    let message = message.into();
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = now;
            }
            c.status = status;
            c.reason = reason.to_string();
            c.message = message;
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message,
            last_transition_time: now,
            observed_generation: generation,
        }),
    }
}

/// The status of condition `type_`, if set.
pub fn status_of(conditions: &[Condition], type_: &str) -> Option<ConditionStatus> {
    conditions.iter().find(|c| c.type_ == type_).map(|c| c.status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("t0");
        let t1 = t0 + chrono::Duration::seconds(10);
        let mut cs = Vec::new();
        set(&mut cs, "Ready", ConditionStatus::False, "A", "a", t0, Some(1));
        set(&mut cs, "Ready", ConditionStatus::False, "B", "b", t1, Some(2));
        assert_eq!((cs[0].last_transition_time, cs[0].reason.as_str()), (t0, "B"));
        set(&mut cs, "Ready", ConditionStatus::True, "C", "c", t1, Some(2));
        assert_eq!(cs[0].last_transition_time, t1);
        assert_eq!(cs.len(), 1);
        assert_eq!(status_of(&cs, "Ready"), Some(ConditionStatus::True));
        assert_eq!(status_of(&cs, "Other"), None);
    }
}
