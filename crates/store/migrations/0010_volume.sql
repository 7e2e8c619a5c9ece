-- Cinder v3: volumes, snapshots, volume types (with access lists), attachments and quota
-- overrides. Metadata, image metadata and admin metadata are JSON objects of strings kept with
-- their row, since they are always read and written with it. `provider_location` names the
-- backend's handle of the data (a file of the local backend); it is set before the data exists,
-- so a sweep never removes data a row is about to own. Booleans 0/1; times microseconds.

CREATE TABLE volume_type (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    is_public BIGINT NOT NULL DEFAULT 1,
    extra_specs TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE volume_type_access (
    type_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    PRIMARY KEY (type_id, project_id)
);

CREATE TABLE volume_volume (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT,
    description TEXT,
    size BIGINT NOT NULL,
    status TEXT NOT NULL,
    attach_status TEXT NOT NULL,
    availability_zone TEXT NOT NULL,
    volume_type_id TEXT NOT NULL,
    bootable BIGINT NOT NULL DEFAULT 0,
    multiattach BIGINT NOT NULL DEFAULT 0,
    source_volid TEXT,
    snapshot_id TEXT,
    image_id TEXT,
    metadata TEXT NOT NULL,
    image_metadata TEXT NOT NULL,
    admin_metadata TEXT NOT NULL,
    migration_status TEXT,
    provider_location TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    launched_at BIGINT
);
CREATE INDEX volume_volume_project ON volume_volume (project_id);

CREATE TABLE volume_snapshot (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    volume_id TEXT NOT NULL,
    name TEXT,
    description TEXT,
    size BIGINT NOT NULL,
    status TEXT NOT NULL,
    progress TEXT NOT NULL,
    metadata TEXT NOT NULL,
    provider_location TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX volume_snapshot_project ON volume_snapshot (project_id);
CREATE INDEX volume_snapshot_volume ON volume_snapshot (volume_id);

CREATE TABLE volume_attachment (
    id TEXT PRIMARY KEY,
    volume_id TEXT NOT NULL,
    instance_uuid TEXT,
    attached_host TEXT,
    mountpoint TEXT,
    attach_mode TEXT NOT NULL,
    attach_status TEXT NOT NULL,
    connector TEXT,
    connection_info TEXT,
    attached_at BIGINT,
    detached_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX volume_attachment_volume ON volume_attachment (volume_id);

-- Per-project quota overrides; absent rows use the configured defaults. `resource` is
-- `volumes`, `snapshots`, `gigabytes`, `per_volume_gigabytes` or `<resource>_<type name>`.
CREATE TABLE volume_quota (
    project_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    PRIMARY KEY (project_id, resource)
);
