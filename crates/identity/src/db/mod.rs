//! Queries. One file per resource; every mutation runs inside [`strata_store::Store::write`] and
//! records its change. Functions taking `&mut AnyConnection` run inside a caller's transaction.

pub mod access_rules;
pub mod app_creds;
pub mod assignments;
pub mod catalog;
pub mod credentials;
pub mod domain_config;
pub mod domains;
pub mod endpoint_groups;
pub mod groups;
pub mod keys;
pub mod policies;
pub mod projects;
pub mod roles;
pub mod trusts;
pub mod users;

use strata_core::Error;
use strata_store::{from_sqlx, sqlx, AnyRow, Row, Store};

/// Change-log kinds of the identity service.
pub mod kind {
    pub const DOMAIN: &str = "identity.domain";
    pub const PROJECT: &str = "identity.project";
    pub const USER: &str = "identity.user";
    pub const GROUP: &str = "identity.group";
    pub const ROLE: &str = "identity.role";
    pub const ASSIGNMENT: &str = "identity.assignment";
    pub const REGION: &str = "identity.region";
    pub const SERVICE: &str = "identity.service";
    pub const ENDPOINT: &str = "identity.endpoint";
    pub const DOMAIN_CONFIG: &str = "identity.domain_config";
    pub const ENDPOINT_GROUP: &str = "identity.endpoint_group";
    /// Ids are `<project_id>/<endpoint_id>`.
    pub const PROJECT_ENDPOINT: &str = "identity.project_endpoint";
    /// Ids are `<project_id>/<endpoint_group_id>`.
    pub const PROJECT_ENDPOINT_GROUP: &str = "identity.project_endpoint_group";
    pub const APP_CRED: &str = "identity.application_credential";
    pub const ACCESS_RULE: &str = "identity.access_rule";
    pub const CREDENTIAL: &str = "identity.credential";
    pub const POLICY: &str = "identity.policy";
    pub const CONSUMER: &str = "identity.oauth_consumer";
    pub const TRUST: &str = "identity.trust";
    pub const REVOCATION: &str = "identity.revocation";
    pub const KEY: &str = "identity.signing_key";
}

pub(crate) fn s(row: &AnyRow, col: &str) -> Result<String, Error> {
    row.try_get::<String, _>(col).map_err(from_sqlx)
}

pub(crate) fn i(row: &AnyRow, col: &str) -> Result<i64, Error> {
    row.try_get::<i64, _>(col).map_err(from_sqlx)
}

pub(crate) fn json(row: &AnyRow, col: &str) -> Result<serde_json::Value, Error> {
    let t = s(row, col)?;
    serde_json::from_str(&t).map_err(|e| Error::internal(format!("column {col}: {e}")))
}

/// A `WHERE` clause built from optional filters, with `$N` placeholders for string binds.
#[derive(Default)]
pub struct Where {
    clauses: Vec<String>,
    pub binds: Vec<String>,
}

impl Where {
    /// Adds `col = $n` for a TEXT column (binds are strings: for BIGINT columns such as the 0/1
    /// booleans use [`Where::literal`], PostgreSQL does not compare BIGINT with TEXT).
    pub fn eq(&mut self, col: &str, v: impl Into<String>) -> &mut Self {
        self.binds.push(v.into());
        self.clauses.push(format!("{col} = ${}", self.binds.len()));
        self
    }
    /// Adds `col IS NULL`.
    pub fn is_null(&mut self, col: &str) -> &mut Self {
        self.clauses.push(format!("{col} IS NULL"));
        self
    }
    /// Adds a raw clause with one bind, written with `{}` where the placeholder goes.
    pub fn raw(&mut self, clause: &str, v: impl Into<String>) -> &mut Self {
        self.binds.push(v.into());
        self.clauses
            .push(clause.replace("{}", &format!("${}", self.binds.len())));
        self
    }
    /// Adds a clause without binds.
    pub fn literal(&mut self, clause: &str) -> &mut Self {
        self.clauses.push(clause.to_string());
        self
    }
    /// Adds `col IN (...)`; an empty list matches nothing.
    pub fn one_of(&mut self, col: &str, vs: &[String]) -> &mut Self {
        if vs.is_empty() {
            self.clauses.push("1 = 0".into());
            return self;
        }
        let mut ph = Vec::new();
        for v in vs {
            self.binds.push(v.clone());
            ph.push(format!("${}", self.binds.len()));
        }
        self.clauses.push(format!("{col} IN ({})", ph.join(", ")));
        self
    }
    /// Runs `select` (a `SELECT … FROM …` without `WHERE`) with these clauses and binds, then
    /// `tail` (an `ORDER BY …`), returning the rows.
    pub async fn fetch(
        &self,
        store: &Store,
        select: &str,
        tail: &str,
    ) -> Result<Vec<AnyRow>, Error> {
        let sql = format!("{select}{} {tail}", self.sql());
        let mut q = sqlx::query(&sql);
        for b in &self.binds {
            q = q.bind(b);
        }
        q.fetch_all(store.pool()).await.map_err(from_sqlx)
    }

    /// ` WHERE a AND b` or the empty string.
    pub fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// Keystone's `name__contains` style filters: turns a value into a LIKE pattern.
pub fn like_escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
