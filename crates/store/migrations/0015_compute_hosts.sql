-- Compute hosts: the nova-compute service of each host (enabled/disabled, forced down, last
-- heartbeat) and its node (what the hypervisor offers, as the agent registered it, as a JSON
-- document). The node's id is the host's root resource provider in placement. Times are
-- microseconds since the epoch.

CREATE TABLE compute_service (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    binary_name TEXT NOT NULL,
    zone TEXT NOT NULL,
    disabled BIGINT NOT NULL,
    disabled_reason TEXT,
    forced_down BIGINT NOT NULL,
    last_seen_up BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (host, binary_name)
);

CREATE TABLE compute_node (
    id TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    host TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
