//! Queries of servers, instance actions and server groups. Every change of a server goes
//! through [`save`] inside a store write: it writes the row's columns from the document,
//! records `compute.server`, and bumps the revision of every host whose agent sees the change
//! (the old host and the new one when a server moves or leaves).

use crate::server::{task, Server};
use serde::{Deserialize, Serialize};
use strata_core::{time::now_micros, Error, Result};
use strata_store::{from_sqlx, sqlx, AnyRow, Op, Row, Store, Tx};

/// Change-log kinds.
pub const SERVER: &str = "compute.server";
pub const ACTION: &str = "compute.instance_action";
pub const GROUP: &str = "compute.server_group";

const COLS: &str = "doc";

fn doc_of(r: &AnyRow) -> Result<Server> {
    let s: String = r.try_get("doc").map_err(from_sqlx)?;
    serde_json::from_str(&s).map_err(|e| Error::internal(format!("server document: {e}")))
}

/// Whether the controller has a step to run for `s`.
pub fn pending(s: &Server) -> bool {
    if s.deleted {
        return false;
    }
    s.cleanup
        || s.volume_work()
        || matches!(
            s.task_state.as_deref(),
            Some(task::SCHEDULING | task::NETWORKING | task::BLOCK_DEVICE_MAPPING | task::DELETING)
        )
        || crate::moves::pending(s)
}

/// What a host's agent sees of a server: a change of it wakes the agent (of the server's host
/// and of the second host of a move).
fn agent_view(s: &Server) -> (Option<&str>, bool, i64, Option<&str>) {
    (
        s.host.as_deref(),
        s.on_host && !s.deleted,
        s.generation,
        s.move_host(),
    )
}

async fn bump_host(tx: &mut Tx, host: &str) -> Result<()> {
    let rev = tx.revision();
    sqlx::query(
        "INSERT INTO compute_host_rev (host, rev) VALUES ($1, $2) \
         ON CONFLICT (host) DO UPDATE SET rev = excluded.rev",
    )
    .bind(host)
    .bind(rev)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    Ok(())
}

/// Inserts a new server.
pub async fn insert(tx: &mut Tx, s: &Server) -> Result<()> {
    let doc = serde_json::to_string(s).map_err(|e| Error::internal(e.to_string()))?;
    sqlx::query(
        "INSERT INTO compute_server (id, seq, project_id, user_id, name, host, vm_state, \
         task_state, on_host, pending, vcpus, memory_mb, deleted, created_at, updated_at, \
         deleted_at, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
         $15, $16, $17)",
    )
    .bind(&s.id)
    .bind(s.seq)
    .bind(&s.project_id)
    .bind(&s.user_id)
    .bind(&s.name)
    .bind(s.host.as_deref())
    .bind(&s.vm_state)
    .bind(s.task_state.as_deref())
    .bind(s.on_host as i64)
    .bind(pending(s) as i64)
    .bind(s.quota_usage().0)
    .bind(s.quota_usage().1)
    .bind(s.deleted as i64)
    .bind(s.created_at)
    .bind(s.updated_at)
    .bind(s.deleted_at)
    .bind(&doc)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(SERVER, &s.id, Op::Create).await?;
    if let Some(h) = s.host.as_deref() {
        bump_host(tx, h).await?;
    }
    Ok(())
}

