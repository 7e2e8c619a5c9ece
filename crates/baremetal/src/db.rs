//! Queries of nodes and ports. A node or port row is its JSON document plus the columns lists
//! filter, sort and page on; [`save_node`] and [`save_port`] write both from the record and
//! record the change (`baremetal.node`, `baremetal.port`) in the same transaction.

use crate::model::{Node, Port};
use serde::de::DeserializeOwned;
use strata_core::{time::now_micros, Error, Result};
use strata_store::{from_sqlx, sqlx, AnyRow, Op, Row, Store, Tx};

/// Change-log kinds.
pub const NODE: &str = "baremetal.node";
pub const PORT: &str = "baremetal.port";

fn doc<T: DeserializeOwned>(r: &AnyRow) -> Result<T> {
    let s: String = r.try_get("doc").map_err(from_sqlx)?;
    serde_json::from_str(&s).map_err(|e| Error::internal(format!("baremetal document: {e}")))
}

fn to_doc<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::internal(e.to_string()))
}

// ------------------------------------------------------------------ nodes

/// The next `id` for a new node or port.
pub async fn next_seq(tx: &mut Tx, table: &str) -> Result<i64> {
    let r = sqlx::query(&format!("SELECT COALESCE(MAX(seq), 0) AS m FROM {table}"))
        .fetch_one(tx.conn())
        .await
        .map_err(from_sqlx)?;
    Ok(r.try_get::<i64, _>("m").map_err(from_sqlx)? + 1)
}

/// The columns written from a node on every save, in bind order (after the key columns).
const NODE_SAVED: &[&str] = &[
    "name",
    "driver",
    "provision_state",
    "power_state",
    "maintenance",
    "instance_uuid",
    "instance_name",
    "resource_class",
    "conductor_group",
    "owner",
    "lessee",
    "fault",
    "retired",
    "shard",
    "parent_node",
    "description",
    "reservation",
    "work_due",
    "updated_at",
    "provision_updated_at",
    "doc",
];

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds [`NODE_SAVED`] from `n`, in order.
fn bind_node<'q>(q: AnyQuery<'q>, n: &'q Node, doc: String) -> AnyQuery<'q> {
    q.bind(n.name.as_deref())
        .bind(&n.driver)
        .bind(&n.provision_state)
        .bind(n.power_state.as_deref())
        .bind(n.maintenance as i64)
        .bind(n.instance_uuid.as_deref())
        .bind(n.instance_name.as_deref())
        .bind(n.resource_class.as_deref())
        .bind(&n.conductor_group)
        .bind(n.owner.as_deref())
        .bind(n.lessee.as_deref())
        .bind(n.fault.as_deref())
        .bind(n.retired as i64)
        .bind(n.shard.as_deref())
        .bind(n.parent_node.as_deref())
        .bind(n.description.as_deref())
        .bind(n.reservation.as_deref())
        .bind(n.work.as_ref().map(|w| w.due))
        .bind(n.updated_at)
        .bind(n.provision_updated_at)
        .bind(doc)
}

/// `$from, $from+1, …` for `n` placeholders.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts a new node.
pub async fn insert_node(tx: &mut Tx, n: &Node) -> Result<()> {
    let sql = format!(
        "INSERT INTO baremetal_node (uuid, seq, created_at, {}) VALUES ($1, $2, $3, {})",
        NODE_SAVED.join(", "),
        placeholders(4, NODE_SAVED.len())
    );
    let q = sqlx::query(&sql)
        .bind(&n.uuid)
        .bind(n.id)
        .bind(n.created_at);
    bind_node(q, n, to_doc(n)?)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    tx.record(NODE, &n.uuid, Op::Create).await
}

/// Writes `n` over its row, stamping `updated_at`.
pub async fn save_node(tx: &mut Tx, n: &mut Node) -> Result<()> {
    let now = now_micros();
    n.updated_at = Some(now.max(n.updated_at.unwrap_or(0) + 1));
    let sets: Vec<String> = NODE_SAVED
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ${}", i + 2))
        .collect();
    let sql = format!(
        "UPDATE baremetal_node SET {} WHERE uuid = $1",
        sets.join(", ")
    );
    let doc = to_doc(&*n)?;
    let n: &Node = n;
    bind_node(sqlx::query(&sql).bind(&n.uuid), n, doc)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    tx.record(NODE, &n.uuid, Op::Update).await
}

/// Deletes a node and its ports.
pub async fn delete_node(tx: &mut Tx, uuid: &str) -> Result<()> {
    let ports = sqlx::query("SELECT uuid FROM baremetal_port WHERE node_uuid = $1")
        .bind(uuid)
        .fetch_all(tx.conn())
        .await
        .map_err(from_sqlx)?;
    for p in ports {
        let id: String = p.try_get("uuid").map_err(from_sqlx)?;
        sqlx::query("DELETE FROM baremetal_port WHERE uuid = $1")
            .bind(&id)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
        tx.record(PORT, &id, Op::Delete).await?;
    }
    sqlx::query("DELETE FROM baremetal_node WHERE uuid = $1")
        .bind(uuid)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    tx.record(NODE, uuid, Op::Delete).await
}

