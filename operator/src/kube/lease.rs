//! The leader-election Lease (`coordination.k8s.io/v1`): reading it, acquiring, renewing and
//! releasing it, each write conditional on the resourceVersion it was decided from (see
//! `plan::leader` for the rules).

use crate::plan::leader::{self, LeaseDecision, LeaseObs, LEASE_DURATION};
use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::Api;

/// One candidate for one Lease.
#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
}

/// The outcome of one attempt to acquire or renew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    /// This candidate holds the Lease.
    Leading,
    /// Another holds it (or won a race for it just now).
    Standby {
        /// The holder, when known.
        holder: Option<String>,
    },
}

fn micro(time: DateTime<Utc>) -> MicroTime {
    let nanos = i128::from(time.timestamp()) * 1_000_000_000 + i128::from(time.timestamp_subsec_nanos());
    MicroTime(k8s_openapi::jiff::Timestamp::from_nanosecond(nanos).unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH))
}

fn observe(lease: &Lease) -> LeaseObs {
    let spec = lease.spec.clone().unwrap_or_default();
    LeaseObs {
        holder: spec.holder_identity,
        renew_time: spec.renew_time.and_then(|t| crate::plan::retention::from_jiff(t.0)),
        duration_seconds: spec.lease_duration_seconds.unwrap_or(15),
    }
}

impl LeaderElector {
    /// A candidate `identity` for the Lease `namespace/name`.
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: &str) -> Self {
        Self { api: Api::namespaced(client, namespace), name: name.into(), identity: identity.into() }
    }

    /// This candidate's identity (the Lease's `holderIdentity` while it leads).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Reads the Lease and acquires, renews or stands by (`plan::leader::decide`). A lost race
    /// (a 409 on the create or the conditional replace) is a standby, never an error.
    pub async fn try_acquire_or_renew(&self) -> Result<Leadership, kube::Error> {
        let now = Utc::now();
        let current = self.api.get_opt(&self.name).await?;
        let decision = leader::decide(current.as_ref().map(observe).as_ref(), &self.identity, now);
        let duration = i32::try_from(LEASE_DURATION.as_secs()).unwrap_or(12);
        let written = match (&decision, current) {
            (LeaseDecision::Standby { holder, .. }, _) => return Ok(Leadership::Standby { holder: Some(holder.clone()) }),
            (LeaseDecision::Acquire, None) => {
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(duration),
                        acquire_time: Some(micro(now)),
                        renew_time: Some(micro(now)),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await.map(|_| ())
            }
            (LeaseDecision::Acquire, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                spec.holder_identity = Some(self.identity.clone());
                spec.lease_duration_seconds = Some(duration);
                spec.acquire_time = Some(micro(now));
                spec.renew_time = Some(micro(now));
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
                // `lease.metadata.resourceVersion` makes the replace conditional.
                self.api.replace(&self.name, &PostParams::default(), &lease).await.map(|_| ())
            }
            (LeaseDecision::Renew, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                spec.renew_time = Some(micro(now));
                spec.lease_duration_seconds = Some(duration);
                self.api.replace(&self.name, &PostParams::default(), &lease).await.map(|_| ())
            }
            (LeaseDecision::Renew, None) => return Ok(Leadership::Standby { holder: None }),
        };
        match written {
            Ok(()) => Ok(Leadership::Leading),
            Err(e) if super::is_conflict(&e) => Ok(Leadership::Standby { holder: None }),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (a graceful shutdown), so a standby takes over at once: clears the
    /// holder if it is still this candidate.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else { return Ok(()) };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(()),
            Err(e) if super::is_conflict(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_round_trip_through_micro_time() {
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 22, 30, 0).single().expect("time") + chrono::Duration::microseconds(123_456);
        let lease = Lease {
            spec: Some(LeaseSpec { holder_identity: Some("a".into()), renew_time: Some(micro(t)), lease_duration_seconds: Some(15), ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(observe(&lease), LeaseObs { holder: Some("a".into()), renew_time: Some(t), duration_seconds: 15 });
    }
}