/// Writes `new` over `old` (the version read in the same transaction), stamping `updated_at`.
pub async fn save(tx: &mut Tx, old: &Server, new: &mut Server) -> Result<()> {
    new.updated_at = now_micros().max(old.updated_at + 1);
    let doc = serde_json::to_string(&*new).map_err(|e| Error::internal(e.to_string()))?;
    sqlx::query(
        "UPDATE compute_server SET name = $2, host = $3, vm_state = $4, task_state = $5, \
         on_host = $6, pending = $7, vcpus = $8, memory_mb = $9, deleted = $10, \
         updated_at = $11, deleted_at = $12, doc = $13, move_host = $14 WHERE id = $1",
    )
    .bind(&new.id)
    .bind(&new.name)
    .bind(new.host.as_deref())
    .bind(&new.vm_state)
    .bind(new.task_state.as_deref())
    .bind(new.on_host as i64)
    .bind(pending(new) as i64)
    .bind(new.quota_usage().0)
    .bind(new.quota_usage().1)
    .bind(new.deleted as i64)
    .bind(new.updated_at)
    .bind(new.deleted_at)
    .bind(&doc)
    .bind(new.move_host())
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(SERVER, &new.id, Op::Update).await?;
    if agent_view(old) != agent_view(new) {
        // Every host that saw the server before or sees it now.
        let mut hosts: Vec<&str> = Vec::new();
        for h in [
            old.host.as_deref(),
            new.host.as_deref(),
            old.move_host(),
            new.move_host(),
        ]
        .into_iter()
        .flatten()
        {
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        for h in hosts {
            bump_host(tx, h).await?;
        }
    }
    if new.migration != old.migration {
        if let Some(m) = &new.migration {
            migration_save(tx, m, new).await?;
        }
    }
    Ok(())
}

/// One server (deleted ones included).
pub async fn get(store: &Store, id: &str) -> Result<Option<Server>> {
    let r = sqlx::query(&format!("SELECT {COLS} FROM compute_server WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(doc_of).transpose()
}

/// One server, read inside a write.
pub async fn get_tx(tx: &mut Tx, id: &str) -> Result<Option<Server>> {
    let r = sqlx::query(&format!("SELECT {COLS} FROM compute_server WHERE id = $1"))
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(from_sqlx)?;
    r.as_ref().map(doc_of).transpose()
}

/// The next instance number.
pub async fn next_seq(tx: &mut Tx) -> Result<i64> {
    let r = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS m FROM compute_server")
        .fetch_one(tx.conn())
        .await
        .map_err(from_sqlx)?;
    Ok(r.try_get::<i64, _>("m").map_err(from_sqlx)? + 1)
}

/// What a project (or one user of it) uses: `(instances, cores, ram)` of its servers that
/// are not deleted.
pub async fn usage(tx: &mut Tx, project: &str, user: Option<&str>) -> Result<(i64, i64, i64)> {
    let (sql, bind_user) = match user {
        Some(_) => (
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS c, CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS r \
             FROM compute_server WHERE project_id = $1 AND user_id = $2 AND deleted = 0",
            true,
        ),
        None => (
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS c, CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS r \
             FROM compute_server WHERE project_id = $1 AND deleted = 0",
            false,
        ),
    };
    let mut q = sqlx::query(sql).bind(project);
    if bind_user {
        q = q.bind(user.unwrap_or_default());
    }
    let r = q.fetch_one(tx.conn()).await.map_err(from_sqlx)?;
    let g = |c: &str| r.try_get::<i64, _>(c).map_err(from_sqlx);
    Ok((g("n")?, g("c")?, g("r")?))
}

/// The rows of a listing: SQL narrows by project, deletion, host, update time and vm_state;
/// the API applies the remaining filters, the sort and the page — unless `page` is set (no
/// other filter, the default order): then SQL pages too.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub project_id: Option<String>,
    /// `Some(false)`: only live servers; `Some(true)`: only deleted ones; `None`: both.
    pub deleted: Option<bool>,
    pub host: Option<String>,
    pub changes_since: Option<i64>,
    pub changes_before: Option<i64>,
    /// Only these `vm_state`s (empty: any).
    pub vm_states: Vec<&'static str>,
    /// Newest first (`created_at`, then id, descending), at most `limit` rows after the
    /// marker `(created_at, id)`.
    pub page: Option<(usize, Option<(i64, String)>)>,
    /// Only this server (to find a marker).
    pub id: Option<String>,
}

pub async fn scan(store: &Store, s: &Scan) -> Result<Vec<Server>> {
    let mut sql = format!("SELECT {COLS} FROM compute_server WHERE 1 = 1");
    let mut n = 0;
    let mut arg = |sql: &mut String, cond: &str| {
        n += 1;
        sql.push_str(&format!(" AND {cond} ${n}"));
    };
    if s.project_id.is_some() {
        arg(&mut sql, "project_id =");
    }
    if let Some(d) = s.deleted {
        sql.push_str(if d {
            " AND deleted = 1"
        } else {
            " AND deleted = 0"
        });
    }
    if s.host.is_some() {
        arg(&mut sql, "host =");
    }
    if s.changes_since.is_some() {
        arg(&mut sql, "updated_at >=");
    }
    if s.changes_before.is_some() {
        arg(&mut sql, "updated_at <=");
    }
    if s.id.is_some() {
        arg(&mut sql, "id =");
    }
    if !s.vm_states.is_empty() {
        // Our own constants, never the caller's text.
        let list: Vec<String> = s.vm_states.iter().map(|v| format!("'{v}'")).collect();
        sql.push_str(&format!(" AND vm_state IN ({})", list.join(", ")));
    }
    if let Some((limit, after)) = &s.page {
        if after.is_some() {
            n += 2;
            sql.push_str(&format!(
                " AND (created_at < ${} OR (created_at = ${} AND id < ${n}))",
                n - 1,
                n - 1
            ));
        }
        sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT {limit}"));
    }
    let mut q = sqlx::query(&sql);
    if let Some(p) = &s.project_id {
        q = q.bind(p);
    }
    if let Some(h) = &s.host {
        q = q.bind(h);
    }
    if let Some(t) = s.changes_since {
        q = q.bind(t);
    }
    if let Some(t) = s.changes_before {
        q = q.bind(t);
    }
    if let Some(id) = &s.id {
        q = q.bind(id);
    }
    if let Some((_, Some((at, id)))) = &s.page {
        q = q.bind(*at).bind(id);
    }
    let rows = q.fetch_all(store.pool()).await.map_err(from_sqlx)?;
    rows.iter().map(doc_of).collect()
}

/// The servers a host's agent should run: those on the host, and those moving to or from it
/// that keep a guest there ([`Server::move_host`]).
pub async fn on_host(store: &Store, host: &str) -> Result<Vec<Server>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM compute_server WHERE ((host = $1 AND on_host = 1) \
         OR move_host = $1) AND deleted = 0 ORDER BY seq"
    ))
    .bind(host)
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(doc_of).collect()
}