/// The document of the row of `table` with `uuid`, through `ex` (the pool, or a write's
/// connection).
async fn by_uuid<'e, T, E>(ex: E, table: &str, uuid: &str) -> Result<Option<T>>
where
    T: DeserializeOwned,
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql = match table {
        "baremetal_node" => "SELECT doc FROM baremetal_node WHERE uuid = $1",
        _ => "SELECT doc FROM baremetal_port WHERE uuid = $1",
    };
    let r = sqlx::query(sql)
        .bind(uuid)
        .fetch_optional(ex)
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(doc).transpose()
}

/// A node by UUID.
pub async fn get_node(store: &Store, uuid: &str) -> Result<Option<Node>> {
    by_uuid(store.pool(), "baremetal_node", uuid).await
}

/// A node by UUID, inside a write.
pub async fn get_node_tx(tx: &mut Tx, uuid: &str) -> Result<Option<Node>> {
    by_uuid(tx.conn(), "baremetal_node", uuid).await
}

/// The UUID of the row of `table` whose `column` is `value` (a node's `name` or
/// `instance_uuid`, a port's `address` or `name`), inside a write.
pub async fn uuid_by(
    tx: &mut Tx,
    table: &str,
    column: &str,
    value: &str,
) -> Result<Option<String>> {
    let sql = match (table, column) {
        ("baremetal_node", "name") => "SELECT uuid FROM baremetal_node WHERE name = $1",
        ("baremetal_node", "instance_uuid") => {
            "SELECT uuid FROM baremetal_node WHERE instance_uuid = $1"
        }
        ("baremetal_port", "address") => "SELECT uuid FROM baremetal_port WHERE address = $1",
        ("baremetal_port", "name") => "SELECT uuid FROM baremetal_port WHERE name = $1",
        _ => return Err(Error::internal(format!("no lookup of {table} by {column}"))),
    };
    let r = sqlx::query(sql)
        .bind(value)
        .fetch_optional(tx.conn())
        .await
        .map_err(from_sqlx)?;
    r.map(|r| r.try_get::<String, _>("uuid").map_err(from_sqlx))
        .transpose()
}

/// A node by name.
pub async fn get_node_by_name(store: &Store, name: &str) -> Result<Option<Node>> {
    let r = sqlx::query("SELECT doc FROM baremetal_node WHERE name = $1")
        .bind(name)
        .fetch_optional(store.pool())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(doc).transpose()
}

/// Nodes whose conductor work is due at `now`, oldest due first.
pub async fn due_nodes(store: &Store, now: i64, limit: i64) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT uuid FROM baremetal_node WHERE work_due IS NOT NULL AND work_due <= $1 \
         ORDER BY work_due LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("uuid").map_err(from_sqlx))
        .collect()
}

/// When the next conductor work is due (any node), if any is pending.
pub async fn next_due(store: &Store) -> Result<Option<i64>> {
    let r = sqlx::query(
        "SELECT CAST(MIN(work_due) AS BIGINT) AS d FROM baremetal_node WHERE work_due IS NOT NULL",
    )
    .fetch_one(store.pool())
    .await
    .map_err(from_sqlx)?;
    Ok(strata_store::get_opt_i64(&r, "d"))
}

/// Nodes holding a reservation but owing no work: locks a dead process left behind.
pub async fn reserved_without_work(store: &Store) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT uuid FROM baremetal_node WHERE reservation IS NOT NULL AND work_due IS NULL",
    )
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("uuid").map_err(from_sqlx))
        .collect()
}

/// Every node (the power-state sync reads them all; at 10,000 nodes this is one query).
pub async fn all_nodes(store: &Store) -> Result<Vec<Node>> {
    let rows = sqlx::query("SELECT doc FROM baremetal_node ORDER BY seq")
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter().map(doc).collect()
}

/// A list query: `where` clauses on columns (`$N` placeholders bound from `binds` in order),
/// a sort column, direction, a marker's `(sort value, seq)` and a limit.
pub struct ListQuery {
    pub wheres: Vec<String>,
    pub binds: Vec<Bind>,
    /// A column of the table, already checked.
    pub sort: &'static str,
    /// Whether the sort column is text (NULLs sort as '') or a number (NULLs as 0).
    pub sort_text: bool,
    pub desc: bool,
    pub marker: Option<(Bind, i64)>,
    pub limit: i64,
}

/// A value bound to a list query.
#[derive(Debug, Clone)]
pub enum Bind {
    Text(String),
    Int(i64),
}

impl ListQuery {
    pub fn new(sort: &'static str, sort_text: bool, desc: bool, limit: i64) -> ListQuery {
        ListQuery {
            wheres: Vec::new(),
            binds: Vec::new(),
            sort,
            sort_text,
            desc,
            marker: None,
            limit,
        }
    }

