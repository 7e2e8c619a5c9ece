-- Compute migrations (Nova's `migrations` table): one row per move of a server — a resize, a
-- cold migration or a live migration — from its source host to a destination chosen by the
-- scheduler. `id` is the API's integer id, `uuid` the placement consumer that holds the
-- source's allocation while the move is in progress (Nova's "migration-based allocations").
-- The server's document carries the move being carried out; this row is what `os-migrations`
-- and `/servers/{id}/migrations` list, written in the same store write as the server.
-- `old_flavor_id`/`new_flavor_id` are the flavors' public ids. Times are microseconds since the
-- epoch.

CREATE TABLE compute_migration (
    id BIGINT PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    instance_uuid TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    migration_type TEXT NOT NULL,
    status TEXT NOT NULL,
    source_compute TEXT,
    source_node TEXT,
    dest_compute TEXT,
    dest_node TEXT,
    dest_host TEXT,
    old_flavor_id TEXT,
    new_flavor_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX compute_migration_instance ON compute_migration (instance_uuid);
CREATE INDEX compute_migration_updated ON compute_migration (updated_at);