/// Live servers on `host` (for power-state sweeps and `os-hypervisors/{id}/servers`).
pub async fn live_on_host(store: &Store, host: &str) -> Result<Vec<Server>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM compute_server WHERE host = $1 AND deleted = 0 ORDER BY seq"
    ))
    .bind(host)
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(doc_of).collect()
}

/// The revision of the last change of what `host`'s agent is given (0: never).
pub async fn host_rev(store: &Store, host: &str) -> Result<i64> {
    let r = sqlx::query("SELECT rev FROM compute_host_rev WHERE host = $1")
        .bind(host)
        .fetch_optional(store.pool())
        .await
        .map_err(from_sqlx)?;
    match r {
        Some(r) => r.try_get::<i64, _>("rev").map_err(from_sqlx),
        None => Ok(0),
    }
}

/// Ids of servers with a controller step to run, oldest first.
pub async fn pending_ids(store: &Store) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM compute_server WHERE pending = 1 ORDER BY seq")
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("id").map_err(from_sqlx))
        .collect()
}

/// Hosts with live servers: `(host, count)`.
pub async fn hosts_in_use(store: &Store) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT host, COUNT(*) AS n FROM compute_server WHERE deleted = 0 AND host IS NOT NULL \
         GROUP BY host",
    )
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("host").map_err(from_sqlx)?,
                r.try_get::<i64, _>("n").map_err(from_sqlx)?,
            ))
        })
        .collect()
}

// ---------------------------------------------------------------- instance actions

/// An event of an instance action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionEvent {
    pub event: String,
    pub start_time: i64,
    pub finish_time: Option<i64>,
    /// `Success` / `Error`, `None` while running.
    pub result: Option<String>,
    pub traceback: Option<String>,
    pub host: Option<String>,
}

