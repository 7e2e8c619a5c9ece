//! What the compute service keeps in memory so that thousands of hosts cost little: per-host
//! wake-ups for the agents' desired-state long polls, and heartbeats written in batches.
//!
//! **Host revisions.** Each host's agent long-polls on its row of `compute_host_rev`. Rather
//! than every waiting poll re-reading the database whenever anything commits, one follower
//! task per process reads the rows that changed (`rev` above what it has seen, minus a window
//! that covers PostgreSQL transactions committing out of revision order) once per commit and
//! wakes only the polls of those hosts, through one `watch` channel per host.
//!
//! **Heartbeats.** A heartbeat of a host already known to exist is noted in memory and
//! written with every other pending heartbeat in one transaction, at most [`FLUSH_EVERY`]
//! later; the service-down timeout is tens of seconds, so the delay is invisible, and 10,000
//! hosts cost one small transaction a second instead of a thousand.

use crate::server_db;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use strata_core::Result;
use strata_placement::scheduler::HostState;
use strata_store::{from_sqlx, sqlx, Store};
use tokio::sync::watch;

/// Pending heartbeats are written at least this often.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How long the scheduler reuses the hosts it read (services' enabled/up state, zones,
/// capabilities); this process's own changes to them are seen at once.
pub const HOST_STATES_TTL: Duration = Duration::from_secs(1);
/// How far below the newest host revision seen the follower reads again, for transactions
/// that commit out of revision order (PostgreSQL writers run concurrently).
const REV_WINDOW: i64 = 2_000;

/// Host states read at a generation, when.
type CachedHosts = (u64, std::time::Instant, Arc<Vec<HostState>>);

#[derive(Default)]
pub(crate) struct Live {
    revs: Mutex<HashMap<String, watch::Sender<i64>>>,
    started: AtomicBool,
    /// Hosts whose service row exists (heartbeats of others go to the database).
    known: Mutex<HashSet<String>>,
    /// Heartbeats not yet written: host → time (µs).
    beats: Mutex<HashMap<String, i64>>,
    /// Bumped by this process's writes of services and nodes.
    hosts_gen: AtomicU64,
    /// The scheduler's view of the hosts: the generation it was read at, when, and the hosts.
    host_states: Mutex<Option<CachedHosts>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Live {
    /// A receiver of `host`'s revision (created on first use).
    pub fn subscribe(&self, host: &str) -> watch::Receiver<i64> {
        let mut m = lock(&self.revs);
        match m.get(host) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(0);
                m.insert(host.to_string(), tx);
                rx
            }
        }
    }

    /// Raises `host`'s revision to `rev` (waking its polls) if that is newer.
    pub fn observe(&self, host: &str, rev: i64) {
        let m = lock(&self.revs);
        if let Some(tx) = m.get(host) {
            tx.send_if_modified(|cur| {
                if rev > *cur {
                    *cur = rev;
                    true
                } else {
                    false
                }
            });
        }
    }

    pub fn is_known(&self, host: &str) -> bool {
        lock(&self.known).contains(host)
    }

    pub fn know(&self, host: &str) {
        lock(&self.known).insert(host.to_string());
    }

    pub fn forget(&self, host: &str) {
        lock(&self.known).remove(host);
        lock(&self.beats).remove(host);
    }

    pub fn beat(&self, host: &str, at: i64) {
        lock(&self.beats).insert(host.to_string(), at);
    }

    fn take_beats(&self) -> Vec<(String, i64)> {
        std::mem::take(&mut *lock(&self.beats))
            .into_iter()
            .collect()
    }

    /// Services or nodes changed (in this process): the host states are read again.
    pub fn hosts_changed(&self) {
        self.hosts_gen.fetch_add(1, Ordering::AcqRel);
    }

    /// The cached host states when fresh: read at the current generation and less than
    /// [`HOST_STATES_TTL`] ago (other replicas' changes show within that).
    pub fn host_states(&self) -> Option<Arc<Vec<HostState>>> {
        let g = self.hosts_gen.load(Ordering::Acquire);
        match &*lock(&self.host_states) {
            Some((at, when, hs)) if *at == g && when.elapsed() < HOST_STATES_TTL => {
                Some(hs.clone())
            }
            _ => None,
        }
    }

    /// The host states read at generation `gen` (taken before reading).
    pub fn keep_host_states(&self, gen: u64, hs: Arc<Vec<HostState>>) {
        *lock(&self.host_states) = Some((gen, std::time::Instant::now(), hs));
    }

    pub fn hosts_gen(&self) -> u64 {
        self.hosts_gen.load(Ordering::Acquire)
    }

    /// Whether the background task still has to be started (true once).
    fn claim_start(&self) -> bool {
        !self.started.swap(true, Ordering::AcqRel)
    }
}

