//! Archivist: a Kubernetes operator that backs up and restores containerized mail archive servers.
