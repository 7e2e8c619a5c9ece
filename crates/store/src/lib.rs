//! The store: one query layer over SQLite (embedded, the `strata up` default) and PostgreSQL
//! (production, shared by control-plane replicas).
//!
//! Shape:
//! - [`Store`] wraps a sqlx `Any` pool. Queries are written once in portable SQL with `$N`
//!   placeholders (SQLite accepts them as numbered parameters). Columns use only `TEXT` and
//!   `BIGINT` (booleans are 0/1, times are microseconds since the epoch, structured values are
//!   JSON text), so rows decode the same way on both dialects.
//! - Every mutation goes through [`Store::write`], which opens a transaction, takes the next
//!   global revision from a single counter row (serialising writers, so revisions are committed
//!   in order and a watcher reading `revision > N` never misses a row), lets the caller record
//!   `(revision, kind, id, op)` entries in the change log in the same transaction, commits, and
//!   then wakes in-process watchers. Busy/serialisation failures are retried here and nowhere
//!   else.
//! - [`migrate`] applies the numbered migrations in `migrations/`; a file may have per-dialect
//!   variants where portable SQL cannot say the thing.

mod changes;
mod error;
mod lease;
pub mod migrate;
mod store;
pub mod testing;

pub use changes::{Change, Op};
pub use error::from_sqlx;
pub use store::{redact, Dialect, Store, Tx, TxFuture};

/// Re-exported so service crates name one sqlx.
pub use sqlx;
pub use sqlx::any::AnyRow;
pub use sqlx::Row;

/// Decodes a 0/1 `BIGINT` column as a boolean.
pub fn get_bool(row: &AnyRow, col: &str) -> bool {
    row.try_get::<i64, _>(col).map(|v| v != 0).unwrap_or(false)
}

/// Decodes a nullable `TEXT` column.
pub fn get_opt_str(row: &AnyRow, col: &str) -> Option<String> {
    row.try_get::<Option<String>, _>(col).ok().flatten()
}

/// Decodes a nullable `BIGINT` column.
pub fn get_opt_i64(row: &AnyRow, col: &str) -> Option<i64> {
    row.try_get::<Option<i64>, _>(col).ok().flatten()
}