/// An instance action (`os-instance-actions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub instance_uuid: String,
    pub request_id: String,
    pub action: String,
    pub project_id: String,
    pub user_id: String,
    pub start_time: i64,
    pub updated_at: i64,
    pub message: Option<String>,
    pub events: Vec<ActionEvent>,
}

fn action_row(r: &AnyRow) -> Result<Action> {
    let s = |c: &str| r.try_get::<String, _>(c).map_err(from_sqlx);
    let i = |c: &str| r.try_get::<i64, _>(c).map_err(from_sqlx);
    Ok(Action {
        instance_uuid: s("instance_uuid")?,
        request_id: s("request_id")?,
        action: s("action")?,
        project_id: s("project_id")?,
        user_id: s("user_id")?,
        start_time: i("start_time")?,
        updated_at: i("updated_at")?,
        message: strata_store::get_opt_str(r, "message"),
        events: serde_json::from_str(&s("events")?)
            .map_err(|e| Error::internal(format!("action events: {e}")))?,
    })
}

/// Starts an action on a server, with its first event (running).
pub async fn action_start(
    tx: &mut Tx,
    s: &Server,
    request_id: &str,
    action: &str,
    user_id: &str,
    event: &str,
) -> Result<()> {
    let now = now_micros();
    let events = vec![ActionEvent {
        event: event.into(),
        start_time: now,
        finish_time: None,
        result: None,
        traceback: None,
        host: s.host.clone(),
    }];
    sqlx::query(
        "INSERT INTO compute_instance_action (instance_uuid, request_id, action, project_id, \
         user_id, start_time, updated_at, message, events) VALUES ($1, $2, $3, $4, $5, $6, $6, \
         NULL, $7) ON CONFLICT (instance_uuid, request_id) DO NOTHING",
    )
    .bind(&s.id)
    .bind(request_id)
    .bind(action)
    .bind(&s.project_id)
    .bind(user_id)
    .bind(now)
    .bind(serde_json::to_string(&events).map_err(|e| Error::internal(e.to_string()))?)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(ACTION, &format!("{}/{request_id}", s.id), Op::Create)
        .await?;
    Ok(())
}

/// The server's newest action.
async fn newest_action(tx: &mut Tx, uuid: &str) -> Result<Option<Action>> {
    let r = sqlx::query(
        "SELECT * FROM compute_instance_action WHERE instance_uuid = $1 \
         ORDER BY start_time DESC, request_id DESC LIMIT 1",
    )
    .bind(uuid)
    .fetch_optional(tx.conn())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(action_row).transpose()
}

/// Marks an event finished at `now`, failed with `error` when given.
fn finish_event(e: &mut ActionEvent, now: i64, error: Option<&str>) {
    e.finish_time = Some(now);
    e.result = Some(if error.is_some() { "Error" } else { "Success" }.into());
    e.traceback = error.map(|m| format!("Traceback (most recent call last):\n  {m}\n"));
}

/// Writes an action's events (and `Error` as its message when `error`).
async fn save_events(tx: &mut Tx, a: &Action, now: i64, error: bool) -> Result<()> {
    sqlx::query(
        "UPDATE compute_instance_action SET events = $3, updated_at = $4, \
         message = COALESCE($5, message) WHERE instance_uuid = $1 AND request_id = $2",
    )
    .bind(&a.instance_uuid)
    .bind(&a.request_id)
    .bind(serde_json::to_string(&a.events).map_err(|e| Error::internal(e.to_string()))?)
    .bind(now)
    .bind(error.then_some("Error"))
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(
        ACTION,
        &format!("{}/{}", a.instance_uuid, a.request_id),
        Op::Update,
    )
    .await
}

/// Finishes the running events of the server's newest action (`error`: the message of the
/// failure, which also becomes the action's `message`).
pub async fn action_finish(tx: &mut Tx, uuid: &str, error: Option<&str>) -> Result<()> {
    let Some(mut a) = newest_action(tx, uuid).await? else {
        return Ok(());
    };
    let now = now_micros();
    let mut changed = false;
    for e in a.events.iter_mut().filter(|e| e.result.is_none()) {
        finish_event(e, now, error);
        changed = true;
    }
    if !changed {
        return Ok(());
    }
    save_events(tx, &a, now, error.is_some()).await
}

