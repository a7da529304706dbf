//! Pure decisions: everything here takes observed objects and `now` as arguments and returns
//! what to do. No client, no clock, no randomness.

pub mod backup;
pub mod capture;
pub mod claim;
pub mod conditions;
pub mod export;
pub mod leader;
pub mod names;
pub mod policy;
pub mod restore;
pub mod retention;
pub mod schedule;
pub mod validate;

/// The sooner of two optional times (or durations): either when only one is set, `None` when
/// neither is. How requeues and deadlines of several rules combine.
pub fn sooner<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
