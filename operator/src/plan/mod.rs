//! Pure decisions: everything here takes observed objects and `now` as arguments and returns
//! what to do. No client, no clock, no randomness.
pub mod retention;
