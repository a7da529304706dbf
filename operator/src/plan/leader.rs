//! Leader election over a `coordination.k8s.io/v1` Lease: who may run the controllers.
//!
//! One operator process leads; the others stand by. The leader renews the Lease every
//! [`RENEW_INTERVAL`]; a standby takes the Lease over once it has not been renewed for its
//! `leaseDurationSeconds` ([`LEASE_DURATION`], 12 s). Every write to the Lease carries the
//! resourceVersion it was decided from, so two candidates can never both win a takeover. A
//! leader that cannot renew within [`RENEW_DEADLINE`] stops leading (it exits) before its
//! Lease can expire, so that two processes never act at once.

use chrono::{DateTime, Utc};
use std::time::Duration;

/// How long a Lease is valid after its last renewal: a standby takes over after this. With
/// [`RENEW_INTERVAL`], a standby leads at most 14 s after the leader died.
pub const LEASE_DURATION: Duration = Duration::from_secs(12);
/// How often the leader renews, and a standby looks again.
pub const RENEW_INTERVAL: Duration = Duration::from_secs(2);
/// A leader that could not renew for this long stops leading (less than [`LEASE_DURATION`]).
pub const RENEW_DEADLINE: Duration = Duration::from_secs(8);

/// The Lease as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseObs {
    /// `spec.holderIdentity`; `None` or empty when released.
    pub holder: Option<String>,
    /// `spec.renewTime`.
    pub renew_time: Option<DateTime<Utc>>,
    /// `spec.leaseDurationSeconds`.
    pub duration_seconds: i32,
}

/// What a candidate does with the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDecision {
    /// Take the Lease: create it (none exists), or take over a released or expired one.
    Acquire,
    /// It holds the Lease: renew it.
    Renew,
    /// Another process holds a valid Lease until `until`.
    Standby {
        /// The holder.
        holder: String,
        /// When the Lease expires unless renewed.
        until: DateTime<Utc>,
    },
}

/// Decides what candidate `me` does with `lease` (`None`: no Lease exists) at `now`.
pub fn decide(lease: Option<&LeaseObs>, me: &str, now: DateTime<Utc>) -> LeaseDecision {
    let Some(lease) = lease else { return LeaseDecision::Acquire };
    let holder = lease.holder.as_deref().filter(|h| !h.is_empty());
    match holder {
        None => LeaseDecision::Acquire,
        Some(h) if h == me => LeaseDecision::Renew,
        Some(h) => {
            let renewed = lease.renew_time.unwrap_or(DateTime::<Utc>::MIN_UTC);
            let until = renewed + chrono::Duration::seconds(i64::from(lease.duration_seconds.max(1)));
            if now >= until {
                LeaseDecision::Acquire
            } else {
                LeaseDecision::Standby { holder: h.to_string(), until }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).single().expect("time") + chrono::Duration::seconds(secs)
    }

    #[test]
    fn a_valid_lease_of_another_is_waited_for_an_expired_or_released_one_is_taken() {
        let held = |holder: Option<&str>, renewed: i64| LeaseObs { holder: holder.map(String::from), renew_time: Some(t(renewed)), duration_seconds: 15 };
        let cases = [
            ("no lease: create it", None, 0, LeaseDecision::Acquire),
            ("mine: renew", Some(held(Some("a"), 0)), 5, LeaseDecision::Renew),
            ("mine, even expired: renew", Some(held(Some("a"), 0)), 100, LeaseDecision::Renew),
            ("another's, valid", Some(held(Some("b"), 0)), 14, LeaseDecision::Standby { holder: "b".into(), until: t(15) }),
            ("another's, expired after its duration", Some(held(Some("b"), 0)), 15, LeaseDecision::Acquire),
            ("released (no holder)", Some(held(None, 0)), 1, LeaseDecision::Acquire),
            ("released (empty holder)", Some(held(Some(""), 0)), 1, LeaseDecision::Acquire),
            (
                "never renewed",
                Some(LeaseObs { holder: Some("b".into()), renew_time: None, duration_seconds: 15 }),
                0,
                LeaseDecision::Acquire,
            ),
        ];
        for (name, lease, now, want) in cases {
            assert_eq!(decide(lease.as_ref(), "a", t(now)), want, "{name}");
        }
        assert!(RENEW_INTERVAL < RENEW_DEADLINE && RENEW_DEADLINE < LEASE_DURATION, "a leader gives up before its lease expires");
    }
}
