//! Databases for tests: a fresh SQLite file, and a fresh database on the PostgreSQL server named
//! by `STRATA_TEST_POSTGRES_URL` (which `.ci/run` starts). Every store test runs on both; when
//! the variable is unset outside CI, PostgreSQL cases are reported and skipped, and under
//! `CI=true` a missing server fails the test.

use crate::Store;
use sqlx::Executor;

/// A migrated store plus whatever keeps it alive.
pub struct TestDb {
    pub store: Store,
    pub label: &'static str,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A migrated store on a new SQLite file in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/test.db", dir.path().display());
        let store = Store::connect(&url, 8).await.expect("connect sqlite");
        store.migrate().await.expect("migrate sqlite");
        TestDb {
            store,
            label: "sqlite",
            _dir: Some(dir),
        }
    }

    /// A migrated store on a new database of the test PostgreSQL server, or `None` when no
    /// server is configured (and we are not in CI).
    pub async fn postgres() -> Option<TestDb> {
        let url = fresh_postgres_url().await?;
        let store = Store::connect(&url, 8).await.expect("connect");
        store.migrate().await.expect("migrate postgres");
        Some(TestDb {
            store,
            label: "postgres",
            _dir: None,
        })
    }

    /// Both backends (PostgreSQL only when configured).
    pub async fn all() -> Vec<TestDb> {
        let mut v = vec![TestDb::sqlite().await];
        if let Some(pg) = TestDb::postgres().await {
            v.push(pg);
        }
        v
    }
}

/// The URL of a new, empty database on the test PostgreSQL server named by
/// `STRATA_TEST_POSTGRES_URL`, or `None` when it is unset (a failure under `CI=true`).
pub async fn fresh_postgres_url() -> Option<String> {
    let Ok(base) = std::env::var("STRATA_TEST_POSTGRES_URL") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but STRATA_TEST_POSTGRES_URL is not set");
        }
        eprintln!("STRATA_TEST_POSTGRES_URL unset: skipping the PostgreSQL case");
        return None;
    };
    let admin = Store::connect(&base, 1).await.expect("connect postgres");
    let name = format!("strata_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .pool()
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");
    admin.close().await;
    let (head, _) = base.rsplit_once('/').expect("postgres url has a database");
    Some(format!("{head}/{name}"))
}
