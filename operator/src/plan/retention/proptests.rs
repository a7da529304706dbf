//! proptest invariants of retention.
