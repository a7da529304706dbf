//! Retention: which backups of one policy to keep and which to prune.
//!
//! This is exactly the "Retention semantics" of the API contract (`api.md`), which
//! `archivist retention preview` prints:
//!
//! - A backup's time is `status.startTime`, else `metadata.creationTimestamp`.
//! - Backups not yet finished (any phase but Completed/Failed, or no phase yet) are kept
//!   (`in-progress`).
//! - Held backups (`spec.hold: true`) are kept (`hold`). Hold only adds a reason: a held backup
//!   still takes part in the other rules like any other backup of its phase (a held Completed
//!   backup can also fill a `daily` bucket, a held Failed one counts towards `keepFailed`).
//! - Backups an unfinished RestoreRequest reads from are kept (`restore-source`; see
//!   [`restores::restore_sources`] for which those are), and so are `PreRestore` backups
//!   (`spec.reason: PreRestore`: the state an in-place restore replaced), whatever their phase
//!   (`pre-restore`). Like a hold, these only add a reason: such a backup still takes part in
//!   the other rules of its phase.
//! - Failed backups: the newest `keepFailed` are kept (`failed`), the rest pruned.
//! - Over Completed backups only, newest first: `keepLast` (`last`), the calendar buckets
//!   `keepHourly|Daily|Weekly|Monthly|Yearly` (`hourly`, ...; see the `buckets` module for the
//!   calendar in the policy's time zone) and `keepVerified` (`verified`: the n newest whose
//!   verification `Passed`).
//! - Everything else is pruned (`expired`). A backup can carry several reasons; they are listed
//!   in the order of [`Reason`].
//! - If every rule (including `keepFailed`) is 0 or absent, nothing is pruned. Such kept
//!   backups carry only the reasons that hold anyway (`in-progress`, `hold`, `restore-source`,
//!   `pre-restore`), so a finished
//!   backup that is not held is kept with an empty reason list. `keepFailed` is a rule too:
//!   with only `keepFailed` set, every Completed backup is pruned, as api.md says (validation
//!   should warn about such a policy).
//!
//! Order: decisions come newest first; backups with the same time are ordered by name
//! (ascending), which also decides which of them a rule counts first.
//!
//! `now` is an argument of [`plan`] for symmetry with the rest of `plan` but none of api.md's
//! rules depend on it (no rule looks at a backup's age); only the cluster ceilings and floors
//! ([`cluster`]) that count days do.

mod buckets;
pub mod cluster;
pub mod governance;
mod reason;
pub mod restores;

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use crate::api::{ArchiveBackup, BackupPhase, BackupReason, RetentionRules, VerificationState};
use buckets::{bucket_key, local_time, Period};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
pub use reason::{Action, Reason, ReasonSet};
use serde::Serialize;

/// Where a backup run is, as far as retention cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunState {
    /// Any phase but Completed and Failed, or no phase yet: never pruned.
    InProgress,
    /// A restore point.
    Completed,
    /// A failed run.
    Failed,
}

impl From<Option<BackupPhase>> for RunState {
    fn from(phase: Option<BackupPhase>) -> Self {
        match phase {
            Some(BackupPhase::Completed) => RunState::Completed,
            Some(BackupPhase::Failed) => RunState::Failed,
            _ => RunState::InProgress,
        }
    }
}

/// One backup as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionCandidate {
    /// The ArchiveBackup's name.
    pub name: String,
    /// `status.startTime`, else `metadata.creationTimestamp`.
    pub time: DateTime<Utc>,
    /// In progress, Completed or Failed.
    pub state: RunState,
    /// `spec.hold`: a legal hold.
    pub hold: bool,
    /// Whether `status.verification.state` is `Passed`.
    pub verified: bool,
    /// `spec.reason: PreRestore`: never pruned.
    pub pre_restore: bool,
    /// An unfinished RestoreRequest reads from it: never pruned. Not known from the backup
    /// alone; set it with [`RetentionCandidate::reading`] from [`restores::restore_sources`].
    pub restore_source: bool,
}

impl RetentionCandidate {
    /// The candidate with `restore_source` set when its name is one of `sources` (the backups
    /// unfinished RestoreRequests read from).
    pub fn reading(self, sources: &std::collections::BTreeSet<String>) -> Self {
        let restore_source = sources.contains(&self.name);
        RetentionCandidate { restore_source, ..self }
    }

    /// Whether a rule outside the policy's own protects it from every pruning, cluster
    /// ceilings included: in progress, held, read by a restore, or a PreRestore backup.
    pub fn protected(&self) -> bool {
        self.state == RunState::InProgress || self.hold || self.restore_source || self.pre_restore
    }
}

