-- Placement. Resource providers form trees (parent_uuid, root_uuid); inventories, traits and
-- aggregates hang off a provider; consumers own allocations against provider inventories.
-- Standard resource classes and traits live in code (os-resource-classes, os-traits); the
-- tables hold only the CUSTOM_ ones. Generations are bumped by every change to what they
-- guard; claims check them and capacity inside one store write, which the revision counter
-- serialises with every other write, so replicas sharing PostgreSQL cannot over-commit.
-- allocation_ratio is a float kept as its decimal text (portable through sqlx Any).
-- Times are microseconds since the epoch.

CREATE TABLE placement_provider (
    uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    generation BIGINT NOT NULL,
    parent_uuid TEXT,
    root_uuid TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX placement_provider_root ON placement_provider (root_uuid);
CREATE INDEX placement_provider_parent ON placement_provider (parent_uuid);

CREATE TABLE placement_inventory (
    provider_uuid TEXT NOT NULL,
    resource_class TEXT NOT NULL,
    total BIGINT NOT NULL,
    reserved BIGINT NOT NULL,
    min_unit BIGINT NOT NULL,
    max_unit BIGINT NOT NULL,
    step_size BIGINT NOT NULL,
    allocation_ratio TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (provider_uuid, resource_class)
);
CREATE INDEX placement_inventory_class ON placement_inventory (resource_class);

CREATE TABLE placement_resource_class (
    name TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE placement_trait (
    name TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE placement_provider_trait (
    provider_uuid TEXT NOT NULL,
    trait TEXT NOT NULL,
    PRIMARY KEY (provider_uuid, trait)
);
CREATE INDEX placement_provider_trait_trait ON placement_provider_trait (trait);

CREATE TABLE placement_provider_aggregate (
    provider_uuid TEXT NOT NULL,
    aggregate_uuid TEXT NOT NULL,
    PRIMARY KEY (provider_uuid, aggregate_uuid)
);
CREATE INDEX placement_provider_aggregate_agg ON placement_provider_aggregate (aggregate_uuid);

CREATE TABLE placement_consumer (
    uuid TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    consumer_type TEXT,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX placement_consumer_project ON placement_consumer (project_id, user_id);

CREATE TABLE placement_allocation (
    consumer_uuid TEXT NOT NULL,
    provider_uuid TEXT NOT NULL,
    resource_class TEXT NOT NULL,
    used BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (consumer_uuid, provider_uuid, resource_class)
);
CREATE INDEX placement_allocation_provider ON placement_allocation (provider_uuid, resource_class);
