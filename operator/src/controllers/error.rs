//! Errors of a reconcile. Each has a stable `reason()` used as Event reason and metric label.

/// A reconcile failed; it is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("{action}: {source}")]
    Kube {
        /// What was being done, naming the object.
        action: String,
        /// The API error.
        source: kube::Error,
    },
    /// The object has no namespace (a namespaced kind without one cannot be handled).
    #[error("{0} has no namespace")]
    MissingNamespace(String),
    /// A step was decided that needs something the observation lacks (a bug, reported
    /// rather than panicking).
    #[error("{0}")]
    Inconsistent(String),
}

impl Error {
    /// A stable word for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "ApiError",
            Error::MissingNamespace(_) => "MissingNamespace",
            Error::Inconsistent(_) => "Inconsistent",
        }
    }
}

/// Adds what was being done to a kube error.
pub trait Context<T> {
    /// Wraps the error with `action`.
    fn during(self, action: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T> Context<T> for Result<T, kube::Error> {
    fn during(self, action: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|source| Error::Kube { action: action(), source })
    }
}
