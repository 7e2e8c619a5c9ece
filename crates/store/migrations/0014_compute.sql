-- Compute (Nova v2.1), first increment: flavors with their extra specs and access lists,
-- keypairs, and quota overrides per project (and user) and per quota class. Flavors are keyed
-- by their public id (Nova's `flavorid`); extra specs are a JSON object on the flavor row,
-- written whole inside the store write that changes them. `compute_meta` remembers one-off
-- initialisations (the seeded DevStack flavors) so a deleted seed is not recreated.
-- Times are microseconds since the epoch.

CREATE TABLE compute_flavor (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    memory_mb BIGINT NOT NULL,
    vcpus BIGINT NOT NULL,
    root_gb BIGINT NOT NULL,
    ephemeral_gb BIGINT NOT NULL,
    swap BIGINT NOT NULL,
    rxtx_factor TEXT NOT NULL,
    is_public BIGINT NOT NULL,
    disabled BIGINT NOT NULL,
    description TEXT,
    extra_specs TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);

CREATE TABLE compute_flavor_access (
    flavor_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    PRIMARY KEY (flavor_id, project_id)
);
CREATE INDEX compute_flavor_access_project ON compute_flavor_access (project_id);

CREATE TABLE compute_keypair (
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    id BIGINT NOT NULL,
    key_type TEXT NOT NULL,
    public_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, name)
);

-- user_id is '' for a project-wide limit.
CREATE TABLE compute_quota (
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id, resource)
);

CREATE TABLE compute_quota_class (
    class_name TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    PRIMARY KEY (class_name, resource)
);

CREATE TABLE compute_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