/// Adds a finished event to the server's newest action (the scheduler's
/// `conductor_schedule_and_build_instances`, timed from `start` to now); a failed one does
/// not fail the action by itself.
pub async fn action_event_done(
    tx: &mut Tx,
    uuid: &str,
    event: &str,
    start: i64,
    error: Option<&str>,
) -> Result<()> {
    let Some(mut a) = newest_action(tx, uuid).await? else {
        return Ok(());
    };
    let now = now_micros().max(start);
    // Events are listed as they started.
    let at = a
        .events
        .iter()
        .position(|e| e.start_time > start)
        .unwrap_or(a.events.len());
    let mut e = ActionEvent {
        event: event.into(),
        start_time: start,
        finish_time: None,
        result: None,
        traceback: None,
        host: None,
    };
    finish_event(&mut e, now, error);
    a.events.insert(at, e);
    save_events(tx, &a, now, false).await
}

/// Finishes the running `event` of the newest of the server's actions that has one (a volume
/// attach or detach finishing while later actions started); `error` as [`action_finish`].
pub async fn action_finish_event(
    tx: &mut Tx,
    uuid: &str,
    event: &str,
    error: Option<&str>,
) -> Result<()> {
    let rows = sqlx::query(
        "SELECT * FROM compute_instance_action WHERE instance_uuid = $1 \
         ORDER BY start_time DESC, request_id DESC",
    )
    .bind(uuid)
    .fetch_all(tx.conn())
    .await
    .map_err(from_sqlx)?;
    for r in &rows {
        let mut a = action_row(r)?;
        let now = now_micros();
        let mut changed = false;
        for e in a
            .events
            .iter_mut()
            .filter(|e| e.event == event && e.result.is_none())
        {
            finish_event(e, now, error);
            changed = true;
        }
        if !changed {
            continue;
        }
        save_events(tx, &a, now, error.is_some()).await?;
        return Ok(());
    }
    Ok(())
}

/// A server's actions, newest first.
pub async fn actions(store: &Store, uuid: &str) -> Result<Vec<Action>> {
    let rows = sqlx::query(
        "SELECT * FROM compute_instance_action WHERE instance_uuid = $1 \
         ORDER BY start_time DESC, request_id DESC",
    )
    .bind(uuid)
    .fetch_all(store.pool())
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(action_row).collect()
}

// ---------------------------------------------------------------- server groups

/// A server group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: String,
    pub policy: String,
    pub rules: serde_json::Map<String, serde_json::Value>,
    pub created_at: i64,
    pub members: Vec<String>,
}

async fn members(c: &mut strata_store::sqlx::AnyConnection, id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT server_id FROM compute_server_group_member WHERE group_id = $1 ORDER BY server_id",
    )
    .bind(id)
    .fetch_all(c)
    .await
    .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("server_id").map_err(from_sqlx))
        .collect()
}

fn group_row(r: &AnyRow) -> Result<Group> {
    let s = |c: &str| r.try_get::<String, _>(c).map_err(from_sqlx);
    Ok(Group {
        id: s("id")?,
        project_id: s("project_id")?,
        user_id: s("user_id")?,
        name: s("name")?,
        policy: s("policy")?,
        rules: serde_json::from_str(&s("rules")?)
            .map_err(|e| Error::internal(format!("group rules: {e}")))?,
        created_at: r.try_get::<i64, _>("created_at").map_err(from_sqlx)?,
        members: Vec::new(),
    })
}

/// One server group with its members, read inside a write.
pub async fn group_get_tx(tx: &mut Tx, id: &str) -> Result<Option<Group>> {
    let r = sqlx::query("SELECT * FROM compute_server_group WHERE id = $1")
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(from_sqlx)?;
    let Some(r) = r else { return Ok(None) };
    let mut g = group_row(&r)?;
    g.members = members(tx.conn(), id).await?;
    Ok(Some(g))
}

