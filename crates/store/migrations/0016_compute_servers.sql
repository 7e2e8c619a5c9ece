-- Compute servers (Nova instances), their instance actions with events, and server groups.
-- A server is a JSON document (`doc`: the request, what the controller realised, the desired
-- state its host's agent follows) with the columns queries filter and sort on beside it.
-- `seq` numbers servers for their hypervisor names (`instance-0000002a`); `on_host` says the
-- host's agent should run the guest; `pending` that the lifecycle controller has a step to run;
-- `vcpus` and `memory_mb` (the flavor's) are summed for quotas. `compute_host_rev` holds, per
-- host, the change-log revision of the last change of what its agent is given (a server
-- placed on, changed on or leaving the host), which agents long-poll on. Soft-deleted rows
-- (`deleted` = 1) stay for `deleted=True` listings and `changes-since`. Times are microseconds since the epoch.

CREATE TABLE compute_server (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    host TEXT,
    vm_state TEXT NOT NULL,
    task_state TEXT,
    on_host BIGINT NOT NULL,
    pending BIGINT NOT NULL,
    vcpus BIGINT NOT NULL,
    memory_mb BIGINT NOT NULL,
    deleted BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT,
    doc TEXT NOT NULL
);
CREATE INDEX compute_server_project ON compute_server (project_id, deleted, created_at);
CREATE INDEX compute_server_host ON compute_server (host, on_host);
CREATE INDEX compute_server_pending ON compute_server (pending);
CREATE INDEX compute_server_updated ON compute_server (updated_at);

CREATE TABLE compute_host_rev (
    host TEXT PRIMARY KEY,
    rev BIGINT NOT NULL
);

CREATE TABLE compute_instance_action (
    instance_uuid TEXT NOT NULL,
    request_id TEXT NOT NULL,
    action TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    start_time BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    message TEXT,
    events TEXT NOT NULL,
    PRIMARY KEY (instance_uuid, request_id)
);

CREATE TABLE compute_server_group (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    policy TEXT NOT NULL,
    rules TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX compute_server_group_project ON compute_server_group (project_id);

CREATE TABLE compute_server_group_member (
    group_id TEXT NOT NULL,
    server_id TEXT NOT NULL,
    PRIMARY KEY (group_id, server_id)
);
CREATE INDEX compute_server_group_member_server ON compute_server_group_member (server_id);