/// Why an ArchiveBackup cannot be planned; the message starts with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CandidateError {
    /// `metadata.name` is missing.
    #[error("metadata.name: is missing")]
    MissingName,
    /// Neither `status.startTime` nor `metadata.creationTimestamp` is set.
    #[error("metadata.creationTimestamp: is missing (and so is status.startTime)")]
    MissingTime,
}

impl CandidateError {
    /// The field at fault, as a dotted path.
    pub fn field(&self) -> &'static str {
        match self {
            CandidateError::MissingName => "metadata.name",
            CandidateError::MissingTime => "metadata.creationTimestamp",
        }
    }

    /// What is wrong with the field, in words.
    pub fn message(&self) -> &'static str {
        match self {
            CandidateError::MissingName => "is missing",
            CandidateError::MissingTime => "is missing (and so is status.startTime)",
        }
    }
}

impl TryFrom<&ArchiveBackup> for RetentionCandidate {
    type Error = CandidateError;

    fn try_from(backup: &ArchiveBackup) -> Result<Self, Self::Error> {
        let name = backup.metadata.name.clone().ok_or(CandidateError::MissingName)?;
        let status = backup.status.as_ref();
        let time = status
            .and_then(|s| s.start_time)
            .or_else(|| backup.metadata.creation_timestamp.as_ref().and_then(|t| from_jiff(t.0)))
            .ok_or(CandidateError::MissingTime)?;
        Ok(RetentionCandidate {
            name,
            time,
            state: RunState::from(status.and_then(|s| s.phase)),
            hold: backup.spec.hold,
            verified: status
                .and_then(|s| s.verification.as_ref())
                .is_some_and(|v| v.state == VerificationState::Passed),
            pre_restore: backup.spec.reason == BackupReason::PreRestore,
            restore_source: false,
        })
    }
}

/// Converts a kube timestamp (jiff) to chrono; `None` outside chrono's range.
pub fn from_jiff(ts: k8s_openapi::jiff::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = ts.as_nanosecond();
    let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
    DateTime::from_timestamp(secs, sub)
}

/// What retention does with one backup, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The backup's name.
    pub name: String,
    /// Keep or prune.
    pub action: Action,
    /// Every rule that keeps it (for a kept backup) or why it goes (for a pruned one), in the
    /// order of [`Reason`].
    pub reasons: Vec<Reason>,
}

/// Whether every rule is 0 or absent (then nothing is pruned).
pub fn all_rules_zero(rules: &RetentionRules) -> bool {
    [
        rules.keep_last,
        rules.keep_hourly,
        rules.keep_daily,
        rules.keep_weekly,
        rules.keep_monthly,
        rules.keep_yearly,
        rules.keep_verified,
        rules.keep_failed,
    ]
    .iter()
    .all(|n| n.unwrap_or(0) == 0)
}

/// Decides, for every backup of one policy, whether to keep or prune it (api.md's retention
/// semantics; see the module documentation). `tz` is the policy's `spec.timeZone`; `now` is not
/// used by these rules. Returns one decision per candidate, newest first (ties by name).
pub fn plan(
    rules: &RetentionRules,
    tz: Tz,
    candidates: &[RetentionCandidate],
    now: DateTime<Utc>,
) -> Vec<Decision> {
    let _ = now;
    let order = newest_first(candidates);
    let reasons = evaluate(rules, tz, candidates, &order);
    let keep_all = all_rules_zero(rules);
    order
        .iter()
        .zip(reasons)
        .map(|(&i, set)| decide(&candidates[i].name, set, keep_all))
        .collect()
}

/// Turns the keep reasons of one backup into its decision.
fn decide(name: &str, set: ReasonSet, keep_all: bool) -> Decision {
    if set.is_empty() && !keep_all {
        Decision { name: name.to_string(), action: Action::Prune, reasons: vec![Reason::Expired] }
    } else {
        Decision { name: name.to_string(), action: Action::Keep, reasons: set.to_vec() }
    }
}