/// One server group with its members.
pub async fn group_get(store: &Store, id: &str) -> Result<Option<Group>> {
    let mut c = store.pool().acquire().await.map_err(from_sqlx)?;
    let r = sqlx::query("SELECT * FROM compute_server_group WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(from_sqlx)?;
    let Some(r) = r else { return Ok(None) };
    let mut g = group_row(&r)?;
    g.members = members(&mut c, id).await?;
    Ok(Some(g))
}

/// Server groups (of one project, or all).
pub async fn groups(store: &Store, project: Option<&str>) -> Result<Vec<Group>> {
    let mut c = store.pool().acquire().await.map_err(from_sqlx)?;
    let rows =
        match project {
            Some(p) => sqlx::query(
                "SELECT * FROM compute_server_group WHERE project_id = $1 ORDER BY created_at, id",
            )
            .bind(p)
            .fetch_all(&mut *c)
            .await,
            None => {
                sqlx::query("SELECT * FROM compute_server_group ORDER BY created_at, id")
                    .fetch_all(&mut *c)
                    .await
            }
        }
        .map_err(from_sqlx)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut g = group_row(r)?;
        g.members = members(&mut c, &g.id).await?;
        out.push(g);
    }
    Ok(out)
}

/// The number of server groups of a project.
pub async fn group_count(tx: &mut Tx, project: &str) -> Result<i64> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM compute_server_group WHERE project_id = $1")
        .bind(project)
        .fetch_one(tx.conn())
        .await
        .map_err(from_sqlx)?;
    r.try_get::<i64, _>("n").map_err(from_sqlx)
}

pub async fn group_insert(tx: &mut Tx, g: &Group) -> Result<()> {
    sqlx::query(
        "INSERT INTO compute_server_group (id, project_id, user_id, name, policy, rules, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&g.id)
    .bind(&g.project_id)
    .bind(&g.user_id)
    .bind(&g.name)
    .bind(&g.policy)
    .bind(serde_json::to_string(&g.rules).map_err(|e| Error::internal(e.to_string()))?)
    .bind(g.created_at)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(GROUP, &g.id, Op::Create).await
}

pub async fn group_delete(tx: &mut Tx, id: &str) -> Result<bool> {
    sqlx::query("DELETE FROM compute_server_group_member WHERE group_id = $1")
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    let n = sqlx::query("DELETE FROM compute_server_group WHERE id = $1")
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
    if n > 0 {
        tx.record(GROUP, id, Op::Delete).await?;
    }
    Ok(n > 0)
}

pub async fn group_add_member(tx: &mut Tx, group: &str, server: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO compute_server_group_member (group_id, server_id) VALUES ($1, $2) \
         ON CONFLICT (group_id, server_id) DO NOTHING",
    )
    .bind(group)
    .bind(server)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(GROUP, group, Op::Update).await
}

/// Removes a server from every group it is in.
pub async fn group_remove_server(tx: &mut Tx, server: &str) -> Result<()> {
    let n = sqlx::query("DELETE FROM compute_server_group_member WHERE server_id = $1")
        .bind(server)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
    if n > 0 {
        tx.record(GROUP, server, Op::Update).await?;
    }
    Ok(())
}

/// The groups a server is in.
pub async fn groups_of_server(store: &Store, server: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT group_id FROM compute_server_group_member WHERE server_id = $1")
        .bind(server)
        .fetch_all(store.pool())
        .await
        .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("group_id").map_err(from_sqlx))
        .collect()
}

// ---------------------------------------------------------------- actions of moves

async fn action_get(tx: &mut Tx, uuid: &str, request_id: &str) -> Result<Option<Action>> {
    let r = sqlx::query(
        "SELECT * FROM compute_instance_action WHERE instance_uuid = $1 AND request_id = $2",
    )
    .bind(uuid)
    .bind(request_id)
    .fetch_optional(tx.conn())
    .await
    .map_err(from_sqlx)?;
    r.as_ref().map(action_row).transpose()
}

