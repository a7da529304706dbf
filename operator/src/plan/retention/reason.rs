//! The actions and reasons of retention decisions.

use serde::Serialize;
use std::fmt;

/// What happens to a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The backup stays.
    Keep,
    /// The backup (and its snapshots) is deleted.
    Prune,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Keep => "keep",
            Action::Prune => "prune",
        })
    }
}

/// Why a backup is kept or pruned. Serialized in kebab-case (`in-progress`, `max-retention`);
/// a decision lists its reasons in the order of this enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Kept: the run has not finished.
    InProgress,
    /// Kept: `spec.hold` is true.
    Hold,
    /// Kept: a matching ClusterRetentionPolicy has `legalHold: true`.
    ClusterHold,
    /// Kept: an unfinished RestoreRequest reads from it (its `status.resolvedBackup`, or the
    /// backup its source names while it is not resolved yet).
    RestoreSource,
    /// Kept: a `PreRestore` backup (`spec.reason: PreRestore`), the state an in-place restore
    /// replaced.
    PreRestore,
    /// Kept: one of the newest `keepFailed` Failed backups.
    Failed,
    /// Kept: one of the newest `keepLast` Completed backups.
    Last,
    /// Kept: the newest Completed backup of one of the newest `keepHourly` hours.
    Hourly,
    /// Kept: the newest Completed backup of one of the newest `keepDaily` days.
    Daily,
    /// Kept: the newest Completed backup of one of the newest `keepWeekly` ISO weeks.
    Weekly,
    /// Kept: the newest Completed backup of one of the newest `keepMonthly` months.
    Monthly,
    /// Kept: the newest Completed backup of one of the newest `keepYearly` years.
    Yearly,
    /// Kept: one of the newest `keepVerified` Completed backups whose verification passed.
    Verified,
    /// Kept: a Completed backup younger than a cluster policy's `minRetentionDays`.
    MinRetention,
    /// Pruned: no rule keeps it.
    Expired,
    /// Pruned: older than a cluster policy's `maxRetentionDays`.
    MaxRetention,
    /// Pruned: beyond a cluster policy's `maxRestorePointsPerPolicy` newest restore points.
    MaxRestorePoints,
}

impl Reason {
    /// Every reason, in order.
    pub const ALL: [Reason; 17] = [
        Reason::InProgress,
        Reason::Hold,
        Reason::ClusterHold,
        Reason::RestoreSource,
        Reason::PreRestore,
        Reason::Failed,
        Reason::Last,
        Reason::Hourly,
        Reason::Daily,
        Reason::Weekly,
        Reason::Monthly,
        Reason::Yearly,
        Reason::Verified,
        Reason::MinRetention,
        Reason::Expired,
        Reason::MaxRetention,
        Reason::MaxRestorePoints,
    ];

    /// The name used in JSON and tables, e.g. `in-progress`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InProgress => "in-progress",
            Reason::Hold => "hold",
            Reason::ClusterHold => "cluster-hold",
            Reason::RestoreSource => "restore-source",
            Reason::PreRestore => "pre-restore",
            Reason::Failed => "failed",
            Reason::Last => "last",
            Reason::Hourly => "hourly",
            Reason::Daily => "daily",
            Reason::Weekly => "weekly",
            Reason::Monthly => "monthly",
            Reason::Yearly => "yearly",
            Reason::Verified => "verified",
            Reason::MinRetention => "min-retention",
            Reason::Expired => "expired",
            Reason::MaxRetention => "max-retention",
            Reason::MaxRestorePoints => "max-restore-points",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of reasons (a bit set; cheap to copy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ReasonSet(u32);

impl ReasonSet {
    /// Adds a reason.
    pub fn insert(&mut self, reason: Reason) {
        self.0 |= reason.bit();
    }

    /// Whether the set holds `reason`.
    pub fn contains(self, reason: Reason) -> bool {
        self.0 & reason.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The reasons in the order of [`Reason`].
    pub fn to_vec(self) -> Vec<Reason> {
        let mut out = Vec::with_capacity(self.0.count_ones() as usize);
        let mut bits = self.0;
        while bits != 0 {
            out.push(Reason::ALL[bits.trailing_zeros() as usize]);
            bits &= bits - 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_serialize_as_api_md_names_in_enum_order() {
        for reason in Reason::ALL {
            let json = serde_json::to_string(&reason).expect("json");
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
        let mut set = ReasonSet::default();
        set.insert(Reason::Verified);
        set.insert(Reason::InProgress);
        set.insert(Reason::Daily);
        set.insert(Reason::PreRestore);
        set.insert(Reason::RestoreSource);
        assert_eq!(set.to_vec(), vec![Reason::InProgress, Reason::RestoreSource, Reason::PreRestore, Reason::Daily, Reason::Verified]);
        assert_eq!(Reason::RestoreSource.as_str(), "restore-source");
        assert_eq!(Reason::PreRestore.as_str(), "pre-restore");
        for (i, reason) in Reason::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, i, "Reason::ALL is in enum order");
        }
        assert_eq!(serde_json::to_string(&Action::Prune).expect("json"), "\"prune\"");
    }
}
