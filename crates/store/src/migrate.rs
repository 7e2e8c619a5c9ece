//! Migrations: numbered, one change per file, applied in order inside a transaction each,
//! recorded in `schema_migrations`. A migration is portable SQL unless it has per-dialect
//! variants. Applying is idempotent and safe to race between replicas on PostgreSQL (an advisory
//! lock serialises them).

use crate::{from_sqlx, Dialect, Store};
use sqlx::{Executor, Row};
use strata_core::{time::now_micros, Result};

/// One migration. `sqlite`/`postgres` override `sql` for that dialect.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
    pub sqlite: Option<&'static str>,
    pub postgres: Option<&'static str>,
}

macro_rules! portable {
    ($v:expr, $name:literal) => {
        Migration {
            version: $v,
            name: $name,
            sql: include_str!(concat!("../migrations/", $name, ".sql")),
            sqlite: None,
            postgres: None,
        }
    };
}

/// Every migration, in order. Add new ones at the end; never edit an applied one.
pub const MIGRATIONS: &[Migration] = &[
    portable!(1, "0001_change_log"),
    portable!(2, "0002_leases"),
    portable!(3, "0003_identity"),
    portable!(4, "0004_identity_credentials"),
    portable!(5, "0005_identity_domain_config_ep_filter"),
    portable!(6, "0006_identity_trusts"),
    portable!(7, "0007_identity_access_rules"),
    portable!(8, "0008_image"),
    portable!(9, "0009_image_members"),
    portable!(10, "0010_volume"),
    portable!(11, "0011_network"),
    Migration {
        version: 12,
        name: "0012_network_index",
        sql: include_str!("../migrations/0012_network_index.sql"),
        sqlite: None,
        postgres: Some(include_str!(
            "../migrations/0012_network_index.postgres.sql"
        )),
    },
    portable!(13, "0013_placement"),
    portable!(14, "0014_compute"),
    portable!(15, "0015_compute_hosts"),
    portable!(16, "0016_compute_servers"),
    portable!(17, "0017_compute_scale"),
    portable!(18, "0018_compute_migrations"),
    portable!(19, "0019_compute_aggregates"),
    portable!(20, "0020_compute_server_move_host"),
    portable!(21, "0021_baremetal"),
];

impl Store {
    /// Applies pending migrations; returns the versions applied.
    pub async fn migrate(&self) -> Result<Vec<i64>> {
        let mut conn = self.pool().acquire().await.map_err(from_sqlx)?;
        if self.dialect() == Dialect::Postgres {
            conn.execute("SELECT pg_advisory_lock(7270736961)")
                .await
                .map_err(from_sqlx)?;
        }
        let result = self.migrate_on(&mut conn).await;
        if self.dialect() == Dialect::Postgres {
            let _ = conn.execute("SELECT pg_advisory_unlock(7270736961)").await;
        }
        result
    }

    async fn migrate_on(&self, conn: &mut sqlx::AnyConnection) -> Result<Vec<i64>> {
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, \
             name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .await
        .map_err(from_sqlx)?;
        let rows = sqlx::query("SELECT version FROM schema_migrations")
            .fetch_all(&mut *conn)
            .await
            .map_err(from_sqlx)?;
        let done: Vec<i64> = rows
            .iter()
            .filter_map(|r| r.try_get("version").ok())
            .collect();
        let mut applied = Vec::new();
        for m in MIGRATIONS {
            if done.contains(&m.version) {
                continue;
            }
            let sql = match self.dialect() {
                Dialect::Sqlite => m.sqlite.unwrap_or(m.sql),
                Dialect::Postgres => m.postgres.unwrap_or(m.sql),
            };
            let mut tx = sqlx::Connection::begin(&mut *conn)
                .await
                .map_err(from_sqlx)?;
            sqlx::raw_sql(sql)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(now_micros())
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
            tx.commit().await.map_err(from_sqlx)?;
            tracing::info!(version = m.version, name = m.name, "applied migration");
            applied.push(m.version);
        }
        Ok(applied)
    }

    /// Versions recorded as applied.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>> {
        let rows = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(self.pool())
            .await
            .map_err(from_sqlx)?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get("version").ok())
            .collect())
    }
}
