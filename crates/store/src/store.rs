//! The pool, the write wrapper and the watch.

use crate::changes::{Change, Op};
use crate::error::{from_sqlx, is_contention};
use sqlx::any::AnyPoolOptions;
use sqlx::AnyConnection;
use sqlx::{Any, AnyPool, Executor, Row};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use strata_core::{time::now_micros, Error, Result};
use tokio::sync::watch;

/// Which SQL engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    committed: watch::Sender<i64>,
    url: std::sync::Arc<str>,
    /// SQLite has one writer at a time; writers of this process queue here, in arrival
    /// order, instead of polling SQLite's busy handler (which sleeps up to 100 ms between
    /// tries and is unfair, so under load some writers waited seconds). Other processes on
    /// the same file still meet the busy timeout.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction holding the next global revision.
pub struct Tx {
    inner: sqlx::Transaction<'static, Any>,
    revision: i64,
    seq: i64,
    /// PostgreSQL: announce the revision to other replicas on commit.
    notify: bool,
}

/// The PostgreSQL channel on which committed revisions are announced.
const CHANNEL: &str = "strata_changes";

/// The future a [`Store::write`] closure returns.
pub type TxFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 't>>;

const MAX_ATTEMPTS: u32 = 12;

impl Store {
    /// Connects to `url` (`sqlite://PATH`, `sqlite::memory:` is refused because each pooled
    /// connection would see its own database; or `postgres://…`). SQLite files are created when
    /// missing and run in WAL mode with a busy timeout.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else {
            return Err(Error::invalid(format!(
                "unsupported database url (want sqlite:// or postgres://): {}",
                redact(url)
            )));
        };
        if url.contains(":memory:") {
            return Err(Error::invalid(
                "in-memory SQLite is not supported; use a file",
            ));
        }
        let url = if dialect == Dialect::Sqlite && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_string()
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| Error::Unavailable(format!("connecting to the database: {e}")))?;
        let (committed, _) = watch::channel(0);
        Ok(Store {
            pool,
            dialect,
            committed,
            url: url.as_str().into(),
            writer: Default::default(),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The pool, for reads. Writes go through [`Store::write`].
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Runs `f` in a write transaction that holds the next global revision, commits, and wakes
    /// watchers. Lock contention and serialisation failures are retried with backoff, so `f`
    /// must be safe to run more than once (it is: an aborted attempt left nothing behind).
    pub async fn write<T, F>(&self, mut f: F) -> Result<T>
    where
        F: for<'t> FnMut(&'t mut Tx) -> TxFuture<'t, T>,
        T: Send,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.write_once(&mut f).await {
                Err(e) if is_contention(&e) && attempt < MAX_ATTEMPTS => {
                    let backoff = 2u64.pow(attempt.min(7)) + rand_jitter();
                    tracing::debug!(attempt, backoff, "write contention; retrying");
                    tokio::time::sleep(Duration::from_millis(backoff)).await;
                }
                other => return other,
            }
        }
    }

    async fn write_once<T, F>(&self, f: &mut F) -> Result<T>
    where
        F: for<'t> FnMut(&'t mut Tx) -> TxFuture<'t, T>,
    {
        let _turn = match self.dialect {
            Dialect::Sqlite => Some(self.writer.lock().await),
            Dialect::Postgres => None,
        };
        let mut inner = self.pool.begin().await.map_err(from_sqlx)?;
        // Taking the revision first makes this transaction a writer from its first statement:
        // on PostgreSQL the row lock orders writers, on SQLite it takes the write lock up
        // front instead of failing later on a read-to-write upgrade.
        let revision: i64 = sqlx::query(
            "UPDATE revision_counter SET value = value + 1 WHERE id = 1 RETURNING value",
        )
        .fetch_one(&mut *inner)
        .await
        .map_err(from_sqlx)?
        .try_get("value")
        .map_err(from_sqlx)?;
        let mut tx = Tx {
            inner,
            revision,
            seq: 0,
            notify: self.dialect == Dialect::Postgres,
        };
        let out = f(&mut tx).await?;
        let recorded = tx.seq > 0;
        tx.inner.commit().await.map_err(from_sqlx)?;
        if recorded {
            self.committed.send_if_modified(|cur| {
                if revision > *cur {
                    *cur = revision;
                    true
                } else {
                    false
                }
            });
        }
        Ok(out)
    }

    /// Like [`Store::write`], for steps that may *refuse* (a check failed: the client gets
    /// an error, nothing is written). `f` returns `Ok(Err(refusal))` to roll the transaction
    /// back and hand the refusal to the caller as `Ok(Err(refusal))`; store failures stay
    /// `Err`.
    pub async fn write_or_refuse<T, E, F>(&self, mut f: F) -> Result<std::result::Result<T, E>>
    where
        F: for<'t> FnMut(&'t mut Tx) -> TxFuture<'t, std::result::Result<T, E>>,
        T: Send + 'static,
        E: Send + 'static,
    {
        let refused: std::sync::Arc<std::sync::Mutex<Option<E>>> = Default::default();
        let r2 = refused.clone();
        let out = self
            .write(move |tx| {
                let fut = f(tx);
                let refused = r2.clone();
                Box::pin(async move {
                    match fut.await? {
                        Ok(v) => Ok(v),
                        Err(e) => {
                            *refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            Err(strata_core::Error::conflict("refused"))
                        }
                    }
                })
            })
            .await;
        match out {
            Ok(v) => Ok(Ok(v)),
            Err(e) => match refused.lock().unwrap_or_else(|p| p.into_inner()).take() {
                Some(r) => Ok(Err(r)),
                None => Err(e),
            },
        }
    }

    /// A receiver that changes whenever a transaction that recorded changes commits in this
    /// process. Its value is the newest such revision. Wake-up only: read the change log for
    /// what happened.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.committed.subscribe()
    }

    /// Tells in-process watchers about a revision observed some other way (another replica's
    /// commit found by polling the change log).
    pub fn notify_revision(&self, revision: i64) {
        self.committed.send_if_modified(|cur| {
            if revision > *cur {
                *cur = revision;
                true
            } else {
                false
            }
        });
    }

    /// On PostgreSQL, listens for revisions committed by other replicas (`LISTEN
    /// strata_changes`) and wakes this process's watchers at once; reconnects after failures.
    /// `None` on SQLite, where one process owns the database. Watchers still read the change
    /// log, so a missed notification only delays them until their next poll.
    pub fn listen(&self) -> Option<tokio::task::JoinHandle<()>> {
        if self.dialect != Dialect::Postgres {
            return None;
        }
        let store = self.clone();
        Some(tokio::spawn(async move {
            loop {
                match store.listen_once().await {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(error = %e, "change notifications; reconnecting"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }

    async fn listen_once(&self) -> std::result::Result<(), sqlx::Error> {
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen(CHANNEL).await?;
        loop {
            let n = listener.recv().await?;
            if let Ok(rev) = n.payload().parse::<i64>() {
                self.notify_revision(rev);
            }
        }
    }

    /// The newest revision in the change log (0 when empty).
    pub async fn current_revision(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(revision), 0) AS r FROM change_log")
            .fetch_one(&self.pool)
            .await
            .map_err(from_sqlx)?;
        row.try_get::<i64, _>("r").map_err(from_sqlx)
    }

    /// The newest revision after `after` (`after` itself when nothing is newer) and whether
    /// any change after `after` has a kind starting with `prefix`: one cheap query for
    /// watchers that care about one service's kinds only.
    pub async fn newer_of_kind(&self, after: i64, prefix: &str) -> Result<(i64, bool)> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(MAX(revision), $1) AS BIGINT) AS r, \
             CAST(COALESCE(SUM(CASE WHEN kind LIKE $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS n \
             FROM change_log WHERE revision > $1",
        )
        .bind(after)
        .bind(format!("{prefix}%"))
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok((
            row.try_get::<i64, _>("r").map_err(from_sqlx)?,
            row.try_get::<i64, _>("n").map_err(from_sqlx)? > 0,
        ))
    }

    /// Changes with a revision greater than `after`, oldest first, at most `limit`.
    pub async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>> {
        let rows = sqlx::query(
            "SELECT revision, seq, kind, id, op FROM change_log WHERE revision > $1 \
             ORDER BY revision, seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        rows.iter()
            .map(|r| {
                let op: String = r.try_get("op").map_err(from_sqlx)?;
                Ok(Change {
                    revision: r.try_get("revision").map_err(from_sqlx)?,
                    seq: r.try_get("seq").map_err(from_sqlx)?,
                    kind: r.try_get("kind").map_err(from_sqlx)?,
                    id: r.try_get("id").map_err(from_sqlx)?,
                    op: Op::parse(&op).ok_or_else(|| Error::internal(format!("bad op {op}")))?,
                })
            })
            .collect()
    }

    /// Waits until a change newer than `after` is committed in this process, or `timeout`
    /// passes, then returns the changes since `after` (possibly none on timeout). Changes made
    /// by other replicas are found on the next call because the table is always read.
    pub async fn watch(&self, after: i64, timeout: Duration) -> Result<Vec<Change>> {
        let mut rx = self.subscribe();
        let found = self.changes_since(after, 1000).await?;
        if !found.is_empty() {
            return Ok(found);
        }
        let _ = tokio::time::timeout(timeout, rx.wait_for(|r| *r > after)).await;
        self.changes_since(after, 1000).await
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Tx {
    /// The connection, for queries inside the transaction.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }

    /// The global revision this transaction will commit as.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Records a change in the change log, in this transaction.
    pub async fn record(&mut self, kind: &str, id: &str, op: Op) -> Result<()> {
        self.seq += 1;
        sqlx::query(
            "INSERT INTO change_log (revision, seq, kind, id, op, at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.revision)
        .bind(self.seq)
        .bind(kind)
        .bind(id)
        .bind(op.as_str())
        .bind(now_micros())
        .execute(&mut *self.inner)
        .await
        .map_err(from_sqlx)?;
        if self.notify && self.seq == 1 {
            // NOTIFY is transactional: other replicas hear of the revision only if it commits.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(self.revision.to_string())
                .execute(&mut *self.inner)
                .await
                .map_err(from_sqlx)?;
        }
        Ok(())
    }
}

fn rand_jitter() -> u64 {
    (now_micros() as u64) % 7
}

/// A database URL with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite:///x.db"), "sqlite:///x.db");
    }
}
