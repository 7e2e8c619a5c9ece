//! Leases: a row per name held by one holder until it expires. Controllers use them to elect one
//! leader per kind among control-plane replicas.

use crate::{from_sqlx, Store};
use strata_core::{time::now_micros, Result};

impl Store {
    /// Takes or renews the lease `name` for `holder` for `ttl_ms` milliseconds. Returns whether
    /// `holder` holds it afterwards. Idempotent: renewing one's own lease extends it.
    pub async fn lease_acquire(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<bool> {
        let now = now_micros();
        let until = now + ttl_ms * 1000;
        let name = name.to_string();
        let holder = holder.to_string();
        self.write(move |tx| {
            let (name, holder) = (name.clone(), holder.clone());
            Box::pin(async move {
                let updated = sqlx::query(
                    "UPDATE leases SET holder = $1, expires_at = $2 \
                     WHERE name = $3 AND (holder = $1 OR expires_at < $4)",
                )
                .bind(&holder)
                .bind(until)
                .bind(&name)
                .bind(now)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if updated == 1 {
                    return Ok(true);
                }
                let inserted = sqlx::query(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(&name)
                .bind(&holder)
                .bind(until)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                Ok(inserted == 1)
            })
        })
        .await
    }

    /// Gives up `name` if `holder` holds it. Idempotent.
    pub async fn lease_release(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(self.pool())
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }
}