/// Starts `event` on the action `request_id` of the server, unless it has one of that name
/// already (so a step run twice records it once).
pub async fn action_event_begin(
    tx: &mut Tx,
    uuid: &str,
    request_id: &str,
    event: &str,
    host: Option<&str>,
) -> Result<()> {
    let Some(mut a) = action_get(tx, uuid, request_id).await? else {
        return Ok(());
    };
    if a.events.iter().any(|e| e.event == event) {
        return Ok(());
    }
    let now = now_micros();
    a.events.push(ActionEvent {
        event: event.into(),
        start_time: now,
        finish_time: None,
        result: None,
        traceback: None,
        host: host.map(String::from),
    });
    save_events(tx, &a, now, false).await
}

/// Finishes the running `event` of the action `request_id` (`error`: failed).
pub async fn action_event_end(
    tx: &mut Tx,
    uuid: &str,
    request_id: &str,
    event: &str,
    error: Option<&str>,
) -> Result<()> {
    let Some(mut a) = action_get(tx, uuid, request_id).await? else {
        return Ok(());
    };
    let now = now_micros();
    let mut changed = false;
    for e in a
        .events
        .iter_mut()
        .filter(|e| e.event == event && e.result.is_none())
    {
        finish_event(e, now, error);
        changed = true;
    }
    if changed {
        save_events(tx, &a, now, error.is_some()).await?;
    }
    Ok(())
}

