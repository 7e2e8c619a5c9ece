-- Glance v2 image records (metadata only: no image data or locations yet). Glance's
-- `images`, `image_properties` and `image_tags` tables folded into one row: free-form
-- properties are a JSON object of strings and tags a JSON array, since both are always read and
-- written with their image. Nullable columns are null until image data exists (size,
-- virtual_size, checksum, os_hash_*), or when the client left them out (name, formats).
-- protected and os_hidden are 0/1; times are microseconds since the epoch.

CREATE TABLE image_image (
    id TEXT PRIMARY KEY,
    name TEXT,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    visibility TEXT NOT NULL,
    protected BIGINT NOT NULL DEFAULT 0,
    os_hidden BIGINT NOT NULL DEFAULT 0,
    disk_format TEXT,
    container_format TEXT,
    min_disk BIGINT NOT NULL DEFAULT 0,
    min_ram BIGINT NOT NULL DEFAULT 0,
    size BIGINT,
    virtual_size BIGINT,
    checksum TEXT,
    os_hash_algo TEXT,
    os_hash_value TEXT,
    properties TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX image_image_owner ON image_image (owner);
CREATE INDEX image_image_visibility ON image_image (visibility);
