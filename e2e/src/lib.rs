//! The local cluster's simulator and shared helpers for Archivist's end-to-end tests.
//!
//! The simulator (`archivist-sim`) plays, through the real kube-apiserver, the parts of a
//! cluster that cannot run on these machines: node and kubelet (pods as bubblewrap processes),
//! scheduler, CSI provisioner and the snapshot controller. See `e2e/README.md`.

pub mod sim;
pub mod snapshot_api;
pub mod testing;