/// Finishes every running event of the action `request_id` (`error`: failed, and the
/// action's message becomes `Error`).
pub async fn action_end(
    tx: &mut Tx,
    uuid: &str,
    request_id: &str,
    error: Option<&str>,
) -> Result<()> {
    let Some(mut a) = action_get(tx, uuid, request_id).await? else {
        return Ok(());
    };
    let now = now_micros();
    let mut changed = false;
    for e in a.events.iter_mut().filter(|e| e.result.is_none()) {
        finish_event(e, now, error);
        changed = true;
    }
    if changed || error.is_some() {
        save_events(tx, &a, now, error.is_some()).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------- migrations

/// Change-log kind of migration rows.
pub const MIGRATION: &str = "compute.migration";

/// A `compute_migration` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationRow {
    pub id: i64,
    pub uuid: String,
    pub instance_uuid: String,
    pub project_id: String,
    pub user_id: String,
    pub migration_type: String,
    pub status: String,
    pub source_compute: Option<String>,
    pub source_node: Option<String>,
    pub dest_compute: Option<String>,
    pub dest_node: Option<String>,
    pub dest_host: Option<String>,
    pub old_flavor_id: Option<String>,
    pub new_flavor_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn migration_row(r: &AnyRow) -> Result<MigrationRow> {
    let s = |c: &str| r.try_get::<String, _>(c).map_err(from_sqlx);
    let o = |c: &str| strata_store::get_opt_str(r, c);
    let i = |c: &str| r.try_get::<i64, _>(c).map_err(from_sqlx);
    Ok(MigrationRow {
        id: i("id")?,
        uuid: s("uuid")?,
        instance_uuid: s("instance_uuid")?,
        project_id: s("project_id")?,
        user_id: s("user_id")?,
        migration_type: s("migration_type")?,
        status: s("status")?,
        source_compute: o("source_compute"),
        source_node: o("source_node"),
        dest_compute: o("dest_compute"),
        dest_node: o("dest_node"),
        dest_host: o("dest_host"),
        old_flavor_id: o("old_flavor_id"),
        new_flavor_id: o("new_flavor_id"),
        created_at: i("created_at")?,
        updated_at: i("updated_at")?,
    })
}

/// The next migration id.
pub async fn next_migration_id(tx: &mut Tx) -> Result<i64> {
    let r = sqlx::query("SELECT COALESCE(MAX(id), 0) AS m FROM compute_migration")
        .fetch_one(tx.conn())
        .await
        .map_err(from_sqlx)?;
    Ok(r.try_get::<i64, _>("m").map_err(from_sqlx)? + 1)
}

/// Writes the row of move `m` of server `s` (created or updated), stamping `updated_at`.
pub async fn migration_save(tx: &mut Tx, m: &crate::server::Move, s: &Server) -> Result<()> {
    let now = now_micros().max(m.created_at);
    sqlx::query(
        "INSERT INTO compute_migration (id, uuid, instance_uuid, project_id, user_id, \
         migration_type, status, source_compute, source_node, dest_compute, dest_node, \
         dest_host, old_flavor_id, new_flavor_id, created_at, updated_at) VALUES ($1, $2, $3, \
         $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (id) DO UPDATE \
         SET status = excluded.status, dest_compute = excluded.dest_compute, \
         dest_node = excluded.dest_node, dest_host = excluded.dest_host, \
         updated_at = excluded.updated_at",
    )
    .bind(m.id)
    .bind(&m.uuid)
    .bind(&s.id)
    .bind(&s.project_id)
    .bind(&m.user_id)
    .bind(&m.kind)
    .bind(&m.status)
    .bind(&m.source_host)
    .bind(&m.source_node)
    .bind(m.dest_host.as_deref())
    .bind(m.dest_node.as_deref())
    .bind(m.dest_ip.as_deref())
    .bind(&m.old_flavor.id)
    .bind(&m.new_flavor.id)
    .bind(m.created_at)
    .bind(now)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    tx.record(MIGRATION, &m.id.to_string(), Op::Update).await
}

/// What `os-migrations` filters on (SQL); `None` is no filter.
#[derive(Debug, Clone, Default)]
pub struct MigrationFilter {
    pub instance_uuid: Option<String>,
    /// Source or destination.
    pub host: Option<String>,
    pub source_compute: Option<String>,
    pub status: Option<String>,
    pub migration_type: Option<String>,
    pub project_id: Option<String>,
    pub user_id: Option<String>,
    pub changes_since: Option<i64>,
    pub changes_before: Option<i64>,
}

/// Migrations, newest first (`created_at`, then `id`, both descending).
pub async fn migrations(store: &Store, f: &MigrationFilter) -> Result<Vec<MigrationRow>> {
    let mut sql = String::from("SELECT * FROM compute_migration WHERE 1 = 1");
    let mut binds: Vec<Value> = Vec::new();
    let mut add = |sql: &mut String, cond: &str, v: Value| {
        binds.push(v);
        let n = binds.len();
        sql.push_str(&cond.replace("$N", &format!("${n}")));
    };
    if let Some(v) = &f.instance_uuid {
        add(&mut sql, " AND instance_uuid = $N", Value::S(v.clone()));
    }
    if let Some(v) = &f.host {
        add(
            &mut sql,
            " AND (source_compute = $N OR dest_compute = $N)",
            Value::S(v.clone()),
        );
    }
    if let Some(v) = &f.source_compute {
        add(&mut sql, " AND source_compute = $N", Value::S(v.clone()));
    }
    if let Some(v) = &f.status {
        add(&mut sql, " AND status = $N", Value::S(v.clone()));
    }
    if let Some(v) = &f.migration_type {
        add(&mut sql, " AND migration_type = $N", Value::S(v.clone()));
    }
    if let Some(v) = &f.project_id {
        add(&mut sql, " AND project_id = $N", Value::S(v.clone()));
    }
    if let Some(v) = &f.user_id {
        add(&mut sql, " AND user_id = $N", Value::S(v.clone()));
    }
    if let Some(v) = f.changes_since {
        add(&mut sql, " AND updated_at >= $N", Value::I(v));
    }
    if let Some(v) = f.changes_before {
        add(&mut sql, " AND updated_at <= $N", Value::I(v));
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC");
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = match b {
            Value::S(s) => q.bind(s.clone()),
            Value::I(i) => q.bind(*i),
        };
    }
    let rows = q.fetch_all(store.pool()).await.map_err(from_sqlx)?;
    rows.iter().map(migration_row).collect()
}

enum Value {
    S(String),
    I(i64),
}
