//! Store behaviour on SQLite and PostgreSQL: migrations, the change log, the watch, write
//! retries under contention, unique violations, leases.

use std::time::Duration;
use strata_core::Error;
use strata_store::testing::TestDb;
use strata_store::{from_sqlx, sqlx, Op, Row};

async fn insert_lease_row(db: &TestDb, name: &str) -> Result<i64, Error> {
    let name = name.to_string();
    db.store
        .write(move |tx| {
            let name = name.clone();
            Box::pin(async move {
                sqlx::query("INSERT INTO leases (name, holder, expires_at) VALUES ($1, 'h', 0)")
                    .bind(&name)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                tx.record("test.lease", &name, Op::Create).await?;
                Ok(tx.revision())
            })
        })
        .await
}

#[tokio::test]
async fn migrations_are_idempotent() {
    for db in TestDb::all().await {
        let again = db.store.migrate().await.unwrap();
        assert!(
            again.is_empty(),
            "{}: re-migrate applied {again:?}",
            db.label
        );
        let applied = db.store.applied_migrations().await.unwrap();
        let want: Vec<i64> = strata_store::migrate::MIGRATIONS
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(applied, want, "{}", db.label);
    }
}

#[tokio::test]
async fn every_write_records_its_revision_in_order() {
    for db in TestDb::all().await {
        let r1 = insert_lease_row(&db, "a").await.unwrap();
        let r2 = insert_lease_row(&db, "b").await.unwrap();
        assert!(r2 > r1, "{}", db.label);
        let changes = db.store.changes_since(0, 100).await.unwrap();
        let ids: Vec<_> = changes
            .iter()
            .map(|c| (c.revision, c.id.as_str(), c.op))
            .collect();
        assert_eq!(
            ids,
            vec![(r1, "a", Op::Create), (r2, "b", Op::Create)],
            "{}",
            db.label
        );
        assert_eq!(db.store.current_revision().await.unwrap(), r2);
        assert!(db.store.changes_since(r2, 100).await.unwrap().is_empty());
        // One query tells a watcher the newest revision and whether its kinds moved.
        let kind = changes[0].kind.clone();
        let prefix = &kind[..kind.len() - 1];
        assert_eq!(db.store.newer_of_kind(0, prefix).await.unwrap(), (r2, true));
        assert_eq!(
            db.store.newer_of_kind(r1, "nope.").await.unwrap(),
            (r2, false)
        );
        assert_eq!(
            db.store.newer_of_kind(r2, prefix).await.unwrap(),
            (r2, false)
        );
    }
}

#[tokio::test]
async fn a_failed_write_leaves_no_row_and_no_change() {
    for db in TestDb::all().await {
        insert_lease_row(&db, "dup").await.unwrap();
        let before = db.store.current_revision().await.unwrap();
        let err = insert_lease_row(&db, "dup").await.unwrap_err();
        assert!(
            matches!(err, Error::AlreadyExists(_)),
            "{}: {err:?}",
            db.label
        );
        assert_eq!(
            db.store.current_revision().await.unwrap(),
            before,
            "{}",
            db.label
        );
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM leases")
            .fetch_one(db.store.pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(n, 1);
    }
}

#[tokio::test]
async fn watch_wakes_on_commit() {
    for db in TestDb::all().await {
        let start = db.store.current_revision().await.unwrap();
        let store = db.store.clone();
        let watcher =
            tokio::spawn(async move { store.watch(start, Duration::from_secs(20)).await });
        // Let the watcher subscribe; the watch reads the table first, so ordering cannot lose
        // the change either way.
        tokio::task::yield_now().await;
        let rev = insert_lease_row(&db, "w").await.unwrap();
        let got = watcher.await.unwrap().unwrap();
        assert_eq!(got.len(), 1, "{}", db.label);
        assert_eq!(got[0].revision, rev);
        assert_eq!(got[0].kind, "test.lease");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_get_distinct_ordered_revisions() {
    for db in TestDb::all().await {
        let mut tasks = Vec::new();
        for i in 0..24 {
            let store = db.store.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("c{i}");
                store
                    .write(move |tx| {
                        let name = name.clone();
                        Box::pin(async move {
                            sqlx::query(
                                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, 'h', 0)",
                            )
                            .bind(&name)
                            .execute(tx.conn())
                            .await
                            .map_err(from_sqlx)?;
                            tx.record("test.lease", &name, Op::Create).await?;
                            Ok(tx.revision())
                        })
                    })
                    .await
            }));
        }
        let mut revs = Vec::new();
        for t in tasks {
            revs.push(t.await.unwrap().unwrap());
        }
        revs.sort();
        revs.dedup();
        assert_eq!(revs.len(), 24, "{}: revisions must be distinct", db.label);
        let changes = db.store.changes_since(0, 100).await.unwrap();
        assert_eq!(changes.len(), 24);
    }
}

#[tokio::test]
async fn leases_have_one_holder_until_expiry() {
    for db in TestDb::all().await {
        let s = &db.store;
        assert!(s.lease_acquire("ctl", "a", 60_000).await.unwrap());
        assert!(
            !s.lease_acquire("ctl", "b", 60_000).await.unwrap(),
            "{}",
            db.label
        );
        assert!(
            s.lease_acquire("ctl", "a", 60_000).await.unwrap(),
            "renewal"
        );
        s.lease_release("ctl", "a").await.unwrap();
        assert!(s.lease_acquire("ctl", "b", 0).await.unwrap());
        // b's lease had a zero ttl: it is already expired, so a may take it.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if s.lease_acquire("ctl", "a", 60_000).await.unwrap() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "expired lease never freed"
            );
            tokio::task::yield_now().await;
        }
    }
}

#[tokio::test]
async fn postgres_replicas_hear_each_others_commits() {
    let Some(url) = strata_store::testing::fresh_postgres_url().await else {
        return;
    };
    let a = strata_store::Store::connect(&url, 2).await.unwrap();
    a.migrate().await.unwrap();
    let b = strata_store::Store::connect(&url, 2).await.unwrap();
    let listener = b.listen().expect("postgres listens");
    let mut rx = b.subscribe();
    // The listener may not have subscribed yet when the first write commits: write until B
    // hears one, within a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    let heard = loop {
        n += 1;
        let name = format!("n{n}");
        let rev = a
            .write(move |tx| {
                let name = name.clone();
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO leases (name, holder, expires_at) VALUES ($1, 'h', 0)",
                    )
                    .bind(&name)
                    .execute(tx.conn())
                    .await
                    .map_err(from_sqlx)?;
                    tx.record("test.lease", &name, Op::Create).await?;
                    Ok(tx.revision())
                })
            })
            .await
            .unwrap();
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(500), rx.wait_for(|r| *r >= rev)).await
        {
            break rev;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B never heard A's commits"
        );
    };
    assert_eq!(*b.subscribe().borrow(), heard);
    listener.abort();
}
