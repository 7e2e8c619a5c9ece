-- Bare metal (Ironic): nodes and their ports. A node is a JSON document (`doc`: every field
-- Ironic shows, plus the conductor's private work record) with the columns that lists filter,
-- sort and page on beside it. `seq` is Ironic's integer `id`, the default sort key and what
-- markers resolve to. `work_due` is set while the conductor has a step to run for the node
-- (verifying, a power action in flight): the time the next attempt is due, so the reconciler
-- finds due work with one indexed query and a restarted process resumes it. Names, instance
-- UUIDs and port MACs are unique, as in Ironic. Booleans are 0/1, times microseconds since the
-- epoch.

CREATE TABLE baremetal_node (
    uuid TEXT PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE,
    name TEXT UNIQUE,
    driver TEXT NOT NULL,
    provision_state TEXT NOT NULL,
    power_state TEXT,
    maintenance BIGINT NOT NULL,
    instance_uuid TEXT UNIQUE,
    instance_name TEXT,
    resource_class TEXT,
    conductor_group TEXT NOT NULL,
    owner TEXT,
    lessee TEXT,
    fault TEXT,
    retired BIGINT NOT NULL,
    shard TEXT,
    parent_node TEXT,
    description TEXT,
    reservation TEXT,
    work_due BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT,
    provision_updated_at BIGINT,
    doc TEXT NOT NULL
);
CREATE INDEX baremetal_node_provision_state ON baremetal_node (provision_state);
CREATE INDEX baremetal_node_driver ON baremetal_node (driver);
CREATE INDEX baremetal_node_resource_class ON baremetal_node (resource_class);
CREATE INDEX baremetal_node_conductor_group ON baremetal_node (conductor_group);
CREATE INDEX baremetal_node_owner ON baremetal_node (owner);
CREATE INDEX baremetal_node_lessee ON baremetal_node (lessee);
CREATE INDEX baremetal_node_shard ON baremetal_node (shard);
CREATE INDEX baremetal_node_work_due ON baremetal_node (work_due);

CREATE TABLE baremetal_port (
    uuid TEXT PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE,
    address TEXT NOT NULL UNIQUE,
    name TEXT UNIQUE,
    node_uuid TEXT NOT NULL,
    description TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT,
    doc TEXT NOT NULL
);
CREATE INDEX baremetal_port_node ON baremetal_port (node_uuid);
