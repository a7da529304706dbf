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
