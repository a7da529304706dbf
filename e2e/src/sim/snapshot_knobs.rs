//! The simulator's snapshot knobs: annotations on a VolumeSnapshot's source PVC, and the clock
//! arithmetic of the delays they set.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::quantity::duration;

/// Source-PVC annotation: time from when the simulator first sees a VolumeSnapshot to its cut
/// (the copy and `creationTime`).
pub const CUT_DELAY: &str = "sim.archivist.dev/snapshot-cut-delay";
/// Source-PVC annotation: time from the cut to `readyToUse: true`.
pub const READY_DELAY: &str = "sim.archivist.dev/snapshot-ready-delay";
/// Source-PVC annotation: `"true"` makes every snapshot of the PVC fail (`status.error`, never ready).
pub const FAIL: &str = "sim.archivist.dev/fail-snapshot";

/// The knobs read from the source PVC's annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Knobs {
    /// Time from when the snapshot is first seen to the cut.
    pub cut_delay: Duration,
    /// Time from the cut to ready.
    pub ready_delay: Duration,
    /// The snapshot fails.
    pub fail: bool,
}

impl Knobs {
    /// Reads the knobs from annotations; unparsable values are errors.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let delay = |key: &str| -> anyhow::Result<Duration> {
            annotations
                .get(key)
                .map(|v| duration(v).with_context(|| format!("annotation {key}")))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        Ok(Self {
            cut_delay: delay(CUT_DELAY)?,
            ready_delay: delay(READY_DELAY)?,
            fail: annotations
                .get(FAIL)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        })
    }
}

/// `at` plus `delay`, saturating.
pub fn after(at: Timestamp, delay: Duration) -> Timestamp {
    let delay = SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX);
    at.checked_add(delay).unwrap_or(Timestamp::MAX)
}

/// Time left until `at`, or `None` when it has passed.
pub fn until(at: Timestamp, now: Timestamp) -> Option<Duration> {
    let left = now.duration_until(at);
    if left.is_positive() {
        Duration::try_from(left).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_from_annotations() {
        let annotations = BTreeMap::from([
            (CUT_DELAY.to_owned(), "2s".to_owned()),
            (READY_DELAY.to_owned(), "500ms".to_owned()),
            (FAIL.to_owned(), "true".to_owned()),
        ]);
        let knobs = Knobs::from_annotations(&annotations).unwrap();
        assert_eq!(
            knobs,
            Knobs {
                cut_delay: Duration::from_secs(2),
                ready_delay: Duration::from_millis(500),
                fail: true
            }
        );
        assert_eq!(
            Knobs::from_annotations(&BTreeMap::new()).unwrap(),
            Knobs::default()
        );
        let bad = BTreeMap::from([(CUT_DELAY.to_owned(), "soon".to_owned())]);
        assert!(Knobs::from_annotations(&bad).is_err());
    }

    #[test]
    fn waiting() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = after(t0, Duration::from_secs(2));
        assert_eq!(until(t1, t0), Some(Duration::from_secs(2)));
        assert_eq!(until(t0, t1), None);
        assert_eq!(until(t0, t0), None);
    }
}
