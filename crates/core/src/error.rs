//! The one public error type. It carries an external message (safe to show to API users) and is
//! turned into a status code and a body only by each service's HTTP edge.

/// Result alias used across crates.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in the vocabulary every service shares.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A resource does not exist (or the caller may not know it exists).
    #[error("Could not find {kind}: {id}.")]
    NotFound { kind: &'static str, id: String },
    /// A resource with the same identity already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is malformed or fails validation.
    #[error("{0}")]
    InvalidRequest(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// Authenticated, but policy forbids the action.
    #[error("{0}")]
    Forbidden(String),
    /// Missing, invalid or expired credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// A quota would be exceeded.
    #[error("{0}")]
    OverQuota(String),
    /// Not enough capacity to satisfy the request.
    #[error("{0}")]
    InsufficientCapacity(String),
    /// A dependency is temporarily unavailable; retrying may help.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the message is internal and not shown to users.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            id: id.into(),
        }
    }
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidRequest(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        Error::Conflict(msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Error::Forbidden(msg.into())
    }
    pub fn unauthenticated(msg: impl Into<String>) -> Self {
        Error::Unauthenticated(msg.into())
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }

    /// The message a user may see. Internal errors never leak their detail.
    pub fn external_message(&self) -> String {
        match self {
            Error::Internal(_) => {
                "An unexpected error prevented the server from fulfilling your request.".into()
            }
            other => other.to_string(),
        }
    }
}
