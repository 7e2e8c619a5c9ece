//! Mapping database failures into the shared error type.

use strata_core::Error;

/// The message carried by [`Error::Unavailable`] for contention that [`crate::Store::write`]
/// retries.
pub(crate) const CONTENTION: &str = "The database is busy; try again.";

/// Converts a sqlx error. Unique violations become [`Error::AlreadyExists`] (callers replace the
/// message with one naming the resource), lock contention and serialisation failures become
/// [`Error::Unavailable`] (retried by the write wrapper), a missing row becomes an internal
/// error (callers that expect absence use `fetch_optional`).
pub fn from_sqlx(e: sqlx::Error) -> Error {
    if let Some(db) = e.as_database_error() {
        if db.is_unique_violation() {
            return Error::AlreadyExists("Duplicate entry.".into());
        }
        let code = db.code().map(|c| c.to_string()).unwrap_or_default();
        // SQLite: 5 BUSY, 6 LOCKED, 517 BUSY_SNAPSHOT, 261 BUSY_RECOVERY.
        // PostgreSQL: 40001 serialization_failure, 40P01 deadlock_detected.
        if matches!(code.as_str(), "5" | "6" | "517" | "261" | "40001" | "40P01")
            || db.message().contains("database is locked")
        {
            return Error::Unavailable(CONTENTION.into());
        }
    }
    match e {
        sqlx::Error::PoolTimedOut => Error::Unavailable(CONTENTION.into()),
        other => Error::Internal(format!("database: {other}")),
    }
}

pub(crate) fn is_contention(e: &Error) -> bool {
    matches!(e, Error::Unavailable(m) if m == CONTENTION)
}