    /// Adds `clause`, whose `?` placeholders take `binds` in order.
    pub fn filter(&mut self, clause: &str, binds: Vec<Bind>) {
        let mut out = String::new();
        let mut n = self.binds.len();
        for c in clause.chars() {
            if c == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(c);
            }
        }
        self.wheres.push(out);
        self.binds.extend(binds);
    }

    fn sort_expr(&self) -> String {
        if self.sort == "seq" {
            "seq".to_string()
        } else if self.sort_text {
            format!("COALESCE({}, '')", self.sort)
        } else {
            format!("COALESCE({}, 0)", self.sort)
        }
    }

    async fn run(mut self, store: &Store, table: &str) -> Result<Vec<AnyRow>> {
        let expr = self.sort_expr();
        let cmp = if self.desc { "<" } else { ">" };
        let dir = if self.desc { "DESC" } else { "ASC" };
        if let Some((v, seq)) = self.marker.take() {
            let n = self.binds.len();
            if self.sort == "seq" {
                self.wheres.push(format!("seq {cmp} ${}", n + 1));
                self.binds.push(Bind::Int(seq));
            } else {
                self.wheres.push(format!(
                    "({expr} {cmp} ${a} OR ({expr} = ${a} AND seq {cmp} ${b}))",
                    a = n + 1,
                    b = n + 2
                ));
                self.binds.push(v);
                self.binds.push(Bind::Int(seq));
            }
        }
        let mut sql = format!("SELECT doc FROM {table}");
        if !self.wheres.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&self.wheres.join(" AND "));
        }
        sql.push_str(&format!(
            " ORDER BY {expr} {dir}, seq {dir} LIMIT {}",
            self.limit
        ));
        let mut q = sqlx::query(&sql);
        for b in &self.binds {
            q = match b {
                Bind::Text(s) => q.bind(s.clone()),
                Bind::Int(i) => q.bind(*i),
            };
        }
        q.fetch_all(store.pool()).await.map_err(from_sqlx)
    }
}

/// Nodes matching `q`.
pub async fn list_nodes(store: &Store, q: ListQuery) -> Result<Vec<Node>> {
    q.run(store, "baremetal_node")
        .await?
        .iter()
        .map(doc)
        .collect()
}

/// Ports matching `q`.
pub async fn list_ports(store: &Store, q: ListQuery) -> Result<Vec<Port>> {
    q.run(store, "baremetal_port")
        .await?
        .iter()
        .map(doc)
        .collect()
}

// ------------------------------------------------------------------ ports

const PORT_COLS: &str =
    "uuid, seq, address, name, node_uuid, description, created_at, updated_at, doc";

pub async fn insert_port(tx: &mut Tx, p: &Port) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO baremetal_port ({PORT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&p.uuid)
    .bind(p.id)
    .bind(&p.address)
    .bind(p.name.as_deref())
    .bind(&p.node_uuid)
    .bind(p.description.as_deref())
    .bind(p.created_at)
    .bind(p.updated_at)
    .bind(to_doc(p)?)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(PORT, &p.uuid, Op::Create).await
}

pub async fn save_port(tx: &mut Tx, p: &mut Port) -> Result<()> {
    let now = now_micros();
    p.updated_at = Some(now.max(p.updated_at.unwrap_or(0) + 1));
    sqlx::query(
        "UPDATE baremetal_port SET address = $2, name = $3, node_uuid = $4, updated_at = $5, \
         doc = $6, description = $7 WHERE uuid = $1",
    )
    .bind(&p.uuid)
    .bind(&p.address)
    .bind(p.name.as_deref())
    .bind(&p.node_uuid)
    .bind(p.updated_at)
    .bind(to_doc(&*p)?)
    .bind(p.description.as_deref())
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(PORT, &p.uuid, Op::Update).await
}

pub async fn delete_port(tx: &mut Tx, uuid: &str) -> Result<()> {
    sqlx::query("DELETE FROM baremetal_port WHERE uuid = $1")
        .bind(uuid)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    tx.record(PORT, uuid, Op::Delete).await
}

pub async fn get_port(store: &Store, uuid: &str) -> Result<Option<Port>> {
    by_uuid(store.pool(), "baremetal_port", uuid).await
}

pub async fn get_port_tx(tx: &mut Tx, uuid: &str) -> Result<Option<Port>> {
    by_uuid(tx.conn(), "baremetal_port", uuid).await
}

/// A port by name.
pub async fn get_port_by_name(store: &Store, name: &str) -> Result<Option<Port>> {
    let r = sqlx::query("SELECT doc FROM baremetal_port WHERE name = $1")
        .bind(name)
        .fetch_optional(store.pool())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(doc).transpose()
}

/// The node owning a port with one of `addresses` (the ramdisk lookup).
pub async fn node_by_port_addresses(store: &Store, addresses: &[String]) -> Result<Option<String>> {
    for a in addresses {
        let r = sqlx::query("SELECT node_uuid FROM baremetal_port WHERE address = $1")
            .bind(a)
            .fetch_optional(store.pool())
            .await
            .map_err(from_sqlx)?;
        if let Some(r) = r {
            return Ok(Some(r.try_get("node_uuid").map_err(from_sqlx)?));
        }
    }
    Ok(None)
}