/// Starts the follower (host revisions, heartbeat flushes) once per service; it ends when the
/// service is dropped.
pub(crate) fn ensure_started(live: &Arc<Live>, store: &Store) {
    if !live.claim_start() {
        return;
    }
    let weak = Arc::downgrade(live);
    let store = store.clone();
    tokio::spawn(async move { follow(weak, store).await });
}

async fn follow(weak: Weak<Live>, store: Store) {
    let mut rx = store.subscribe();
    let mut seen: i64 = 0;
    let mut last_flush = tokio::time::Instant::now();
    loop {
        let Some(live) = weak.upgrade() else { return };
        match changed_hosts(&store, seen - REV_WINDOW).await {
            Ok(rows) => {
                for (host, rev) in rows {
                    seen = seen.max(rev);
                    live.observe(&host, rev);
                }
            }
            Err(e) => tracing::warn!(error = %e, "compute: reading host revisions"),
        }
        if last_flush.elapsed() >= FLUSH_EVERY {
            last_flush = tokio::time::Instant::now();
            if let Err(e) = flush(&live, &store).await {
                tracing::warn!(error = %e, "compute: writing heartbeats");
            }
        }
        drop(live);
        // Woken by this process's commits (and, on PostgreSQL, other replicas' through
        // LISTEN); the timeout paces heartbeat flushes and bounds a missed wake-up.
        if let Ok(Err(_)) = tokio::time::timeout(FLUSH_EVERY, rx.changed()).await {
            return;
        }
    }
}

async fn changed_hosts(store: &Store, above: i64) -> Result<Vec<(String, i64)>> {
    use strata_store::sqlx::Row;
    let rows = sqlx::query("SELECT host, rev FROM compute_host_rev WHERE rev > $1")
        .bind(above)
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("host").map_err(from_sqlx)?,
                r.try_get::<i64, _>("rev").map_err(from_sqlx)?,
            ))
        })
        .collect()
}

/// Writes the pending heartbeats in one transaction; hosts whose service is gone are forgotten.
pub(crate) async fn flush(live: &Live, store: &Store) -> Result<()> {
    let beats = live.take_beats();
    if beats.is_empty() {
        return Ok(());
    }
    let gone = store
        .write(move |tx| {
            let beats = beats.clone();
            Box::pin(async move {
                let mut gone = Vec::new();
                for (host, at) in &beats {
                    let r = sqlx::query(
                        "UPDATE compute_service SET last_seen_up = $2 WHERE host = $1 \
                         AND binary_name = 'nova-compute' \
                         AND (last_seen_up IS NULL OR last_seen_up < $2)",
                    )
                    .bind(host)
                    .bind(*at)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                    if r.rows_affected() == 0 {
                        gone.push(host.clone());
                    }
                }
                Ok(gone)
            })
        })
        .await?;
    for host in gone {
        // Either the service was deleted or a newer beat is already written; the next
        // heartbeat checks the database again.
        live.forget(&host);
    }
    Ok(())
}

/// The current revision of `host` as its polls see it: the database's, and whatever the
/// follower has seen since.
pub(crate) async fn host_rev(
    live: &Live,
    store: &Store,
    host: &str,
) -> Result<(i64, watch::Receiver<i64>)> {
    let rx = live.subscribe(host);
    let db = server_db::host_rev(store, host).await?;
    live.observe(host, db);
    let now = *rx.borrow();
    Ok((now.max(db), rx))
}
