//! Archivist: a Kubernetes operator that backs up and restores containerized mail archive servers.
//!
//! - [`api`]: the `archivist.dev/v1alpha1` kinds (the CRDs are generated from them).
//! - [`plan`]: pure decisions (schedule, retention, validation); no I/O, no clock.
//! - [`kube`]: the only code that talks to the API server.
//! - [`controllers`]: one per kind, wiring plan and kube.
//! - [`cli`]: the `archivist` command's subcommands.

pub mod api;
pub mod cli;
pub mod gauges;
pub mod controllers;
pub mod kube;
pub mod memory;
pub mod metrics;
pub mod plan;
pub mod telemetry;