/// Indices of `candidates`, newest first; equal times by name ascending.
///
/// Sorts compact `(time, index)` keys rather than indices into `candidates`, so the sort touches
/// one small array; names are compared only between backups with the same time.
pub(crate) fn newest_first(candidates: &[RetentionCandidate]) -> Vec<usize> {
    // Nanoseconds since the epoch fit an i128 for every chrono time; negated for newest first.
    let nanos = |c: &RetentionCandidate| {
        i128::from(c.time.timestamp()) * 1_000_000_000 + i128::from(c.time.timestamp_subsec_nanos())
    };
    let mut keys: Vec<(i128, usize)> =
        candidates.iter().enumerate().map(|(i, c)| (-nanos(c), i)).collect();
    keys.sort_unstable_by_key(|&(key, _)| key);
    // Equal times: by name.
    let mut start = 0;
    while start < keys.len() {
        let end = start + keys[start..].iter().take_while(|k| k.0 == keys[start].0).count();
        if end - start > 1 {
            keys[start..end].sort_unstable_by(|a, b| candidates[a.1].name.cmp(&candidates[b.1].name));
        }
        start = end;
    }
    keys.into_iter().map(|(_, i)| i).collect()
}

/// One calendar bucket rule while walking newest to oldest.
///
/// Walking newest to oldest, bucket keys almost never increase (only in a daylight-saving fold
/// that is not aligned with the bucket, for example a half-hour fold for hours), so the walk
/// keeps the keys it has seen in a descending `Vec`: a key below the smallest seen is a new
/// bucket at the cost of one comparison; anything else is looked up (binary search, plus a
/// short list of out-of-order keys).
struct BucketWalk {
    period: Period,
    reason: Reason,
    left: u32,
    /// Seen keys, strictly descending.
    seen: Vec<i64>,
    /// Seen keys that arrived out of order (not below every key seen before them).
    unordered: Vec<i64>,
}

impl BucketWalk {
    fn new(period: Period, reason: Reason, left: u32) -> Self {
        BucketWalk { period, reason, left, seen: Vec::new(), unordered: Vec::new() }
    }

    /// Whether the backup at this wall-clock time is the first of a bucket not seen yet (and the
    /// rule still takes buckets); records the bucket.
    fn takes(&mut self, local: chrono::NaiveDateTime) -> bool {
        if self.left == 0 {
            return false;
        }
        let key = bucket_key(local, self.period);
        match self.seen.last() {
            Some(&smallest) if key >= smallest => {
                let seen = key == smallest
                    || self.seen.binary_search_by(|probe| key.cmp(probe)).is_ok()
                    || self.unordered.contains(&key);
                if seen {
                    return false;
                }
                self.unordered.push(key);
            }
            _ => self.seen.push(key),
        }
        self.left -= 1;
        true
    }
}

/// The keep reasons of each backup under `rules`, indexed like `order`, without the
/// "everything else is pruned" and "all rules zero" steps.
pub(crate) fn evaluate(
    rules: &RetentionRules,
    tz: Tz,
    candidates: &[RetentionCandidate],
    order: &[usize],
) -> Vec<ReasonSet> {
    let n = |rule: Option<u32>| rule.unwrap_or(0);
    let mut last_left = n(rules.keep_last);
    let mut verified_left = n(rules.keep_verified);
    let mut failed_left = n(rules.keep_failed);
    let mut walks: Vec<BucketWalk> = Period::ALL
        .into_iter()
        .zip([rules.keep_hourly, rules.keep_daily, rules.keep_weekly, rules.keep_monthly, rules.keep_yearly])
        .zip([Reason::Hourly, Reason::Daily, Reason::Weekly, Reason::Monthly, Reason::Yearly])
        .filter(|((_, rule), _)| n(*rule) > 0)
        .map(|((period, rule), reason)| BucketWalk::new(period, reason, n(rule)))
        .collect();

    let mut out = vec![ReasonSet::default(); order.len()];
    for (set, &i) in out.iter_mut().zip(order) {
        let c = &candidates[i];
        if c.hold {
            set.insert(Reason::Hold);
        }
        if c.restore_source {
            set.insert(Reason::RestoreSource);
        }
        if c.pre_restore {
            set.insert(Reason::PreRestore);
        }
        match c.state {
            RunState::InProgress => set.insert(Reason::InProgress),
            RunState::Failed => {
                if failed_left > 0 {
                    failed_left -= 1;
                    set.insert(Reason::Failed);
                }
            }
            RunState::Completed => {
                if last_left > 0 {
                    last_left -= 1;
                    set.insert(Reason::Last);
                }
                if !walks.is_empty() {
                    let local = local_time(c.time, tz);
                    for walk in &mut walks {
                        if walk.takes(local) {
                            set.insert(walk.reason);
                        }
                    }
                    walks.retain(|w| w.left > 0);
                }
                if c.verified && verified_left > 0 {
                    verified_left -= 1;
                    set.insert(Reason::Verified);
                }
            }
        }
    }
    out
}
