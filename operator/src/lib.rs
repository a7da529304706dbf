//! Archivist: a Kubernetes operator that backs up and restores containerized mail archive servers.
//!
//! - [`api`]: the `archivist.dev/v1alpha1` kinds (the CRDs are generated from them).
//! - [`plan`]: pure decisions (schedule, retention, validation); no I/O, no clock.
//! - [`cli`]: the `archivist` command's subcommands.

pub mod api;
pub mod cli;
pub mod plan;
