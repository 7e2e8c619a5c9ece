-- Compute host aggregates (Nova's `os-aggregates`): an integer id (never reused: the last one
-- issued is kept in `compute_meta` as `aggregate_last_id`), a UUID (the aggregate's name in
-- placement, where member hosts' providers carry it), a unique name, and the member hosts and
-- metadata (`availability_zone` among them) as a JSON document written whole. Times are
-- microseconds since the epoch.

CREATE TABLE compute_aggregate (
    id BIGINT PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);
